"""The lecture notes' running examples, shared by the tests that check them."""

import numpy as np

from mytorch import functional as F


def lecture_y(x1, x2):
    """y = ln(x1) + x1·x2 − sin(x2): 11.652 at (2, 5), with dy/dx1 = 5.5 and dy/dx2 = 1.716."""
    return F.sub(F.add(F.log(x1), F.mul(x1, x2)), F.sin(x2))


def lecture_f(x):
    """f(x) = sqrt(x² + exp(x²)) + cos(x² + exp(x²))."""
    c = F.add(F.mul(x, x), F.exp(F.mul(x, x)))
    return F.add(F.sqrt(c), F.cos(c))


def lecture_f_slope(x):
    """f'(x) = 2x (1/(2√c) − sin c)(1 + exp(x²)), c = x² + exp(x²), in closed form (NumPy)."""
    c = x * x + np.exp(x * x)
    return 2 * x * (1 / (2 * np.sqrt(c)) - np.sin(c)) * (1 + np.exp(x * x))

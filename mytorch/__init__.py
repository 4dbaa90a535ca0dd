"""mytorch: a tape-based reverse-mode automatic-differentiation engine for NumPy.

>>> import numpy as np
>>> import mytorch
>>> from mytorch import functional as F
>>> x = np.array([1.0, 2.0, 3.0])
>>> loss = F.sum(F.mul(x, x))
>>> mytorch.backward(loss)
>>> mytorch.engine().gradient_buffer.get_param(x)
array([2., 4., 6.])
"""

from mytorch import functional
from mytorch.autograd_engine import Autograd, Operation, backward, engine, is_recording, no_grad
from mytorch.utils import GradientBuffer, MemoryBuffer

__all__ = [
    "Autograd",
    "GradientBuffer",
    "MemoryBuffer",
    "Operation",
    "backward",
    "engine",
    "functional",
    "is_recording",
    "no_grad",
]
__version__ = "0.1.0"

"""`F.signal`: `scipy.signal.convolve` of N-d arrays ('full', 'same', 'valid'), differentiable in both.

The full convolution is a sum of shifted copies of the larger array (`pad`), each scaled by one
element of the smaller (`getitem`): its rules come from theirs.

>>> import numpy as np
>>> from mytorch import functional as F
>>> F.signal.convolve(np.array([1.0, 2.0]), np.array([1.0, 1.0]))
array([1., 3., 2.])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mytorch.rules.core import getitem
from mytorch.rules.numpy_more import _full_convolution

__all__ = ["convolve"]


def convolve(in1: Any, in2: Any, mode: str = "full", method: str = "auto") -> np.ndarray:
    """`scipy.signal.convolve(in1, in2, mode)`: 'same' is centred on in1; 'valid' needs one input at
    least as large as the other along every axis.

    >>> convolve(np.ones((2, 2)), np.ones((1, 2)), mode="same")
    array([[1., 2.],
           [1., 2.]])
    """
    in1, in2 = np.asarray(in1) if not isinstance(in1, np.ndarray) else in1, (
        np.asarray(in2) if not isinstance(in2, np.ndarray) else in2)
    if in1.ndim != in2.ndim:
        raise ValueError(f"convolve: in1 {in1.shape} and in2 {in2.shape} should have the same dimensionality")
    if in1.size == 0 or in2.size == 0:
        raise ValueError(f"convolve: empty input (shapes {in1.shape} and {in2.shape})")
    if in1.ndim == 0:
        from mytorch.rules.core import mul

        return mul(in1, in2)
    if mode not in ("full", "same", "valid"):
        raise ValueError(f"convolve: acceptable mode flags are 'valid', 'same', or 'full', got {mode!r}")
    full = _full_convolution(in1, in2)
    if mode == "full":
        return full
    if mode == "same":
        starts = [(f - s) // 2 for f, s in zip(full.shape, in1.shape)]
        return getitem(full, tuple(slice(b, b + s) for b, s in zip(starts, in1.shape)))
    bigger = all(a >= b for a, b in zip(in1.shape, in2.shape))
    if not bigger and not all(b >= a for a, b in zip(in1.shape, in2.shape)):
        raise ValueError(f"convolve: for 'valid' mode, one must be at least as large as the other in every "
                         f"dimension (shapes {in1.shape} and {in2.shape})")
    small = in2.shape if bigger else in1.shape
    large = in1.shape if bigger else in2.shape
    return getitem(full, tuple(slice(s - 1, l_) for s, l_ in zip(small, large)))

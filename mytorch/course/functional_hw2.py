"""`mytorch.functional_hw2`: the rules of the course's 2024 HW2 handout, under its module name.

Each is a primitive's own rule called by hand, so nothing here is a new loop:

- `conv1d_stride1_backward(dLdZ, A, W, b)`, `conv2d_stride1_backward`: `(dLdA, dLdW, dLdb)` of a
  stride-1, unpadded convolution (the conv1d / conv2d rules: im2col, one matrix product, col2im);
- `downsampling1d_backward(dLdZ, A, factor)`, `downsampling2d_backward`: `(dLdA, None, None)`, where
  the forward kept every factor-th sample (`A[..., ::k]`) and `factor` comes as the handout passes
  it, a NumPy array of one element (the getitem rule: the adjoint scattered back into zeros);
- `flatten_backward(dLdZ, A)`: dLdZ in A's shape (the reshape rule).

>>> import numpy as np
>>> downsampling1d_backward(np.ones((1, 1, 2)), np.zeros((1, 1, 4)), np.array([2]))[0]
array([[[1., 0., 1., 0.]]])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mytorch import functional as F

__all__ = [
    "conv1d_stride1_backward",
    "conv2d_stride1_backward",
    "downsampling1d_backward",
    "downsampling2d_backward",
    "flatten_backward",
]


def conv1d_stride1_backward(dLdZ: np.ndarray, A: np.ndarray, W: np.ndarray, b: Any) -> tuple:
    """(dLdA, dLdW, dLdb) of Z = conv1d(A, W) + b, stride 1 and no padding (dLdb is None without b)."""
    return F.conv1d.backward(dLdZ, A, W, b)


def conv2d_stride1_backward(dLdZ: np.ndarray, A: np.ndarray, W: np.ndarray, b: Any) -> tuple:
    """(dLdA, dLdW, dLdb) of Z = conv2d(A, W) + b, stride 1 and no padding (dLdb is None without b)."""
    return F.conv2d.backward(dLdZ, A, W, b)


def _factor(factor: Any) -> int:
    # The handout passes the factor as np.array([k]) (an array, so that add_operation takes it).
    return int(np.ravel(factor)[0])


def downsampling1d_backward(dLdZ: np.ndarray, A: np.ndarray, factor: Any) -> tuple:
    """(dLdA, None, None) of Z = A[:, :, ::k]: dLdZ at every k-th sample, zeros elsewhere."""
    index = (Ellipsis, slice(None, None, _factor(factor)))
    return F.getitem.backward(dLdZ, A, index), None, None


def downsampling2d_backward(dLdZ: np.ndarray, A: np.ndarray, factor: Any) -> tuple:
    """(dLdA, None, None) of Z = A[:, :, ::k, ::k]: dLdZ at every k-th row and column, zeros elsewhere."""
    step = slice(None, None, _factor(factor))
    return F.getitem.backward(dLdZ, A, (Ellipsis, step, step)), None, None


def flatten_backward(dLdZ: np.ndarray, A: np.ndarray) -> np.ndarray:
    """dLdZ reshaped to A's shape (the adjoint of flattening A)."""
    return F.reshape.backward(dLdZ, A, np.shape(dLdZ))

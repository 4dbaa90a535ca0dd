"""Downsample1d/2d and Upsample1d/2d, the resampling layers of the course's HW2 handout.

Downsampling keeps every k-th sample (a getitem); upsampling puts the samples k apart with zeros
between them (a scatter_add into zeros), so each is one primitive and writes no gradient code.
The engine is the optional last argument, as in the handout (`Downsample1d(2, engine)`).

>>> Upsample1d(2)(np.array([[[1.0, 2.0, 3.0]]]))
array([[[1., 0., 2., 0., 3.]]])
>>> Downsample1d(2)(np.array([[[1.0, 0.0, 2.0, 0.0, 3.0]]]))
array([[[1., 2., 3.]]])
"""

from __future__ import annotations

import numpy as np

from mytorch import functional as F
from mytorch.autograd_engine import Autograd
from mytorch.nn.module import Module


def _every(factor: int, dims: int) -> tuple:
    """The index of every factor-th sample along the last `dims` axes."""
    return (Ellipsis,) + (slice(None, None, factor),) * dims


class _Resample(Module):
    dims = 0

    def __init__(self, factor: int, autograd_engine: Autograd | None = None) -> None:
        super().__init__(autograd_engine)
        if int(factor) != factor or factor < 1:
            raise ValueError(f"{type(self).__name__}: the factor must be a positive int, got {factor!r}")
        self.factor = int(factor)

    def extra_repr(self) -> str:
        return f"{self.factor}"


class _Downsample(_Resample):
    def forward(self, A: np.ndarray) -> np.ndarray:
        return F.getitem(A, _every(self.factor, self.dims))

    @property
    def downsampling_factor(self) -> int:
        return self.factor


class _Upsample(_Resample):
    def forward(self, A: np.ndarray) -> np.ndarray:
        shape = np.shape(A)
        spatial = tuple(self.factor * (n - 1) + 1 for n in shape[-self.dims:])
        return F.scatter_add(A, _every(self.factor, self.dims), shape[:-self.dims] + spatial)

    @property
    def upsampling_factor(self) -> int:
        return self.factor


class Downsample1d(_Downsample):
    """(N, C, W) → (N, C, ⌈W/k⌉): every k-th sample."""

    dims = 1


class Downsample2d(_Downsample):
    """(N, C, H, W) → (N, C, ⌈H/k⌉, ⌈W/k⌉): every k-th row of every k-th column."""

    dims = 2


class Upsample1d(_Upsample):
    """(N, C, W) → (N, C, k(W−1)+1): the samples k apart, zeros between them."""

    dims = 1


class Upsample2d(_Upsample):
    """(N, C, H, W) → (N, C, k(H−1)+1, k(W−1)+1): the samples k apart along both axes, zeros between."""

    dims = 2

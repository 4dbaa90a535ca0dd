"""Conv1d, Conv2d, MaxPool2d: the conv/pool primitives with PyTorch's parameters and defaults.

Unbatched inputs ((C, L) or (C, H, W)) get a batch axis of one for the primitive, as in PyTorch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mytorch import functional as F
from mytorch.autograd_engine import Autograd
from mytorch.nn.linear import uniform
from mytorch.nn.module import Module


def _batched(operation: Any, A: np.ndarray, spatial_dims: int) -> np.ndarray:
    if np.ndim(A) == spatial_dims + 1:  # unbatched
        return F.squeeze(operation(F.expand_dims(A, 0)), 0)
    return operation(A)


class _ConvNd(Module):
    spatial_dims = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", autograd_engine: Autograd | None = None) -> None:
        super().__init__(autograd_engine)
        name = type(self).__name__
        if groups != 1:
            raise NotImplementedError(f"{name}: groups={groups} is not supported (only groups=1)")
        if padding_mode != "zeros":
            raise NotImplementedError(f"{name}: padding_mode={padding_mode!r} is not supported (only zeros)")
        dims = self.spatial_dims
        kernel = (kernel_size,) * dims if isinstance(kernel_size, int) else tuple(kernel_size)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel
        self.stride, self.padding, self.dilation = stride, padding, dilation
        bound = 1 / np.sqrt(in_channels * int(np.prod(kernel)))  # PyTorch's default, fan_in = C·K
        self.register_parameter("weight", uniform(bound, (out_channels, in_channels, *kernel)), attribute="W")
        self.register_parameter("bias", uniform(bound, (out_channels,)) if bias else None, attribute="b")

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L) → (N, C_out, L_out), as torch.nn.Conv1d.

    >>> Conv1d(3, 4, kernel_size=3, stride=2, padding=1)(np.ones((2, 3, 9))).shape
    (2, 4, 5)
    """

    spatial_dims = 1

    def forward(self, A: np.ndarray) -> np.ndarray:
        return _batched(
            lambda x: F.conv1d(x, self.W, self.b, stride=self.stride, padding=self.padding,
                               dilation=self.dilation),
            A, 1,
        )


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W) → (N, C_out, H_out, W_out), as torch.nn.Conv2d.

    >>> Conv2d(3, 4, kernel_size=3, padding=1)(np.ones((2, 3, 5, 5))).shape
    (2, 4, 5, 5)
    """

    spatial_dims = 2

    def forward(self, A: np.ndarray) -> np.ndarray:
        return _batched(
            lambda x: F.conv2d(x, self.W, self.b, stride=self.stride, padding=self.padding,
                               dilation=self.dilation),
            A, 2,
        )


class MaxPool2d(Module):
    """The maximum of each window, as torch.nn.MaxPool2d (stride defaults to kernel_size).

    >>> MaxPool2d(2)(np.arange(16.0).reshape(1, 1, 4, 4))
    array([[[[ 5.,  7.],
             [13., 15.]]]])
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 return_indices: bool = False, ceil_mode: bool = False,
                 autograd_engine: Autograd | None = None) -> None:
        super().__init__(autograd_engine)
        if return_indices:
            raise NotImplementedError("MaxPool2d: return_indices=True is not supported")
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode

    def forward(self, A: np.ndarray) -> np.ndarray:
        return _batched(
            lambda x: F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                                   self.ceil_mode),
            A, 2,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

"""Conv1d, Conv2d, MaxPool2d: the conv/pool primitives with PyTorch's parameters and defaults.

Unbatched inputs ((C, L) or (C, H, W)) get a batch axis of one for the primitive, as in PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mytorch import functional as F
from mytorch.autograd_engine import Autograd
from mytorch.nn.linear import Flatten, uniform
from mytorch.nn.module import Module
from mytorch.nn.resampling import Downsample1d, Downsample2d, Upsample1d, Upsample2d

# The handout's conv.py holds (or imports) its resampling layers and Flatten too.
__all__ = [
    "Conv1D_stride1", "Conv1d", "Conv1d_stride1", "Conv2D_stride1", "Conv2d", "Conv2d_stride1",
    "Downsample1d", "Downsample2d", "Flatten", "MaxPool2d", "Upsample1d", "Upsample2d",
]


def _batched(operation: Any, A: np.ndarray, spatial_dims: int) -> np.ndarray:
    if np.ndim(A) == spatial_dims + 1:  # unbatched
        return F.squeeze(operation(F.expand_dims(A, 0)), 0)
    return operation(A)


class _ConvNd(Module):
    spatial_dims = 0

    def __init__(self, in_channels: int | None = None, out_channels: int | None = None,
                 kernel_size: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 autograd_engine: Autograd | None = None, *, in_channel: int | None = None,
                 out_channel: int | None = None, downsampling_factor: int | None = None,
                 weight_init_fn: Callable | None = None, bias_init_fn: Callable | None = None) -> None:
        super().__init__(autograd_engine)
        name = type(self).__name__
        if callable(padding) or padding is None:  # the handout's (..., factor, engine, weight_init_fn, ...)
            weight_init_fn = weight_init_fn or padding
            bias_init_fn = bias_init_fn or (dilation if callable(dilation) else None)
            padding, dilation = 0, 1
        handout = any(v is not None for v in (in_channel, out_channel, downsampling_factor,
                                              weight_init_fn, bias_init_fn))
        in_channels = in_channel if in_channels is None else in_channels
        out_channels = out_channel if out_channels is None else out_channels
        stride = downsampling_factor if downsampling_factor is not None else stride
        if in_channels is None or out_channels is None or kernel_size is None:
            raise TypeError(f"{name}: in_channels, out_channels and kernel_size are required")
        if groups != 1:
            raise NotImplementedError(f"{name}: groups={groups} is not supported (only groups=1)")
        if padding_mode != "zeros":
            raise NotImplementedError(f"{name}: padding_mode={padding_mode!r} is not supported (only zeros)")
        dims = self.spatial_dims
        kernel = (kernel_size,) * dims if isinstance(kernel_size, int) else tuple(kernel_size)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel
        self.stride, self.padding, self.dilation = stride, padding, dilation
        shape = (out_channels, in_channels, *kernel)
        if handout:  # the handout's initialisation: W ~ N(0, 1) and b = 0, unless given functions
            weight = weight_init_fn(*shape) if weight_init_fn else np.random.normal(0, 1.0, shape)
            bias_value = bias_init_fn(out_channels) if bias_init_fn else np.zeros(out_channels)
            bias_value = np.asarray(bias_value, dtype=float).reshape(out_channels)  # (C_out, 1) too
        else:
            bound = 1 / np.sqrt(in_channels * int(np.prod(kernel)))  # PyTorch's default, fan_in = C·K
            weight, bias_value = uniform(bound, shape), uniform(bound, (out_channels,)) if bias else None
        self.register_parameter("weight", np.asarray(weight, dtype=float), attribute="W")
        self.register_parameter("bias", bias_value, attribute="b")

    @property
    def downsampling_factor(self) -> Any:
        """The handout's name for the stride."""
        return self.stride

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )


class _Stride1:
    """The handout's `conv1d_stride1` / `conv2d_stride1`: the layer's convolution at stride 1.

    It holds no arrays of its own: `W`, `b` (and setting them), `dW`, `db` are the layer's. Calling
    it convolves at stride 1; the layer's output is that, downsampled by the stride.
    """

    def __init__(self, layer: _ConvNd) -> None:
        object.__setattr__(self, "_layer", layer)

    def __getattr__(self, name: str) -> Any:
        if name in ("W", "b", "dW", "db", "dLdW", "dLdb", "weight", "bias", "autograd_engine",
                    "in_channels", "out_channels", "kernel_size"):
            return getattr(self._layer, name)
        raise AttributeError(f"{type(self._layer).__name__}'s stride-1 convolution has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in ("W", "b", "weight", "bias"):
            raise AttributeError(f"only W and b can be set on a stride-1 convolution, not {name!r}")
        setattr(self._layer, name, value)

    def __call__(self, A: np.ndarray) -> np.ndarray:
        return self.forward(A)

    def forward(self, A: np.ndarray) -> np.ndarray:
        layer = self._layer
        conv = F.conv1d if layer.spatial_dims == 1 else F.conv2d
        return _batched(
            lambda x: conv(x, layer.W, layer.b, stride=1, padding=layer.padding, dilation=layer.dilation),
            A, layer.spatial_dims,
        )


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L) → (N, C_out, L_out), as torch.nn.Conv1d.

    >>> Conv1d(3, 4, kernel_size=3, stride=2, padding=1)(np.ones((2, 3, 9))).shape
    (2, 4, 5)
    """

    spatial_dims = 1

    @property
    def conv1d_stride1(self) -> _Stride1:
        return _Stride1(self)

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

    @property
    def conv2d_stride1(self) -> _Stride1:
        return _Stride1(self)

    def forward(self, A: np.ndarray) -> np.ndarray:
        return _batched(
            lambda x: F.conv2d(x, self.W, self.b, stride=self.stride, padding=self.padding,
                               dilation=self.dilation),
            A, 2,
        )


class _HandoutStride1(_ConvNd):
    def __init__(self, in_channel: int, out_channel: int, kernel_size: Any,
                 weight_init_fn: Callable | None = None, bias_init_fn: Callable | None = None,
                 autograd_engine: Autograd | None = None) -> None:
        super().__init__(in_channel=in_channel, out_channel=out_channel, kernel_size=kernel_size,
                         downsampling_factor=1, autograd_engine=autograd_engine,
                         weight_init_fn=weight_init_fn, bias_init_fn=bias_init_fn)


class Conv1D_stride1(_HandoutStride1, Conv1d):
    """The handout's stride-1 convolution as a layer of its own, initialised as the handout does:
    `Conv1D_stride1(in_channel, out_channel, kernel_size, autograd_engine, weight_init_fn,
    bias_init_fn)`, the engine optional (the handout without autograd leaves it out)."""


class Conv2D_stride1(_HandoutStride1, Conv2d):
    """The 2-D counterpart of Conv1D_stride1 (the same arguments)."""


Conv1d_stride1, Conv2d_stride1 = Conv1D_stride1, Conv2D_stride1  # the handout without autograd


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

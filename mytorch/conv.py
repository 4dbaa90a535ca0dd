"""Convolution and pooling as primitives, vectorised with im2col.

im2col cuts an input (N, C, *S) into its sliding windows, an array (N, C, *O, *K): one window of
K = kernel elements for every output position O. A convolution is then one matrix product between
the windows and the kernel, and max pooling is a max over each window, with no Python loop over
output positions. The adjoint of im2col is col2im, which adds every window back onto the spot it
came from (overlapping windows add up); the loop there runs over the few kernel offsets only.

Both are primitives too, so the rules of conv1d, conv2d and max_pool2d are written with recording
primitives and a recorded backward walk (create_graph) can be differentiated again:

    y = conv(x, W) + b:   W̄ = ȳ_rows^T · im2col(x)_rows,   x̄ = col2im(ȳ_rows · W_rows),   b̄ = Σ ȳ
    y = max over each window:   x̄ = col2im(ȳ at the first maximum of each window, 0 elsewhere)

Geometry follows torch.nn.functional: NCW / NCHW layouts, `stride`, `padding` (an int, one int per
spatial axis, or "valid" / "same" for convolutions), `dilation`; max pooling pads with -inf.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mytorch.primitive import is_float_array, primitive
from mytorch.rules.core import add, expand_dims, matmul, mul, reshape, transpose
from mytorch.rules.core import sum as sum_over

# ---- geometry ---------------------------------------------------------------------------------


def _per_axis(value: Any, dims: int, what: str, op: str) -> tuple[int, ...]:
    """An int, or one int per spatial axis, as a tuple of `dims` ints."""
    values = (value,) * dims if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != dims or not all(isinstance(v, (int, np.integer)) for v in values):
        raise ValueError(f"{op}: {what} must be an int or {dims} ints, got {value!r}")
    return tuple(int(v) for v in values)


def _pads(padding: Any, kernel: tuple, dilation: tuple, stride: tuple, op: str) -> tuple:
    """Padding as one (before, after) pair per spatial axis."""
    if isinstance(padding, str):
        if padding == "valid":
            return tuple((0, 0) for _ in kernel)
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' needs stride 1, got stride {stride}")
            # As PyTorch: the odd one out of the total goes after.
            totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return tuple((t // 2, t - t // 2) for t in totals)
        raise ValueError(f"{op}: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
    pads = _per_axis(padding, len(kernel), "padding", op)
    if any(p < 0 for p in pads):
        raise ValueError(f"{op}: padding must be non-negative, got {padding!r}")
    return tuple((p, p) for p in pads)


def _output_size(size: int, kernel: int, stride: int, pad: tuple, dilation: int) -> int:
    return (size + pad[0] + pad[1] - dilation * (kernel - 1) - 1) // stride + 1


def _check_geometry(x: Any, dims: int, kernel: tuple, stride: tuple, pads: tuple, dilation: tuple,
                    op: str) -> tuple[int, ...]:
    """The output's spatial size; a clear error when the input or the window does not fit."""
    shape = np.shape(x)
    if len(shape) != dims + 2:
        layout = "NCW" if dims == 1 else "NCHW"
        raise ValueError(f"{op}: expected a {dims + 2}-D input ({layout}), got shape {shape}")
    if any(s < 1 for s in stride) or any(d < 1 for d in dilation) or any(k < 1 for k in kernel):
        raise ValueError(
            f"{op}: kernel {kernel}, stride {stride} and dilation {dilation} must be positive"
        )
    out = tuple(
        _output_size(n, k, s, p, d) for n, k, s, p, d in zip(shape[2:], kernel, stride, pads, dilation)
    )
    if any(o < 1 for o in out):
        raise ValueError(
            f"{op}: a window of {kernel} (dilation {dilation}) does not fit an input of spatial "
            f"size {shape[2:]} padded by {pads}"
        )
    return out


# ---- im2col and its adjoint col2im -------------------------------------------------------------


def _windows(x: np.ndarray, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
             pad_value: float = 0.0) -> np.ndarray:
    """A read-only view (N, C, *O, *K) of the windows of `x` (padded: a copy is made first)."""
    if any(before or after for before, after in padding):
        x = np.pad(x, ((0, 0), (0, 0), *padding), constant_values=pad_value)
    dims = len(kernel)
    extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    view = sliding_window_view(x, extent, axis=tuple(range(2, 2 + dims)))
    step = tuple(slice(None, None, s) for s in stride) + tuple(slice(None, None, d) for d in dilation)
    return view[(slice(None), slice(None), *step)]


def _im2col(x: np.ndarray, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
            pad_value: float = 0.0) -> np.ndarray:
    return np.ascontiguousarray(_windows(x, kernel, stride, padding, dilation, pad_value))


def _col2im(cols: np.ndarray, x_shape: tuple, kernel: tuple, stride: tuple, padding: tuple,
            dilation: tuple) -> np.ndarray:
    dims = len(kernel)
    out_size = cols.shape[2:2 + dims]
    padded = tuple(n + before + after for n, (before, after) in zip(x_shape[2:], padding))
    image = np.zeros(tuple(x_shape[:2]) + padded, dtype=cols.dtype)
    for offset in np.ndindex(*kernel):  # one pass per kernel element, all windows at once
        spot = tuple(
            slice(k * d, k * d + s * (o - 1) + 1, s)
            for k, d, s, o in zip(offset, dilation, stride, out_size)
        )
        image[(slice(None), slice(None), *spot)] += cols[(Ellipsis, *offset)]
    inside = tuple(slice(before, before + n) for (before, _), n in zip(padding, x_shape[2:]))
    return np.ascontiguousarray(image[(slice(None), slice(None), *inside)])


im2col = primitive(
    "im2col", _im2col,
    # linear in x (padding is a constant): the adjoint adds each window back where it came from
    vjp=lambda g, ans, x, kernel, stride, padding, dilation, pad_value=0.0: (
        col2im(g, np.shape(x), kernel, stride, padding, dilation),
    ),
    jvp=lambda t, ans, x, kernel, stride, padding, dilation, pad_value=0.0: im2col(
        t[0], kernel, stride, padding, dilation
    ),
)
col2im = primitive(
    "col2im", _col2im,
    vjp=lambda g, ans, cols, x_shape, kernel, stride, padding, dilation: (
        im2col(g, kernel, stride, padding, dilation),
    ),
    jvp=lambda t, ans, cols, x_shape, kernel, stride, padding, dilation: col2im(
        t[0], x_shape, kernel, stride, padding, dilation
    ),
)

# ---- convolution ------------------------------------------------------------------------------


def _conv_geometry(x: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any,
                   groups: int, op: str, dims: int) -> tuple:
    w_shape = np.shape(weight)
    if len(w_shape) != dims + 2:
        raise ValueError(f"{op}: expected a {dims + 2}-D weight (out, in, *kernel), got shape {w_shape}")
    if groups != 1:
        raise NotImplementedError(f"{op}: groups={groups} is not supported (only groups=1)")
    x_shape = np.shape(x)
    if len(x_shape) == dims + 2 and x_shape[1] != w_shape[1]:
        raise ValueError(
            f"{op}: input of shape {x_shape} has {x_shape[1]} channels, the weight {w_shape} expects "
            f"{w_shape[1]}"
        )
    if bias is not None and np.shape(bias) != (w_shape[0],):
        raise ValueError(f"{op}: bias of shape {np.shape(bias)} for {w_shape[0]} output channels")
    kernel = tuple(w_shape[2:])
    stride = _per_axis(stride, dims, "stride", op)
    dilation = _per_axis(dilation, dims, "dilation", op)
    pads = _pads(padding, kernel, dilation, stride, op)
    out = _check_geometry(x, dims, kernel, stride, pads, dilation, op)
    return kernel, stride, pads, dilation, out


def _convolution(name: str, dims: int) -> Any:
    """conv1d (dims=1) or conv2d (dims=2): the same rules over 1 or 2 spatial axes."""
    spatial = tuple(range(2, 2 + dims))

    def forward(x: np.ndarray, weight: np.ndarray, bias: Any = None, stride: Any = 1, padding: Any = 0,
                dilation: Any = 1, groups: int = 1) -> np.ndarray:
        kernel, stride, pads, dilation, _ = _conv_geometry(
            x, weight, bias, stride, padding, dilation, groups, name, dims
        )
        windows = _windows(np.asarray(x), kernel, stride, pads, dilation)  # (N, C, *O, *K)
        kernel_axes = tuple(range(2 + dims, 2 + 2 * dims))
        out = np.tensordot(windows, weight, axes=((1, *kernel_axes), (1, *spatial)))  # (N, *O, out)
        out = np.moveaxis(out, -1, 1)
        if bias is not None:
            out = out + np.reshape(bias, (-1,) + (1,) * dims)
        return np.ascontiguousarray(out)

    def vjp(g: np.ndarray, ans: np.ndarray, x: Any, weight: Any, bias: Any = None, stride: Any = 1,
            padding: Any = 0, dilation: Any = 1, groups: int = 1) -> tuple:
        kernel, stride, pads, dilation, out = _conv_geometry(
            x, weight, bias, stride, padding, dilation, groups, name, dims
        )
        batch, channels = np.shape(x)[:2]
        out_channels = np.shape(weight)[0]
        # Rows: one per output position (n, *o). Columns: one per kernel entry (c, *k).
        g_rows = reshape(transpose(g, (0, *spatial, 1)), (-1, out_channels))
        grad_x = grad_w = grad_b = None
        if is_float_array(x):
            w_rows = reshape(weight, (out_channels, -1))
            cols = reshape(matmul(g_rows, w_rows), (batch, *out, channels, *kernel))
            cols = transpose(cols, (0, dims + 1, *range(1, dims + 1), *range(dims + 2, 2 * dims + 2)))
            grad_x = col2im(cols, np.shape(x), kernel, stride, pads, dilation)
        if is_float_array(weight):
            windows = im2col(x, kernel, stride, pads, dilation)  # (N, C, *O, *K)
            x_rows = transpose(windows, (0, *range(2, 2 + dims), 1, *range(2 + dims, 2 + 2 * dims)))
            x_rows = reshape(x_rows, (g_rows.shape[0], -1))
            grad_w = reshape(matmul(transpose(g_rows), x_rows), np.shape(weight))
        if is_float_array(bias):
            grad_b = sum_over(g, axis=(0, *spatial))
        return grad_x, grad_w, grad_b

    def jvp(t: list, ans: np.ndarray, x: Any, weight: Any, bias: Any = None, stride: Any = 1,
            padding: Any = 0, dilation: Any = 1, groups: int = 1) -> np.ndarray:
        # Bilinear in (x, W), plus b: ẏ = conv(ẋ, W) + conv(x, Ẇ) + ḃ
        tangent = add(
            conv(t[0], weight, None, stride, padding, dilation, groups),
            conv(x, t[1], None, stride, padding, dilation, groups),
        )
        if t[2] is not None:
            tangent = add(tangent, reshape(t[2], (-1,) + (1,) * dims))
        return tangent

    forward.__name__ = name
    conv = primitive(name, forward, vjp=vjp, jvp=jvp, arity=3)
    return conv


conv1d = _convolution("conv1d", 1)
conv2d = _convolution("conv2d", 2)

# ---- max pooling -------------------------------------------------------------------------------


def _pool_geometry(x: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool,
                   op: str, dims: int) -> tuple:
    kernel = _per_axis(kernel_size, dims, "kernel_size", op)
    stride = kernel if stride is None or stride == () else _per_axis(stride, dims, "stride", op)
    dilation = _per_axis(dilation, dims, "dilation", op)
    pads = _per_axis(padding, dims, "padding", op)
    if any(p < 0 or p > k // 2 for p, k in zip(pads, kernel)):
        raise ValueError(f"{op}: padding {pads} must be non-negative and at most half the kernel {kernel}")
    pads = tuple((p, p) for p in pads)
    if ceil_mode:  # the last window may hang over the end, as long as it starts inside
        pads = tuple(
            (p, p + _ceil_overhang(n, k, s, p, d))
            for n, k, s, (p, _), d in zip(np.shape(x)[2:], kernel, stride, pads, dilation)
        )
    out = _check_geometry(x, dims, kernel, stride, pads, dilation, op)
    return kernel, stride, pads, dilation, out


def _refuse_windows_in_the_padding(sizes: tuple, kernel: tuple, stride: tuple, pads: tuple,
                                   dilation: tuple, out: tuple, op: str) -> None:
    """A window whose taps all land in the padding has no maximum (-inf) and no gradient to give:
    refuse it rather than return -inf (PyTorch 2.13 returns -inf with a gradient on some input
    element, or aborts). A window misses the input iff it does along some axis."""
    for axis, (n, k, s, (before, _), d, o) in enumerate(zip(sizes, kernel, stride, pads, dilation, out)):
        taps = np.arange(o)[:, None] * s - before + np.arange(k)[None, :] * d
        if not np.all(np.any((taps >= 0) & (taps < n), axis=1)):
            raise ValueError(
                f"{op}: with kernel {kernel}, stride {stride}, padding {tuple(p for p, _ in pads)} and "
                f"dilation {dilation}, a window along spatial axis {axis} (size {n}) lies wholly in the "
                "padding, so it has no maximum; use less padding or dilation"
            )


def _ceil_overhang(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    out = math.ceil(span / stride) + 1
    if (out - 1) * stride >= size + pad:
        out -= 1
    return max(0, (out - 1) * stride + dilation * (kernel - 1) + 1 - (size + 2 * pad))


def _first_max_mask(x: np.ndarray, geometry: tuple, like: Any) -> np.ndarray:
    """A constant (N, C, *O, *K) holding 1 at the first maximum of each window (PyTorch's pick)."""
    kernel, stride, pads, dilation, _ = geometry
    windows = _windows(np.asarray(x), kernel, stride, pads, dilation, pad_value=-np.inf)
    flat = windows.reshape(windows.shape[: -len(kernel)] + (-1,))
    first = np.argmax(flat, axis=-1)[..., None]
    mask = np.arange(flat.shape[-1]) == first
    dtype = like.dtype if isinstance(like, np.ndarray) and like.dtype.kind == "f" else float
    return mask.astype(dtype).reshape(windows.shape)


def _max_pool2d(x: np.ndarray, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                ceil_mode: bool = False, return_indices: bool = False) -> np.ndarray:
    if return_indices:
        raise NotImplementedError("max_pool2d: return_indices=True is not supported")
    kernel, stride, pads, dilation, out = _pool_geometry(
        x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d", 2
    )
    _refuse_windows_in_the_padding(np.shape(x)[2:], kernel, stride, pads, dilation, out, "max_pool2d")
    windows = _windows(np.asarray(x), kernel, stride, pads, dilation, pad_value=-np.inf)
    return np.max(windows, axis=(-2, -1))


def _max_pool2d_vjp(g: np.ndarray, ans: np.ndarray, x: Any, kernel_size: Any, stride: Any = None,
                    padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
                    return_indices: bool = False) -> tuple:
    geometry = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d", 2)
    kernel, stride, pads, dilation, _ = geometry
    # Each window's adjoint goes to its first maximum; col2im adds up overlapping windows.
    spread = mul(expand_dims(g, (-2, -1)), _first_max_mask(x, geometry, g))
    return (col2im(spread, np.shape(x), kernel, stride, pads, dilation),)


def _max_pool2d_jvp(t: list, ans: np.ndarray, x: Any, kernel_size: Any, stride: Any = None,
                    padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
                    return_indices: bool = False) -> np.ndarray:
    geometry = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d", 2)
    kernel, stride, pads, dilation, _ = geometry
    windows = im2col(t[0], kernel, stride, pads, dilation)
    return sum_over(mul(windows, _first_max_mask(x, geometry, t[0])), axis=(-2, -1))


max_pool2d = primitive("max_pool2d", _max_pool2d, vjp=_max_pool2d_vjp, jvp=_max_pool2d_jvp)

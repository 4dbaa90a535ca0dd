"""Convolution and pooling as primitives, vectorised with im2col.

im2col cuts an input (N, C, *S) into its sliding windows: one window of K = kernel elements for
every output position O. A convolution is then a matrix product between the windows and the
kernel, and max pooling is a max over each window, with no Python loop over output positions. The
adjoint of im2col is col2im, which adds every window back onto the spot it came from (overlapping
windows add up); the loop there runs over the few kernel offsets only.

The convolutions lay their windows out as rows (N, C·K, O) (`windows_rows`, `rows_to_image`): per
sample a (C·K, O) matrix, so y[n] = W_rows · cols[n] is one batched BLAS call writing NCHW
directly, and W̄ = Σ_n ȳ[n] · cols[n]ᵀ reads the same buffer through a transposed view. The
forward pass keeps its windows beside its output while recording and the weight gradient reuses
them (`conv_windows`): one windows buffer per step. `im2col` / `col2im` keep the (N, C, *O, *K)
layout, the one max pooling and the tests read.

Every piece is a primitive, so the rules of conv1d, conv2d and max_pool2d are written with
recording primitives and a recorded backward walk (create_graph) can be differentiated again, or
replayed by `mytorch.compile`:

    y = conv(x, W) + b:   W̄ = Σ_n ȳ[n] · cols[n]ᵀ,   x̄ = rows_to_image(W_rowsᵀ · ȳ[n]),   b̄ = Σ ȳ
    y = max over each window:   x̄ = rows_to_image(ȳ at the first maximum of each window, 0 elsewhere)

Geometry follows torch.nn.functional: NCW / NCHW layouts, `stride`, `padding` (an int, one int per
spatial axis, or "valid" / "same" for convolutions), `dilation`; max pooling pads with -inf.
"""

from __future__ import annotations

import functools
import math
import weakref
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mytorch.autograd_engine import is_recording
from mytorch.primitive import primitive
from mytorch.rules.core import add, matmul, mul, reshape, transpose
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

# ---- the fast layout: windows as rows (N, C·K, O), one buffer per step --------------------------
#
# A convolution's big products run on windows laid out (N, C, *K, *O): copying them from the input
# walks the output positions O innermost, contiguous in the input, which is ~10x faster than the
# textbook layout (one row per output position: the copy's inner loop is then a kernel row of 3).
# Per sample, the windows are a (C·K, O) matrix: y[n] = W_rows · cols[n] is one batched BLAS call
# that writes the output in NCHW directly, and W̄ = Σ_n ȳ[n] · cols[n]ᵀ reads the same buffer
# through a transposed view (BLAS's transpose flag: no copy). The forward pass keeps its windows
# buffer beside its output while recording, and the backward pass reuses it (`conv_windows`): one
# windows buffer per step, freed with the output.

_saved_windows: dict[int, tuple[weakref.ref, np.ndarray]] = {}

# The primitives the rules below use internally: not in PRIMITIVES, so neither `python -m mytorch
# check` nor the handout tool (which lists `primitive(...)` definitions) treats them as items.
_internal_primitive = functools.partial(primitive, register=False)


def _remember_windows(out: np.ndarray, cols: np.ndarray) -> None:
    key = id(out)

    def forget(_: weakref.ref, key: int = key) -> None:
        _saved_windows.pop(key, None)

    _saved_windows[key] = (weakref.ref(out, forget), cols)


def _rows(x: Any, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
          pad_value: float = 0.0) -> np.ndarray:
    """The windows of `x` as a contiguous (N, C·prod(K), prod(O)) array, K before O."""
    x = np.asarray(x)
    dims = len(kernel)
    windows = _windows(x, kernel, stride, padding, dilation, pad_value)  # (N, C, *O, *K), a view
    order = (0, 1, *range(2 + dims, 2 + 2 * dims), *range(2, 2 + dims))
    cols = np.ascontiguousarray(windows.transpose(order))  # (N, C, *K, *O)
    return cols.reshape(x.shape[0], x.shape[1] * math.prod(kernel), -1)


def _from_rows(cols: np.ndarray, x_shape: tuple, kernel: tuple, stride: tuple, padding: tuple,
               dilation: tuple) -> np.ndarray:
    """The adjoint of `_rows`: every window element added back where it came from."""
    cols = np.asarray(cols)
    padded = tuple(n + before + after for n, (before, after) in zip(x_shape[2:], padding))
    out_size = tuple(
        _output_size(n, k, s, p, d) for n, k, s, p, d in zip(x_shape[2:], kernel, stride, padding, dilation)
    )
    cols = cols.reshape(tuple(x_shape[:2]) + kernel + out_size)
    image = np.zeros(tuple(x_shape[:2]) + padded, dtype=cols.dtype)
    for offset in np.ndindex(*kernel):  # one pass per kernel element, all windows at once
        spot = tuple(
            slice(k * d, k * d + s * (o - 1) + 1, s) for k, d, s, o in zip(offset, dilation, stride, out_size)
        )
        image[(slice(None), slice(None), *spot)] += cols[(slice(None), slice(None), *offset)]
    if not any(before or after for before, after in padding):
        return image
    inside = tuple(slice(before, before + n) for (before, _), n in zip(padding, x_shape[2:]))
    return np.ascontiguousarray(image[(slice(None), slice(None), *inside)])


def _conv_windows(x: Any, out: Any, kernel: tuple, stride: tuple, padding: tuple,
                  dilation: tuple) -> np.ndarray:
    """The windows of `x` that made the convolution output `out` (saved by its forward, if any)."""
    saved = _saved_windows.get(id(out))
    if saved is not None and saved[0]() is out:
        return saved[1]
    return _rows(x, kernel, stride, padding, dilation)


windows_rows = _internal_primitive(
    "windows_rows", _rows,
    vjp=lambda g, ans, x, kernel, stride, padding, dilation, pad_value=0.0: (
        rows_to_image(g, np.shape(x), kernel, stride, padding, dilation),
    ),
    jvp=lambda t, ans, x, kernel, stride, padding, dilation, pad_value=0.0: windows_rows(
        t[0], kernel, stride, padding, dilation
    ),
)
rows_to_image = _internal_primitive(
    "rows_to_image", _from_rows,
    vjp=lambda g, ans, cols, x_shape, kernel, stride, padding, dilation: (
        windows_rows(g, kernel, stride, padding, dilation),
    ),
    jvp=lambda t, ans, cols, x_shape, kernel, stride, padding, dilation: rows_to_image(
        t[0], x_shape, kernel, stride, padding, dilation
    ),
)
# The convolution's own windows, by its output: its input is `x` (the output is only the key).
conv_windows = _internal_primitive(
    "conv_windows", _conv_windows, arity=2,
    vjp=lambda g, ans, x, out, kernel, stride, padding, dilation: (
        rows_to_image(g, np.shape(x), kernel, stride, padding, dilation), None,
    ),
    jvp=lambda t, ans, x, out, kernel, stride, padding, dilation: windows_rows(
        t[0], kernel, stride, padding, dilation
    ),
)

# ---- convolution ------------------------------------------------------------------------------


def _weight_rows(weight: Any) -> np.ndarray:
    """A kernel (F, C, *K) as the matrix (F, C·K)."""
    return reshape(weight, (np.shape(weight)[0], -1))


def _sample_rows(g: Any) -> np.ndarray:
    """An output or its adjoint (N, F, *O) as one matrix (F, O) per sample: (N, F, O)."""
    return reshape(g, (*np.shape(g)[:2], -1))


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

    def forward(x: np.ndarray, weight: np.ndarray, bias: Any = None, stride: Any = 1, padding: Any = 0,
                dilation: Any = 1, groups: int = 1) -> np.ndarray:
        # the backward pass will want these windows again, if it is recorded
        return computed(x, weight, bias, stride, padding, dilation, groups, keep=is_recording())

    def forward_keeping(x: np.ndarray, weight: np.ndarray, bias: Any = None, stride: Any = 1,
                        padding: Any = 0, dilation: Any = 1, groups: int = 1) -> np.ndarray:
        """The forward of a compiled program that runs this convolution's backward too (recording
        is off there): it keeps its windows for `conv_windows` all the same."""
        return computed(x, weight, bias, stride, padding, dilation, groups, keep=True)

    def computed(x: np.ndarray, weight: np.ndarray, bias: Any, stride: Any, padding: Any, dilation: Any,
                 groups: int, keep: bool) -> np.ndarray:
        kernel, stride, pads, dilation, out_size = _conv_geometry(
            x, weight, bias, stride, padding, dilation, groups, name, dims
        )
        x = np.asarray(x)
        cols = _rows(x, kernel, stride, pads, dilation)  # (N, C·K, O)
        w_rows = np.reshape(weight, (np.shape(weight)[0], -1))
        dtype = np.result_type(w_rows, cols)
        out = np.empty((x.shape[0], w_rows.shape[0], *out_size), dtype=dtype)
        np.matmul(w_rows, cols, out=out.reshape(x.shape[0], w_rows.shape[0], -1))  # NCHW, no copy
        if bias is not None:
            b = np.reshape(bias, (-1,) + (1,) * dims)
            if np.can_cast(np.result_type(out, b), out.dtype):
                out += b
            else:
                out = out + b
        if keep:
            _remember_windows(out, cols)
        return out

    def geometry(x: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any,
                 groups: int) -> tuple:
        """(kernel, stride, padding pairs, dilation): what the windows of this convolution need."""
        return _conv_geometry(x, weight, bias, stride, padding, dilation, groups, name, dims)[:4]

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
    conv = primitive(
        name, forward, arity=3,
        # y[n] = W_rows · cols[n] + b:  x̄ = col2im(W_rowsᵀ · ȳ[n]),  W̄ = Σ_n ȳ[n] · cols[n]ᵀ on the
        # forward's own windows,  b̄ = Σ ȳ. One rule per input: a walk runs only those it needs.
        vjp=(
            lambda g, ans, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1: rows_to_image(
                matmul(transpose(_weight_rows(weight)), _sample_rows(g)), np.shape(x),
                *geometry(x, weight, bias, stride, padding, dilation, groups),
            ),
            lambda g, ans, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1: reshape(
                sum_over(matmul(_sample_rows(g), transpose(
                    conv_windows(x, ans, *geometry(x, weight, bias, stride, padding, dilation, groups)),
                    (0, 2, 1),
                )), axis=0),
                np.shape(weight),
            ),
            lambda g, ans, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1: sum_over(
                _sample_rows(g), axis=(0, 2)
            ),
        ),
        jvp=jvp,
    )
    # What mytorch.compile's program runs for the forward when it also runs `conv_windows`.
    conv.forward_for_backward = (forward_keeping, "conv_windows")
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


def _first_max(x: np.ndarray, kernel: tuple, stride: tuple, padding: tuple,
               dilation: tuple) -> np.ndarray:
    """(N, C, K, O) in x's float dtype: 1 at the first maximum of each window (PyTorch's pick)."""
    x = np.asarray(x)
    windows = _windows(x, kernel, stride, padding, dilation, pad_value=-np.inf)  # (N, C, *O, *K)
    n, c = x.shape[:2]
    flat = windows.reshape(n, c, -1, math.prod(kernel))  # (N, C, O, K): a copy
    first = np.argmax(flat, axis=-1)  # (N, C, O)
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(float)
    return (np.arange(flat.shape[-1])[:, None] == first[:, :, None, :]).astype(dtype)


# A constant of x (zero derivative), recorded so that a replayed program computes it again.
first_max_mask = _internal_primitive(
    "first_max_mask", _first_max,
    vjp=lambda g, ans, x, kernel, stride, padding, dilation: (None,),
    jvp=lambda t, ans, x, kernel, stride, padding, dilation: None,
)


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
    kernel, stride, pads, dilation, _ = _pool_geometry(
        x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d", 2
    )
    # Each window's adjoint goes to its first maximum; rows_to_image adds up overlapping windows.
    n, c = np.shape(x)[:2]
    mask = first_max_mask(x, kernel, stride, pads, dilation)  # (N, C, K, O)
    spread = mul(reshape(g, (n, c, 1, -1)), mask)
    spread = reshape(spread, (n, -1, mask.shape[-1]))
    return (rows_to_image(spread, np.shape(x), kernel, stride, pads, dilation),)


def _max_pool2d_jvp(t: list, ans: np.ndarray, x: Any, kernel_size: Any, stride: Any = None,
                    padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
                    return_indices: bool = False) -> np.ndarray:
    kernel, stride, pads, dilation, _ = _pool_geometry(
        x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d", 2
    )
    mask = first_max_mask(x, kernel, stride, pads, dilation)  # (N, C, K, O)
    windows = reshape(windows_rows(t[0], kernel, stride, pads, dilation), mask.shape)
    return reshape(sum_over(mul(windows, mask), axis=2), np.shape(ans))


max_pool2d = primitive("max_pool2d", _max_pool2d, vjp=_max_pool2d_vjp, jvp=_max_pool2d_jvp)

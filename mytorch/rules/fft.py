"""`F.fft`: NumPy's discrete Fourier transforms, differentiable (fft, ifft, fft2, ifft2, fftn, ifftn,
rfft, irfft, rfft2, irfft2, rfftn, irfftn, hfft, ihfft), under NumPy's names and signatures (`n`/`s`
crop or zero-pad the input, `norm` is "backward", "ortho" or "forward").

Each transform is linear, so its rules are transforms again (second order is free). The DFT matrix
F is symmetric, and the adjoint (conjugate transpose) of a transform with normalisation `norm` is
the inverse transform with the dual normalisation (backward <-> forward, ortho <-> ortho). With
PyTorch's convention for complex gradients (mytorch.primitive):

    fft, ifft, fftn, ...:  holomorphic; the analytic rule is the transpose, the same transform
                           (z̄ = conj(F conj(ȳ)) = F^H ȳ), cropped or padded back to the input
    rfft (real x):         x̄ = Re(F^H ȳ), with ȳ zero-padded to the full spectrum
    irfft (half spectrum): ā_k = c_k · rfft(ȳ)_k with the dual normalisation, c_k = 2 for the bins
                           that stand for a conjugate pair and 1 for bin 0 (and n/2 when n is even),
                           whose imaginary parts irfft ignores
    rfftn, irfftn:         rfft (irfft) along the last axis and fft (ifft) along the others, as
                           NumPy computes them: the adjoints of those steps in reverse order
    hfft = irfft(conj a) with the dual normalisation:  ā = conj(irfft's adjoint of ȳ)
    ihfft = conj(rfft a) with the dual normalisation:  x̄ = rfft's adjoint of conj(ȳ)

>>> import numpy as np
>>> import mytorch
>>> x = np.array([1.0, 2.0, 0.0, -1.0])
>>> mytorch.grad(lambda x: np.sum(np.abs(np.fft.fft(x)) ** 2))(x)   # Parseval: 2 n x
array([ 8., 16.,  0., -8.])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mytorch.primitive import primitive
from mytorch.rules.complex import real
from mytorch.rules.core import conj, getitem, mul, pad
from mytorch.utils import is_complex

__all__ = ["fft", "fft2", "fftn", "hfft", "ifft", "ifft2", "ifftn", "ihfft", "irfft", "irfft2", "irfftn",
           "rfft", "rfft2", "rfftn"]

_DUAL = {None: "forward", "backward": "forward", "forward": "backward", "ortho": "ortho"}


def _fit_axis(x: Any, axis: int, length: int) -> Any:
    """`x` cropped or zero-padded at the end of `axis` to `length` (what `n=` does to an input)."""
    axis = int(axis) % np.ndim(x)  # (a 0-d array axis is read-only on the tape)
    have = np.shape(x)[axis]
    if have > length:
        return getitem(x, (slice(None),) * axis + (slice(0, length),))
    if have < length:
        widths = [(0, 0)] * np.ndim(x)
        widths[axis] = (0, length - have)
        return pad(x, widths)
    return x


def _fit(x: Any, axes: Sequence[int], shape: Sequence[int]) -> Any:
    """`x` with each axis in `axes` cropped or zero-padded to `shape`'s length there."""
    for axis in axes:
        x = _fit_axis(x, axis, shape[axis])
    return x


def _axes_of(a: Any, s: Any, axes: Any) -> tuple[int, ...]:
    """The axes an n-dimensional transform acts on, as NumPy chooses them."""
    ndim = np.ndim(a)
    if axes is None:
        axes = range(ndim) if s is None else range(ndim - len(s), ndim)
    return tuple(int(axis) % ndim for axis in axes)


def _refuse_complex(name: str, a: Any) -> None:
    if is_complex(a):
        raise TypeError(f"{name}: the input is complex ({np.asarray(a).dtype}); {name} transforms real "
                        "arrays (NumPy would drop the imaginary part). Use fft for complex input.")


# ---- the complex transforms: holomorphic, their own transposes ----------------------------------


def _one_axis(name: str, transform: Any) -> Any:
    def forward(a: Any, n: Any = None, axis: int = -1, norm: Any = None) -> np.ndarray:
        return transform(a, n=n, axis=axis, norm=norm)

    def vjp(g: Any, ans: Any, a: Any, n: Any = None, axis: int = -1, norm: Any = None) -> tuple:
        return (_fit_axis(made(g, None, axis, norm), axis, np.shape(a)[axis]),)

    def jvp(t: list, ans: Any, a: Any, n: Any = None, axis: int = -1, norm: Any = None) -> Any:
        return made(t[0], n, axis, norm)

    made = primitive(name, forward, vjp=vjp, jvp=jvp, complex="holomorphic")
    return made


def _many_axes(name: str, transform: Any) -> Any:
    def forward(a: Any, s: Any = None, axes: Any = None, norm: Any = None) -> np.ndarray:
        return transform(a, s=s, axes=axes, norm=norm)

    def vjp(g: Any, ans: Any, a: Any, s: Any = None, axes: Any = None, norm: Any = None) -> tuple:
        used = _axes_of(a, s, axes)
        return (_fit(made(g, None, used, norm), used, np.shape(a)),)

    def jvp(t: list, ans: Any, a: Any, s: Any = None, axes: Any = None, norm: Any = None) -> Any:
        return made(t[0], s, axes, norm)

    made = primitive(name, forward, vjp=vjp, jvp=jvp, complex="holomorphic")
    return made


fft = _one_axis("fft", np.fft.fft)
ifft = _one_axis("ifft", np.fft.ifft)
fftn = _many_axes("fftn", np.fft.fftn)
ifftn = _many_axes("ifftn", np.fft.ifftn)


def fft2(a: Any, s: Any = None, axes: Sequence[int] = (-2, -1), norm: Any = None) -> np.ndarray:
    """`np.fft.fft2`: `fftn` over the last two axes.

    >>> fft2(np.ones((2, 2))).real
    array([[4., 0.],
           [0., 0.]])
    """
    return fftn(a, s, axes, norm)


def ifft2(a: Any, s: Any = None, axes: Sequence[int] = (-2, -1), norm: Any = None) -> np.ndarray:
    """`np.fft.ifft2`: `ifftn` over the last two axes.

    >>> ifft2(np.ones((2, 2))).real
    array([[1., 0.],
           [0., 0.]])
    """
    return ifftn(a, s, axes, norm)


# ---- the real transforms: a real side and a complex side, so not holomorphic -------------------


def _rfft(a: Any, n: Any = None, axis: int = -1, norm: Any = None) -> np.ndarray:
    _refuse_complex("rfft", a)
    return np.fft.rfft(a, n=n, axis=axis, norm=norm)


def _rfft_adjoint(g: Any, axis: int, length: int, size: int, norm: Any) -> Any:
    """Re(R^H ȳ) for R = rfft of length `length` along `axis` (of an input `size` long there):
    ȳ zero-padded to the full spectrum, F^H, the real part, cropped or padded to `size`."""
    full = ifft(_fit_axis(g, axis, length), None, axis, _DUAL[norm])  # F^H ȳ
    return _fit_axis(real(full), axis, size)


def _rfft_vjp(g: Any, ans: Any, a: Any, n: Any = None, axis: int = -1, norm: Any = None) -> tuple:
    length = np.shape(a)[axis] if n is None else n
    return (_rfft_adjoint(g, axis, length, np.shape(a)[axis], norm),)


rfft = primitive(
    "rfft", _rfft, vjp=_rfft_vjp,
    jvp=lambda t, ans, a, n=None, axis=-1, norm=None: rfft(t[0], n, axis, norm),
    complex="explicit",
)


def _pair_weights(length: int, bins: int, ndim: int, axis: int, dtype: Any) -> np.ndarray:
    """c_k along `axis` (1 for bin 0 and, n even, bin n/2; 2 for the others), shaped to broadcast."""
    weights = np.full(bins, 2.0, dtype)
    weights[0] = 1.0
    if length % 2 == 0:
        weights[-1] = 1.0
    shape = [1] * ndim
    shape[axis % ndim] = bins
    return weights.reshape(shape)


def _irfft_adjoint(g: Any, axis: int, length: int, bins: int, norm: Any, dtype: Any) -> Any:
    """The adjoint of irfft of output length `length` along `axis`, of an input of `bins` bins there:
    c_k · rfft(ȳ)_k with the dual normalisation, cropped or padded to `bins`."""
    spectrum = rfft(g, None, axis, _DUAL[norm])  # length // 2 + 1 bins
    weights = _pair_weights(length, length // 2 + 1, np.ndim(g), axis, dtype)
    return _fit_axis(mul(spectrum, weights), axis, bins)


def _irfft_vjp(g: Any, ans: Any, a: Any, n: Any = None, axis: int = -1, norm: Any = None) -> tuple:
    dtype = np.asarray(ans).dtype
    return (_irfft_adjoint(g, axis, ans.shape[axis], np.shape(a)[axis], norm, dtype),)


irfft = primitive(
    "irfft", lambda a, n=None, axis=-1, norm=None: np.fft.irfft(a, n=n, axis=axis, norm=norm),
    vjp=_irfft_vjp,
    jvp=lambda t, ans, a, n=None, axis=-1, norm=None: irfft(t[0], n, axis, norm),
    complex="explicit",
)


# ---- the n-dimensional real transforms and the Hermitian ones ----------------------------------


def _cooked(a: Any, s: Any, axes: Any, *, inverse: bool = False) -> tuple[list[int], list[int]]:
    """(lengths, axes) of an n-dimensional real transform, as NumPy reads `s` and `axes` (for the
    inverse, the last length defaults to 2 (m - 1) for m bins)."""
    shape = np.shape(a)
    if s is None:
        axes = list(range(len(shape))) if axes is None else [int(axis) for axis in axes]
        lengths = [shape[axis] for axis in axes]
        if inverse and axes:
            lengths[-1] = 2 * (shape[axes[-1]] - 1)
    else:
        lengths = [int(n) for n in s]
        axes = list(range(-len(lengths), 0)) if axes is None else [int(axis) for axis in axes]
    return lengths, [axis % max(len(shape), 1) for axis in axes]


def _rfftn_vjp(g: Any, ans: Any, a: Any, s: Any = None, axes: Any = None, norm: Any = None) -> tuple:
    lengths, used = _cooked(a, s, axes)
    shape = np.shape(a)
    for axis in used[:-1]:  # the fft steps' adjoints (F^H: ifft with the dual normalisation)
        g = _fit_axis(ifft(g, None, axis, _DUAL[norm]), axis, shape[axis])
    return (_rfft_adjoint(g, used[-1], lengths[-1], shape[used[-1]], norm),)


def _rfftn(a: Any, s: Any = None, axes: Any = None, norm: Any = None) -> np.ndarray:
    _refuse_complex("rfftn", a)
    return np.fft.rfftn(a, s=s, axes=axes, norm=norm)


rfftn = primitive(
    "rfftn", _rfftn, vjp=_rfftn_vjp,
    jvp=lambda t, ans, a, s=None, axes=None, norm=None: rfftn(t[0], s, axes, norm),
    complex="explicit",
)


def _irfftn_vjp(g: Any, ans: Any, a: Any, s: Any = None, axes: Any = None, norm: Any = None) -> tuple:
    lengths, used = _cooked(a, s, axes, inverse=True)
    shape = np.shape(a)
    g = _irfft_adjoint(g, used[-1], lengths[-1], shape[used[-1]], norm, np.asarray(ans).dtype)
    for axis in used[:-1]:  # the ifft steps' adjoints (fft with the dual normalisation)
        g = _fit_axis(fft(g, None, axis, _DUAL[norm]), axis, shape[axis])
    return (g,)


irfftn = primitive(
    "irfftn", lambda a, s=None, axes=None, norm=None: np.fft.irfftn(a, s=s, axes=axes, norm=norm),
    vjp=_irfftn_vjp,
    jvp=lambda t, ans, a, s=None, axes=None, norm=None: irfftn(t[0], s, axes, norm),
    complex="explicit",
)


def rfft2(a: Any, s: Any = None, axes: Sequence[int] = (-2, -1), norm: Any = None) -> np.ndarray:
    """`np.fft.rfft2`: `rfftn` over the last two axes.

    >>> rfft2(np.ones((2, 2))).real
    array([[4., 0.],
           [0., 0.]])
    """
    return rfftn(a, s, axes, norm)


def irfft2(a: Any, s: Any = None, axes: Sequence[int] = (-2, -1), norm: Any = None) -> np.ndarray:
    """`np.fft.irfft2`: `irfftn` over the last two axes.

    >>> irfft2(np.array([[4.0, 0.0], [0.0, 0.0]]))
    array([[1., 1.],
           [1., 1.]])
    """
    return irfftn(a, s, axes, norm)


def _hfft_vjp(g: Any, ans: Any, a: Any, n: Any = None, axis: int = -1, norm: Any = None) -> tuple:
    adjoint = _irfft_adjoint(g, axis, ans.shape[axis], np.shape(a)[axis], _DUAL[norm], np.asarray(ans).dtype)
    return (conj(adjoint),)  # through the conj that hfft applies first


hfft = primitive(
    "hfft", lambda a, n=None, axis=-1, norm=None: np.fft.hfft(a, n=n, axis=axis, norm=norm),
    vjp=_hfft_vjp,
    jvp=lambda t, ans, a, n=None, axis=-1, norm=None: hfft(t[0], n, axis, norm),
    complex="explicit",
)


def _ihfft(a: Any, n: Any = None, axis: int = -1, norm: Any = None) -> np.ndarray:
    _refuse_complex("ihfft", a)
    return np.fft.ihfft(a, n=n, axis=axis, norm=norm)


def _ihfft_vjp(g: Any, ans: Any, a: Any, n: Any = None, axis: int = -1, norm: Any = None) -> tuple:
    length = np.shape(a)[axis] if n is None else n
    return (_rfft_adjoint(conj(g), axis, length, np.shape(a)[axis], _DUAL[norm]),)


ihfft = primitive(
    "ihfft", _ihfft, vjp=_ihfft_vjp,
    jvp=lambda t, ans, a, n=None, axis=-1, norm=None: ihfft(t[0], n, axis, norm),
    complex="explicit",
)

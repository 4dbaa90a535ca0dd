"""`F.fft`: NumPy's discrete Fourier transforms, differentiable (fft, ifft, fft2, ifft2, fftn, ifftn,
rfft, irfft), under NumPy's names and signatures (`n`/`s` crop or zero-pad the input, `norm` is
"backward", "ortho" or "forward").

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
from mytorch.rules.core import getitem, mul, pad
from mytorch.utils import is_complex

__all__ = ["fft", "fft2", "fftn", "ifft", "ifft2", "ifftn", "irfft", "rfft"]

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


def _rfft_vjp(g: Any, ans: Any, a: Any, n: Any = None, axis: int = -1, norm: Any = None) -> tuple:
    length = np.shape(a)[axis] if n is None else n
    full = ifft(_fit_axis(g, axis, length), None, axis, _DUAL[norm])  # F^H ȳ
    return (_fit_axis(real(full), axis, np.shape(a)[axis]),)


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


def _irfft_vjp(g: Any, ans: Any, a: Any, n: Any = None, axis: int = -1, norm: Any = None) -> tuple:
    length = ans.shape[axis]
    spectrum = rfft(g, None, axis, _DUAL[norm])  # length // 2 + 1 bins
    weights = _pair_weights(length, length // 2 + 1, np.ndim(g), axis, np.asarray(ans).dtype)
    return (_fit_axis(mul(spectrum, weights), axis, np.shape(a)[axis]),)


irfft = primitive(
    "irfft", lambda a, n=None, axis=-1, norm=None: np.fft.irfft(a, n=n, axis=axis, norm=norm),
    vjp=_irfft_vjp,
    jvp=lambda t, ans, a, n=None, axis=-1, norm=None: irfft(t[0], n, axis, norm),
    complex="explicit",
)

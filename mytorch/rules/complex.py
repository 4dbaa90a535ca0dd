"""Complex numbers: the parts of a complex array (real, imag, conj, angle) as primitives.

mytorch differentiates complex values with PyTorch's convention (see mytorch.primitive): for a real
loss L and z = x + iy, the gradient is z̄ = ∂L/∂x + i ∂L/∂y (twice the conjugate Wirtinger
derivative ∂L/∂z*), and a tangent is pushed through complex-linearly. For w = f(z) with output
adjoint ȳ (itself ∂L/∂u + i ∂L/∂v for w = u + iv), the chain rule in Wirtinger form is

    z̄ = ȳ · conj(∂w/∂z) + conj(ȳ) · ∂w/∂z*          ẇ = ∂w/∂z · ż + ∂w/∂z* · conj(ż)

so a holomorphic f (∂w/∂z* = 0) has z̄ = ȳ · conj(f'(z)), and the functions below, which are not
holomorphic, have

    conj:  z̄ = conj(ȳ)           ẇ = conj(ż)
    real:  z̄ = ȳ                 ẇ = Re ż            (ȳ is real: w is)
    imag:  z̄ = i ȳ               ẇ = Im ż
    angle: z̄ = ȳ · i / conj(z)   ẇ = Im(ż / z)        (0 at z = 0, as PyTorch's)

Each also takes a real array (real: itself; imag: zeros; conj: itself; angle: 0 or π, whose
derivative is 0), so NumPy code that calls them on real data keeps working.

>>> import numpy as np
>>> import mytorch
>>> mytorch.grad(lambda z: np.sum(np.abs(z) ** 2))(np.array([1 + 2j]))   # 2z, as PyTorch's .grad
array([2.+4.j])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mytorch.primitive import COMPLEX_REFUSALS, primitive
from mytorch.rules.core import conj, conjugate, div, imag, mul, real, where

__all__ = ["angle", "conj", "conjugate", "imag", "real", "real_if_close"]


def _safe(z: Any) -> Any:
    """z with its zeros swapped for ones (a constant choice: where z = 0 the rule's value is 0)."""
    return where(np.equal(z, 0), 1, z)


def _angle_scale(deg: bool) -> float:
    return 180.0 / np.pi if deg else 1.0


def _angle_vjp(g: Any, ans: Any, z: Any, deg: bool = False) -> tuple:
    slope = where(np.equal(z, 0), 0, div(1j * _angle_scale(deg), conj(_safe(z))))
    return (mul(g, slope),)


def _angle_jvp(t: list, ans: Any, z: Any, deg: bool = False) -> Any:
    along = where(np.equal(z, 0), 0, imag(div(t[0], _safe(z))))
    return along if not deg else mul(along, _angle_scale(deg))


angle = primitive("angle", lambda z, deg=False: np.angle(z, deg=deg), vjp=_angle_vjp, jvp=_angle_jvp,
                  complex="explicit")


def real_if_close(a: Any, tol: float = 100) -> np.ndarray:
    """`np.real_if_close`: the real part when every imaginary part is within `tol` machine epsilons
    of 0 (then differentiated as `real`), else `a` itself. The choice is made on the values at
    hand (as NumPy makes it); a compiled trace keeps the first call's choice.

    >>> real_if_close(np.array([1.0 + 1e-20j]))
    array([1.])
    """
    values = np.asarray(a).view(np.ndarray) if isinstance(a, np.ndarray) else np.asarray(a)
    if values.dtype.kind != "c":
        return a if isinstance(a, np.ndarray) else values
    if tol > 1:
        tol = np.finfo(values.dtype).eps * tol
    return real(a) if bool(np.all(np.abs(values.imag) < tol)) else a


# ---- the primitives that refuse complex values, and why (as PyTorch refuses them) ------------------

_NO_ORDER = "complex numbers have no order (PyTorch refuses them too)"
_ROUNDING = "rounding and remainders are not defined on complex values (in PyTorch, and in NumPy's ufuncs)"
_REAL_SPECIAL = "PyTorch's special functions take real values only"
COMPLEX_REFUSALS.update({
    **dict.fromkeys(("maximum", "minimum", "max", "min", "clip", "sort", "max_pool2d", "relu"), _NO_ORDER),
    **dict.fromkeys(("floor", "ceil", "trunc", "rint", "round", "mod", "fmod"), _ROUNDING),
    "sign": "PyTorch's sign refuses complex values (its sgn is z / |z|: write z / np.abs(z))",
    "softplus": "PyTorch's softplus is defined on real values only",
    **dict.fromkeys(("softmax", "log_softmax"), "PyTorch's softmax family refuses complex values "
                    "(normalising by Σ e^z is not a probability off the real line); logsumexp takes them"),
    "cross_entropy": "PyTorch's cross_entropy takes real logits",
    **dict.fromkeys(("logaddexp", "logaddexp2"), "NumPy's logaddexp has no complex loop (logsumexp over a "
                    "stacked axis takes complex values)"),
    "logit": "PyTorch's and SciPy's logit take real values only",
    **dict.fromkeys((
        "erfinv", "erfcinv", "gammaln", "digamma", "polygamma", "gamma", "rgamma", "gammasgn", "beta",
        "betaln", "betainc", "gammainc", "gammaincc", "multigammaln", "xlogy", "ndtr", "log_ndtr", "i0",
        "i1", "iv", "ive", "j0", "j1", "jn", "y0", "y1", "yn"), _REAL_SPECIAL),
    # not elementwise: PyTorch differentiates complex values through these; mytorch not yet
    **dict.fromkeys((
        "norm", "cholesky", "eigh", "eigvalsh", "svd", "svdvals", "pinv", "qr", "slogdet", "expm", "sqrtm",
        "solve_triangular", "solve_sylvester", "conv1d", "conv2d", "im2col", "col2im"),
        "its rules are written for real values (not declared for complex ones yet)"),
})

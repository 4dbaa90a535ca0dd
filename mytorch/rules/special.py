"""`F.special`: SciPy's special functions, differentiable (gammaln, digamma, polygamma, xlogy,
expit, logit; and issue 23's gamma and beta families, error and Bessel functions, below). Values
come from scipy.special; the derivative of each is another of them:

    d gammaln(x) = digamma(x),   d digamma(x) = polygamma(1, x),   d polygamma(n, x) = polygamma(n + 1, x)
    d xlogy(x, y) = (log y, x / y),   d expit(x) = expit(x)(1 − expit(x)),   d logit(p) = 1 / (p (1 − p))

>>> import numpy as np
>>> from mytorch import functional as F
>>> float(F.special.gammaln(np.array(5.0)))  # log 4!
3.1780538303479458
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.special

from mytorch.primitive import broadcast_to, is_float_array, primitive, reduce_to, sum_to_shape
from mytorch.rules.core import _sigmoid, add, div, exp, log, mul, neg, sub
from mytorch.rules.core import abs as abs_
from mytorch.rules.core import logsumexp as _logsumexp_axis
from mytorch.rules.core import sum as sum_
from mytorch.rules.numpy_ops import log1p, sign

__all__ = [
    "beta", "betainc", "betaln", "digamma", "erfc", "erfcinv", "erfinv", "expit", "gamma", "gammainc",
    "gammaincc", "gammaln", "gammasgn", "i0", "i1", "iv", "ive", "j0", "j1", "jn", "log_ndtr", "logit",
    "logsumexp", "multigammaln", "ndtr", "polygamma", "rgamma", "xlogy", "y0", "y1", "yn",
]


def _is_float(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"



gammaln = primitive(
    "gammaln", scipy.special.gammaln,
    vjp=lambda g, ans, x: (mul(g, digamma(x)),),
    jvp=lambda t, ans, x: mul(t[0], digamma(x)),
)
digamma = primitive(
    "digamma", scipy.special.digamma,
    vjp=lambda g, ans, x: (mul(g, polygamma(1, x)),),
    jvp=lambda t, ans, x: mul(t[0], polygamma(1, x)),
)


def _polygamma(n: Any, x: Any) -> np.ndarray:
    # scipy computes in float64 only: cast back, so float32 stays float32
    dtype = x.dtype if _is_float(x) else np.float64
    return np.asarray(scipy.special.polygamma(n, x)).astype(dtype, copy=False)


polygamma = primitive(  # n (a whole number) is a constant
    "polygamma", _polygamma, arity=2,
    vjp=lambda g, ans, n, x: (None, sum_to_shape(mul(g, polygamma(add(n, 1), x)), np.shape(x))),
    jvp=lambda t, ans, n, x: mul(t[1], polygamma(add(n, 1), x)),
)


def _log(y: Any, like: Any) -> Any:
    """log y: recorded for a float y, else a constant in `like`'s dtype (float32 stays float32)."""
    return log(y) if _is_float(y) else np.log(np.asarray(y, dtype=like.dtype))


def _xlogy_vjp(g: np.ndarray, ans: np.ndarray, x: Any, y: Any) -> tuple:
    return (
        sum_to_shape(mul(g, _log(y, g)), np.shape(x)) if _is_float(x) else None,
        sum_to_shape(mul(g, div(x, y)), np.shape(y)) if _is_float(y) else None,
    )


def _xlogy_jvp(t: list, ans: np.ndarray, x: Any, y: Any) -> np.ndarray:
    terms = []
    if _is_float(x):
        terms.append(mul(t[0], _log(y, t[0])))
    if _is_float(y):
        terms.append(mul(t[1], div(x, y)))
    return terms[0] if len(terms) == 1 else add(terms[0], terms[1])


def _xlogy(x: Any, y: Any) -> np.ndarray:
    # scipy promotes a Python number with float32 to float64: keep the float arrays' dtype (float64
    # when there is none: NumPy would take float16 for two Python ints)
    floats = [a for a in (x, y) if is_float_array(a)]
    dtype = np.result_type(*floats) if floats else np.float64
    return np.asarray(scipy.special.xlogy(x, y)).astype(dtype, copy=False)


xlogy = primitive("xlogy", _xlogy, arity=2, vjp=_xlogy_vjp, jvp=_xlogy_jvp)
expit = primitive(
    "expit", _sigmoid,  # (SciPy's expit takes no complex values; torch.special.expit does)
    vjp=lambda g, ans, x: (mul(g, mul(ans, sub(1, ans))),),
    jvp=lambda t, ans, x: mul(t[0], mul(ans, sub(1, ans))),
    complex="holomorphic",
)
logit = primitive(
    "logit", scipy.special.logit,
    vjp=lambda g, ans, x: (div(g, mul(x, sub(1, x))),),
    jvp=lambda t, ans, x: div(t[0], mul(x, sub(1, x))),
)


# ==== issue 23: gamma and beta families, error and Bessel functions, ndtr, logsumexp(b=) ========
#
# More of `F.special` (issue 23): SciPy's gamma and beta families, error functions, Bessel
# functions, ndtr and logsumexp with weights, under SciPy's names. Values come from scipy.special;
# each derivative is another special function (so second order works):
#
#     Γ'(x) = Γ(x) ψ(x)          B(a, b)_a = B(a, b) (ψ(a) − ψ(a + b))
#     ∂ₓ betainc(a, b, x) = xᵃ⁻¹ (1 − x)ᵇ⁻¹ / B(a, b)      ∂ₓ gammainc(a, x) = xᵃ⁻¹ e⁻ˣ / Γ(a)
#     erfinv'(x) = (√π / 2) exp(erfinv(x)²)      ndtr'(x) = φ(x),  log_ndtr'(x) = φ(x) / ndtr(x)
#     J₀' = −J₁,  Jₙ' = (Jₙ₋₁ − Jₙ₊₁) / 2,  Iᵥ' = (Iᵥ₋₁ + Iᵥ₊₁) / 2
#     ive' = (iveᵥ₋₁ + iveᵥ₊₁) / 2 − sign(x) ive
#
# The shape parameters of betainc, gammainc, gammaincc and the orders of the Bessel functions are
# held constant: no closed form gives their derivatives, so a gradient asked of them is an error
# naming the function (pass them as Python numbers or integer arrays).

_SQRT_PI = math.sqrt(math.pi)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _is_float(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def keeping_dtype(function: Any, arity: int = 1) -> Any:
    """SciPy's `function`, its result in the float (or complex) arrays' dtype (float64 when there
    is none)."""

    def forward(*args: Any) -> np.ndarray:
        # (a NumPy float scalar counts as a Python number, an order say; a complex one does not)
        floats = [a.dtype for a in args if isinstance(a, np.ndarray) and a.dtype.kind in "fc"
                  or isinstance(a, np.complexfloating)]
        dtype = np.result_type(*floats) if floats else np.float64
        return np.asarray(function(*args)).astype(dtype, copy=False)

    # the machinery reads the inputs from the signature: one named parameter per input
    one, two, three = (lambda x: forward(x)), (lambda a, x: forward(a, x)), (lambda a, b, x: forward(a, b, x))
    return {1: one, 2: two, 3: three}[arity]


def _unary(name: str, function: Any, slope: Any, complex: str | None = None) -> Any:  # noqa: A002
    return primitive(
        name, keeping_dtype(function),
        vjp=lambda g, ans, x: (mul(g, slope(x, ans)),),
        jvp=lambda t, ans, x: mul(t[0], slope(x, ans)),
        complex=complex,
    )


def _held(name: str, what: str, value: Any = None) -> None:
    """The gradient of an argument held constant: a float array there asks for it, an error (never a
    silent 0); a number or an integer array has none (None)."""
    if value is not None and not _is_float(value):
        return None
    raise NotImplementedError(
        f"{name}: the derivative with respect to {what} is not implemented (no closed form); pass "
        f"{what} as a Python number or an integer array to hold it constant"
    )


def _tangent_of(t: list, inputs: tuple, positions: tuple[int, ...], name: str, what: str) -> None:
    """Refuse a nonzero tangent on an argument held constant."""
    for i in positions:
        if _is_float(inputs[i]) and t[i] is not None and np.any(np.asarray(t[i])):
            _held(name, what)


# ---- gamma and beta ---------------------------------------------------------------------------------

gamma = _unary("gamma", scipy.special.gamma, lambda x, ans: mul(ans, digamma(x)))
rgamma = _unary("rgamma", scipy.special.rgamma, lambda x, ans: neg(mul(ans, digamma(x))))
gammasgn = primitive(  # ±1: piecewise constant
    "gammasgn", keeping_dtype(scipy.special.gammasgn),
    vjp=lambda g, ans, x: (np.zeros(np.shape(x), g.dtype),),
    jvp=lambda t, ans, x: np.zeros(np.shape(ans), ans.dtype),
)


def _beta_rules(name: str, forward: Any, scale: Any) -> Any:
    """beta and betaln: ∂/∂a = scale · (ψ(a) − ψ(a + b)), the same in b."""

    def slope(own: Any, a: Any, b: Any, ans: Any) -> Any:
        return mul(scale(ans), sub(digamma(own), digamma(add(a, b))))

    def jvp(t: list, ans: np.ndarray, a: Any, b: Any) -> Any:
        terms = [mul(t[i], slope(v, a, b, ans)) for i, v in enumerate((a, b)) if _is_float(v)]
        return terms[0] if len(terms) == 1 else add(terms[0], terms[1])

    return primitive(name, keeping_dtype(forward, 2), arity=2, vjp=(
        lambda g, ans, a, b: reduce_to(mul(g, slope(a, a, b, ans)), a),
        lambda g, ans, a, b: reduce_to(mul(g, slope(b, a, b, ans)), b),
    ), jvp=jvp)


beta = _beta_rules("beta", scipy.special.beta, lambda ans: ans)
betaln = _beta_rules("betaln", scipy.special.betaln, lambda ans: 1.0)


def _as_float(value: Any, like: Any) -> Any:
    return value if _is_float(value) else np.asarray(value, dtype=like.dtype)


def incomplete_beta_density(a: Any, b: Any, x: Any) -> Any:
    """xᵃ⁻¹ (1 − x)ᵇ⁻¹ / B(a, b), in logs (a and b constants)."""
    dtype = np.result_type(x, *(v for v in (a, b) if _is_float(v)))
    a_, b_ = np.asarray(a, dtype), np.asarray(b, dtype)
    lead = np.asarray(scipy.special.betaln(a_, b_), dtype)
    return exp(sub(add(mul(log(x), a_ - 1), mul(log1p(neg(x)), b_ - 1)), lead))


def _betainc_jvp(t: list, ans: np.ndarray, a: Any, b: Any, x: Any) -> Any:
    _tangent_of(t, (a, b, x), (0, 1), "betainc", "a and b")
    return mul(t[2], incomplete_beta_density(a, b, x))


betainc = primitive("betainc", keeping_dtype(scipy.special.betainc, 3), arity=3, vjp=(
    lambda g, ans, a, b, x: _held("betainc", "a", a),
    lambda g, ans, a, b, x: _held("betainc", "b", b),
    lambda g, ans, a, b, x: reduce_to(mul(g, incomplete_beta_density(a, b, x)), x),
), jvp=_betainc_jvp)


def incomplete_gamma_density(a: Any, x: Any) -> Any:
    """xᵃ⁻¹ e⁻ˣ / Γ(a), in logs (a a constant)."""
    a_ = np.asarray(a, np.result_type(x, *(v for v in (a,) if _is_float(v))))
    return exp(sub(sub(mul(log(x), a_ - 1), x), np.asarray(scipy.special.gammaln(a_), a_.dtype)))


def _incomplete_gamma(name: str, function: Any, sign_: float) -> Any:
    def jvp(t: list, ans: np.ndarray, a: Any, x: Any) -> Any:
        _tangent_of(t, (a, x), (0,), name, "a")
        return mul(t[1], mul(incomplete_gamma_density(a, x), sign_))

    return primitive(name, keeping_dtype(function, 2), arity=2, vjp=(
        lambda g, ans, a, x: _held(name, "a", a),
        lambda g, ans, a, x: reduce_to(mul(g, mul(incomplete_gamma_density(a, x), sign_)), x),
    ), jvp=jvp)


gammainc = _incomplete_gamma("gammainc", scipy.special.gammainc, 1.0)
gammaincc = _incomplete_gamma("gammaincc", scipy.special.gammaincc, -1.0)


def _multigammaln_slope(a: Any, d: int) -> Any:
    total = digamma(a)
    for j in range(1, int(d)):
        total = add(total, digamma(sub(a, 0.5 * j)))
    return total


multigammaln = primitive(  # log Γ_d(a): d (a whole number) is a parameter
    "multigammaln", lambda a, d: np.asarray(scipy.special.multigammaln(a, d)).astype(
        a.dtype if _is_float(a) else np.float64, copy=False),
    vjp=lambda g, ans, a, d: (mul(g, _multigammaln_slope(a, d)),),
    jvp=lambda t, ans, a, d: mul(t[0], _multigammaln_slope(a, d)),
)

# ---- error functions and the normal distribution function ----------------------------------------------

erfc = _unary("erfc", scipy.special.erfc, lambda x, ans: mul(exp(neg(mul(x, x))), -2.0 / _SQRT_PI),
              complex="holomorphic")  # entire, as erf
erfinv = _unary("erfinv", scipy.special.erfinv, lambda x, ans: mul(exp(mul(ans, ans)), _SQRT_PI / 2))
erfcinv = _unary("erfcinv", scipy.special.erfcinv, lambda x, ans: mul(exp(mul(ans, ans)), -_SQRT_PI / 2))
ndtr = _unary("ndtr", scipy.special.ndtr, lambda x, ans: exp(sub(mul(mul(x, x), -0.5), _LOG_SQRT_2PI)))
log_ndtr = _unary(  # φ(x) / Φ(x) = exp(−x²/2 − log √(2π) − log Φ(x)): no overflow in the tails
    "log_ndtr", scipy.special.log_ndtr,
    lambda x, ans: exp(sub(sub(mul(mul(x, x), -0.5), _LOG_SQRT_2PI), ans)),
)

# ---- Bessel functions ---------------------------------------------------------------------------------


def _order_rules(name: str, function: Any, slope: Any) -> Any:
    """A Bessel function of (order, x): the order is held constant."""

    def jvp(t: list, ans: np.ndarray, v: Any, x: Any) -> Any:
        _tangent_of(t, (v, x), (0,), name, "the order")
        return mul(t[1], slope(v, x, ans))

    return primitive(name, keeping_dtype(function, 2), arity=2, vjp=(
        lambda g, ans, v, x: _held(name, "the order", v),
        lambda g, ans, v, x: reduce_to(mul(g, slope(v, x, ans)), x),
    ), jvp=jvp)


def _shifted(v: Any, by: int) -> Any:
    return np.asarray(v) + by


jn = _order_rules(
    "jn", scipy.special.jn, lambda n, x, ans: mul(sub(jn(_shifted(n, -1), x), jn(_shifted(n, 1), x)), 0.5),
)
yn = _order_rules(
    "yn", scipy.special.yn, lambda n, x, ans: mul(sub(yn(_shifted(n, -1), x), yn(_shifted(n, 1), x)), 0.5),
)
iv = _order_rules(
    "iv", scipy.special.iv, lambda v, x, ans: mul(add(iv(_shifted(v, -1), x), iv(_shifted(v, 1), x)), 0.5),
)
ive = _order_rules(
    "ive", scipy.special.ive,
    lambda v, x, ans: sub(mul(add(ive(_shifted(v, -1), x), ive(_shifted(v, 1), x)), 0.5), mul(sign(x), ans)),
)
j0 = _unary("j0", scipy.special.j0, lambda x, ans: neg(j1(x)))
j1 = _unary("j1", scipy.special.j1, lambda x, ans: mul(sub(j0(x), jn(2, x)), 0.5))
y0 = _unary("y0", scipy.special.y0, lambda x, ans: neg(y1(x)))
y1 = _unary("y1", scipy.special.y1, lambda x, ans: mul(sub(y0(x), yn(2, x)), 0.5))
i0 = _unary("i0", scipy.special.i0, lambda x, ans: i1(x))
# I₂ as ive(2, x) e^|x|: SciPy's iv(2, x) is nan for |x| below about 1e-300, ive is not
i1 = _unary("i1", scipy.special.i1, lambda x, ans: mul(add(i0(x), mul(ive(2, x), exp(abs_(x)))), 0.5))

# ---- logsumexp with weights ---------------------------------------------------------------------------


def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False) -> Any:
    """`scipy.special.logsumexp`: log Σ b·exp(a) over `axis` (every axis by default), stably.

    Differentiable in `a` and in the weights `b`; with `return_sign=True`, (log |Σ|, sign Σ).

    >>> float(logsumexp(np.array([0.0, 0.0]), b=np.array([1.0, 3.0])))
    1.3862943611198906
    """
    if b is None and not return_sign:
        return _logsumexp_axis(a, axis=axis, keepdims=keepdims)
    value = np.asarray(a)
    if b is not None:
        value = np.broadcast_to(value, np.broadcast_shapes(value.shape, np.shape(b)))
        a = broadcast_to(a, value.shape) if value.shape != np.shape(a) else a
    with np.errstate(invalid="ignore"):
        shift = np.max(value, axis=axis, keepdims=True) if value.size else np.zeros((1,) * value.ndim)
    shift = np.where(np.isfinite(shift), shift, 0).astype(value.dtype if _is_float(value) else np.float64)
    terms = exp(sub(a, shift))
    if b is not None:
        terms = mul(terms, b)
    total = sum_(terms, axis=axis, keepdims=True)
    signs = np.sign(np.asarray(total))
    out = add(log(abs_(total) if return_sign else total), shift)
    if not keepdims:
        dropped = tuple(range(value.ndim)) if axis is None else axis
        from mytorch.rules.core import squeeze

        out = squeeze(out, axis=dropped)
        signs = np.squeeze(signs, axis=dropped)
    return (out, signs) if return_sign else out



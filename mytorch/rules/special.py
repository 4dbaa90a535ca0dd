"""`F.special`: SciPy's special functions, differentiable (gammaln, digamma, polygamma, xlogy,
expit, logit). Values come from scipy.special; the derivative of each is another of them:

    d gammaln(x) = digamma(x),   d digamma(x) = polygamma(1, x),   d polygamma(n, x) = polygamma(n + 1, x)
    d xlogy(x, y) = (log y, x / y),   d expit(x) = expit(x)(1 − expit(x)),   d logit(p) = 1 / (p (1 − p))

>>> import numpy as np
>>> from mytorch import functional as F
>>> float(F.special.gammaln(np.array(5.0)))  # log 4!
3.1780538303479458
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.special

from mytorch.primitive import is_float_array, primitive, sum_to_shape
from mytorch.rules.core import add, div, log, mul, sub

__all__ = ["digamma", "expit", "gammaln", "logit", "polygamma", "xlogy"]


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
    "expit", scipy.special.expit,
    vjp=lambda g, ans, x: (mul(g, mul(ans, sub(1, ans))),),
    jvp=lambda t, ans, x: mul(t[0], mul(ans, sub(1, ans))),
)
logit = primitive(
    "logit", scipy.special.logit,
    vjp=lambda g, ans, x: (div(g, mul(x, sub(1, x))),),
    jvp=lambda t, ans, x: div(t[0], mul(x, sub(1, x))),
)


# ---- issue 23: the gamma and beta families, error and Bessel functions, ndtr, logsumexp(b=) -------------

from mytorch.rules.special_more import *  # noqa: E402, F403
from mytorch.rules.special_more import __all__ as _more  # noqa: E402

__all__ += _more

"""`mytorch.stats`: SciPy's distributions under SciPy's names and signatures, differentiable in the
values and the parameters (compositions of primitives, so second order works).

    norm       pdf logpdf cdf logcdf sf logsf          (x, loc=0, scale=1)
    t          pdf logpdf cdf logcdf                   (x, df, loc=0, scale=1)
    chi2       pdf logpdf cdf                          (x, df, loc=0, scale=1)
    gamma      pdf logpdf cdf                          (x, a, loc=0, scale=1)
    beta       pdf logpdf cdf                          (x, a, b, loc=0, scale=1)
    poisson    pmf logpmf cdf                          (k, mu, loc=0)
    dirichlet  pdf logpdf                              (x, alpha), components along the first axis
    multivariate_normal  pdf logpdf                    (x, mean=None, cov=1), and entropy(mean, cov)

The cdfs of t, chi2, gamma and beta go through betainc and gammainc, whose shape parameters have
no closed-form derivative: there df, a and b are constants (the cdfs are differentiable in x, loc
and scale, as HIPS autograd's are); the densities are differentiable in every parameter.

>>> import numpy as np
>>> from mytorch import stats
>>> float(stats.norm.logpdf(np.array(0.0)))
-0.9189385332046727
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.special

from mytorch.primitive import primitive, reduce_to
from mytorch.rules.core import add, concatenate, div, exp, log, mul, neg, reshape, sub, transpose, where
from mytorch.rules.core import sum as sum_
from mytorch.rules.linalg import slogdet, solve
from mytorch.rules.numpy_ops import log1p, square
from mytorch.rules.special import (
    betaln,
    gammaln,
    incomplete_beta_density,
    incomplete_gamma_density,
    keeping_dtype,
    log_ndtr,
    ndtr,
    xlogy,
)

__all__ = ["beta", "chi2", "dirichlet", "gamma", "multivariate_normal", "norm", "poisson", "t"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


# ---- the distribution functions of x alone: shape parameters as parameters of the record -----------


def _of_x(name: str, function: Any, density: Any) -> Any:
    """`function(*shape, x)` as a function of x alone: the shape parameters are parameters of the
    record (constants, whatever their dtype), so a cdf with a float-array df differentiates in x."""
    return primitive(
        f"{name}_of_x", lambda x, shape: keeping_dtype(function, len(shape) + 1)(*shape, x),
        vjp=lambda g, ans, x, shape: (reduce_to(mul(g, density(*shape, x)), x),),
        jvp=lambda t, ans, x, shape: mul(t[0], density(*shape, x)),
        register=False,
    )


betainc_of_x = _of_x("betainc", scipy.special.betainc, incomplete_beta_density)
gammainc_of_x = _of_x("gammainc", scipy.special.gammainc, incomplete_gamma_density)
gammaincc_of_x = _of_x("gammaincc", scipy.special.gammaincc, lambda a, x: neg(incomplete_gamma_density(a, x)))


def _student_density(df: Any, t: Any) -> Any:
    """Student's t density at t, df a constant: Γ((ν+1)/2) / (√(νπ) Γ(ν/2)) (1 + t²/ν)^(−(ν+1)/2)."""
    nu = np.asarray(df, np.result_type(t, *(v for v in (df,) if _is_float(v))))
    lead = np.asarray(scipy.special.gammaln((nu + 1) / 2) - scipy.special.gammaln(nu / 2)
                      - 0.5 * np.log(nu * np.pi), nu.dtype)
    return exp(sub(lead, mul(log1p(mul(mul(t, t), 1 / nu)), (nu + 1) / 2)))


# Student's t distribution function of t (df a constant), whose slope is the density: stable where
# the betainc form's chain rule meets 0 · ∞ (at t = 0)
stdtr_of_x = _of_x("stdtr", scipy.special.stdtr, _student_density)


def _is_float(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def _constant(value: Any) -> np.ndarray:
    """A shape parameter of a cdf, held constant (no closed form gives its derivative)."""
    return np.asarray(value, np.float64)


def _half(value: Any) -> Any:
    """value / 2: recorded for a float array, else a constant."""
    return mul(value, 0.5) if _is_float(value) else np.asarray(value, np.float64) / 2


def _log(value: Any) -> Any:
    """log of a parameter: recorded for a float array, else a constant."""
    return log(value) if _is_float(value) else np.log(np.asarray(value, np.float64))


def _standardized(x: Any, loc: Any, scale: Any) -> Any:
    return div(sub(x, loc), scale)


class _Distribution:
    """A family of distributions; its methods take the parameters as SciPy's do."""

    name = ""

    def __repr__(self) -> str:
        return f"<mytorch.stats.{self.name}>"


class _Norm(_Distribution):
    name = "norm"

    def logpdf(self, x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        """log φ((x − loc) / scale) − log scale."""
        z = _standardized(x, loc, scale)
        return sub(sub(mul(square(z), -0.5), _log(scale)), _LOG_SQRT_2PI)

    def pdf(self, x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        return exp(self.logpdf(x, loc, scale))

    def cdf(self, x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        return ndtr(_standardized(x, loc, scale))

    def logcdf(self, x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        return log_ndtr(_standardized(x, loc, scale))

    def sf(self, x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        return ndtr(neg(_standardized(x, loc, scale)))

    def logsf(self, x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        return log_ndtr(neg(_standardized(x, loc, scale)))


class _T(_Distribution):
    name = "t"

    def logpdf(self, x: Any, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        z = _standardized(x, loc, scale)
        half_df = _half(df)
        lead = sub(sub(gammaln(add(half_df, 0.5)), gammaln(half_df)), mul(_log(df), 0.5))
        tail = mul(add(half_df, 0.5), log1p(div(square(z), df)))
        return sub(sub(sub(lead, tail), 0.5 * math.log(math.pi)), _log(scale))

    def pdf(self, x: Any, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        return exp(self.logpdf(x, df, loc, scale))

    def cdf(self, x: Any, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        """scipy.special.stdtr(df, z), whose slope in z is the density (df held constant)."""
        return stdtr_of_x(_standardized(x, loc, scale), (_constant(df),))

    def logcdf(self, x: Any, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        return log(self.cdf(x, df, loc, scale))


class _Chi2(_Distribution):
    name = "chi2"

    def logpdf(self, x: Any, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        y = _standardized(x, loc, scale)
        half_df = _half(df)
        density = sub(sub(xlogy(sub(half_df, 1.0), y), mul(y, 0.5)), gammaln(half_df))
        return sub(sub(density, mul(half_df, math.log(2.0))), _log(scale))

    def pdf(self, x: Any, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        return exp(self.logpdf(x, df, loc, scale))

    def cdf(self, x: Any, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        return gammainc_of_x(mul(_standardized(x, loc, scale), 0.5), (_constant(df) / 2,))


class _Gamma(_Distribution):
    name = "gamma"

    def logpdf(self, x: Any, a: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        y = _standardized(x, loc, scale)
        return sub(sub(sub(xlogy(sub(a, 1.0), y), y), gammaln(a)), _log(scale))

    def pdf(self, x: Any, a: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        return exp(self.logpdf(x, a, loc, scale))

    def cdf(self, x: Any, a: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        return gammainc_of_x(_standardized(x, loc, scale), (_constant(a),))


class _Beta(_Distribution):
    name = "beta"

    def logpdf(self, x: Any, a: Any, b: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        y = _standardized(x, loc, scale)
        log_density = add(xlogy(sub(a, 1.0), y), xlogy(sub(b, 1.0), sub(1.0, y)))
        return sub(sub(log_density, betaln(a, b)), _log(scale))

    def pdf(self, x: Any, a: Any, b: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        return exp(self.logpdf(x, a, b, loc, scale))

    def cdf(self, x: Any, a: Any, b: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
        return betainc_of_x(_standardized(x, loc, scale), (_constant(a), _constant(b)))


class _Poisson(_Distribution):
    name = "poisson"

    def logpmf(self, k: Any, mu: Any, loc: Any = 0) -> Any:
        """k log μ − μ − log k!, −inf off the support (k a whole number ≥ 0)."""
        k = np.asarray(k) - np.asarray(loc)
        on_support = (k >= 0) & (k == np.floor(k))
        count = np.where(on_support, k, 0).astype(np.float64)
        value = sub(sub(xlogy(count, mu), mu), gammaln(count + 1).astype(np.result_type(mu, 0.0)))
        return where(on_support, value, -np.inf)

    def pmf(self, k: Any, mu: Any, loc: Any = 0) -> Any:
        return exp(self.logpmf(k, mu, loc))

    def cdf(self, k: Any, mu: Any, loc: Any = 0) -> Any:
        """Q(⌊k⌋ + 1, μ): the upper regularized gamma function, differentiable in μ."""
        k = np.floor(np.asarray(k) - np.asarray(loc))
        value = gammaincc_of_x(mu, (np.where(k >= 0, k + 1, 1.0),))
        return where(k >= 0, value, 0.0)


class _Dirichlet(_Distribution):
    name = "dirichlet"

    def logpdf(self, x: Any, alpha: Any) -> Any:
        """Σ (α − 1) log x + log Γ(Σ α) − Σ log Γ(α), the components along x's first axis (as
        SciPy's; with one fewer than alpha, the last is 1 − the sum of the others)."""
        k = np.shape(alpha)[0] if np.ndim(alpha) == 1 else -1
        if k < 0 or np.ndim(x) < 1 or np.shape(x)[0] not in (k, k - 1):
            raise ValueError(f"dirichlet: x's first axis must hold the components of alpha (shape "
                             f"{np.shape(alpha)}), got x of shape {np.shape(x)}")
        if np.shape(x)[0] == k - 1:
            x = concatenate([x, sub(1.0, sum_(x, axis=0, keepdims=True))], axis=0)
        lead = sub(gammaln(sum_(alpha)), sum_(gammaln(alpha)))
        weights = reshape(sub(alpha, 1.0), (k,) + (1,) * (np.ndim(x) - 1))
        return _squeezed(add(sum_(xlogy(weights, x), axis=0), lead))

    def pdf(self, x: Any, alpha: Any) -> Any:
        return exp(self.logpdf(x, alpha))


class _MultivariateNormal(_Distribution):
    name = "multivariate_normal"

    @staticmethod
    def _parameters(x: Any, mean: Any, cov: Any) -> tuple[Any, Any, Any, int]:
        if mean is not None and np.ndim(mean) > 1:
            raise ValueError(f"multivariate_normal: mean must be 1-d, got shape {np.shape(mean)}")
        # SciPy's reading: the dimension comes from the mean, else from cov (1 for a number)
        dim = np.size(mean) if mean is not None else np.shape(cov)[0] if np.ndim(cov) >= 1 else 1
        if mean is None:
            mean = np.zeros(dim)
        if np.ndim(cov) == 0:
            cov = mul(cov, np.eye(dim)) if _is_float(cov) else float(cov) * np.eye(dim)
        elif np.ndim(cov) == 1:
            cov = mul(cov, np.eye(dim)) if _is_float(cov) else np.diag(cov)
        if np.shape(cov) != (dim, dim):
            raise ValueError(f"multivariate_normal: cov of shape {np.shape(cov)} does not match the "
                             f"dimension {dim}")
        if x is not None:
            if np.ndim(x) == 0:
                x = reshape(x, (1, 1)) if _is_float(x) else np.reshape(x, (1, 1))
            elif np.ndim(x) == 1:
                shape = (np.size(x), 1) if dim == 1 else (1, dim)
                x = reshape(x, shape) if _is_float(x) else np.reshape(x, shape)
        return x, mean, cov, dim

    def logpdf(self, x: Any, mean: Any = None, cov: Any = 1, allow_singular: bool = False) -> Any:
        """−½ (k log 2π + log det Σ + (x − μ)ᵀ Σ⁻¹ (x − μ)), points along x's last axis."""
        x, mean, cov, dim = self._parameters(x, mean, cov)
        centered = sub(x, mean)
        rows = reshape(centered, (-1, dim))
        solved = solve(cov, _transposed(rows))
        mahalanobis = sum_(mul(_transposed(solved), rows), axis=-1)
        log_det = slogdet(cov).logabsdet
        out = mul(add(add(mahalanobis, log_det), dim * 2 * _LOG_SQRT_2PI), -0.5)
        return _squeezed(out, np.shape(centered)[:-1])

    def pdf(self, x: Any, mean: Any = None, cov: Any = 1, allow_singular: bool = False) -> Any:
        return exp(self.logpdf(x, mean, cov, allow_singular))

    def entropy(self, mean: Any = None, cov: Any = 1) -> Any:
        """½ (k (1 + log 2π) + log det Σ)."""
        _, mean, cov, dim = self._parameters(None, mean, cov)
        return mul(add(slogdet(cov).logabsdet, dim * (1 + 2 * _LOG_SQRT_2PI)), 0.5)


def _squeezed(out: Any, shape: tuple[int, ...] | None = None) -> Any:
    """SciPy's multivariate outputs drop their size-1 axes."""
    shape = np.shape(out) if shape is None else shape
    return reshape(out, tuple(side for side in shape if side != 1))


def _transposed(a: Any) -> Any:
    return transpose(a)


norm = _Norm()
t = _T()
chi2 = _Chi2()
gamma = _Gamma()
beta = _Beta()
poisson = _Poisson()
dirichlet = _Dirichlet()
multivariate_normal = _MultivariateNormal()

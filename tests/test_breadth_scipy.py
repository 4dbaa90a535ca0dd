"""Issue 23, SciPy: `mytorch.stats` (SciPy's names and signatures) and F.special.logsumexp(b=...).

Values against SciPy's functions of the same name, and first and second derivatives (reverse and
forward mode) in the values and the parameters against finite differences, on hypothesis-drawn
shapes. The special functions that are primitives are walked by the generic tests of every
registered primitive (tests/test_primitives.py and friends).
"""

import numpy as np
import pytest
import scipy.special
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

import mytorch
from mytorch import functional as F
from mytorch import stats
from mytorch.gradcheck import check_grads
from mytorch.testing.strategies import float_arrays, shapes

SETTINGS = settings(max_examples=6, deadline=None, database=None)


def _agree(name, method, args, differentiated, rtol=1e-9):
    ours = getattr(getattr(stats, name), method)
    expected = getattr(getattr(scipy.stats, name), method)(*args)
    got = ours(*args)
    assert np.shape(got) == np.shape(expected), (name, method)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-12, err_msg=f"{name}.{method}")

    def call(*values):
        filled = list(args)
        for position, value in zip(differentiated, values):
            filled[position] = value
        return ours(*filled)

    check_grads(call, [args[i] for i in differentiated], order=2)


def _positive(shape, low=0.3, high=3.0):
    return float_arrays(shape, np.float64, low=low, high=high)


@SETTINGS
@given(data=st.data())
def test_location_scale_families(data):
    shape = data.draw(shapes(max_dims=2, max_side=3))
    x = data.draw(float_arrays(shape, np.float64, low=-3.0, high=3.0))
    loc, scale = data.draw(float_arrays((), np.float64, low=-1, high=1)), data.draw(_positive(()))
    for method in ("pdf", "logpdf", "cdf", "logcdf", "sf", "logsf"):
        _agree("norm", method, (x, loc, scale), (0, 1, 2))
    df = data.draw(_positive((), 1.0, 6.0))
    for method in ("pdf", "logpdf"):
        _agree("t", method, (x, df, loc, scale), (0, 1, 2, 3))
    for method in ("cdf", "logcdf"):
        _agree("t", method, (x, df, loc, scale), (0, 2, 3))


@SETTINGS
@given(data=st.data())
def test_positive_families(data):
    shape = data.draw(shapes(max_dims=2, max_side=3))
    y = data.draw(_positive(shape, 0.2, 4.0))
    a, b = data.draw(_positive((), 0.8, 4.0)), data.draw(_positive((), 0.8, 4.0))
    scale = data.draw(_positive((), 0.5, 2.0))
    for method in ("pdf", "logpdf"):
        _agree("chi2", method, (y, a, 0.1, scale), (0, 1, 3))
        _agree("gamma", method, (y, a, 0.1, scale), (0, 1, 3))
    _agree("chi2", "cdf", (y, a, 0.1, scale), (0, 3))
    _agree("gamma", "cdf", (y, a, 0.1, scale), (0, 3))
    u = data.draw(_positive(shape, 0.05, 0.95))
    for method in ("pdf", "logpdf"):
        _agree("beta", method, (u, a, b), (0, 1, 2))
    _agree("beta", "cdf", (u, a, b), (0,))


@SETTINGS
@given(data=st.data())
def test_poisson(data):
    k = np.array(data.draw(st.lists(st.integers(-1, 8), min_size=1, max_size=4)))
    mu = data.draw(_positive((), 0.3, 5.0))
    for method in ("pmf", "cdf"):
        _agree("poisson", method, (k, mu), (1,))
    _agree("poisson", "logpmf", (np.abs(k), mu), (1,))  # (−inf off the support: no differences there)
    np.testing.assert_allclose(stats.poisson.logpmf(k, mu), scipy.stats.poisson.logpmf(k, mu), rtol=1e-12)


@SETTINGS
@given(data=st.data())
def test_dirichlet(data):
    k = data.draw(st.integers(2, 4))
    alpha = data.draw(_positive((k,), 0.5, 3.0))
    x = np.random.default_rng(data.draw(st.integers(0, 99))).dirichlet(np.ones(k), size=data.draw(
        st.integers(1, 3))).T
    for method in ("pdf", "logpdf"):
        _agree("dirichlet", method, (x, alpha), (0, 1))
    _agree("dirichlet", "logpdf", (x[:, 0], alpha), (0, 1))


@SETTINGS
@given(data=st.data())
def test_multivariate_normal(data):
    k = data.draw(st.integers(1, 3))
    a = data.draw(float_arrays((k, k), np.float64, low=-1.0, high=1.0))
    cov = a @ a.T + np.eye(k)
    mean = data.draw(float_arrays((k,), np.float64, low=-1.0, high=1.0))
    x = data.draw(float_arrays(data.draw(st.sampled_from([(k,), (2, k), (2, 1, k)])), np.float64))
    for method in ("pdf", "logpdf"):
        _agree("multivariate_normal", method, (x, mean, cov), (0, 1, 2))
    _agree("multivariate_normal", "logpdf", (x, mean, np.diag(cov).copy()), (0, 1, 2))
    _agree("multivariate_normal", "entropy", (mean, cov), (1,))


def test_cdf_shape_parameters_are_constants_and_bad_input_is_named():
    x = np.array([0.5, 1.5])
    g = mytorch.grad(lambda x: F.sum(stats.gamma.cdf(x, np.array(2.0))))(x)
    np.testing.assert_allclose(g, scipy.stats.gamma.pdf(x, 2.0))
    with pytest.raises(NotImplementedError, match="betainc: the derivative with respect to a"):
        mytorch.grad(lambda a: F.sum(F.special.betainc(a, 1.0, np.array(0.5))))(np.array(2.0))
    with pytest.raises(ValueError, match=r"dirichlet: .*\(3,\).*\(5,\)"):
        stats.dirichlet.logpdf(np.ones(5) / 5, np.ones(3))
    with pytest.raises(ValueError, match=r"multivariate_normal: cov of shape \(2, 2\)"):
        stats.multivariate_normal.logpdf(np.zeros(3), np.zeros(3), np.eye(2))


@SETTINGS
@given(data=st.data())
def test_logsumexp_with_weights(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=3))
    a = data.draw(float_arrays(shape, np.float64, low=-3.0, high=3.0))
    b = data.draw(_positive(shape, 0.2, 2.0))
    axis = data.draw(st.sampled_from([None, 0, -1]))
    keepdims = data.draw(st.booleans())
    np.testing.assert_allclose(F.special.logsumexp(a, axis=axis, keepdims=keepdims),
                               scipy.special.logsumexp(a, axis=axis, keepdims=keepdims), rtol=1e-12)
    got = F.special.logsumexp(a, axis=axis, b=b, keepdims=keepdims)
    np.testing.assert_allclose(got, scipy.special.logsumexp(a, axis=axis, b=b, keepdims=keepdims), rtol=1e-12)
    check_grads(lambda a, b: F.special.logsumexp(a, axis=axis, b=b, keepdims=keepdims), (a, b), order=2)
    signed = b - 1.0
    value, sign = F.special.logsumexp(a, axis=axis, b=signed, keepdims=keepdims, return_sign=True)
    expected_value, expected_sign = scipy.special.logsumexp(a, axis=axis, b=signed, keepdims=keepdims,
                                                            return_sign=True)
    np.testing.assert_allclose(value, expected_value, rtol=1e-9)
    np.testing.assert_array_equal(sign, expected_sign)


def test_special_values_are_scipys_and_float32_stays():
    x = np.linspace(0.3, 3.0, 7)
    for name in ("gamma", "rgamma", "erfc", "ndtr", "log_ndtr", "j0", "j1", "y0", "y1", "i0", "i1"):
        np.testing.assert_array_equal(getattr(F.special, name)(x), getattr(scipy.special, name)(x))
        assert getattr(F.special, name)(x.astype(np.float32)).dtype == np.float32
    np.testing.assert_array_equal(F.special.jn(2, x), scipy.special.jn(2, x))
    np.testing.assert_array_equal(F.special.iv(1.5, x), scipy.special.iv(1.5, x))
    np.testing.assert_array_equal(F.special.betainc(2.0, 3.0, x / 4), scipy.special.betainc(2.0, 3.0, x / 4))
    np.testing.assert_array_equal(F.special.multigammaln(x + 1, 2), scipy.special.multigammaln(x + 1, 2))


@SETTINGS
@given(data=st.data())
def test_cho_solve_and_signal_convolve(data):
    import scipy.linalg
    import scipy.signal

    n = data.draw(st.integers(1, 3))
    factor = data.draw(float_arrays((n, n), np.float64, low=-0.5, high=0.5)) + 2 * np.eye(n)
    lower = data.draw(st.booleans())
    c = np.tril(factor) if lower else np.triu(factor)
    b = data.draw(float_arrays(data.draw(st.sampled_from([(n,), (n, 2)])), np.float64))
    np.testing.assert_allclose(F.scipy_linalg.cho_solve((c, lower), b), scipy.linalg.cho_solve((c, lower), b),
                               rtol=1e-10)
    check_grads(lambda c, b: F.scipy_linalg.cho_solve((c, lower), b), (c, b), order=2)
    ndim = data.draw(st.integers(1, 2))
    x = data.draw(float_arrays(data.draw(shapes(min_dims=ndim, max_dims=ndim, max_side=4)), np.float64))
    k = data.draw(float_arrays(data.draw(shapes(min_dims=ndim, max_dims=ndim, max_side=3)), np.float64))
    for mode in ("full", "same", "valid"):
        try:
            expected = scipy.signal.convolve(x, k, mode)
        except ValueError:
            with pytest.raises(ValueError, match="convolve"):
                F.signal.convolve(x, k, mode)
            continue
        got = F.signal.convolve(x, k, mode)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
        check_grads(lambda x, k: F.signal.convolve(x, k, mode), (x, k), order=2)


def test_scipy_linalg_refusals_name_the_operation():
    with pytest.raises(ValueError, match=r"sqrtm: .*complex"):
        F.scipy_linalg.sqrtm(np.array([[-1.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"solve_sylvester: .*\(2, 2\).*\(3, 3\).*\(3, 2\)"):
        F.scipy_linalg.solve_sylvester(np.eye(2), np.eye(3), np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"expm: .*\(2, 3\)"):
        F.scipy_linalg.expm(np.ones((2, 3)))

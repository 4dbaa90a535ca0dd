"""F.linalg and F.special against torch.linalg / torch.special and finite differences.

The generic property tests (tests/test_primitives.py, test_forward_mode.py, test_higher_order.py,
tests/test_numpy_ops.py) already run each of these primitives' specs through first and second
order checks; here the public functions (which unpack slogdet's and eigh's packed outputs), the
gradient of norm at 0, and NumPy's argument forms.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mytorch
from mytorch import functional as F
from mytorch.testing import well_conditioned_matrices


def spd(a):
    return a @ np.swapaxes(a, -1, -2) + 0.5 * np.eye(a.shape[-1])


@pytest.mark.parametrize("order", [None, 1, 2, np.inf])
def test_norm_has_gradient_zero_at_zero(order):
    for x in (np.zeros(3), np.zeros((2, 3))):
        axis = None if x.ndim == 1 else 1
        g = mytorch.grad(lambda v: F.sum(F.linalg.norm(v, ord=order, axis=axis)))(x)
        np.testing.assert_array_equal(g, np.zeros_like(x))
    g = mytorch.grad(lambda v: F.linalg.norm(v, "fro"))(np.zeros((2, 2)))
    np.testing.assert_array_equal(g, np.zeros((2, 2)))


def test_norm_reads_ord_and_axis_as_numpy_does():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 2))
    for order, axis in [(None, None), (2, 1), (1, -1), (np.inf, 0), ("fro", (0, 2)), (None, (1, 0))]:
        for keepdims in (False, True):
            expected = np.linalg.norm(x, order, axis, keepdims)
            np.testing.assert_allclose(F.linalg.norm(x, order, axis, keepdims), expected)
    np.testing.assert_allclose(F.linalg.norm(x[0], ord="nuc"), np.linalg.norm(x[0], ord="nuc"))
    with pytest.raises(ValueError, match="norm: invalid norm order 3 for matrices"):
        F.linalg.norm(x[0], ord=3)
    # ord=inf shares the gradient among ties, as PyTorch does
    np.testing.assert_allclose(mytorch.grad(lambda v: F.linalg.norm(v, np.inf))(np.array([3.0, -3.0, 1.0])),
                               [0.5, -0.5, 0.0])


@pytest.mark.torch
@settings(max_examples=min(20, settings().max_examples), deadline=None)
@given(well_conditioned_matrices(st.integers(1, 4), batch_shape=(2,)), st.integers(0, 2**16))
def test_public_functions_match_torch_linalg(a, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    b = rng.standard_normal(a.shape[:-1] + (2,))
    s = spd(a)
    t_a, t_b, t_s = (torch.tensor(v, requires_grad=True) for v in (a, b, s))
    a0, s0 = a.copy(), s.copy()  # constant weights
    pairs = [
        (lambda a, b, s: F.sum(F.mul(F.linalg.inv(a), a0)),
         lambda: (torch.linalg.inv(t_a) * t_a.detach()).sum()),
        (lambda a, b, s: F.sum(F.linalg.solve(a, b)), lambda: torch.linalg.solve(t_a, t_b).sum()),
        (lambda a, b, s: F.sum(F.linalg.det(a)), lambda: torch.linalg.det(t_a).sum()),
        (lambda a, b, s: F.sum(F.linalg.slogdet(a)[1]), lambda: torch.linalg.slogdet(t_a)[1].sum()),
        (lambda a, b, s: F.sum(F.mul(F.linalg.cholesky(s, symmetrize=True), s0)),  # PyTorch's gradient
         lambda: (torch.linalg.cholesky(t_s) * t_s.detach()).sum()),
        (lambda a, b, s: F.sum(F.mul(F.linalg.eigh(s, symmetrize=True)[0], np.arange(s.shape[-1]))),
         lambda: (torch.linalg.eigh(t_s)[0] * torch.arange(s.shape[-1])).sum()),
        (lambda a, b, s: F.sum(F.mul(F.linalg.eigh(s)[0], np.arange(s.shape[-1]))),  # one triangle read
         lambda: (torch.linalg.eigh(t_s.tril() + t_s.tril(-1).mT)[0] * torch.arange(s.shape[-1])).sum()),
        (lambda a, b, s: F.sum(F.linalg.norm(a, axis=(-2, -1))), lambda: torch.linalg.matrix_norm(t_a).sum()),
    ]
    for mine, theirs in pairs:
        value, grads = mytorch.value_and_grad(mine, argnums=(0, 1, 2))(a, b, s)
        for t in (t_a, t_b, t_s):
            t.grad = None
        reference = theirs()
        reference.backward()
        assert float(value) == pytest.approx(float(reference), rel=1e-9, abs=1e-9)
        for g, t in zip(grads, (t_a, t_b, t_s)):
            expected = np.zeros(g.shape) if t.grad is None else t.grad.numpy()
            np.testing.assert_allclose(g, expected, rtol=1e-7, atol=1e-9)


def test_slogdet_and_eigh_return_numpy_shaped_results():
    a = np.diag([-2.0, 3.0])
    sign, logabsdet = F.linalg.slogdet(a)
    assert sign == -1 and logabsdet == pytest.approx(np.log(6))
    np.testing.assert_allclose(mytorch.grad(lambda a: F.linalg.slogdet(a).logabsdet)(a), np.linalg.inv(a).T)
    s = np.array([[2.0, 1.0], [1.0, 3.0]])
    values, vectors = F.linalg.eigh(s)
    np.testing.assert_allclose(values, np.linalg.eigvalsh(s))
    np.testing.assert_allclose(vectors @ np.diag(values) @ vectors.T, s, atol=1e-12)
    np.testing.assert_array_equal(vectors, np.linalg.eigh(s)[1])  # NumPy's signs
    # d λ_k / dA = v_k v_kᵀ (distinct eigenvalues)
    g = mytorch.grad(lambda a: F.getitem(F.linalg.eigh(a, symmetrize=True).eigenvalues, 1))(s)
    np.testing.assert_allclose(g, np.outer(vectors[:, 1], vectors[:, 1]), atol=1e-12)
    # NumPy's convention (the default) reads the lower triangle: the gradient lies there
    g = mytorch.grad(lambda a: F.getitem(F.linalg.eigh(a).eigenvalues, 1))(s)
    outer = np.outer(vectors[:, 1], vectors[:, 1])
    np.testing.assert_allclose(g, 2 * np.tril(outer, -1) + np.diag(np.diag(outer)), atol=1e-12)
    lopsided = np.array([[2.0, 5.0], [1.0, 3.0]])  # not symmetric: NumPy reads the lower triangle
    np.testing.assert_allclose(F.linalg.eigh(lopsided)[0], np.linalg.eigh(lopsided)[0])
    np.testing.assert_allclose(F.linalg.eigh(lopsided, UPLO="U")[0], np.linalg.eigh(lopsided, UPLO="U")[0])
    np.testing.assert_allclose(F.linalg.cholesky(lopsided), np.linalg.cholesky(lopsided))


def test_solve_reads_a_1d_right_hand_side_as_a_vector():
    a = np.array([[3.0, 1.0], [1.0, 2.0]])
    b = np.array([9.0, 8.0])
    np.testing.assert_allclose(F.linalg.solve(a, b), np.linalg.solve(a, b))
    ga, gb = mytorch.grad(lambda a, b: F.sum(F.linalg.solve(a, b)), (0, 1))(a, b)
    x = np.linalg.solve(a, b)
    gb_expected = np.linalg.solve(a.T, np.ones(2))
    np.testing.assert_allclose(gb, gb_expected)
    np.testing.assert_allclose(ga, -np.outer(gb_expected, x))


@given(hnp.arrays(np.float64, st.integers(1, 5), elements=st.floats(0.2, 5.0)))
def test_special_functions_follow_scipy_and_their_derivatives(x):
    import scipy.special as sp

    np.testing.assert_allclose(F.special.gammaln(x), sp.gammaln(x))
    first = mytorch.grad(lambda v: F.sum(F.special.gammaln(v)))(x)
    np.testing.assert_allclose(first, sp.digamma(x), rtol=1e-12)
    first = mytorch.grad(lambda v: F.sum(F.special.digamma(v)))(x)
    np.testing.assert_allclose(first, sp.polygamma(1, x), rtol=1e-12)
    second = mytorch.grad(lambda v: F.sum(mytorch.grad(lambda u: F.sum(F.special.digamma(u)))(v)))(x)
    np.testing.assert_allclose(second, sp.polygamma(2, x), rtol=1e-10)
    p = x / 6
    slope = mytorch.grad(lambda v: F.sum(F.special.logit(v)))(p)
    np.testing.assert_allclose(slope, 1 / (p * (1 - p)), rtol=1e-10)
    np.testing.assert_allclose(F.special.expit(F.special.logit(p)), p, rtol=1e-12)
    np.testing.assert_allclose(mytorch.grad(lambda y: F.sum(F.special.xlogy(x, y)))(p), x / p, rtol=1e-12)
    assert F.special.xlogy(0.0, np.array(0.0)) == 0  # scipy's convention


def test_xlogy_of_python_numbers_is_float64_and_float32_stays():
    from mytorch import functional as F

    assert F.special.xlogy(1, 2).dtype == np.float64  # NumPy alone would promote two ints to float16
    assert F.special.xlogy(np.ones(2, np.float32), 2).dtype == np.float32

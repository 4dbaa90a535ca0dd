"""Higher-order derivatives: transforms nested in every order, against closed forms and finite
differences, and the user's tape left as it was."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from lecture import lecture_f, lecture_f_slope
from test_forward_mode import (
    NAMES,
    as_function,
    assume_finite,
    directional_derivative,
    draw_example,
    draw_like,
    finite_difference_rtol,
)

import mytorch
from mytorch import functional as F
from mytorch import grad, hessian, hvp, jacobian, jvp

# ---- second and third derivatives of elementwise functions, against closed forms ----------------

sech2 = lambda x: 1 / np.cosh(x) ** 2
sig = lambda x: 1 / (1 + np.exp(-x))
gauss = lambda x: 2 / np.sqrt(np.pi) * np.exp(-x * x)

# name: (function, domain, f'', f''')
CLOSED_FORMS = {
    "sin": (F.sin, (-3, 3), lambda x: -np.sin(x), lambda x: -np.cos(x)),
    "cos": (F.cos, (-3, 3), lambda x: -np.cos(x), lambda x: np.sin(x)),
    "exp": (F.exp, (-2, 2), np.exp, np.exp),
    "log": (F.log, (0.3, 4), lambda x: -1 / x**2, lambda x: 2 / x**3),
    "sqrt": (F.sqrt, (0.3, 4), lambda x: -0.25 * x**-1.5, lambda x: 0.375 * x**-2.5),
    "tanh": (F.tanh, (-2, 2), lambda x: -2 * np.tanh(x) * sech2(x),
             lambda x: 4 * np.tanh(x) ** 2 * sech2(x) - 2 * sech2(x) ** 2),
    "sigmoid": (F.sigmoid, (-4, 4), lambda x: sig(x) * (1 - sig(x)) * (1 - 2 * sig(x)),
                lambda x: sig(x) * (1 - sig(x)) * (1 - 6 * sig(x) + 6 * sig(x) ** 2)),
    "erf": (F.erf, (-2, 2), lambda x: -2 * x * gauss(x), lambda x: (4 * x * x - 2) * gauss(x)),
    "cube": (lambda x: F.power(x, 3.0), (-2, 2), lambda x: 6 * x, lambda x: 6 + 0 * x),
    "x^2.5": (lambda x: F.power(x, 2.5), (0.3, 3), lambda x: 3.75 * x**0.5, lambda x: 1.875 * x**-0.5),
    "reciprocal": (lambda x: F.div(1.0, x), (0.3, 3), lambda x: 2 / x**3, lambda x: -6 / x**4),
    "x*x*x": (lambda x: F.mul(F.mul(x, x), x), (-2, 2), lambda x: 6 * x, lambda x: 6 + 0 * x),
}


def derivative(f, how: str):
    """f' by reverse mode ("rev") or forward mode ("fwd"), as a function that nests."""
    if how == "rev":
        return grad(f)
    return lambda x: jvp(f, (x,), (np.ones_like(x),))[1]


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
@given(data=st.data())
def test_second_and_third_derivatives(name, data):
    f, (lo, hi), second, third = CLOSED_FORMS[name]
    x = data.draw(st.floats(lo, hi), label="x")
    for outer in ("rev", "fwd"):
        for inner in ("rev", "fwd"):
            d2 = derivative(derivative(f, inner), outer)
            assert d2(x) == pytest.approx(second(x), rel=1e-9, abs=1e-9), (outer, inner)
    d3 = derivative(derivative(derivative(f, "rev"), "fwd"), "rev")
    assert d3(x) == pytest.approx(third(x), rel=1e-9, abs=1e-9)
    assert grad(grad(grad(f)))(x) == pytest.approx(third(x), rel=1e-9, abs=1e-9)


def test_deep_nesting():
    """The fifth derivative of exp(2x) is 32·exp(2x); of sin, cos."""
    f = lambda x: F.exp(F.mul(2.0, x))
    d5 = grad(grad(grad(grad(grad(f)))))
    assert d5(0.3) == pytest.approx(32 * np.exp(0.6), rel=1e-12)
    mixed = F.sin
    for how in ("fwd", "rev", "fwd", "rev", "rev"):
        mixed = derivative(mixed, how)
    assert mixed(0.7) == pytest.approx(np.cos(0.7), rel=1e-12)


def test_the_lecture_function_twice():
    """f(x) = sqrt(x² + exp(x²)) + cos(x² + exp(x²)) and its closed-form derivative, then f''
    against finite differences of that closed form."""

    f, closed = lecture_f, lecture_f_slope
    for x in (-1.1, -0.3, 0.0, 0.4, 0.9):
        assert grad(f)(x) == pytest.approx(closed(x), rel=1e-12, abs=1e-12)
        h = 1e-4
        numeric = (8 * (closed(x + h / 2) - closed(x - h / 2)) - (closed(x + h) - closed(x - h))) / (6 * h)
        assert grad(grad(f))(x) == pytest.approx(numeric, rel=1e-7, abs=1e-7)


# ---- Hessians against closed forms --------------------------------------------------------------

matrices = st.integers(1, 5).flatmap(
    lambda n: st.tuples(hnp.arrays(np.float64, (n, n), elements=st.floats(-2, 2)),
                        hnp.arrays(np.float64, (n,), elements=st.floats(-2, 2)))
)


@given(matrices)
def test_quadratic_form(pair):
    """d(xᵀBx)/dx = xᵀ(B + Bᵀ), its Hessian B + Bᵀ; with K = BᵀB, the Hessian of xᵀKx is 2K."""
    B, x = pair
    quadratic = lambda x: F.sum(F.mul(x, F.matmul(B, x)))
    np.testing.assert_allclose(grad(quadratic)(x), x @ (B + B.T), atol=1e-12)
    np.testing.assert_allclose(hessian(quadratic)(x), B + B.T, atol=1e-12)
    np.testing.assert_allclose(jacobian(grad(quadratic), mode="rev")(x), B + B.T, atol=1e-12)
    K = B.T @ B
    np.testing.assert_allclose(hessian(lambda x: F.matmul(x, F.matmul(K, x)))(x), 2 * K, atol=1e-12)


@given(hnp.arrays(np.float64, st.integers(1, 6), elements=st.floats(-5, 5)))
def test_log_sum_exp_hessian(x):
    """∇ logΣexp = softmax s, ∇² = diag(s) − s sᵀ (so ∇² · 1 = 0)."""
    s = np.exp(x - x.max()) / np.exp(x - x.max()).sum()
    np.testing.assert_allclose(grad(F.logsumexp)(x), s, atol=1e-12)
    H = hessian(F.logsumexp)(x)
    np.testing.assert_allclose(H, np.diag(s) - np.outer(s, s), atol=1e-12)
    np.testing.assert_allclose(hvp(F.logsumexp, (x,), (np.ones_like(x),)), 0, atol=1e-12)


def test_hessian_blocks_for_several_arguments():
    """f(x, y) = Σ x²y³: the four blocks ∂²f/∂x∂y, as a tuple of tuples."""
    x, y = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    f = lambda x, y: F.sum(F.mul(F.mul(x, x), F.power(y, 3.0)))
    (xx, xy), (yx, yy) = hessian(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(xx, np.diag(2 * y**3))
    np.testing.assert_allclose(xy, np.diag(6 * x * y**2))
    np.testing.assert_allclose(yx, np.diag(6 * x * y**2))
    np.testing.assert_allclose(yy, np.diag(6 * x**2 * y))


def test_hessian_of_a_vector_function_has_out_in_in_shape():
    x = np.array([0.3, -0.2, 0.9])
    H = hessian(F.softmax)(x)
    assert H.shape == (3, 3, 3)
    for k in range(3):  # each output's Hessian, alone
        np.testing.assert_allclose(H[k], hessian(lambda x: F.getitem(F.softmax(x), k))(x), atol=1e-14)


@given(hnp.arrays(np.float64, (2, 3), elements=st.floats(-2, 2)),
       hnp.arrays(np.float64, (3,), elements=st.floats(-2, 2)),
       hnp.arrays(np.float64, (3,), elements=st.floats(-1, 1)))
def test_all_four_nestings_agree(W, x, v):
    """rev∘rev, fwd∘rev, rev∘fwd and fwd∘fwd Hessians coincide, and hvp is H·v."""
    f = lambda x: F.sum(F.mul(F.tanh(F.matmul(W, x)), F.sin(F.matmul(W, x))))
    blocks = [
        jacobian(jacobian(f, mode=inner), mode=outer)(x)
        for outer in ("rev", "fwd") for inner in ("rev", "fwd")
    ]
    for block in blocks[1:]:
        np.testing.assert_allclose(block, blocks[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(blocks[0], blocks[0].T, atol=1e-12)
    np.testing.assert_allclose(hvp(f, (x,), (v,)), blocks[0] @ v, atol=1e-12)


# ---- perturbation confusion ---------------------------------------------------------------------


def test_inner_and_outer_variables_are_told_apart():
    """d/dx [x · d/dy (x·y)] = d/dx x² = 2x; confusing x with y would give 4x."""
    assert grad(lambda x: F.mul(x, grad(lambda y: F.mul(x, y))(x)))(2.0) == 4.0


def test_siskind_pearlmutter_example_in_both_modes():
    """d/dx [x · (d/dy (x + y) at y = 1)] at x = 1 is 1 (the classic confusion gives 2)."""
    forward = lambda f: lambda x: jvp(f, (x,), (1.0,))[1]
    assert forward(lambda x: F.mul(x, forward(lambda y: F.add(x, y))(1.0)))(1.0) == 1.0
    assert grad(lambda x: F.mul(x, grad(lambda y: F.add(x, y))(1.0)))(1.0) == 1.0
    assert grad(lambda x: F.mul(x, forward(lambda y: F.add(x, y))(1.0)))(1.0) == 1.0
    assert forward(lambda x: F.mul(x, grad(lambda y: F.add(x, y))(1.0)))(1.0) == 1.0


def test_mixed_partials():
    """∂²(x² y³)/∂x∂y = 6 x y², whichever variable goes first."""
    f = lambda x, y: F.mul(F.mul(x, x), F.power(y, 3.0))
    x, y = 1.5, -0.7
    assert grad(lambda y: grad(f, 0)(x, y))(y) == pytest.approx(6 * x * y**2)
    assert grad(lambda x: grad(f, 1)(x, y))(x) == pytest.approx(6 * x * y**2)


# ---- every primitive's second-order rules -------------------------------------------------------


def inner_product(arrays, directions):
    total = 0.0
    for a, d in zip(arrays, directions):
        total = F.add(total, F.sum(F.mul(a, d)))
    return total


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=min(20, settings().max_examples))
@given(data=st.data())
def test_second_order_rules(name, data):
    """uᵀ H v four ways (rev∘rev, fwd∘rev, rev∘fwd, fwd∘fwd) against finite differences of the
    exact first derivative: the backward and tangent rules, recorded, differentiate correctly."""
    f, primals = as_function(name, draw_example(data, name))
    out = f(*primals)
    assume_finite(out)
    weights = draw_like(data, out, "weights")
    if np.iscomplexobj(weights):  # a complex output (the fft family, eig): the real loss Re Σ conj(w) f
        scalar = lambda *xs: F.sum(F.real(F.mul(f(*xs), np.conj(weights))))  # noqa: E731
    else:
        scalar = lambda *xs: F.sum(F.mul(f(*xs), weights))  # noqa: E731
    v = [draw_like(data, p, f"v{i}") for i, p in enumerate(primals)]
    u = [draw_like(data, p, f"u{i}") for i, p in enumerate(primals)]
    everything = tuple(range(len(primals)))

    def slope_along_v_rev(*xs):  # ∇f · v, by reverse mode
        return inner_product(grad(scalar, everything)(*xs), v)

    def slope_along_v_fwd(*xs):  # ∇f · v, by forward mode
        return jvp(scalar, xs, v)[1]

    expected = directional_derivative(slope_along_v_rev, primals, u)
    assume(np.isfinite(float(expected)))  # a subnormal direction leaves finite differences nothing to see
    results = {
        "rev∘rev": inner_product(grad(slope_along_v_rev, everything)(*primals), u),
        "fwd∘rev": jvp(slope_along_v_rev, primals, u)[1],
        "rev∘fwd": inner_product(grad(slope_along_v_fwd, everything)(*primals), u),
        "fwd∘fwd": jvp(slope_along_v_fwd, primals, u)[1],
    }
    tolerance = 1e3 * finite_difference_rtol(out) * (1.0 + abs(float(expected)))
    for how, value in results.items():
        assert abs(float(value) - float(expected)) <= tolerance, (how, value, expected)


# ---- the user's tape and buffer are left alone ----------------------------------------------------


def snapshot(engine):
    memory = engine.gradient_buffer.memory
    return (
        [id(op) for op in engine.operation_list],
        {key: (None if value is None else np.array(value)) for key, value in memory.items()},
    )


def test_nested_transforms_leave_the_users_tape_and_buffer_untouched(fresh_engine):
    engine = fresh_engine
    W = np.array([[1.0, -2.0], [0.5, 3.0]])
    x = np.array([0.3, -0.4])
    free = np.array([1.0, 2.0])  # not on the user's tape: stays writable
    hidden = F.tanh(F.matmul(W, x))
    loss = F.sum(F.mul(hidden, hidden))
    engine.backward(loss, create_graph=True)  # buffer holds gradients, the tape is still recorded
    before = snapshot(engine)

    f = lambda x: F.sum(F.mul(F.tanh(F.matmul(W, x)), F.exp(F.mul(x, free))))
    results = [
        hessian(f)(x), hvp(f, (x,), (free,)), grad(grad(lambda s: f(F.mul(s, x))))(1.0),
        jacobian(grad(f), mode="fwd")(hidden), jvp(grad(f), (x,), (free,)), mytorch.vjp(grad(f), x)[1](free),
    ]
    with mytorch.no_grad():
        results.append(grad(grad(lambda s: f(F.mul(s, x))))(1.0))

    after = snapshot(engine)
    assert after[0] == before[0]
    assert after[1].keys() == before[1].keys()
    for key, value in before[1].items():
        np.testing.assert_array_equal(after[1][key], value)
    assert free.flags.writeable and not W.flags.writeable  # W is still on the user's tape
    assert mytorch.is_recording()
    assert results[2] == results[-1]
    free += 1  # the transforms released what they locked


def test_create_graph_backward_then_differentiate_the_gradient(fresh_engine):
    """backward(create_graph=True) puts dy/dx on the tape; walking back from it gives d²y/dx²."""
    engine = fresh_engine
    x = np.array([0.5, 2.0])
    y = F.sum(F.power(x, 3.0))
    engine.backward(y, create_graph=True)
    slope = engine.gradient_buffer.get_param(x)
    np.testing.assert_allclose(slope, 3 * x**2)
    total = F.sum(slope)
    start = next(i for i, op in enumerate(engine.operation_list) if op.output is total)
    adjoints = engine.walk_backward(start, np.ones_like(total))
    np.testing.assert_allclose(adjoints[id(x)], 6 * x)


def test_power_mixed_second_derivative_at_exponent_zero():
    # ∂²(x^p)/∂p∂x = x^(p-1) (1 + p ln x) = 1/x at p = 0: the slope's guard for 0 · inf at x = 0
    # must not swap x for 1 wherever p = 0 (readable draws hit p = 0 exactly).
    slope = grad(lambda x, p: F.sum(F.power(x, p)), argnums=0)
    mixed = grad(lambda p, x: F.sum(slope(x, p)), argnums=0)
    x = np.array([0.5, 2.0])
    np.testing.assert_allclose(mixed(np.array(0.0), x), np.sum(1 / x))
    assert np.isfinite(mixed(np.array(0.0), np.array([0.0, 1.0])))  # x = 0, p = 0: no 0 · inf

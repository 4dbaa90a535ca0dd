"""The transforms of API.md §3: grad, value_and_grad, vjp, jvp, jacobian, hessian, hvp — what they
return, what they refuse, and how they plug into scipy."""

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from lecture import lecture_f, lecture_f_slope, lecture_y

import mytorch
from mytorch import functional as F
from mytorch import grad, hessian, hvp, jacobian, jvp, value_and_grad, vjp

# ---- grad and value_and_grad --------------------------------------------------------------------


def test_grad_of_the_lecture_example():
    d1, d2 = grad(lecture_y, argnums=(0, 1))(2.0, 5.0)
    assert d1 == pytest.approx(5.5)
    assert d2 == pytest.approx(2 - np.cos(5.0))  # 1.716
    assert grad(lecture_y)(2.0, 5.0) == pytest.approx(5.5)
    assert grad(lecture_y, argnums=-1)(2.0, 5.0) == pytest.approx(d2)


@given(hnp.arrays(np.float64, st.integers(1, 5), elements=st.floats(-1.5, 1.5)))
def test_the_lecture_function_against_its_closed_form(x):
    slope = lecture_f_slope(x)
    np.testing.assert_allclose(grad(lambda x: F.sum(lecture_f(x)))(x), slope, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jvp(lecture_f, (x,), (np.ones_like(x),))[1], slope, rtol=1e-12, atol=1e-12)
    for mode in ("rev", "fwd"):
        np.testing.assert_allclose(jacobian(lecture_f, mode=mode)(x), np.diag(slope), rtol=1e-12, atol=1e-12)


def test_value_and_grad_returns_both():
    x = np.array([1.0, -2.0, 0.5])
    value, slope = value_and_grad(lambda x: F.sum(F.mul(x, x)))(x)
    assert value == pytest.approx(5.25) and value.shape == ()
    np.testing.assert_array_equal(slope, 2 * x)
    value, (a, b) = value_and_grad(F.mul, argnums=(0, 1))(3.0, 4.0)
    assert (value, a, b) == (12.0, 4.0, 3.0)


def test_python_numbers_become_float64_and_arrays_keep_shape_and_dtype():
    slope = grad(lambda x: F.mul(x, x))(3)
    assert isinstance(slope, np.ndarray) and slope.shape == () and slope.dtype == np.float64 and slope == 6.0
    x = np.ones((2, 3), dtype=np.float32)
    slope = grad(lambda x: F.sum(F.mul(x, x)))(x)
    assert slope.shape == (2, 3) and slope.dtype == np.float32


def test_results_are_plain_writable_arrays():
    x = np.arange(3.0)
    slope = grad(F.sum)(x)  # sum's adjoint is a broadcast: read-only inside the walk
    assert type(slope) is np.ndarray and slope.flags.writeable
    slope += 1
    np.testing.assert_array_equal(grad(F.sum)(x), np.ones(3))
    x += 1  # the argument was only locked while the transform ran


def test_non_differentiated_arguments_pass_through_unchanged():
    labels = np.array([0, 2])
    logits = np.array([[1.0, 2.0, 0.5], [0.1, -0.3, 0.7]])
    slope = grad(F.cross_entropy)(logits, labels)  # integer labels: a constant argument
    s = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(slope, (s - np.eye(3)[labels]) / 2)
    assert grad(lambda x, scale: F.mul(x, scale))(2.0, 3.0) == 3.0  # scale is not differentiated


def test_the_same_array_twice_is_two_variables():
    x = np.array([1.0, 2.0])
    a, b = grad(lambda u, v: F.sum(F.mul(u, F.exp(v))), argnums=(0, 1))(x, x)
    np.testing.assert_allclose(a, np.exp(x))
    np.testing.assert_allclose(b, x * np.exp(x))


def test_a_function_that_ignores_or_returns_its_argument():
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(grad(lambda x: F.sum(np.ones(2)))(x), [0.0, 0.0])
    assert grad(lambda x: 1.5)(2.0) == 0.0
    assert grad(lambda x: x)(2.0) == 1.0
    np.testing.assert_array_equal(jacobian(lambda x: x)(x), np.eye(2))
    np.testing.assert_array_equal(jacobian(lambda x: x, mode="fwd")(x), np.eye(2))
    with pytest.raises(TypeError, match="computed with NumPy"):
        jacobian(lambda x: np.zeros(3))(x)  # an array no recorded operation produced


def test_grad_accepts_one_element_outputs():
    """Homework losses have shape (1,); their gradient is as for a scalar."""
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(grad(lambda x: F.reshape(F.sum(x), (1,)))(x), [1.0, 1.0])


def test_transforms_work_inside_no_grad():
    with mytorch.no_grad():
        assert grad(F.sin)(0.0) == 1.0
        assert jvp(F.exp, (0.0,), (2.0,)) == (1.0, 2.0)
        assert not mytorch.is_recording()


def test_reverse_mode_through_a_hand_written_operation(fresh_engine):
    """An add_operation record (homework style) is walked by grad; forward mode says it cannot."""

    def cube(x):
        y = x**3
        fresh_engine.add_operation([x], y, [None], lambda g, x: 3 * x**2 * g)
        return y

    np.testing.assert_array_equal(grad(lambda x: F.sum(cube(x)))(np.array([1.0, 2.0])), [3.0, 12.0])
    with pytest.raises(NotImplementedError, match="no tangent rule"):
        jvp(cube, (np.array([1.0]),), (np.array([1.0]),))
    assert fresh_engine.operation_list == []


# ---- refusals -----------------------------------------------------------------------------------


def test_grad_refuses_a_non_scalar_output():
    message = r"grad needs a scalar output; got shape \(3,\) — use vjp or jacobian"
    with pytest.raises(ValueError, match=message):
        grad(F.sin)(np.zeros(3))


def test_grad_refuses_integer_arrays_and_integer_outputs():
    with pytest.raises(TypeError, match=r"argument 0.*int64.*\(3,\).*float"):
        grad(F.sum)(np.arange(3))
    with pytest.raises(TypeError, match="argument 1"):
        grad(F.mul, argnums=(0, 1))(1.0, np.array(True))
    with pytest.raises(TypeError, match="float output"):
        grad(lambda x: np.array(3))(1.0)


def test_argnums_out_of_range_or_malformed():
    with pytest.raises(ValueError, match=r"argnums=2 is out of range.*2 positional argument"):
        grad(F.mul, argnums=2)(1.0, 2.0)
    with pytest.raises(ValueError, match="out of range"):
        jacobian(F.mul, argnums=(0, -3))(1.0, 2.0)
    with pytest.raises(ValueError, match="empty"):
        grad(F.mul, argnums=())(1.0, 2.0)
    with pytest.raises(TypeError, match="argnums must hold ints"):
        grad(F.mul, argnums=(0.5,))(1.0, 2.0)


def test_shape_mismatches_are_named():
    with pytest.raises(ValueError, match=r"jvp: tangent 0 has shape \(2,\), but it must have shape \(3,\)"):
        jvp(F.sin, (np.zeros(3),), (np.zeros(2),))
    with pytest.raises(ValueError, match="2 primals but 1 tangents"):
        jvp(F.mul, (1.0, 2.0), (1.0,))
    _, vjp_fn = vjp(F.sin, np.zeros(3))
    with pytest.raises(ValueError, match=r"cotangent has shape \(\), but it must have shape \(3,\)"):
        vjp_fn(1.0)
    with pytest.raises(ValueError, match="mode must be 'rev' or 'fwd'"):
        jacobian(F.sin, mode="backward")
    with pytest.raises(TypeError, match="must return an array"):
        grad(lambda x: "not a number")(1.0)


def test_a_function_that_starts_a_new_engine_is_refused():
    def f(x):
        mytorch.Autograd()
        return F.sin(x)

    with pytest.raises(RuntimeError, match="started a new engine"):
        grad(f)(1.0)


def test_a_refusal_leaves_the_tape_clean(fresh_engine):
    with pytest.raises(ValueError):
        grad(F.sin)(np.zeros(3))
    assert fresh_engine.operation_list == [] and fresh_engine.gradient_buffer.memory == {}


# ---- vjp and jvp --------------------------------------------------------------------------------


def test_vjp_function_is_reusable_and_walks_after_the_transform_returned(fresh_engine):
    W = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
    x = np.array([0.5, -0.5, 1.0])
    out, vjp_fn = vjp(lambda W, x: F.tanh(F.matmul(W, x)), W, x)
    assert fresh_engine.operation_list == []  # cut back already
    J_x = (1 - np.tanh(W @ x) ** 2)[:, None] * W
    for cotangent in (np.array([1.0, 0.0]), np.array([0.3, -2.0])):
        dW, dx = vjp_fn(cotangent)
        np.testing.assert_allclose(dx, cotangent @ J_x)
        np.testing.assert_allclose(dW, np.outer(cotangent * (1 - out**2), x))
    assert fresh_engine.operation_list == []


def test_vjp_and_jvp_of_several_outputs():
    f = lambda x, y: (F.mul(x, y), F.sin(x))
    x, y = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    (p, s), vjp_fn = vjp(f, x, y)
    dx, dy = vjp_fn((np.ones(2), np.ones(2)))
    np.testing.assert_allclose(dx, y + np.cos(x))
    np.testing.assert_allclose(dy, x)
    (p2, s2), (tp, ts) = jvp(f, (x, y), (np.ones(2), np.zeros(2)))
    np.testing.assert_allclose(tp, y)
    np.testing.assert_allclose(ts, np.cos(x))
    with pytest.raises(ValueError, match="2 outputs"):
        vjp_fn(np.ones(2))
    (Jp, Js) = jacobian(f)(x, y)
    np.testing.assert_allclose(Jp, np.diag(y))
    np.testing.assert_allclose(Js, np.diag(np.cos(x)))


def test_vjp_function_called_inside_grad_is_differentiated():
    """The cotangent path: d/dc <vjp(c), 1> = J·1 (the transpose of the transpose)."""
    x = np.array([0.2, 0.9])
    _, vjp_fn = vjp(F.sin, x)
    through = grad(lambda c: F.sum(vjp_fn(F.mul(c, np.ones(2)))[0]))(1.0)
    assert through == pytest.approx(np.sum(np.cos(x)))


def test_jvp_tangents_are_cast_to_the_primal_dtype():
    x = np.array([1.0, 2.0], dtype=np.float32)
    _, tangent = jvp(F.exp, (x,), (np.array([1, 0]),))  # integer tangent
    assert tangent.dtype == np.float32
    np.testing.assert_allclose(tangent, [np.e, 0.0], rtol=1e-6)


# ---- jacobian and hessian -----------------------------------------------------------------------


@given(data=st.data())
def test_forward_and_reverse_jacobians_agree(data):
    n_in = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), label="input shape")
    n_out = data.draw(st.integers(1, 4), label="outputs")
    x = data.draw(hnp.arrays(np.float64, n_in, elements=st.floats(-2, 2)), label="x")
    W = data.draw(hnp.arrays(np.float64, (n_out, x.size), elements=st.floats(-2, 2)), label="W")

    def f(x):
        h = F.matmul(W, F.reshape(x, (-1,)))
        return F.reshape(F.mul(F.tanh(h), F.exp(F.mul(0.3, h))), (n_out, 1))

    forward, reverse = jacobian(f, mode="fwd")(x), jacobian(f, mode="rev")(x)
    assert forward.shape == reverse.shape == (n_out, 1) + x.shape
    np.testing.assert_allclose(forward, reverse, rtol=1e-12, atol=1e-12)


def test_jacobian_shapes_follow_out_then_in():
    x = np.ones((2, 3))
    assert jacobian(lambda x: F.sum(x, axis=0))(x).shape == (3, 2, 3)
    assert jacobian(F.sum, mode="fwd")(x).shape == (2, 3)
    assert hessian(F.sum)(x).shape == (2, 3, 2, 3)
    assert jacobian(F.sin)(0.5).shape == ()
    a, b = jacobian(F.matmul, argnums=(0, 1))(np.ones((2, 3)), np.ones(3))
    assert a.shape == (2, 2, 3) and b.shape == (2, 3)
    assert jacobian(F.sin)(np.zeros(0)).shape == (0, 0)


def test_jacobians_with_many_rows_and_columns():
    """Rows and columns are stacked in one operation, whatever their number."""
    x = np.linspace(-1.0, 1.0, 12)
    for mode in ("rev", "fwd"):
        np.testing.assert_allclose(jacobian(F.sin, mode=mode)(x), np.diag(np.cos(x)), atol=1e-15)
    np.testing.assert_allclose(hessian(lambda x: F.sum(F.sin(x)))(x), np.diag(-np.sin(x)), atol=1e-15)


def test_hvp_equals_hessian_times_vector():
    A = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, -1.0], [0.0, -1.0, 4.0]])
    f = lambda x: F.add(F.mul(0.5, F.sum(F.mul(x, F.matmul(A, x)))), F.sum(F.exp(x)))
    x, v = np.array([0.1, -0.2, 0.3]), np.array([1.0, 0.0, -2.0])
    np.testing.assert_allclose(hvp(f, (x,), (v,)), (A + np.diag(np.exp(x))) @ v, rtol=1e-12)
    np.testing.assert_allclose(hvp(f, x, v), hessian(f)(x) @ v, rtol=1e-12)
    hx, hy = hvp(lambda x, y: F.sum(F.mul(F.mul(x, x), y)), (x, v), (np.ones(3), np.zeros(3)))
    np.testing.assert_allclose(hx, 2 * v)
    np.testing.assert_allclose(hy, 2 * x)


# ---- scipy ------------------------------------------------------------------------------------


def test_value_and_grad_drives_scipy_lbfgs_on_a_logistic_regression():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=(200, 3)), np.ones(200)])
    labels = (rng.random(200) < 1 / (1 + np.exp(-X @ np.array([1.5, -2.0, 0.5, 0.3])))).astype(float)
    penalty = 1e-2

    def loss(w):  # mean binary cross-entropy + a ridge, so the optimum is unique
        p = F.sigmoid(F.matmul(X, w))
        likelihood = F.add(F.mul(labels, F.log(p)), F.mul(1 - labels, F.log(F.sub(1.0, p))))
        return F.add(F.neg(F.mean(likelihood)), F.mul(penalty / 2, F.sum(F.mul(w, w))))

    fit = scipy.optimize.minimize(value_and_grad(loss), np.zeros(4), jac=True, method="L-BFGS-B",
                                  options={"gtol": 1e-10, "ftol": 1e-14})
    assert fit.success, fit.message
    assert np.linalg.norm(grad(loss)(fit.x)) < 1e-6
    # The same optimum by Newton's method with mytorch's Hessian.
    w = np.zeros(4)
    for _ in range(20):
        w = w - np.linalg.solve(hessian(loss)(w), grad(loss)(w))
    np.testing.assert_allclose(fit.x, w, atol=1e-5)
    assert abs(float(loss(fit.x)) - float(loss(w))) < 1e-10

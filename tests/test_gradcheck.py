"""check_grads: it passes correct derivatives, and a wrong one fails with the argument, the element,
the two values and the error."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_forward_mode import NAMES, as_function, assume_finite, draw_example, finite_difference_rtol

import mytorch
from mytorch import check_grads
from mytorch import functional as F
from mytorch.gradcheck import numeric_jacobian


def broken_sin(wrong_in: str):
    """sin with a tangent or adjoint rule that doubles the slope where x > 1."""
    right = lambda x: F.cos(x)
    wrong = lambda x: F.mul(F.cos(x), np.where(np.asarray(x) > 1, 2.0, 1.0))
    return F.primitive(
        "broken_sin", np.sin,
        vjp=lambda g, ans, x: (F.mul(g, (wrong if wrong_in == "rev" else right)(x)),),
        jvp=lambda t, ans, x: F.mul(t[0], (wrong if wrong_in == "fwd" else right)(x)),
        register=False,
    )


def test_correct_derivatives_pass():
    x, W = np.array([0.3, -1.2, 2.0]), np.array([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]])
    check_grads(lambda x, W: F.softmax(F.matmul(W, x)), (x, W), order=2)
    check_grads(lambda x: (F.sin(x), F.sum(F.exp(x))), (x,))  # several outputs
    check_grads(lambda x, n: F.power(x, n), (np.array([0.5, 1.5]), 3))  # an int held constant
    check_grads(F.mul, (2.0, np.array([1.0, 2.0])), modes="fwd")
    check_grads(lambda x: F.tanh(F.mul(x, x)), (x.astype(np.float32),), order=2)


@pytest.mark.parametrize("mode", ["rev", "fwd"])
def test_a_wrong_rule_is_caught_in_its_mode_only(mode):
    f = broken_sin(mode)
    x = np.array([0.1, 0.5, 1.5])
    other = "fwd" if mode == "rev" else "rev"
    check_grads(f, (x,), modes=(other,))
    with pytest.raises(AssertionError) as failure:
        check_grads(f, (x,), modes=(mode,))
    message = str(failure.value)
    wanted = "reverse-mode ('rev')" if mode == "rev" else "forward-mode ('fwd')"
    assert wanted in message
    assert "d output[2] / d argument 0[2]" in message  # the element: output 2 along input 2
    assert f"autodiff {2 * np.cos(1.5):.10g}" in message
    assert f"finite differences {np.cos(1.5):.10g}" in message
    assert f"error {abs(np.cos(1.5)):.3g}" in message
    assert "1 of 9 elements differ" in message


def test_the_argument_is_named():
    f = broken_sin("rev")
    with pytest.raises(AssertionError, match=r"d output / d argument 1\[1, 0\]"):
        check_grads(lambda a, b: F.sum(F.mul(a, f(b))), (np.ones((2, 2)), np.array([[0.2, 0.3], [1.2, 0.4]])))


@pytest.mark.parametrize("escaping", ["rev", "fwd"])
def test_order_two_catches_a_rule_that_escapes_the_tape(escaping):
    """A rule computed with plain numpy is right at first order but cannot be differentiated
    again: order=2 notices, in the derivative built with that rule."""
    recorded, escaped = (lambda x: F.cos(x)), (lambda x: np.cos(x))
    primitive = F.primitive(
        "escaped_sin", np.sin,
        vjp=lambda g, ans, x: (F.mul(g, (escaped if escaping == "rev" else recorded)(x)),),
        jvp=lambda t, ans, x: F.mul(t[0], (escaped if escaping == "fwd" else recorded)(x)),
        register=False,
    )
    f = lambda x: F.sum(primitive(x))
    x = np.array([0.4, 0.8])
    check_grads(f, (x,), order=1)
    sound = "fwd" if escaping == "rev" else "rev"
    check_grads(f, (x,), modes=(sound,), order=2)
    wanted = r"of \(f differentiated in " + ("reverse" if escaping == "rev" else "forward") + "-mode"
    with pytest.raises(AssertionError, match=wanted):
        check_grads(f, (x,), order=2)


def test_tolerances_and_step_are_honoured():
    slightly_off = F.primitive(
        "slightly_off", np.exp,
        vjp=lambda g, ans, x: (F.mul(g, F.mul(ans, 1 + 1e-4)),),
        jvp=lambda t, ans, x: F.mul(t[0], F.mul(ans, 1 + 1e-4)),
        register=False,
    )
    x = np.array([0.5, 1.0])
    with pytest.raises(AssertionError):
        check_grads(slightly_off, (x,))
    check_grads(slightly_off, (x,), rtol=1e-3)
    check_grads(slightly_off, (x,), atol=1e-3)
    check_grads(F.exp, (x,), eps=1e-2)  # a coarse step still passes, thanks to Richardson


def test_refusals():
    with pytest.raises(ValueError, match="modes must be 'rev' and/or 'fwd'"):
        check_grads(F.sin, (1.0,), modes=("backward",))
    with pytest.raises(ValueError, match="order must be 1 or more"):
        check_grads(F.sin, (1.0,), order=0)
    with pytest.raises(ValueError, match="none of the arguments is a float"):
        check_grads(F.sum, (np.arange(3),))


def test_numeric_jacobian_is_accurate():
    x = np.array([-1.0, 0.0, 2.0])
    J = numeric_jacobian(lambda x: (F.exp(x), F.sum(F.sin(x))), [x], [0])
    np.testing.assert_allclose(J[0][0], np.diag(np.exp(x)), atol=1e-11)
    np.testing.assert_allclose(J[1][0], np.cos(x), atol=1e-11)
    assert numeric_jacobian(lambda x: (np.arange(2),), [x], [0]) == [None]  # integer output


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=min(5, settings().max_examples))
@given(data=st.data())
def test_every_primitive_passes_check_grads(name, data):
    f, primals = as_function(name, draw_example(data, name))
    with mytorch.no_grad():
        out = f(*primals)
    assume_finite(out)
    check_grads(f, primals, rtol=max(finite_difference_rtol(out), 1e-5))

"""Ordinary mistakes give the right number or a clear error, never a silently wrong gradient (issue 10)."""

import threading

import numpy as np
import pytest

import mytorch
from mytorch import functional as F
from mytorch import nn
from mytorch.autograd_engine import Autograd, who_holds


def grad_of(array):
    return mytorch.engine().gradient_buffer.get_param(array)


# ---- a walk consumes what it walked ----------------------------------------------------------------


def test_a_second_backward_raises_and_names_retain_graph():
    x = np.array([1.0, 2.0])
    y = F.sum(F.mul(x, x))
    mytorch.backward(y)
    x[0] = 10.0  # writable again once the walk is done ...
    with pytest.raises(RuntimeError, match="retain_graph"):
        mytorch.backward(y)  # ... and the stale tape is never walked with the new value
    np.testing.assert_array_equal(grad_of(x), [2.0, 4.0])


def test_retain_graph_keeps_inputs_locked_and_accumulates():
    x = np.array([1.0, 2.0])
    y = F.sum(F.mul(x, x))
    mytorch.backward(y, retain_graph=True)
    with pytest.raises(ValueError, match="read-only"):
        x[0] = 10.0
    mytorch.backward(y)
    np.testing.assert_array_equal(grad_of(x), [4.0, 8.0])


def test_two_losses_sharing_a_prefix_with_a_step_between_refuse():
    W = np.array([1.0, 2.0])
    h = F.mul(W, 3.0)
    first, second = F.sum(F.mul(h, h)), F.sum(F.mul(h, 2.0))
    mytorch.backward(first)
    W -= 0.1 * grad_of(W)  # an optimizer step between the two backwards
    with pytest.raises(RuntimeError, match="retain_graph"):
        mytorch.backward(second)


def test_a_pytorch_style_loop_keeps_the_tape_and_buffer_flat():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = mytorch.optim.SGD(model.parameters(), lr=0.1)
    engine = Autograd()
    sizes = []
    for _ in range(30):
        opt.zero_grad()
        X, y = rng.normal(size=(16, 4)), rng.integers(0, 3, 16)
        loss = nn.CrossEntropyLoss()(model(X), y)
        engine.backward(loss)
        opt.step()
        sizes.append((len(engine.operation_list), len(engine.gradient_buffer.memory)))
    assert sizes[-1] == sizes[5] and sizes[-1][0] == 0
    assert sizes[-1][1] <= len(model.parameters()) + 2  # the parameters and at most the last batch


def test_inference_outside_no_grad_locks_until_released_and_no_grad_does_not():
    W = np.ones((3, 2))
    with mytorch.no_grad():
        F.matmul(np.ones((4, 3)), W)
    W += 1  # nothing recorded: writable
    F.matmul(np.ones((4, 3)), W)
    with pytest.raises(ValueError, match="read-only"):
        W += 1
    assert "not yet walked" in who_holds(W)
    mytorch.engine().zero_grad()
    W += 1


def test_a_tape_no_loop_needs_warns_once(monkeypatch):
    monkeypatch.setattr(mytorch.autograd_engine, "LONG_TAPE", 50)
    W = np.ones(3)
    with pytest.warns(ResourceWarning, match="no_grad"):
        for _ in range(60):
            F.mul(W, 2.0)  # inference outside no_grad: recorded, never walked


# ---- seeds that are really losses -----------------------------------------------------------------


@pytest.mark.parametrize("as_seed", [float, lambda L: L.item(), lambda L: L / 4, lambda L: 2.0])
def test_a_loss_computed_outside_the_tape_is_refused(as_seed):
    logits, labels = np.array([[1.0, 2.0, 0.5]]), np.array([1])
    L = nn.CrossEntropyLoss()(logits, labels)
    with pytest.raises(ValueError, match="loss computed outside the tape"):
        mytorch.backward(as_seed(L))


def test_the_handout_seeds_still_work():
    x = np.array([1.0, 2.0])
    out = F.mul(x, x)
    mytorch.backward(np.ones_like(out))
    np.testing.assert_array_equal(grad_of(x), [2.0, 4.0])
    Autograd()
    y = F.sum(F.mul(x, 3.0))
    mytorch.backward(1)
    np.testing.assert_array_equal(grad_of(x), [3.0, 3.0])
    del y


def test_a_non_scalar_loss_needs_gradient():
    x = np.array([1.0, 2.0])
    y = F.mul(x, x)
    with pytest.raises(ValueError, match="gradient="):
        mytorch.backward(y)
    mytorch.backward(y, gradient=np.array([1.0, 0.5]))
    np.testing.assert_array_equal(grad_of(x), [2.0, 2.0])


# ---- outputs no recorded operation produced ------------------------------------------------------------


def test_grad_of_a_function_computed_with_numpy_raises():
    # NumPy code on the argument records (it is tracked); code that leaves the tracked array
    # (np.asarray) computes off the tape, and that is refused rather than differentiated as zero.
    assert mytorch.grad(lambda x: np.sum(F.mul(x, x)))(np.array([1.0, 2.0])).tolist() == [2.0, 4.0]
    with pytest.raises(TypeError, match="computed with NumPy"):
        mytorch.grad(lambda x: np.sum(np.asarray(x) ** 2))(np.array([1.0, 2.0]))


def test_an_integer_only_tape_says_integers_are_constants():
    F.mul(np.array([1, 2]), np.array([3, 4]))
    with pytest.raises(RuntimeError, match="constants"):
        mytorch.backward(1)


# ---- the read-only guard -------------------------------------------------------------------------------


def test_a_read_only_view_of_a_writable_base_locks_the_base():
    W = np.ones(3)
    view = W[:]
    view.setflags(write=False)
    F.sum(F.mul(view, view))
    with pytest.raises(ValueError, match="read-only"):
        W[0] = 5.0


def test_another_threads_backward_does_not_unlock_this_tapes_arrays():
    W = np.ones(3)
    F.sum(F.mul(W, W))  # on this thread's tape, not walked

    def other():
        Autograd()
        mytorch.backward(F.sum(F.mul(W, 2.0)))

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    with pytest.raises(ValueError, match="read-only"):
        W[0] = 5.0


def test_vjp_outputs_are_the_users_own():
    x = np.array([1.0, 2.0, 3.0])
    out, vjp_fn = mytorch.vjp(F.exp, x)
    before = vjp_fn(np.ones(3))[0].copy()
    out -= out.max()
    np.testing.assert_array_equal(vjp_fn(np.ones(3))[0], before)


# ---- inputs that would silently become constants ----------------------------------------------------


class Parameter(np.ndarray):
    pass


def test_an_ndarray_subclass_is_differentiable():
    W = np.array([1.0, 2.0]).view(Parameter)
    mytorch.backward(F.sum(F.mul(W, W)))
    np.testing.assert_array_equal(grad_of(W), [2.0, 4.0])


def test_a_masked_array_is_refused():
    x = np.ma.masked_array([1.0, 2.0], mask=[False, True])
    with pytest.raises(TypeError, match="mul: input 0 is a MaskedArray"):
        F.mul(x, 2.0)


def test_no_grad_on_a_generator_covers_each_step():
    @mytorch.no_grad()
    def steps(x):
        for _ in range(3):
            yield F.mul(x, 2.0)

    list(steps(np.ones(2)))
    assert mytorch.engine().operation_list == []


# ---- numbers ---------------------------------------------------------------------------------------------


def test_power_with_exponent_zero_at_zero_has_gradient_zero():
    x = np.array([0.0, 2.0])
    np.testing.assert_array_equal(mytorch.grad(lambda x: F.sum(F.power(x, 0.0)))(x), [0.0, 0.0])
    np.testing.assert_array_equal(mytorch.hessian(lambda x: F.sum(F.power(x, 1.0)))(x), np.zeros((2, 2)))
    third = mytorch.grad(mytorch.grad(mytorch.grad(lambda x: F.power(x, 2.0))))(np.array(0.0))
    assert third == 0.0


def test_cross_entropy_with_infinite_logits_is_finite_where_the_math_is():
    loss = nn.CrossEntropyLoss()
    assert np.isclose(float(loss(np.array([[0.0, -np.inf, 1.0]]), np.array([0]))), 1.3132616875182228)
    assert float(loss(np.array([[1e308, -1e308, 0.0]]), np.array([0]))) == 0.0


@pytest.mark.parametrize("reduce", [F.sum, F.max, F.logsumexp])
def test_reductions_of_a_0d_array_over_axis_minus_one(reduce):
    assert mytorch.grad(lambda x: reduce(x, axis=-1))(np.array(3.0)) == 1.0


def test_matmul_with_a_list_operand_works_and_releases_W():
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    mytorch.backward(F.sum(F.matmul([[1.0, 1.0]], W)))
    np.testing.assert_array_equal(grad_of(W), [[1.0, 1.0], [1.0, 1.0]])
    W[0, 0] = 0.0  # released


def test_a_vjp_returning_a_bare_array_is_told_to_return_a_tuple():
    cube = F.primitive("cube", lambda x: x**3, vjp=lambda g, ans, x: F.mul(g, 3.0),
                       jvp=lambda t, ans, x: t[0], register=False)
    with pytest.raises(TypeError, match="one gradient per input, as a tuple"):
        mytorch.grad(lambda x: F.sum(cube(x)))(np.ones(2))


# ---- anomaly mode -----------------------------------------------------------------------------------------


def test_detect_anomaly_names_the_primitive_and_the_users_line():
    with mytorch.detect_anomaly():
        match = r"log produced nan.*test_trust_engine"
        with pytest.raises(FloatingPointError, match=match), np.errstate(invalid="ignore"):
            F.log(np.array([-1.0]))


def test_detect_anomaly_catches_a_non_finite_gradient():
    x = np.array([0.0])
    with mytorch.detect_anomaly():
        y = F.sum(F.sqrt(x))  # finite forward, infinite derivative at 0
        with pytest.raises(FloatingPointError, match="sqrt gave inf"), np.errstate(divide="ignore"):
            mytorch.backward(y)


def test_detect_anomaly_catches_a_write_through_an_earlier_view():
    W = np.array([1.0, 2.0])
    view = W[:]  # taken before recording: the read-only guard cannot see writes through it
    with mytorch.detect_anomaly():
        y = F.sum(F.mul(W, W))
        view[0] = 5.0
        with pytest.raises(RuntimeError, match="changed in place"):
            mytorch.backward(y)


def test_anomaly_mode_is_off_by_default():
    x = np.array([1.0])
    F.exp(x)
    assert mytorch.engine().operation_list[-1].source is None


def test_an_optimizer_step_on_a_parameter_another_thread_holds_names_that_tape():
    W = np.ones(3)
    recorded = threading.Event()
    finish = threading.Event()

    def other():
        Autograd()
        F.sum(F.mul(W, 2.0))  # recorded on that thread's tape, not walked yet
        recorded.set()
        finish.wait(5)

    thread = threading.Thread(target=other, name="trainer-2")
    thread.start()
    recorded.wait(5)
    try:
        mytorch.backward(F.sum(F.mul(W, W)))
        with pytest.raises(RuntimeError, match="trainer-2"):
            mytorch.optim.SGD([W], lr=0.1).step()
    finally:
        finish.set()
        thread.join()


def test_zero_grad_between_forward_and_backward_is_named_in_the_error():
    x = np.array([1.0, 2.0])
    y = F.sum(F.mul(x, x))
    mytorch.engine().zero_grad()  # PyTorch's opt.zero_grad() spot, but this one empties the tape
    with pytest.raises(RuntimeError, match="zero_grad"):
        mytorch.backward(y)

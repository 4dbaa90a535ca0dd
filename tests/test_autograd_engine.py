"""The engine: the tape, the seed rule, identity keying, guards, and the lecture-note numbers."""

import sys
import threading
import time

import numpy as np
import pytest
from lecture import lecture_f, lecture_f_slope, lecture_y

import mytorch
from mytorch import functional as F
from mytorch.autograd_engine import Autograd, Operation
from mytorch.utils import GradientBuffer, MemoryBuffer


def grad_of(array, engine=None):
    return (engine or mytorch.engine()).gradient_buffer.get_param(array)


# ---- the lecture notes' numbers -----------------------------------------------------------


def test_lecture_example_values_and_adjoints():
    # y = ln(x1) + x1*x2 - sin(x2) at (2, 5): y = 11.652, dy/dx1 = 5.5, dy/dx2 = 1.716
    x1, x2 = np.array(2.0), np.array(5.0)
    y = lecture_y(x1, x2)
    names = [op.primitive.name for op in mytorch.engine().operation_list]
    assert names == ["log", "mul", "add", "sin", "sub"]
    mytorch.backward(y)
    assert round(float(y), 3) == 11.652
    assert round(float(grad_of(x1)), 3) == 5.5
    assert round(float(grad_of(x2)), 3) == 1.716
    assert mytorch.engine().operation_list == []  # the walk consumed what it walked


def test_lecture_example_forward_tangent_along_x1():
    engine = mytorch.engine()
    x1, x2 = np.array(2.0), np.array(5.0)
    y = lecture_y(x1, x2)
    tangents = engine.walk_forward(0, {id(x1): np.array(1.0)})
    assert round(float(tangents[id(y)]), 3) == 5.5


def test_lecture_composite_function_matches_closed_form():
    # f(x) = sqrt(x² + exp(x²)) + cos(x² + exp(x²)); f'(x) = 2x (1/(2√c) − sin c)(1 + exp(x²))
    for value in [-1.3, -0.2, 0.0, 0.7, 1.1]:
        engine = Autograd()
        x = np.array(value)
        engine.backward(lecture_f(x))
        np.testing.assert_allclose(grad_of(x, engine), lecture_f_slope(value), rtol=1e-12, atol=1e-12)


def test_quadratic_form_gradient_is_x_times_b_plus_b_transpose():
    rng = np.random.default_rng(0)
    B, x = rng.normal(size=(4, 4)), rng.normal(size=4)
    y = F.matmul(x, F.matmul(B, x))  # x^T B x
    mytorch.backward(y)
    np.testing.assert_allclose(grad_of(x), x @ (B + B.T), rtol=1e-12)
    # K = B^T B is symmetric, so the gradient is 2 K x
    Autograd()
    K = B.T @ B
    y = F.matmul(x, F.matmul(K, x))
    mytorch.backward(y)
    np.testing.assert_allclose(grad_of(x), 2 * K @ x, rtol=1e-12)


def test_two_layer_mlp_gradients_match_the_hand_derivation():
    # Yh = softmax(sigmoid(X V) W), L = mean cross-entropy:
    # dW = Zᵀ (Yh − Y)/N,  dV = Xᵀ ((Yh − Y) Wᵀ ⊙ Z(1 − Z))/N
    rng = np.random.default_rng(1)
    N, D, H, C = 7, 5, 6, 3
    X, V, W = rng.normal(size=(N, D)), rng.normal(size=(D, H)), rng.normal(size=(H, C))
    Y = np.eye(C)[rng.integers(0, C, N)]
    Z = F.sigmoid(F.matmul(X, V))
    log_Yh = F.log_softmax(F.matmul(Z, W))
    L = F.neg(F.mean(F.sum(F.mul(Y, log_Yh), axis=1)))
    mytorch.backward(L)
    Yh = np.exp(log_Yh)
    np.testing.assert_allclose(grad_of(W), Z.T @ (Yh - Y) / N, rtol=1e-10)
    np.testing.assert_allclose(grad_of(V), X.T @ ((Yh - Y) @ W.T * Z * (1 - Z)) / N, rtol=1e-10)


def test_a_parameter_used_twice_gets_the_sum_of_both_paths():
    # A "scanning" layer applied at two positions, then a skip connection.
    rng = np.random.default_rng(2)
    W, a, b = rng.normal(size=(3, 3)), rng.normal(size=3), rng.normal(size=3)
    ya, yb = F.matmul(W, a), F.matmul(W, b)
    L = F.sum(F.add(F.mul(ya, yb), a))  # a also skips straight to the loss
    mytorch.backward(L)
    np.testing.assert_allclose(grad_of(W), np.outer(W @ b, a) + np.outer(W @ a, b), rtol=1e-12)
    np.testing.assert_allclose(grad_of(a), W.T @ (W @ b) + 1, rtol=1e-12)


# ---- the faults of the homework engine ----------------------------------------------------


def test_views_of_one_buffer_are_different_arrays():
    W = np.arange(6.0).reshape(2, 3)
    WT, row, flat = W.T, W[0], W.reshape(-1)
    assert WT.__array_interface__["data"][0] == W.__array_interface__["data"][0]
    L = F.add(F.add(F.sum(F.mul(WT, 2.0)), F.sum(F.mul(row, 3.0))), F.sum(F.mul(flat, 5.0)))
    mytorch.backward(L)
    np.testing.assert_array_equal(grad_of(WT), np.full((3, 2), 2.0))
    np.testing.assert_array_equal(grad_of(row), np.full(3, 3.0))
    np.testing.assert_array_equal(grad_of(flat), np.full(6, 5.0))
    with pytest.raises(KeyError, match="not tracked"):
        grad_of(W)  # W itself never entered the tape


def test_a_copy_is_not_the_recorded_array():
    x = np.array([1.0, 2.0])
    y = F.exp(x)
    z = F.sum(F.mul(y, x))  # the last operation's output has shape ()
    copy = np.array(y)  # same values, another array: not produced on the tape
    with pytest.raises(ValueError, match="not produced by any recorded operation"):
        mytorch.backward(copy)
    mytorch.backward(z)
    np.testing.assert_allclose(grad_of(x), np.exp(x) * x + np.exp(x))


def test_a_freed_address_reused_is_a_new_array():
    buffer = GradientBuffer()
    first = np.ones(3)
    buffer.add_spot(first)
    address = first.__array_interface__["data"][0]
    del first  # the buffer still holds it, so its identity cannot be handed to another array
    for _ in range(50):
        other = np.zeros(3)
        assert not buffer.is_in_memory(other)
        if other.__array_interface__["data"][0] == address:
            break
    # the same check through the engine: temporaries recorded and dropped never alias a leaf
    x = np.array([1.0, 2.0, 3.0])
    total = F.sum(x)
    for _ in range(20):
        total = F.add(total, F.sum(F.mul(np.ones(3), x)))
    mytorch.backward(total)
    np.testing.assert_array_equal(grad_of(x), np.full(3, 21.0))


def test_in_place_mutation_of_a_taped_array_is_refused_until_backward():
    W = np.ones((2, 2))
    x = np.array([1.0, 2.0])
    y = F.sum(F.matmul(W, x))
    with pytest.raises(ValueError, match="read-only"):
        W += 1
    with pytest.raises(ValueError, match="read-only"):
        x[0] = 5.0
    with pytest.raises(ValueError, match="read-only"):
        y += 1  # an output on the tape
    mytorch.backward(y)
    W -= 0.1 * grad_of(W)  # an optimizer step right after backward works
    np.testing.assert_allclose(W, 1 - 0.1 * np.array([[1.0, 2.0], [1.0, 2.0]]))


def test_writing_through_a_view_of_a_taped_array_is_refused():
    W = np.ones((2, 3))
    F.sum(F.mul(W.T, 2.0))  # the view is on the tape, so the buffer under it is guarded too
    with pytest.raises(ValueError, match="read-only"):
        W[0, 0] = 3.0
    mytorch.engine().zero_grad()
    W[0, 0] = 3.0  # released by zero_grad


def test_batch_broadcasting_is_undone():
    rng = np.random.default_rng(3)
    x, W, b = rng.normal(size=(8, 4)), rng.normal(size=(4, 3)), rng.normal(size=3)
    L = F.sum(F.add(F.matmul(x, W), b))
    mytorch.backward(L)
    np.testing.assert_allclose(grad_of(b), np.full(3, 8.0))
    np.testing.assert_allclose(grad_of(W), x.sum(0)[:, None] * np.ones((1, 3)))


def test_the_loss_value_is_not_the_seed():
    x = np.array([3.0])
    L = F.mul(F.mul(x, x), 10.0)  # L = 90, dL/dx = 60
    mytorch.backward(L)
    np.testing.assert_allclose(grad_of(x), [60.0])


def test_a_second_engine_replaces_the_first_instead_of_being_refused():
    first = mytorch.engine()
    second = Autograd()
    assert mytorch.engine() is second and first is not second
    x = np.array(2.0)
    F.mul(x, x)
    assert len(second.operation_list) == 1 and not first.operation_list


# ---- the seed rule and the walk ------------------------------------------------------------


def test_backward_from_a_number_seeds_the_last_output():
    x = np.array([1.0, 2.0])
    F.mul(x, 3.0)
    mytorch.backward(1)
    np.testing.assert_array_equal(grad_of(x), [3.0, 3.0])


def test_backward_from_a_seed_array():
    x = np.array([1.0, 2.0])
    F.mul(x, x)
    mytorch.backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(grad_of(x), [2.0, 40.0])


def test_operations_that_do_not_lead_to_the_start_are_skipped():
    x, u = np.array(2.0), np.array(3.0)
    y = F.mul(x, x)
    F.exp(u)  # recorded after y, unrelated to it
    mytorch.backward(y)
    assert float(grad_of(x)) == 4.0
    assert float(grad_of(u)) == 0.0


def test_intermediate_adjoints_are_freed_and_leaves_kept():
    x = np.array([1.0, 2.0])
    h = F.exp(x)
    y = F.sum(F.mul(h, h))
    mytorch.backward(y)
    with pytest.raises(KeyError, match="produced on the tape"):
        grad_of(h)
    np.testing.assert_allclose(grad_of(x), 2 * np.exp(2 * x))


def test_leaf_gradients_accumulate_until_zero_grad():
    engine = mytorch.engine()
    x = np.array([1.0, 2.0])
    y = F.sum(F.mul(x, 2.0))
    engine.backward(y, retain_graph=True)
    engine.backward(y)
    np.testing.assert_array_equal(grad_of(x), [4.0, 4.0])
    with pytest.raises(RuntimeError, match="retain_graph"):
        engine.backward(y)  # the second walk consumed the tape
    engine.zero_grad()
    assert engine.operation_list == [] and engine.gradient_buffer.memory == {}


def test_leaf_gradients_are_independent_arrays():
    x, y = np.ones(3), np.ones(3)
    mytorch.backward(F.sum(F.add(x, y)))
    gx, gy = grad_of(x), grad_of(y)
    gx *= 5  # a user scaling one gradient in place does not touch the other
    np.testing.assert_array_equal(gy, np.ones(3))


def test_float32_in_float32_gradients_out_and_constants_get_none():
    x = np.ones((2, 3), dtype=np.float32)
    labels = np.array([0, 2])
    L = F.sum(F.mul(F.getitem(x, (np.arange(2), labels)), 2.5))
    mytorch.backward(L)
    assert grad_of(x).dtype == np.float32
    np.testing.assert_array_equal(grad_of(x), [[2.5, 0, 0], [0, 0, 2.5]])
    assert not mytorch.engine().gradient_buffer.is_in_memory(labels)


def test_an_operation_on_constants_only_is_not_recorded():
    counts = np.arange(4)
    total = F.sum(F.mul(counts, 2))
    assert total == 12 and mytorch.engine().operation_list == []


# 100,000 operations (a hundred times the recursion limit) always; the million with `pytest -m slow`.
@pytest.mark.parametrize("length", [100_000, pytest.param(1_000_000, marks=pytest.mark.slow)])
def test_a_long_operation_chain_walks_without_recursion(length, record_property):
    limit = sys.getrecursionlimit()
    x = np.array([0.5])
    y = x
    started = time.perf_counter()
    for _ in range(length):
        y = F.mul(y, 1.0000001)
    forward_seconds = time.perf_counter() - started
    started = time.perf_counter()
    mytorch.backward(y)
    backward_seconds = time.perf_counter() - started
    record_property("forward_seconds", forward_seconds)
    record_property("backward_seconds", backward_seconds)
    print(f"{length}-op chain: forward {forward_seconds:.2f} s, backward {backward_seconds:.2f} s")
    assert sys.getrecursionlimit() == limit
    np.testing.assert_allclose(grad_of(x), [1.0000001**length], rtol=1e-9)


# ---- errors that name the operation and the shapes ------------------------------------------


def test_matmul_shape_error_names_op_and_shapes():
    with pytest.raises(ValueError, match=r"matmul.*\(2, 3\).*\(4, 5\)"):
        F.matmul(np.ones((2, 3)), np.ones((4, 5)))


def test_backward_on_an_empty_tape_says_so():
    with pytest.raises(RuntimeError, match=r"nothing is recorded.*Autograd\(\)"):
        Autograd().backward(1)


def test_backward_from_an_array_not_on_the_tape():
    x = np.ones(3)
    F.sum(x)
    with pytest.raises(ValueError, match=r"not produced by any recorded operation"):
        mytorch.backward(np.ones(4))
    with pytest.raises(ValueError, match=r"not produced by any recorded operation"):
        mytorch.backward(x)  # a leaf, not an output


def test_hand_written_backward_with_the_wrong_shape_is_named():
    engine = mytorch.engine()
    x = np.ones((2, 3))
    y = x.sum(axis=0)

    def broken_sum_backward(grad_output, a):
        return grad_output  # forgot to broadcast back to (2, 3)

    engine.add_operation([x], y, [None], broken_sum_backward)
    with pytest.raises(ValueError, match=r"broken_sum_backward.*\(3,\).*input 0.*\(2, 3\)"):
        engine.backward(1)


def test_add_operation_length_mismatch():
    with pytest.raises(ValueError, match="2 inputs but 1 gradients_to_update"):
        mytorch.engine().add_operation([np.ones(2), np.ones(2)], np.ones(2), [None], F.add_backward)


# ---- the homework call shapes ----------------------------------------------------------------


def test_homework_add_operation_and_memory_buffer():
    engine = Autograd()
    x, W = np.random.randn(4, 3), np.random.randn(2, 3)
    dW = np.zeros_like(W)
    z = x @ W.T
    engine.add_operation(inputs=[x, W.T], output=z, gradients_to_update=[None, dW.T],
                         backward_operation=F.matmul_backward)
    assert engine.memory_buffer is engine.gradient_buffer and MemoryBuffer is GradientBuffer
    assert len(engine.memory_buffer.memory) == 1  # x only: W's gradient goes to dW
    op = engine.operation_list[0]
    assert isinstance(op, Operation) and op.output is z and op.backward_operation is F.matmul_backward
    assert op.inputs[0] is x and op.gradients_to_update[1] is not None
    engine.backward(1)  # ones as the seed of the last output
    np.testing.assert_allclose(engine.memory_buffer.get_param(x), np.ones((4, 2)) @ W)
    np.testing.assert_allclose(dW, np.ones((4, 2)).T @ x)


def test_gradient_buffer_methods():
    buffer = GradientBuffer()
    x = np.zeros((2, 2))
    assert not buffer.is_in_memory(x)
    buffer.add_spot(x)
    assert buffer.is_in_memory(x) and not buffer.is_in_memory(x.T)
    np.testing.assert_array_equal(buffer.get_param(x), np.zeros((2, 2)))
    buffer.update_param(x, np.ones((2, 2)))
    buffer.update_param(x, np.ones((2, 2)))
    np.testing.assert_array_equal(buffer.get_param(x), np.full((2, 2), 2.0))
    buffer.set_param(x, np.full((2, 2), 7.0))
    np.testing.assert_array_equal(buffer.get_param(x), np.full((2, 2), 7.0))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 2\)"):
        buffer.update_param(x, np.ones(3))
    buffer.clear()
    assert buffer.memory == {}


# ---- the current engine, threads, no_grad ----------------------------------------------------


def test_engine_is_current_and_created_on_first_use():
    engine = Autograd()
    assert mytorch.engine() is engine
    x = np.array(1.5)
    y = F.exp(x)
    mytorch.backward(y)
    assert np.isclose(grad_of(x, engine), np.exp(1.5))


def test_each_thread_has_its_own_engine():
    main_engine = mytorch.engine()
    seen = []

    def worker():
        seen.append(mytorch.engine())
        F.exp(np.ones(2))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen[0] is not main_engine and main_engine.operation_list == []


def test_no_grad_as_context_manager_and_decorator():
    x = np.ones(3)
    with mytorch.no_grad():
        F.exp(x)
        assert not mytorch.is_recording()
    assert mytorch.is_recording()

    @mytorch.no_grad()
    def inference(a):
        return F.exp(a)

    @mytorch.no_grad  # bare, as PyTorch allows too
    def bare(a):
        assert not mytorch.is_recording()
        return F.exp(a)

    inference(x)
    bare(x)
    assert bare.__name__ == "bare" and mytorch.is_recording()
    assert mytorch.engine().operation_list == []
    x[0] = 2.0  # never taped, so never guarded


def test_create_graph_records_the_backward_walk():
    engine = mytorch.engine()
    x = np.array(1.3)
    y = F.mul(F.sin(x), x)
    engine.backward(y, create_graph=True)
    dx = grad_of(x)
    np.testing.assert_allclose(dx, np.cos(1.3) * 1.3 + np.sin(1.3))
    producer = next(i for i, op in enumerate(engine.operation_list) if op.output is dx)
    second = engine.walk_backward(producer, np.ones_like(dx))  # differentiate the gradient again
    np.testing.assert_allclose(second[id(x)], -np.sin(1.3) * 1.3 + 2 * np.cos(1.3))


def test_backward_for_chosen_inputs_skips_the_others():
    rng = np.random.default_rng(4)
    X, W, b = rng.normal(size=(5, 3)), rng.normal(size=(2, 3)), rng.normal(size=2)
    engine = mytorch.engine()
    L = F.sum(F.tanh(F.linear(X, W, b)))
    engine.backward(L, inputs=[W])
    dW = grad_of(W).copy()
    np.testing.assert_array_equal(grad_of(X), np.zeros_like(X))  # not asked for: left as it was
    full = Autograd()
    L = F.sum(F.tanh(F.linear(X, W, b)))
    full.backward(L)
    np.testing.assert_allclose(dW, grad_of(W, full), rtol=1e-14)
    assert np.any(grad_of(X, full) != 0)


def test_leaf_gradients_never_alias_the_seed_or_each_other():
    x, y = np.ones(3), np.ones(3)
    seed = np.full(3, 2.0)
    F.add(x, y)
    mytorch.backward(seed)  # add hands the seed itself to both inputs
    gx, gy = grad_of(x), grad_of(y)
    assert gx is not seed and gy is not seed and gx is not gy
    gx *= 10
    np.testing.assert_array_equal(gy, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(seed, [2.0, 2.0, 2.0])


# ---- the eager hot path (issue 24): what it skips must never show ---------------------------------


def test_an_intermediate_the_user_kept_is_writable_after_backward():
    # Arrays nothing but the tape holds are not unlocked at release (they are freed at once); one
    # the user still holds must be.
    x = np.array([1.0, 2.0])
    h = F.exp(x)
    y = F.sum(F.mul(h, h))
    mytorch.backward(y)
    h += 1.0
    np.testing.assert_allclose(h, np.exp(x) + 1.0)


def test_the_buffer_tracks_leaves_and_refuses_intermediates_before_and_after_backward():
    x = np.array([1.0, 2.0])
    h = F.exp(x)
    y = F.sum(F.mul(h, h))
    buffer = mytorch.engine().gradient_buffer
    assert buffer.is_in_memory(x) and not buffer.is_in_memory(h)
    with pytest.raises(KeyError, match="produced on the tape"):
        buffer.get_param(h)
    mytorch.backward(y)
    with pytest.raises(KeyError, match="produced on the tape"):
        buffer.get_param(h)
    np.testing.assert_allclose(buffer.get_param(x), 2 * np.exp(2 * x))


def test_a_first_order_walk_runs_a_rule_replaced_after_the_first_walk():
    # The plain form of a rule is cached by the rule's identity: a rule swapped in (as the grader
    # swaps a student's) is the one that runs, in plain and in recorded walks.
    from mytorch.primitive import primitive

    double = primitive("double_for_test", lambda x: 2 * x, vjp=lambda g, ans, x: (F.mul(g, 2.0),),
                       jvp=lambda t, ans, x: F.mul(t[0], 2.0), register=False)
    x = np.array([1.0, 3.0])
    np.testing.assert_allclose(double.backward(np.ones(2), x), [2.0, 2.0])
    double.vjp = lambda g, ans, x: (F.mul(g, 5.0),)
    np.testing.assert_allclose(double.backward(np.ones(2), x), [5.0, 5.0])
    np.testing.assert_allclose(mytorch.grad(lambda v: F.sum(double(v)))(x), [5.0, 5.0])


def test_safety_off_switches_one_feature_for_the_block_and_restores_it():
    from mytorch.autograd_engine import safety_off

    with pytest.raises(ValueError, match="no feature"):
        with safety_off("seatbelt"):
            pass
    x = np.ones(2)
    with pytest.raises(RuntimeError):
        with safety_off("guard"):
            raise RuntimeError("inside")
    F.exp(x)
    assert not x.flags.writeable  # the guard is back after the block, even after an exception
    mytorch.engine().zero_grad()


def test_anomaly_mode_still_watches_records_made_on_the_hot_path_engine():
    x = np.array([-1.0])
    F.exp(x)  # the thread's recorder is set
    with mytorch.detect_anomaly(), pytest.raises(FloatingPointError, match="log produced nan"):
        F.log(x)


def test_a_0d_gradient_is_an_array_when_rules_run_ufuncs_directly():
    # A first-order walk runs a ufunc primitive in a rule as the bare ufunc, which hands back a NumPy
    # scalar for 0-d values; the pullback still hands out 0-d arrays, of the inputs' dtypes.
    x, y, g = np.array(0.5), np.array(-2.0, dtype=np.float32), np.array(3.0)
    for primitive, inputs, needs in ((F.mul, (x, y), (True, True)), (F.sin, (x,), (True,)),
                                     (F.tanh, (x,), (True,))):
        output = primitive.forward(*inputs)
        grads = primitive.pullback(g, np.asarray(output), inputs, {}, needs, True)
        for grad, value in zip(grads, inputs):
            assert type(grad) is np.ndarray and grad.shape == () and grad.dtype == value.dtype
    engine = Autograd()
    engine.backward(F.tanh(F.mul(F.sin(x), x)))
    grad = engine.gradient_buffer.get_param(x)
    assert type(grad) is np.ndarray and grad.shape == ()
    assert np.isclose(grad, (1 - np.tanh(np.sin(0.5) * 0.5) ** 2) * (np.cos(0.5) * 0.5 + np.sin(0.5)))

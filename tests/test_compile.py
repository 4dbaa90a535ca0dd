"""mytorch.compile: the replayed program equals the eager engine on new values, and leaves the tape alone.

The trap is the masks the rules compute with NumPy (ReLU's x > 0, the ties of max and maximum,
max-pooling's winners, the one-hot rows of labels): they must be computed again from each call's
values, never frozen at the first call.
"""

import numpy as np
import pytest

import mytorch
from mytorch import functional as F
from mytorch.autograd_engine import Autograd
from mytorch.compile import CompileError

RTOL = 1e-12


def assert_same(compiled, eager, rtol=RTOL):
    """Equal structure, dtypes, and values to `rtol` (relative to the largest entry)."""
    if isinstance(eager, (tuple, list)):
        assert isinstance(compiled, type(eager)) and len(compiled) == len(eager)
        for c, e in zip(compiled, eager):
            assert_same(c, e, rtol)
        return
    assert isinstance(compiled, np.ndarray), type(compiled)
    assert compiled.shape == np.shape(eager) and compiled.dtype == np.asarray(eager).dtype
    scale = max(float(np.max(np.abs(eager), initial=0.0)), 1e-300)
    assert float(np.max(np.abs(compiled - eager), initial=0.0)) <= rtol * scale


def mlp_loss(W1, b1, W2, b2, X, y):
    hidden = F.relu(F.linear(X, W1, b1))
    return F.cross_entropy(F.linear(hidden, W2, b2), y)


def mlp_params(rng, dtype=np.float64):
    shapes = [(16, 6), (16,), (4, 16), (4,)]
    return [(rng.normal(size=s) * 0.5).astype(dtype) for s in shapes]


def test_compiled_equals_eager_on_new_values():
    rng = np.random.default_rng(0)
    params = mlp_params(rng)
    eager = mytorch.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3))
    step = mytorch.compile(eager)
    for _ in range(4):
        X, y = rng.normal(size=(9, 6)), rng.integers(0, 4, 9)
        assert_same(step(*params, X, y), eager(*params, X, y))
    assert len(step.programs) == 1
    source = step.source(*params, X, y)
    assert "np.multiply" in source and "del " in source and "Operation" not in source


def test_training_with_sgd_follows_eager_step_by_step():
    rng = np.random.default_rng(1)
    eager_params = mlp_params(rng)
    compiled_params = [p.copy() for p in eager_params]
    eager = mytorch.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3))
    step = mytorch.compile(mytorch.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3)))
    losses = []
    for _ in range(8):
        X, y = rng.normal(size=(12, 6)), rng.integers(0, 4, 12)
        value, grads = step(*compiled_params, X, y)
        expected_value, expected_grads = eager(*eager_params, X, y)
        assert_same(value, expected_value, 1e-10)
        for p, g in zip(compiled_params, grads):
            p -= 0.5 * g  # the parameters are writable: compiling locked nothing
        for p, g in zip(eager_params, expected_grads):
            p -= 0.5 * g
        losses.append(float(value))
    for p, q in zip(compiled_params, eager_params):
        assert_same(p, q, 1e-10)
    assert losses[-1] < losses[0]


def test_relu_masks_follow_the_data():
    slope = mytorch.compile(mytorch.grad(lambda x: F.sum(F.mul(F.relu(x), x))))
    positive = np.array([1.0, 2.0, 3.0])  # the first call's mask is all True
    np.testing.assert_array_equal(slope(positive), 2 * positive)
    mixed = np.array([-1.0, 2.0, -3.0])
    np.testing.assert_array_equal(slope(mixed), [0.0, 4.0, 0.0])
    assert len(slope.programs) == 1


@pytest.mark.parametrize("name", ["max", "maximum", "abs", "clip"])
def test_ties_signs_and_bounds_follow_the_data(name):
    functions = {
        "max": lambda x, y: F.sum(F.mul(F.max(x, axis=1), y)),
        "maximum": lambda x, y: F.sum(F.mul(F.maximum(x, y), y)),
        "abs": lambda x, y: F.sum(F.mul(F.abs(x), y)),
        "clip": lambda x, y: F.sum(F.mul(F.clip(x, -0.5, 0.5), y)),
    }
    f = mytorch.value_and_grad(functions[name], argnums=(0, 1))
    step = mytorch.compile(f)
    rng = np.random.default_rng(2)
    ties = np.array([[1.0, 1.0, 0.0], [2.0, 2.0, 2.0]])  # ties in every row, equal to y
    calls = [(ties, ties.copy()), (rng.normal(size=(2, 3)), rng.normal(size=(2, 3))),
             (np.round(rng.normal(size=(2, 3))), np.round(rng.normal(size=(2, 3))))]
    if name == "max":
        calls = [(x, y[:, 0]) for x, y in calls]
    for x, y in calls:
        assert_same(step(x, y), f(x, y))
    for x, y in reversed(calls):  # recorded on data without ties this time
        fresh = mytorch.compile(f)
        assert_same(fresh(x, y), f(x, y))


def test_labels_and_numpy_views_of_arguments_follow_the_data():
    def loss(W, X, y):  # `for x in X` makes NumPy views of an argument
        total = 0.0
        for x in X:
            total = F.add(total, F.cross_entropy(F.matmul(x, W), y))
        return total

    f = mytorch.value_and_grad(loss)
    step = mytorch.compile(f)
    rng = np.random.default_rng(3)
    W = rng.normal(size=(5, 3))
    for _ in range(3):
        X, y = rng.normal(size=(4, 6, 5)), rng.integers(0, 3, 6)
        assert_same(step(W, X, y), f(W, X, y))


def test_convolution_and_pooling():
    def loss(K, c, X):
        hidden = F.max_pool2d(F.relu(F.conv2d(X, K, c, padding=1)), 2)
        return F.sum(F.mul(hidden, hidden))

    f = mytorch.value_and_grad(loss, argnums=(0, 1, 2))
    step = mytorch.compile(f)
    rng = np.random.default_rng(4)
    K, c = rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    for X in [rng.normal(size=(2, 2, 6, 6)), np.ones((2, 2, 6, 6)), rng.normal(size=(2, 2, 6, 6))]:
        assert_same(step(K, c, X), f(K, c, X))  # all-ones input: ties everywhere in the pooling


def test_a_new_shape_or_dtype_records_again_and_float32_is_kept():
    step = mytorch.compile(mytorch.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3)))
    rng = np.random.default_rng(5)
    params = mlp_params(rng, np.float32)
    X, y = rng.normal(size=(7, 6)).astype(np.float32), rng.integers(0, 4, 7)
    value, grads = step(*params, X, y)
    assert value.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    eager = mytorch.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3))
    assert_same((value, grads), eager(*params, X, y), 1e-6)
    step(*params, X[:3], y[:3])  # a new batch size
    assert len(step.programs) == 2
    params64 = [p.astype(np.float64) for p in params]
    value, _ = step(*params64, X.astype(np.float64), y)  # a new dtype
    assert value.dtype == np.float64 and len(step.programs) == 3


def test_numbers_are_part_of_the_signature():
    scale = mytorch.compile(lambda x, k: F.mul(x, k))
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(scale(x, 2.0), [2.0, 4.0])
    np.testing.assert_array_equal(scale(x, 3.0), [3.0, 6.0])
    assert len(scale.programs) == 2


def test_the_current_tape_is_untouched_and_nothing_stays_locked():
    engine = Autograd()
    w = np.array([1.0, -2.0, 3.0])
    before = F.sum(F.mul(w, w))  # the user's own recording
    tape = list(engine.operation_list)
    memory = dict(engine.gradient_buffer.memory)
    params = mlp_params(np.random.default_rng(6))
    X, y = np.ones((3, 6)), np.array([0, 1, 2])
    step = mytorch.compile(mytorch.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3)))
    for _ in range(2):  # the recording call, then a replay
        _, grads = step(*params, X, y)
        assert engine.operation_list == tape and engine.gradient_buffer.memory == memory
        assert mytorch.engine() is engine
        assert all(a.flags.writeable for a in (*params, X, *grads))
    engine.backward(before)
    np.testing.assert_array_equal(engine.gradient_buffer.get_param(w), 2 * w)


def test_a_replay_records_nothing_and_inside_a_transform_runs_eagerly():
    cube = mytorch.compile(lambda x: F.mul(F.mul(x, x), x))
    x = np.array([1.0, 2.0])
    cube(x)
    engine = Autograd()
    np.testing.assert_array_equal(cube(x), [1.0, 8.0])
    assert engine.operation_list == []
    np.testing.assert_array_equal(mytorch.grad(lambda x: F.sum(cube(x)))(x), 3 * x * x)


def test_what_cannot_be_replayed_is_refused():
    x = np.array([1.0, -2.0, 3.0])

    def by_hand(x):
        out = x * 2
        mytorch.engine().add_operation([x], out, [None], lambda g, x: 2 * g)
        return F.sum(out)

    with pytest.raises(CompileError, match="add_operation"):
        mytorch.compile(by_hand)(x)
    with pytest.raises(CompileError, match=r"test_compile.py:\d+.*float\(x\)"):
        mytorch.compile(lambda x: F.mul(x, float(np.max(x))))(x)  # a number computed from the data
    with pytest.raises(CompileError, match="hashable"):
        mytorch.compile(lambda x, d: F.mul(x, 2.0))(x, object.__new__(type("Opaque", (), {"__hash__": None})))


def test_closed_over_arrays_are_constants():
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    f = mytorch.compile(mytorch.grad(lambda x: F.sum(F.matmul(W, x))))
    np.testing.assert_array_equal(f(np.array([1.0, 1.0])), [4.0, 6.0])
    np.testing.assert_array_equal(f(np.array([5.0, -1.0])), [4.0, 6.0])


def test_the_demo_trains_the_same_compiled():
    from mytorch import demo

    eager = demo.train_iris(epochs=3, progress=False)
    compiled = demo.train_iris(epochs=3, progress=False, compiled=True)
    np.testing.assert_allclose(compiled.losses, eager.losses, rtol=1e-12)
    for p, q in zip(compiled.model.parameters(), eager.model.parameters()):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-15)


def test_keyword_and_nested_arguments():
    def loss(W, b, X, y, scale):
        return F.mul(F.cross_entropy(F.linear(X, W, b), y), scale)

    vg = mytorch.value_and_grad(loss, argnums=(0, 1))

    def f(params, X, y, scale):
        return vg(params["W"], params["b"], X, y, scale)

    step = mytorch.compile(lambda params, X, *, y, scale: f(params, X, y, scale))
    rng = np.random.default_rng(7)
    params = {"W": rng.normal(size=(3, 4)), "b": rng.normal(size=3)}
    for scale in (1.0, 2.0):
        X, y = rng.normal(size=(5, 4)), rng.integers(0, 3, 5)
        assert_same(step(params, X, scale=scale, y=y), f(params, X, y, scale))
    assert len(step.programs) == 2


def test_forward_mode_and_second_derivatives_compile_too():
    def f(x):
        return F.sum(F.mul(F.tanh(x), F.relu(x)))

    rng = np.random.default_rng(8)
    for transform in (lambda x, v: mytorch.hvp(f, (x,), (v,)), lambda x, v: mytorch.jvp(f, (x,), (v,))):
        compiled = mytorch.compile(transform)
        for _ in range(3):
            x, v = rng.normal(size=6), rng.normal(size=6)
            assert_same(compiled(x, v), transform(x, v))


def test_a_closed_over_array_passed_as_the_argument_stays_a_constant():
    C = np.array([1.0, 2.0])
    compiled = mytorch.compile(lambda x: F.sum(F.mul(x, C)))
    assert float(compiled(C)) == 5.0  # the first call passes the very array f closes over
    assert float(compiled(np.array([10.0, 20.0]))) == 50.0


def test_setitem_with_an_index_argument_follows_the_index():
    loss = lambda x, i: F.sum(F.mul(F.setitem(x, i, np.array(5.0)), F.setitem(x, i, np.array(5.0))))  # noqa: E731
    compiled = mytorch.compile(mytorch.grad(loss))
    x = np.arange(3.0)
    compiled(x, np.array([0]))
    np.testing.assert_array_equal(compiled(x, np.array([2])), mytorch.grad(loss)(x, np.array([2])))


def test_arrays_f_closes_over_are_read_at_every_call_like_eager():
    W = np.array([1.0, 2.0])
    compiled = mytorch.compile(lambda x: F.mul(x, F.mul(W, 2.0)))
    compiled(np.ones(2))
    W[...] = 0.0  # an optimizer step on a closed-over parameter
    np.testing.assert_array_equal(compiled(np.ones(2)), [0.0, 0.0])


def test_a_compiled_conv_step_takes_the_windows_once(monkeypatch):
    # Eagerly, the forward keeps its windows for the weight gradient while recording; a compiled
    # program runs with recording off, and took them a second time in its backward until the
    # program's forward was told the backward follows.
    from mytorch import conv

    rng = np.random.default_rng(0)
    X, K, c = rng.normal(size=(2, 3, 6, 6)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    loss = lambda K, c: F.sum(F.mul(F.conv2d(X, K, c, padding=1), F.conv2d(X, K, c, padding=1)))
    step = mytorch.compile(mytorch.value_and_grad(loss, argnums=(0, 1)))
    step(K, c)  # traced here
    taken = []
    rows = conv._rows
    monkeypatch.setattr(conv, "_rows", lambda *args, **kwargs: taken.append(1) or rows(*args, **kwargs))
    value, grads = step(K, c)
    assert len(taken) == 1  # one convolution (the two calls are one line of the program), one windows
    expected_value, expected_grads = mytorch.value_and_grad(loss, argnums=(0, 1))(K, c)
    np.testing.assert_allclose(value, expected_value)
    for got, want in zip(grads, expected_grads):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    with mytorch.no_grad():  # an inference program keeps nothing beside its output
        plain = mytorch.compile(lambda K, c: F.conv2d(X, K, c, padding=1))
        out = plain(K, c)
    assert id(out) not in conv._saved_windows

"""Tracked arrays: ordinary NumPy code (operators, methods, views, np.* functions) differentiates.

Each program is written twice, once as a newcomer writes NumPy and once with `F.*`; the two must
agree in reverse mode, forward mode and second order, and (where installed) with PyTorch.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracle import torch

import mytorch
from mytorch import functional as F
from mytorch import nn, optim

X = np.array([[1.0, -2.0], [3.0, 0.5]])
Y = np.array([[0.5, 1.5]])
W = np.array([[1.0, 2.0], [3.0, -1.0]])
B = np.array([0.1, 0.2])

# (name, written with NumPy, written with F.*, written with torch or None)
PROGRAMS = [
    ("x * x", lambda x: np.sum(x * x), lambda x: F.sum(F.mul(x, x)), lambda t, x: (x * x).sum()),
    (
        "x[0]",
        lambda x: np.sum(x[0] ** 3),
        lambda x: F.sum(F.power(F.getitem(x, 0), 3)),
        lambda t, x: (x[0] ** 3).sum(),
    ),
    (
        "reshape(-1)",
        lambda x: np.sum(x.reshape(-1) * np.arange(4.0)),
        lambda x: F.sum(F.mul(F.reshape(x, -1), np.arange(4.0))),
        lambda t, x: (x.reshape(-1) * t.arange(4.0, dtype=t.float64)).sum(),
    ),
    (
        "concatenate",
        lambda x: np.sum(np.concatenate([x, Y]) ** 2),
        lambda x: F.sum(F.power(F.concatenate([x, Y]), 2)),
        lambda t, x: (t.cat([x, t.tensor(Y)]) ** 2).sum(),
    ),
    (
        "x @ W + b",
        lambda x: np.sum(np.tanh(x @ W + B)),
        lambda x: F.sum(F.tanh(F.add(F.matmul(x, W), B))),
        lambda t, x: t.tanh(x @ t.tensor(W) + t.tensor(B)).sum(),
    ),
    (
        "where",
        lambda x: np.sum(np.where(x > 0, x, 0.1 * x) ** 2),
        lambda x: F.sum(F.power(F.where(x > 0, x, F.mul(0.1, x)), 2)),
        lambda t, x: (t.where(x > 0, x, 0.1 * x) ** 2).sum(),
    ),
    (
        "maximum",
        lambda x: np.sum(np.maximum(x, 0) * x),
        lambda x: F.sum(F.mul(F.maximum(x, 0.0), x)),
        lambda t, x: (t.clamp(x, min=0) * x).sum(),
    ),
    (
        "mean(axis=0)",
        lambda x: np.sum(x.mean(axis=0) ** 2),
        lambda x: F.sum(F.power(F.mean(x, axis=0), 2)),
        lambda t, x: (x.mean(0) ** 2).sum(),
    ),
    ("norm", lambda x: np.linalg.norm(x), lambda x: F.linalg.norm(x), lambda t, x: t.linalg.norm(x)),
    (
        ".T",
        lambda x: np.sum((x.T @ W) ** 2),
        lambda x: F.sum(F.power(F.matmul(F.transpose(x), W), 2)),
        lambda t, x: ((x.T @ t.tensor(W)) ** 2).sum(),
    ),
    (
        "rows",
        lambda x: sum(np.exp(row).sum() for row in x),
        lambda x: F.sum(F.exp(x)),
        lambda t, x: t.exp(x).sum(),
    ),
    (
        "methods",
        lambda x: x.max(axis=1).sum() + x.std() + x.var(ddof=1) + x.prod(),
        lambda x: F.add(F.add(F.add(F.sum(F.max(x, axis=1)), F.std(x)), F.var(x, ddof=1)), F.prod(x)),
        lambda t, x: x.max(1).values.sum() + x.std(unbiased=False) + x.var() + x.prod(),
    ),
    (
        "operators",
        lambda x: np.sum((2.0 - x) / (1.0 + x * x) + (-x) ** 2 + abs(x)),
        lambda x: F.sum(
            F.add(F.add(F.div(F.sub(2.0, x), F.add(1.0, F.mul(x, x))), F.power(F.neg(x), 2)), F.abs(x))
        ),
        lambda t, x: ((2.0 - x) / (1.0 + x * x) + (-x) ** 2 + abs(x)).sum(),
    ),
    (
        "list of tape arrays",
        lambda x: np.mean(np.stack([x, x + 2.0]) ** 2),
        lambda x: F.mean(F.power(F.stack([x, F.add(x, 2.0)]), 2)),
        lambda t, x: (t.stack([x, x + 2.0]) ** 2).mean(),
    ),
]


@pytest.mark.parametrize(
    "name, numpy_program, f_program, torch_program", PROGRAMS, ids=[p[0] for p in PROGRAMS]
)
def test_numpy_code_differentiates_like_the_same_program_written_with_F(
    name, numpy_program, f_program, torch_program
):
    np.testing.assert_allclose(mytorch.grad(numpy_program)(X), mytorch.grad(f_program)(X), rtol=1e-12)
    tangent = np.array([[0.3, -1.0], [0.7, 2.0]])
    np.testing.assert_allclose(
        mytorch.jvp(numpy_program, (X,), (tangent,))[1],
        mytorch.jvp(f_program, (X,), (tangent,))[1],
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        mytorch.hessian(numpy_program)(X), mytorch.hessian(f_program)(X), rtol=1e-10, atol=1e-12
    )
    slope = mytorch.grad(numpy_program)(X)
    assert slope.any(), f"{name}: a zero gradient would hide the bug these tests are about"


@pytest.mark.torch
@pytest.mark.parametrize(
    "name, numpy_program, f_program, torch_program", PROGRAMS, ids=[p[0] for p in PROGRAMS]
)
def test_numpy_code_gives_pytorchs_gradients(name, numpy_program, f_program, torch_program):
    if torch is None:
        pytest.skip("torch is not installed")
    x = torch.tensor(X, requires_grad=True)
    torch_program(torch, x).backward()
    np.testing.assert_allclose(mytorch.grad(numpy_program)(X), x.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_the_issues_four_lines():
    assert mytorch.grad(lambda x: F.sum(x * x))(np.array([1.0, 2.0])).tolist() == [2.0, 4.0]
    slope = mytorch.grad(lambda W: F.sum(F.matmul(np.ones((1, 2)), W.T)))(np.eye(2))
    assert slope.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    x, w = mytorch.track(np.array([1.0, 2.0])), np.array([3.0, 4.0])
    h = F.mul(x, w)
    mytorch.backward(F.sum(h * 2.0))
    assert mytorch.engine().gradient_buffer.get_param(x).tolist() == [6.0, 8.0]
    assert mytorch.grad(lambda x: F.sum(F.mul(x, x)))([1.0, 2.0]).tolist() == [2.0, 4.0]


def test_results_of_transforms_and_of_plain_arrays_are_plain():
    slope = mytorch.grad(lambda x: np.sum(x**2))(np.array([1.0, 2.0]))
    value, _ = mytorch.value_and_grad(lambda x: np.sum(x**2))(np.array([1.0, 2.0]))
    assert type(slope) is np.ndarray and type(value) is np.ndarray
    assert type(F.exp(np.ones(2))) is np.ndarray  # plain in, plain out: today's meaning
    assert type(F.exp(mytorch.track(np.ones(2)))) is mytorch.Tracked


def test_what_cannot_carry_a_derivative_is_a_constant():
    def f(x):
        assert type(x > 0) is np.ndarray and (x > 0).dtype == bool
        assert isinstance(np.argmax(x), np.integer)
        assert np.shape(x) == (2, 2) and np.ndim(x) == 2
        assert np.allclose(x, x) and np.isfinite(x).all()
        assert type(np.zeros_like(x)) is np.ndarray
        return np.sum(x * np.zeros_like(x) + x)

    assert mytorch.grad(f)(X).tolist() == [[1.0, 1.0], [1.0, 1.0]]


@pytest.mark.parametrize(
    "call, named",
    [
        (lambda x: np.interp(x, [0.0, 1.0], [0.0, 2.0]), "np.interp"),
        (lambda x: np.polyval([1.0, 2.0], x), "np.polyval"),
        (lambda x: np.nancumsum(x), "np.nancumsum"),
    ],
)
def test_a_numpy_function_without_a_primitive_is_refused_by_name(call, named):
    with pytest.raises(TypeError, match=named.replace(".", r"\.")):
        mytorch.grad(lambda x: np.sum(call(x)))(X)


def test_in_place_writes_of_tracked_values_are_refused_or_rebound():
    x = mytorch.track(np.array([1.0, 2.0]))
    total = np.zeros(2)
    with pytest.raises(TypeError, match="in-place"):
        total += x  # a plain array cannot hold the gradient's path
    with pytest.raises(TypeError, match="out="):
        np.multiply(x, 2.0, out=np.zeros(2))
    with pytest.raises(TypeError, match="setitem"):
        target = mytorch.track(np.zeros(2))
        target[0] = x[1]
    with pytest.raises(TypeError, match="in place"):
        x.sort()


def test_an_augmented_operator_on_a_tracked_value_rebinds_the_name_as_jax_does():
    def f(x):
        h = x * 2.0
        h += x  # h is on the tape (read-only): the name is bound to h + x
        h /= h.sum()
        return np.sum(h * np.array([1.0, 3.0]))

    x = np.array([1.0, 2.0])
    expected = mytorch.grad(
        lambda x: F.sum(F.mul(F.div(F.mul(3.0, x), F.sum(F.mul(3.0, x))), np.array([1.0, 3.0])))
    )
    np.testing.assert_allclose(mytorch.grad(f)(x), expected(x), rtol=1e-12)


def test_a_leaf_updated_in_place_with_plain_values_works_and_keeps_its_identity():
    x = mytorch.track(np.array([1.0, 2.0]))
    same = x
    x -= 0.5 * np.ones(2)
    assert x is same and x.tolist() == [0.5, 1.5]


def test_no_grad_gives_plain_arrays_and_records_nothing():
    x = mytorch.track(np.array([1.0, 2.0]))
    with mytorch.no_grad():
        y = np.exp(x) + x.T + x[0] + x.sum()
    assert type(y) is np.ndarray and not mytorch.engine().operation_list


def test_a_plain_view_of_a_tracked_array_is_named_at_backward():
    W = mytorch.track(np.eye(2))
    loss = F.sum(F.matmul(np.ones((1, 2)), np.asarray(W).T))
    with pytest.raises(RuntimeError, match="plain NumPy view"):
        mytorch.backward(loss)


def test_a_custom_module_using_self_W_T_trains():
    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_parameter("weight", np.array([[1.0, 2.0, 3.0]]), attribute="W")

        def forward(self, x):
            return x @ self.W.T

    np.random.seed(0)
    layer, x, y = Layer(), np.random.randn(8, 3), np.random.randn(8, 1)
    opt = optim.SGD(layer.parameters(), lr=0.1)
    losses = []
    for _ in range(20):
        loss = np.mean((layer(x) - y) ** 2)
        mytorch.backward(loss)
        opt.step()
        opt.zero_grad()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


def test_functional_call_under_grad_matches_the_engines_gradients():
    np.random.seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    X, y = np.random.randn(5, 3), np.array([0, 1, 1, 0, 1])
    loss_fn = nn.CrossEntropyLoss()
    grads = mytorch.grad(lambda p: loss_fn(mytorch.functional_call(model, p, X), y))(model.parameters_tree())
    assert list(grads) == [name for name, _ in model.named_parameters()]
    mytorch.backward(loss_fn(model(X), y))
    for name, p in model.named_parameters():
        np.testing.assert_allclose(grads[name], model.gradient_of(p), rtol=1e-12)
    with pytest.raises(KeyError, match="no parameters named"):
        mytorch.functional_call(model, {"nope": np.ones(1)}, X)


def test_functional_call_replaces_a_tied_weight_under_both_names():
    first = nn.Linear(2, 2, bias=False)
    second = nn.Linear(2, 2, bias=False)
    second.W = first.W
    model = nn.Sequential(first, second)
    new = np.eye(2)
    out = mytorch.functional_call(model, {"0.weight": new}, np.array([[1.0, 2.0]]))
    assert out.tolist() == [[1.0, 2.0]] and model[1].W is model[0].W


# ---- a property: random programs from a small grammar, written both ways ----------------------

_UNARY = [
    (lambda a: np.tanh(a), F.tanh),
    (lambda a: a * a, lambda a: F.mul(a, a)),
    (lambda a: -a, F.neg),
    (lambda a: np.exp(-a * a), lambda a: F.exp(F.neg(F.mul(a, a)))),
    (lambda a: a.T, F.transpose),
    (lambda a: np.maximum(a, 0.2), lambda a: F.maximum(a, 0.2)),
    (lambda a: a**3, lambda a: F.power(a, 3)),
    (lambda a: np.sin(a) + 1.5, lambda a: F.add(F.sin(a), 1.5)),
    (lambda a: a[::-1], lambda a: F.getitem(a, slice(None, None, -1))),
    (lambda a: np.where(a > 0, a, 0.1 * a), lambda a: F.where(a > 0, a, F.mul(0.1, a))),
]
_BINARY = [
    (lambda a, b: a + b, F.add),
    (lambda a, b: a * b, F.mul),
    (lambda a, b: a - 2.0 * b, lambda a, b: F.sub(a, F.mul(2.0, b))),
    (lambda a, b: a @ b, F.matmul),
    (lambda a, b: a / (1.0 + b * b), lambda a, b: F.div(a, F.add(1.0, F.mul(b, b)))),
]
_REDUCE = [
    (lambda a: a.sum(), F.sum),
    (lambda a: np.mean(a**2), lambda a: F.mean(F.power(a, 2))),
    (lambda a: a.max(axis=0).sum(), lambda a: F.sum(F.max(a, axis=0))),
    (lambda a: np.linalg.norm(a), F.linalg.norm),
]


@st.composite
def _programs(draw):
    steps = draw(
        st.lists(st.tuples(st.booleans(), st.integers(0, 100), st.integers(0, 100)), min_size=1, max_size=5)
    )
    reduce_with = draw(st.integers(0, len(_REDUCE) - 1))

    def build(pick):
        def program(x):
            values = [x]
            for binary, i, j in steps:
                if binary:
                    op = _BINARY[i % len(_BINARY)][pick]
                    values.append(op(values[j % len(values)], values[-1]))
                else:
                    values.append(_UNARY[i % len(_UNARY)][pick](values[-1]))
            return _REDUCE[reduce_with][pick](values[-1])

        return program

    return build(0), build(1)


@given(_programs(), st.integers(0, 2**16))
def test_random_numpy_programs_agree_with_their_F_twins(programs, seed):
    numpy_program, f_program = programs
    x = np.random.default_rng(seed).uniform(-1.5, 1.5, (3, 3))
    np.testing.assert_allclose(
        mytorch.grad(numpy_program)(x), mytorch.grad(f_program)(x), rtol=1e-9, atol=1e-12
    )
    tangent = np.ones((3, 3))
    np.testing.assert_allclose(
        mytorch.jvp(numpy_program, (x,), (tangent,))[1],
        mytorch.jvp(f_program, (x,), (tangent,))[1],
        rtol=1e-9,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        mytorch.hvp(numpy_program, (x,), (tangent,)),
        mytorch.hvp(f_program, (x,), (tangent,)),
        rtol=1e-8,
        atol=1e-10,
    )


def test_checkpoint_runs_numpy_code_on_tracked_copies_and_the_gradient_reaches_a_plain_leaf():
    block = mytorch.checkpoint(lambda x: np.sum(np.tanh(x) ** 2))
    x = np.array([0.5, -1.0])
    expected = 2 * np.tanh(x) * (1 - np.tanh(x) ** 2)
    loss = block(x)  # the engine API on a plain array: the block's input is x itself
    mytorch.backward(loss)
    np.testing.assert_allclose(mytorch.engine().gradient_buffer.get_param(x), expected, rtol=1e-12)
    np.testing.assert_allclose(mytorch.grad(block)(x), expected, rtol=1e-12)
    np.testing.assert_allclose(
        mytorch.hessian(block)(x), mytorch.hessian(lambda x: np.sum(np.tanh(x) ** 2))(x), rtol=1e-12
    )

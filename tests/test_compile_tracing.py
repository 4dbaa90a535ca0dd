"""mytorch.compile traces: every data-dependent computation is a step of the program or refused.

A replay must equal the eager engine on values unlike the first call's (ties, equal rows, zeros,
nan, other labels), and a Python value computed from traced data is refused at its line.
"""

import collections

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mytorch
from mytorch import functional as F
from mytorch import nn
from mytorch.compile import CompileError
from mytorch.testing.fuzz import programs

RTOL = 1e-12


def assert_same(compiled, eager, rtol=RTOL):
    """Equal structure (namedtuples included), dtypes, and values to `rtol`; nan where eager has nan."""
    if isinstance(eager, dict):
        assert isinstance(compiled, dict) and compiled.keys() == eager.keys()
        for key in eager:
            assert_same(compiled[key], eager[key], rtol)
        return
    if isinstance(eager, (tuple, list)):
        assert type(compiled) is type(eager) and len(compiled) == len(eager)
        for c, e in zip(compiled, eager):
            assert_same(c, e, rtol)
        return
    compiled, eager = np.asarray(compiled), np.asarray(eager)
    assert compiled.shape == eager.shape and compiled.dtype == eager.dtype
    np.testing.assert_array_equal(np.isnan(compiled), np.isnan(eager))
    finite = np.isfinite(eager)
    np.testing.assert_array_equal(compiled[~finite & ~np.isnan(eager)], eager[~finite & ~np.isnan(eager)])
    scale = max(float(np.max(np.abs(eager[finite]), initial=0.0)), 1e-300)
    assert float(np.max(np.abs(compiled[finite] - eager[finite]), initial=0.0)) <= rtol * scale


def unlike(rng, shape, kind):
    """Values of `shape` unlike a random first call's: ties, equal rows, zeros, nan, other signs."""
    if kind == "ties":
        return np.round(rng.normal(size=shape))
    if kind == "equal":
        return np.full(shape, 0.75)
    if kind == "zeros":
        return np.zeros(shape)
    if kind == "nan":
        values = rng.normal(size=shape)
        values.flat[rng.integers(0, values.size)] = np.nan
        return values
    return -3.0 * rng.normal(size=shape)


KINDS = ["ties", "equal", "zeros", "nan", "other"]


# ---- the fuzzer's programs, compiled, on values unlike the first call's ----------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(programs(max_steps=6), st.lists(st.sampled_from(KINDS), min_size=2, max_size=2), st.integers(0, 2**16))
def test_fuzzed_programs_replay_like_eager_on_unlike_values(program, kinds, seed):
    def loss(*leaves):
        return program.run_mytorch(list(leaves))[1]

    eager = mytorch.value_and_grad(loss, argnums=tuple(range(len(program.leaves))))
    step = mytorch.compile(eager)
    first = [program.steps[k].params["value"].copy() for k in program.leaves]
    assert_same(step(*first), eager(*first))
    rng = np.random.default_rng(seed)
    for kind in kinds:
        leaves = [unlike(rng, leaf.shape, kind).astype(leaf.dtype) for leaf in first]
        with np.errstate(all="ignore"):
            try:
                expected = eager(*leaves)
            except (ValueError, FloatingPointError, np.linalg.LinAlgError):
                continue  # outside the domain eagerly too
            assert_same(step(*leaves), expected)


# ---- the issue's programs ----------------------------------------------------------------------------


class Params(collections.namedtuple("Params", ["W", "b"])):
    pass


def _std_rows(x):
    return F.sum(F.std(x, axis=1))


def _sorted_weighted(x, w):
    return F.sum(F.mul(F.sort(x, axis=-1), w))


def _masks_and_ties(x, w):
    clipped = F.clip(F.maximum(x, w), -0.5, 0.5)
    return F.sum(F.mul(F.max(F.abs(clipped), axis=1), F.relu(F.sum(w, axis=1))))


def _numpy_code(x, w):  # ordinary NumPy on traced data: comparisons, where, argsort, index arithmetic
    order = np.argsort(x, axis=1)
    picked = np.take_along_axis(x, order[:, :1], axis=1)
    masked = np.where(x > np.mean(x), x * w, -x)
    return np.sum(masked) + np.sum(picked * picked) + np.sum(np.where(np.isnan(x), 0.0, np.abs(x)))


def _labels(p, X, y):
    return F.cross_entropy(F.add(F.matmul(X, p.W), p.b), y)


def _norm_and_power(x, w):
    return F.add(F.sum(F.linalg.norm(x, axis=1)), F.sum(F.power(F.abs(x), F.relu(w))))


ISSUE = {
    "std of equal rows": (_std_rows, lambda r: [r.normal(size=(3, 4))],
                          lambda r: [np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 2.0, 3.0], [2.0] * 4])]),
    "sort": (_sorted_weighted, lambda r: [r.normal(size=(2, 5)), r.normal(size=(2, 5))],
             lambda r: [r.normal(size=(2, 5)), r.normal(size=(2, 5))]),
    "masks and ties": (_masks_and_ties, lambda r: [r.normal(size=(3, 4)), r.normal(size=(3, 4))],
                       lambda r: [np.round(r.normal(size=(3, 4))), np.round(r.normal(size=(3, 4)))]),
    "numpy code": (_numpy_code, lambda r: [r.normal(size=(3, 4)), r.normal(size=(3, 4))],
                   lambda r: [np.round(r.normal(size=(3, 4))), r.normal(size=(3, 4))]),
    "labels, batch of one": (_labels, lambda r: [Params(r.normal(size=(4, 3)), r.normal(size=3)),
                                                 r.normal(size=(1, 4)), np.array([2])],
                             lambda r: [Params(r.normal(size=(4, 3)), r.normal(size=3)),
                                        r.normal(size=(1, 4)), np.array([0])]),
    "norm at zero, power's branches": (_norm_and_power,
                                       lambda r: [r.normal(size=(2, 3)) + 3, r.normal(size=(2, 3))],
                                       lambda r: [np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]]),
                                                  np.array([[0.0, 1.0, -1.0], [2.0, 0.0, 0.5]])]),
}


@pytest.mark.parametrize("name", list(ISSUE))
def test_the_issues_programs_replay_like_eager(name):
    f, first, then = ISSUE[name]
    rng = np.random.default_rng(0)
    eager = mytorch.value_and_grad(f, argnums=0)
    step = mytorch.compile(eager)
    args = first(rng)
    assert_same(step(*args), eager(*args))
    for _ in range(3):
        args = then(rng)
        assert_same(step(*args), eager(*args))
    assert len(step.programs) == 1


def _unlike_tree(rng, value, kind):
    """`value` (arrays in tuples and namedtuples) with unlike floats and other labels in [0, 3)."""
    if isinstance(value, tuple):
        items = [_unlike_tree(rng, v, kind) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if value.dtype.kind in "iu":
        return rng.integers(0, 3, value.shape)
    return unlike(rng, value.shape, kind).astype(value.dtype)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted(ISSUE)), st.lists(st.sampled_from(KINDS), min_size=1, max_size=3),
       st.integers(0, 2**16))
def test_the_issues_programs_replay_like_eager_on_drawn_unlike_values(name, kinds, seed):
    f, first, _ = ISSUE[name]
    rng = np.random.default_rng(seed)
    eager = mytorch.value_and_grad(f, argnums=0)
    step = mytorch.compile(eager)
    args = first(rng)
    assert_same(step(*args), eager(*args))
    for kind in kinds:
        args = [_unlike_tree(rng, a, kind) for a in args]
        with np.errstate(all="ignore"):
            assert_same(step(*args), eager(*args))


def test_std_of_a_row_of_equal_values_has_a_zero_gradient():
    slope = mytorch.compile(mytorch.grad(_std_rows))
    slope(np.random.default_rng(1).normal(size=(2, 3)))
    np.testing.assert_array_equal(slope(np.ones((2, 3))), np.zeros((2, 3)))


def test_namedtuples_keep_their_types_in_and_out():
    step = mytorch.compile(mytorch.value_and_grad(_labels))
    rng = np.random.default_rng(2)
    for _ in range(2):
        p = Params(rng.normal(size=(4, 3)), rng.normal(size=3))
        X, y = rng.normal(size=(5, 4)), rng.integers(0, 3, 5)
        value, grads = step(p, X, y)
        assert type(grads) is Params
        assert_same((value, grads), mytorch.value_and_grad(_labels)(p, X, y))
    slogdet = mytorch.compile(lambda a: F.linalg.slogdet(a))
    for a in [rng.normal(size=(3, 3)), -np.eye(3)]:
        result = slogdet(a)
        assert type(result).__name__ == "SlogdetResult" and result.sign == np.linalg.slogdet(a).sign
        np.testing.assert_allclose(result.logabsdet, np.linalg.slogdet(a).logabsdet)


def test_batchnorm_evaluated_after_more_training_reads_its_running_statistics():
    rng = np.random.default_rng(3)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    params = dict(model.named_parameters())
    evaluate = mytorch.compile(lambda p, X: mytorch.functional_call(model, p, X))
    model.eval()
    X = rng.normal(size=(6, 3))
    assert_same(evaluate(params, X), model(X))
    model.train()
    for _ in range(3):  # more training moves the running statistics
        model(rng.normal(size=(6, 3)) * 3 + 1)
    model.eval()
    assert_same(evaluate(params, X), model(X))


def test_a_modules_mode_selects_its_program():
    rng = np.random.default_rng(4)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    params = dict(model.named_parameters())
    run = mytorch.compile(lambda p, X: mytorch.functional_call(model, p, X))
    X = rng.normal(size=(5, 3))
    for mode in [True, False, True, False]:
        model.train(mode)
        expected = model(X)  # training mode: the batch's statistics; eval: the running ones
        assert_same(run(params, X), expected)
    assert len(run.programs) == 2


def test_checkpoint_inside_a_compiled_function_replays_with_the_new_values():
    block = mytorch.checkpoint(lambda x, w: F.tanh(F.mul(F.relu(x), w)))
    f = mytorch.value_and_grad(lambda x, w: F.sum(block(x, w)), argnums=(0, 1))
    step = mytorch.compile(f)
    rng = np.random.default_rng(5)
    for _ in range(3):
        x, w = rng.normal(size=4), rng.normal(size=4)
        assert_same(step(x, w), f(x, w))


def test_arrays_made_inside_f_and_closed_over_arrays():
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    f = mytorch.grad(lambda x: F.sum(F.matmul(W, F.mul(x, np.arange(2.0) + 1))))
    step = mytorch.compile(f)
    assert_same(step(np.array([1.0, 1.0])), f(np.array([1.0, 1.0])))
    W *= 2  # read at every call
    assert_same(step(np.array([5.0, -1.0])), f(np.array([5.0, -1.0])))


# ---- refusals name the line of f and the reason --------------------------------------------------


def _line_of(text):
    source = open(__file__).read().splitlines()
    return next(i + 1 for i, line in enumerate(source) if text in line)


def _as_float(x):
    return F.sum(F.mul(x, float(np.max(x))))  # REFUSED: float


def _branches(x):
    if np.sum(x) > 0:  # REFUSED: bool
        return F.sum(x)
    return F.sum(F.neg(x))


def _item(x):
    return F.sum(F.mul(x, x.max().item()))  # REFUSED: item


def _tolist(x):
    return F.sum(F.mul(x, np.array(x.tolist())))  # REFUSED: tolist


def _python_index(x, i):
    return F.sum(F.mul(x, x[int(i[0])]))  # REFUSED: int


def _masked(x):
    return F.sum(x[x > 0])  # REFUSED: mask


def _no_primitive(x):
    return F.sum(np.i0(x))  # REFUSED: no primitive


@pytest.mark.parametrize("f, marker, reason", [
    (_as_float, "REFUSED: float", "float(x)"),
    (_branches, "REFUSED: bool", "bool(x)"),
    (_item, "REFUSED: item", "x.item()"),
    (_tolist, "REFUSED: tolist", "x.tolist()"),
    (_python_index, "REFUSED: int", "int(x)"),
    (_no_primitive, "REFUSED: no primitive", "no mytorch primitive"),
    (_masked, "REFUSED: mask", "shape depends on the data"),
])
def test_a_refusal_names_the_line_of_f_and_the_reason(f, marker, reason):
    x = np.array([1.0, -2.0, 3.0])
    args = (x, np.array([1])) if f is _python_index else (x,)
    with pytest.raises(CompileError) as error:
        mytorch.compile(mytorch.grad(f))(*args)
    message = str(error.value)
    assert f"test_compile_tracing.py:{_line_of(marker)}" in message, message
    assert reason in message
    if f is not _no_primitive:
        assert mytorch.grad(f)(*args) is not None  # eagerly the same code runs


# ---- state: written at every replay, drawn at every replay --------------------------------------


def test_a_compiled_training_step_moves_batchnorms_statistics_at_every_call():
    rng = np.random.default_rng(6)

    def make():
        np.random.seed(0)
        return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))

    eager_model, compiled_model = make(), make()
    loss = lambda model: lambda p, X, y: F.cross_entropy(mytorch.functional_call(model, p, X), y)  # noqa: E731
    step = mytorch.compile(mytorch.value_and_grad(loss(compiled_model)))
    eager = mytorch.value_and_grad(loss(eager_model))
    for _ in range(4):
        X, y = rng.normal(size=(6, 3)) * 2 + 1, rng.integers(0, 2, 6)
        assert_same(step(dict(compiled_model.named_parameters()), X, y),
                    eager(dict(eager_model.named_parameters()), X, y))
        for name, value in eager_model.state_dict().items():
            assert_same(compiled_model.state_dict()[name], value)


def test_an_in_place_update_of_a_parameter_is_a_statement_of_the_program():
    model = nn.Linear(3, 2)
    reference = nn.Linear(3, 2)
    reference.load_state_dict(model.state_dict())

    def train_step(model):
        def step(X):
            grads = mytorch.grad(lambda p: F.sum(F.mul(mytorch.functional_call(model, p, X), X[:, :2])))(
                dict(model.named_parameters()))
            with mytorch.no_grad():
                for name, p in model.named_parameters():
                    p -= 0.1 * grads[name]
            return grads["weight"]
        return step

    compiled, eager = mytorch.compile(train_step(model)), train_step(reference)
    rng = np.random.default_rng(7)
    for _ in range(3):
        X = rng.normal(size=(5, 3))
        assert_same(compiled(X), eager(X))
        assert_same(model.weight, reference.weight)


def test_dropout_draws_again_at_every_call():
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5))
    params = dict(model.named_parameters())
    run = mytorch.compile(lambda p, X: mytorch.functional_call(model, p, X))
    X = np.ones((16, 4))
    np.random.seed(1)
    first, second = run(params, X), run(params, X)
    assert not np.array_equal(first == 0, second == 0)  # a new mask per call, as eagerly
    np.random.seed(2)
    compiled = run(params, X)
    np.random.seed(2)
    assert_same(compiled, model(X))  # the same draws from np.random as the eager layer


def test_eigh_compiles_branch_free_on_repeated_eigenvalues():
    def f(a):
        values, vectors = F.linalg.eigh(a)
        return F.add(F.sum(F.mul(values, values)), F.sum(F.mul(vectors[..., 0], vectors[..., 0])))

    def g(a):
        return F.sum(F.linalg.eigh(a).eigenvalues)

    for h in (f, g):
        step, eager = mytorch.compile(mytorch.grad(h)), mytorch.grad(h)
        for a in [np.array([[2.0, 1.0], [1.0, 3.0]]), np.array([[4.0, -1.0], [-1.0, 1.0]])]:
            assert_same(step(a), eager(a), 1e-10)
    assert_same(mytorch.compile(mytorch.grad(g))(np.eye(2)), mytorch.grad(g)(np.eye(2)))


def test_printing_inside_a_compiled_function_shows_the_traces_values(capsys):
    def f(x):
        print("x:", x)
        return F.mul(x, x)

    square = mytorch.compile(f)
    square(np.array([1.0, 2.0]))
    assert "traced [1. 2.]" in capsys.readouterr().out
    np.testing.assert_array_equal(square(np.array([3.0, 2.0])), [9.0, 4.0])
    assert capsys.readouterr().out == ""  # a replay runs the program, not f


def test_setitem_with_a_traced_index_recomputes_which_copies_land():
    def f(x, v, order):
        index = (order > 0).astype(np.int64)  # computed from traced data: repeated or not
        return F.sum(F.mul(F.setitem(x, index, v), x))

    eager = mytorch.value_and_grad(f, argnums=(0, 1))
    step = mytorch.compile(eager)
    x, v = np.arange(4.0), np.array([10.0, 20.0])
    for order in [np.array([3.0, -2.0]), np.array([1.0, 5.0]), np.array([-1.0, 2.0])]:
        assert_same(step(x, v, order), eager(x, v, order))


@pytest.mark.parametrize("one_hot", [lambda y: y[:, None] == np.arange(4),
                                     lambda y: F.take(np.eye(4), y, axis=0)])
def test_one_hot_rows_follow_the_labels(one_hot):
    def f(x, y):
        return F.sum(F.mul(one_hot(y), x))

    eager = mytorch.value_and_grad(f)
    step = mytorch.compile(eager)
    rng = np.random.default_rng(8)
    for _ in range(3):
        x, y = rng.normal(size=(5, 4)), rng.integers(0, 4, 5)
        assert_same(step(x, y), eager(x, y))

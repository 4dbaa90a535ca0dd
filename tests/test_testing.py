"""mytorch.testing itself: the strategies keep their promises, the input specs reach the corners
they claim, and the checks fail (readably, on a shrunk example) when a rule or a layer is wrong."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from mytorch import functional as F
from mytorch.cli import main
from mytorch.testing import (
    CASES,
    Example,
    GradientCheckError,
    arrays_away_from,
    axes,
    broadcast_targets,
    broadcastable_shapes,
    check_against_torch,
    check_layer,
    check_primitive,
    distinct_arrays,
    float_arrays,
    floats,
    indices,
    matmul_shapes,
    non_tying_pairs,
    positive_arrays,
    reshape_targets,
    shapes,
    well_conditioned_matrices,
)
from mytorch.testing.examples import HandwrittenLinear, LinearBiasNotSummed, LinearMissingTranspose, softplus

FEW = settings(max_examples=min(20, settings.default.max_examples), database=None)

# ---- strategies -------------------------------------------------------------------------------


@FEW
@given(broadcastable_shapes(3))
def test_broadcastable_shapes_broadcast(shapes_):
    np.broadcast_shapes(*shapes_)


def test_broadcastable_shapes_reach_0d_size_1_axes_and_empty():
    find(broadcastable_shapes(2), lambda s: () in s)
    find(broadcastable_shapes(2), lambda s: any(1 in shape and max(shape) > 1 for shape in s))
    find(broadcastable_shapes(2, min_side=0), lambda s: any(0 in shape for shape in s))


@FEW
@given(matmul_shapes())
def test_matmul_shapes_fit_matmul(pair):
    np.matmul(np.ones(pair[0]), np.ones(pair[1]))


@FEW
@given(float_arrays(shapes(), np.float32, low=-1.0, high=1.0))
def test_float_arrays_have_the_dtype_and_range(x):
    assert x.dtype == np.float32 and np.all(np.abs(x) <= 1)


def test_floats_bounds_are_rounded_inwards_for_float32():
    value = find(floats(0.1, 0.2, np.float32), lambda v: True)
    assert 0.1 <= value <= 0.2 and np.float32(value) == value


@FEW
@given(positive_arrays((3, 2)), arrays_away_from((4,), kinks=(-1.0, 1.0), margin=0.2))
def test_domain_strategies_keep_their_margins(positive, away):
    assert np.all(positive >= 0.1)
    assert np.all(np.abs(np.abs(away) - 1.0) >= 0.2 - 1e-12)


@FEW
@given(distinct_arrays((3, 4), spacing=0.05))
def test_distinct_arrays_have_no_ties(x):
    gaps = np.diff(np.sort(x.reshape(-1)))
    assert np.all(gaps >= 0.05 - 1e-12)


@FEW
@given(st.data())
def test_non_tying_pairs_never_meet(data):
    a, b = data.draw(broadcastable_shapes(2))
    x, y = data.draw(non_tying_pairs(a, b))
    assert np.all(np.abs(x - y) >= 0.05 - 1e-12)


@FEW
@given(well_conditioned_matrices(st.integers(1, 5)))
def test_well_conditioned_matrices_are(A):
    assert np.linalg.cond(A, np.inf) <= 5 + 1e-9


@FEW
@given(st.data())
def test_shape_parameter_strategies_are_valid(data):
    shape = data.draw(shapes(min_side=0), label="shape")
    x = np.zeros(shape)
    np.reshape(x, data.draw(reshape_targets(shape), label="reshape"))
    np.broadcast_to(x, data.draw(broadcast_targets(shape), label="broadcast"))
    np.sum(x, axis=data.draw(axes(len(shape)), label="axis"))
    x[data.draw(indices(shape), label="index")]


def test_indices_reach_every_kind():
    find(indices((3, 4)), lambda i: isinstance(i, np.ndarray) and i.dtype == bool)
    find(
        indices((3, 4)),
        lambda i: (
            isinstance(i, tuple)
            and any(isinstance(p, np.ndarray) for p in i)
            and any(isinstance(p, np.ndarray) and len(set(p.ravel().tolist())) < p.size for p in i)
        ),
    )
    find(indices((3, 4)), lambda i: isinstance(i, tuple) and any(p is None for p in i))


# ---- the input specs reach the corners they claim ------------------------------------------------


def _has(example, predicate):
    return any(predicate(v) for v in example.inputs)


@pytest.mark.parametrize(
    "name, corner",
    [
        ("add", lambda e: _has(e, lambda v: np.shape(v) == ())),
        ("add", lambda e: _has(e, lambda v: 0 in np.shape(v))),
        ("mul", lambda e: len({np.shape(v) for v in e.inputs}) > 1),
        ("add", lambda e: _has(e, lambda v: isinstance(v, (int, float)))),
        ("sub", lambda e: _has(e, lambda v: isinstance(v, np.ndarray) and v.dtype.kind == "i")),
        ("sum", lambda e: e.params.get("keepdims") and isinstance(e.params.get("axis"), tuple)),
        ("getitem", lambda e: isinstance(e.params["index"], np.ndarray) and e.params["index"].dtype == bool),
        (
            "getitem",
            lambda e: (
                isinstance(e.params["index"], tuple)
                and any(isinstance(p, np.ndarray) for p in e.params["index"])
            ),
        ),
        (
            "pad",
            lambda e: (
                isinstance(e.params["pad_width"], tuple) and isinstance(e.params["pad_width"][0], tuple)
            ),
        ),
        ("concatenate", lambda e: len(e.inputs) == 3),
        ("where", lambda e: len({np.shape(v) for v in e.inputs}) == 3),
        ("clip", lambda e: e.inputs[1] is None or e.inputs[2] is None),
        ("matmul", lambda e: e.inputs[0].ndim == 1 or e.inputs[1].ndim == 1),
        ("conv2d", lambda e: e.params.get("padding") == "same"),
        ("max_pool2d", lambda e: e.params.get("ceil_mode")),
        ("cross_entropy", lambda e: e.inputs[1].dtype.kind == "i"),
    ],
)
def test_input_specs_reach_their_corners(name, corner):
    find(CASES[name].examples(), corner)


@pytest.mark.parametrize("name", ["max", "maximum", "relu", "clip", "max_pool2d"])
def test_tie_mode_puts_inputs_on_kinks(name):
    def on_a_kink(example):
        x = example.inputs[0]
        if name in ("max", "max_pool2d"):
            return len(set(x.ravel().tolist())) < x.size
        if name == "maximum":
            return np.any(np.equal(*example.inputs))
        if name == "relu":
            return np.any(x == 0)
        return np.any(np.isin(x, [-1.0, 1.0]))

    find(CASES[name].examples(ties=True), on_a_kink)


# ---- check_primitive fails, readably, on wrong rules ----------------------------------------------


def _cube(vjp=None, jvp=None):
    return F.primitive(
        "cube",
        lambda x: x**3,
        vjp=vjp or (lambda g, ans, x: (F.mul(g, F.mul(3.0, F.mul(x, x))),)),
        jvp=jvp or (lambda t, ans, x: F.mul(t[0], F.mul(3.0, F.mul(x, x)))),
        register=False,
    )


def test_check_primitive_passes_a_right_user_primitive():
    report = check_primitive(_cube(), float_arrays(), max_examples=10)
    assert report.examples == 10 and report.max_abs_error < 1e-5
    assert "cube vs finite differences: 10 examples" in str(report)


def test_check_primitive_catches_a_wrong_backward_rule_and_shrinks():
    wrong = _cube(vjp=lambda g, ans, x: (F.mul(g, F.mul(2.0, F.mul(x, x))),))
    with pytest.raises(GradientCheckError) as info:
        check_primitive(wrong, float_arrays(), max_examples=50)
    message = str(info.value)
    assert "check_primitive('cube')" in message and "backward rule: gradient of input 0" in message
    assert "minimal example (shrunk by hypothesis)" in message
    # shrunk to x = 1 against an adjoint of 1 somewhere: 2·1² where 3·1² was due
    assert "got 2.0, expected 2.99999" in message or "got 2.0, expected 3.0" in message


def test_check_primitive_catches_a_wrong_tangent_rule_unless_only_rev_is_asked():
    wrong = _cube(jvp=lambda t, ans, x: F.mul(t[0], F.mul(x, x)))
    with pytest.raises(GradientCheckError, match="tangent rule: output tangent along input 0"):
        check_primitive(wrong, float_arrays(), max_examples=50)
    check_primitive(wrong, float_arrays(), modes=("rev",), max_examples=10)


def test_check_primitive_catches_a_gradient_left_broadcast():
    careless_add = F.primitive(
        "careless_add",
        np.add,
        arity=2,
        vjp=lambda g, ans, x, y: (g, g),
        jvp=lambda t, ans, x, y: F.add(t[0], t[1]),
        register=False,
    )
    pairs = broadcastable_shapes(2).flatmap(lambda s: st.tuples(float_arrays(s[0]), float_arrays(s[1])))
    with pytest.raises(GradientCheckError, match="has shape .* but its input has shape"):
        check_primitive(careless_add, pairs, max_examples=50)


def test_check_primitive_catches_a_gradient_of_the_wrong_shape():
    flattening_exp = F.primitive(
        "flattening_exp",
        np.exp,
        vjp=lambda g, ans, x: (F.reshape(F.mul(g, ans), (-1,)),),
        jvp=lambda t, ans, x: F.mul(t[0], ans),
        register=False,
    )
    with pytest.raises(GradientCheckError, match="shape"):
        check_primitive(flattening_exp, float_arrays(st.just((2, 3))), max_examples=10)


def test_check_primitive_takes_examples_with_parameters():
    scaled = F.primitive(
        "scaled",
        lambda x, factor=1.0: x * factor,
        vjp=lambda g, ans, x, factor=1.0: (F.mul(g, factor),),
        jvp=lambda t, ans, x, factor=1.0: F.mul(t[0], factor),
        register=False,
    )
    examples = float_arrays().map(lambda x: Example((x,), {"factor": 2.5}))
    assert check_primitive(scaled, examples, max_examples=5).examples == 5


def test_check_primitive_reports_a_rule_that_raises():
    broken = _cube(vjp=lambda g, ans, x: (F.reshape(g, (-1, 7)),))
    with pytest.raises(GradientCheckError, match="it raised ValueError: cube_backward: reshape"):
        check_primitive(broken, float_arrays(), max_examples=20)


def test_check_primitive_names_unknown_primitives():
    with pytest.raises(KeyError, match="no primitive named 'nosuch'"):
        check_primitive("nosuch")


@pytest.mark.torch
def test_check_against_torch_catches_a_different_tie_rule():
    pytest.importorskip("torch")
    from mytorch.utils import unbroadcast

    x_takes_ties = F.primitive(  # PyTorch (and mytorch) split a tie evenly; this gives it all to x
        "maximum",
        np.maximum,
        arity=2,
        vjp=lambda g, ans, x, y: (
            unbroadcast(g * (x >= y), np.shape(x)),
            unbroadcast(g * (x < y), np.shape(y)),
        ),
        jvp=F.maximum.jvp,
        register=False,
    )
    with pytest.raises(GradientCheckError, match="disagrees with PyTorch"):
        check_against_torch(x_takes_ties, np.float64, max_examples=100)


def test_the_user_primitive_example_checks():
    assert check_primitive(softplus, float_arrays(), max_examples=10).examples == 10


# ---- check_layer ----------------------------------------------------------------------------------


def test_check_layer_passes_a_right_layer_against_every_reference():
    from mytorch import nn

    check_layer(HandwrittenLinear(3, 2), max_examples=10)
    check_layer(HandwrittenLinear(3, 2), lambda A, W, b: F.linear(A, W, b), max_examples=10)
    check_layer(HandwrittenLinear(3, 2), nn.Linear(3, 2), max_examples=10)


def test_check_layer_checks_mytorch_layers_too():
    from mytorch import nn

    report = check_layer(nn.Linear(4, 3), max_examples=10)
    assert report.examples == 10


@pytest.mark.parametrize("reference", [None, lambda A, W, b: F.linear(A, W, b)], ids=["fd", "engine"])
def test_check_layer_reports_a_missing_transpose(reference):
    with pytest.raises(GradientCheckError) as info:
        check_layer(LinearMissingTranspose(3, 2), reference, max_examples=50)
    message = str(info.value)
    assert "dLdW has shape (3, 2), but W has shape (2, 3)" in message
    assert "a missing transpose?" in message and "minimal failing input" in message


def test_check_layer_reports_a_missing_transpose_of_a_square_weight():
    with pytest.raises(GradientCheckError, match="transpose of the right answer"):
        check_layer(LinearMissingTranspose(3, 3), max_examples=50)


@pytest.mark.parametrize("reference", [None, lambda A, W, b: F.linear(A, W, b)], ids=["fd", "engine"])
def test_check_layer_reports_a_bias_gradient_not_summed_and_shrinks_to_batch_2(reference):
    with pytest.raises(GradientCheckError) as info:
        check_layer(LinearBiasNotSummed(3, 2), reference, max_examples=50)
    message = str(info.value)
    assert message.startswith("check_layer(LinearBiasNotSummed): dLdb")
    assert "averaged, not summed?" in message
    assert "# shape (2, 3)" in message  # the smallest batch that shows the bug


def test_check_layer_checks_a_parameterless_layer_given_an_input_shape():
    class HandwrittenTanh:
        def forward(self, A):
            self.Z = np.tanh(A)
            return self.Z

        def backward(self, dLdZ):
            return dLdZ * (1 - self.Z**2)

    check_layer(HandwrittenTanh(), input_shape=(2, 3), max_examples=10)
    check_layer(HandwrittenTanh(), lambda A: F.tanh(A), input_shape=st.just((4,)), max_examples=10)


def test_check_layer_asks_for_a_shape_it_cannot_guess():
    class Opaque:
        def forward(self, A):
            return A

        def backward(self, dLdZ):
            return dLdZ

    with pytest.raises(ValueError, match="input_shape="):
        check_layer(Opaque())


# ---- the command line -------------------------------------------------------------------------------


def test_check_command_prints_a_table_and_exits_0(capsys):
    assert main(["check", "--op", "add", "--op", "relu", "--examples", "5", "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == [
        "op",
        "examples",
        "fd",
        "abs",
        "err",
        "fd",
        "rel",
        "err",
        "torch",
        "abs",
        "err",
        "torch",
        "rel",
        "err",
        "result",
    ]
    assert "add" in out and "relu" in out and "pass" in out
    # add: 5 in float64 and float32, and 2 (a third, rounded up) in complex128 and complex64; relu: 10
    assert "2 ops, 24 examples" in out and "0 failed" in out


def test_check_command_exits_1_on_a_failure(capsys, monkeypatch):
    monkeypatch.setattr(F.sin, "vjp", lambda g, ans, x: (F.mul(g, F.sin(x)),))
    assert main(["check", "--op", "sin", "--examples", "20", "--no-torch"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "1 failed" in out and "minimal example" in out


def test_check_command_refuses_unknown_ops(capsys):
    assert main(["check", "--op", "nosuch"]) == 2
    assert "unknown primitive" in capsys.readouterr().err


def test_importing_mytorch_does_not_import_hypothesis():
    code = "import sys, mytorch; assert 'hypothesis' not in sys.modules; mytorch.testing.check_primitive"
    subprocess.run([sys.executable, "-c", code], check=True)


_SEEDED_CHECKS_AROUND_IMPORTS = """
import importlib, sys
from mytorch.testing import check_primitive

def errors():
    reports = [check_primitive(op, seed=11, max_examples=30, second_order=False) for op in ("div", "matmul")]
    return [(r.examples, r.max_abs_error, r.max_rel_error) for r in reports]

before = errors()
sys.path.insert(0, sys.argv[1])
importlib.import_module("check_history_constants")
for name in ("mytorch.nn", "mytorch.optim", "mytorch.course.handout"):
    importlib.import_module(name)
print(errors() == before)
"""


def test_a_seeded_check_depends_on_its_seed_alone(tmp_path):
    # Hypothesis may draw numbers from the constants of the process's own modules, so which modules
    # were loaded changed what a seeded check drew (see mytorch.testing.reproducible). A new process:
    # the test session has loaded every module already.
    (tmp_path / "check_history_constants.py").write_text(
        "SCALES = (0.3141, 2.718, -1.4142, 7.25, 11, 13, 17, 19, 23, 29, 31, 1e-3, -0.5772, 4.669, 3, 2, 1)\n"
    )
    run = subprocess.run([sys.executable, "-c", _SEEDED_CHECKS_AROUND_IMPORTS, str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert run.stdout.strip() == "True", run.stdout + run.stderr


@pytest.mark.parametrize("z", [0j, -1 + 0j, -2.5 + 0j])
def test_no_tied_twin_where_the_forward_has_no_derivative(z):
    # x ** x at 0 (log 0) and on the negative real axis (the branch cut of log, where the value may
    # still be continuous: (-1) ** (-1) from either side) has no derivative for the finite
    # differences to take; at a smooth point the twin is judged.
    from mytorch.testing.cases import Example
    from mytorch.testing.checks import tied_twin

    assert tied_twin(F.power, Example((np.array(z), np.array(2.0 + 0j)))) is None
    assert tied_twin(F.power, Example((np.array(1.5 + 0.5j), np.array(2.0 + 0j)))) is not None

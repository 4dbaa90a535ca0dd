"""Law 8: checkers have power. Every mutant of the catalogue is rejected by `check_primitive` and
`check_layer` under their default settings (no dtype=, modes=, second_order= or params= given).

Each mutant is a rule that is right almost everywhere: the catalogue names the corner it is wrong
in. A mutant of a built-in primitive keeps that primitive's name, so the checker draws from its
built-in input spec, as it would for a student's rule.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from test_grading_attacks import ROOT, _replace_body

from mytorch import functional as F
from mytorch.course.handout import make_handout
from mytorch.primitive import constant, reduce_to
from mytorch.testing import GradientCheckError, check_layer, check_primitive

# ---- mutants of primitives: (name, the corner it is wrong in, the mutant) -------------------------


def _exp_wrong_for_negatives() -> F.Primitive:
    def vjp(g, ans, x):
        return (F.mul(g, F.mul(ans, constant(np.where(x < 0, 1.5, 1.0), x))),)

    return F.primitive("exp", np.exp, vjp=vjp, jvp=lambda t, ans, x: F.mul(t[0], ans), register=False)


def _mul_wrong_for_a_stretched_size_one_axis() -> F.Primitive:
    def first_not_sum(g, x):
        """g reduced to x's shape, taking the first element along stretched size-1 axes."""
        g = reduce_to(g, np.zeros(g.shape[g.ndim - np.ndim(x):]) if np.ndim(x) else np.zeros(()))
        index = tuple(slice(0, 1) if n == 1 and m > 1 else slice(None) for n, m in zip(np.shape(x), g.shape))
        return F.getitem(g, index) if index else g

    return F.primitive(
        "mul", np.multiply,
        vjp=(lambda g, ans, x, y: first_not_sum(F.mul(g, y), x),
             lambda g, ans, x, y: first_not_sum(F.mul(g, x), y)),
        jvp=lambda t, ans, x, y: F.add(F.mul(t[0], y), F.mul(x, t[1])), arity=2, register=False,
    )


def _tanh_wrong_in_float32() -> F.Primitive:
    def vjp(g, ans, x):
        slope = F.sub(1.0, F.mul(ans, ans))
        return (F.mul(g, F.mul(slope, 1.01 if x.dtype == np.float32 else 1.0)),)

    return F.primitive("tanh", np.tanh, vjp=vjp,
                       jvp=lambda t, ans, x: F.mul(t[0], F.sub(1.0, F.mul(ans, ans))), register=False)


def _mul_wrong_for_the_second_input() -> F.Primitive:
    return F.primitive(
        "mul", np.multiply,
        vjp=(lambda g, ans, x, y: reduce_to(F.mul(g, y), x),
             lambda g, ans, x, y: reduce_to(F.mul(F.mul(g, x), 1.1), y)),
        jvp=lambda t, ans, x, y: F.add(F.mul(t[0], y), F.mul(x, t[1])), arity=2, register=False,
    )


def _mul_wrong_for_the_same_array_twice() -> F.Primitive:
    def vjp(g, ans, x, y):
        if x is y:  # "the same array: one gradient is enough"
            return reduce_to(F.mul(g, y), x), None
        return reduce_to(F.mul(g, y), x), reduce_to(F.mul(g, x), y)

    def jvp(t, ans, x, y):
        return F.mul(t[0], y) if x is y else F.add(F.mul(t[0], y), F.mul(x, t[1]))

    return F.primitive("mul", np.multiply, vjp=vjp, jvp=jvp, arity=2, register=False)


def _mul_tangent_with_a_cross_term() -> F.Primitive:
    def jvp(t, ans, x, y):
        return F.add(F.add(F.mul(t[0], y), F.mul(x, t[1])), F.mul(t[0], t[1]))  # right if ẋ or ẏ is 0

    return F.primitive(
        "mul", np.multiply,
        vjp=lambda g, ans, x, y: (reduce_to(F.mul(g, y), x), reduce_to(F.mul(g, x), y)),
        jvp=jvp, arity=2, register=False,
    )


def _sin_with_a_numpy_function_inside_recorded_code() -> F.Primitive:
    # F.mul records, so the gradient is on the tape, but np.cos(x) is a constant there: the second
    # derivative through this rule is silently wrong.
    return F.primitive("sin", np.sin, vjp=lambda g, ans, x: (F.mul(g, np.cos(x)),),
                       jvp=lambda t, ans, x: F.mul(t[0], F.cos(x)), register=False)


def _mul_without_conj_for_complex_values() -> F.Primitive:
    # The analytic rule ȳ · y declared as a complex rule: right for real inputs, but PyTorch's
    # convention asks for ȳ · conj(y) once the values are complex.
    return F.primitive(
        "mul", np.multiply, complex="explicit",
        vjp=(lambda g, ans, x, y: reduce_to(F.mul(g, y), x), lambda g, ans, x, y: reduce_to(F.mul(g, x), y)),
        jvp=lambda t, ans, x, y: F.add(F.mul(t[0], y), F.mul(x, t[1])), arity=2, register=False,
    )


def _abs_with_the_conjugate_slope_for_complex_values() -> F.Primitive:
    def slope(x, ans):  # conj(z)/|z| where z/|z| belongs: right on the real axis only
        return F.div(F.conj(x), F.where(np.equal(ans, 0), 1, ans)) if np.iscomplexobj(x) else np.sign(x)

    return F.primitive(
        "abs", np.abs, complex="explicit",
        vjp=lambda g, ans, x: (F.mul(g, slope(x, ans)),),
        jvp=lambda t, ans, x: F.real(F.mul(F.conj(slope(x, ans)), t[0])) if np.iscomplexobj(x)
        else F.mul(t[0], np.sign(x)),
        register=False,
    )


def _exp_tangent_conjugated() -> F.Primitive:
    # A tangent rule that is not complex-linear: right for real tangents only.
    return F.primitive("exp", np.exp, complex="holomorphic", vjp=lambda g, ans, x: (F.mul(g, ans),),
                       jvp=lambda t, ans, x: F.mul(F.conj(t[0]), ans), register=False)


PRIMITIVE_MUTANTS = {
    "a complex rule without conj (mul)": _mul_without_conj_for_complex_values,
    "a complex rule with conj in the wrong place (abs)": _abs_with_the_conjugate_slope_for_complex_values,
    "a tangent rule that is not complex-linear (exp)": _exp_tangent_conjugated,
    "wrong only for negative inputs": _exp_wrong_for_negatives,
    "wrong only for a size-1 axis": _mul_wrong_for_a_stretched_size_one_axis,
    "wrong only in float32": _tanh_wrong_in_float32,
    "wrong only for the second input": _mul_wrong_for_the_second_input,
    "wrong only when two inputs are the same array": _mul_wrong_for_the_same_array_twice,
    "a tangent rule with a cross term": _mul_tangent_with_a_cross_term,
    "a raw NumPy function of an input inside recorded code": _sin_with_a_numpy_function_inside_recorded_code,
}


@pytest.mark.parametrize("corner", sorted(PRIMITIVE_MUTANTS))
def test_check_primitive_rejects_every_mutant_with_its_defaults(corner):
    with pytest.raises(GradientCheckError):
        check_primitive(PRIMITIVE_MUTANTS[corner]())


@pytest.mark.parametrize("name", ["exp", "mul", "tanh", "sin", "abs"])
def test_the_primitives_the_mutants_come_from_pass_with_the_same_defaults(name):
    assert check_primitive(name).examples > 0


# ---- mutants of layers ---------------------------------------------------------------------------


class ScaledLinear:
    """Z = (A Wᵀ + b) · scale: W and b get gradients; `scale` (not named W or b) never does."""

    def __init__(self, in_features: int = 3, out_features: int = 2) -> None:
        rng = np.random.default_rng(0)
        self.W = rng.uniform(-1, 1, (out_features, in_features))
        self.b = rng.uniform(-1, 1, out_features)
        self.scale = rng.uniform(0.5, 1.5, out_features)

    def forward(self, A: np.ndarray) -> np.ndarray:
        self.A = A
        return (A @ self.W.T + self.b) * self.scale

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        dLdY = dLdZ * self.scale
        self.dLdW = dLdY.T @ self.A
        self.dLdb = dLdY.sum(axis=0)
        return dLdY @ self.W


class Scale:
    """Z = A · gamma, whose only parameter has a name other than W or b and no gradient."""

    def __init__(self, features: int = 3) -> None:
        self.gamma = np.linspace(0.5, 1.5, features)
        self.in_features = features

    def forward(self, A: np.ndarray) -> np.ndarray:
        return A * self.gamma

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        return dLdZ * self.gamma


class BatchNormWithoutBiasGradient:
    """The handout's BatchNorm1d (BW, Bb, dLdBW, dLdBb), whose backward never sets dLdBb."""

    def __init__(self, num_features: int = 3, alpha: float = 0.9) -> None:
        self.alpha, self.eps = alpha, 1e-8
        self.BW = np.linspace(0.5, 1.5, num_features).reshape(1, num_features)
        self.Bb = np.linspace(-0.5, 0.5, num_features).reshape(1, num_features)
        self.in_features = num_features

    def forward(self, Z: np.ndarray) -> np.ndarray:
        self.Z, self.N = Z, Z.shape[0]
        self.M = Z.mean(axis=0, keepdims=True)
        self.V = Z.var(axis=0, keepdims=True)
        self.NZ = (Z - self.M) / np.sqrt(self.V + self.eps)
        return self.BW * self.NZ + self.Bb

    def backward(self, dLdBZ: np.ndarray) -> np.ndarray:
        self.dLdBW = np.sum(dLdBZ * self.NZ, axis=0, keepdims=True)
        dLdNZ = dLdBZ * self.BW
        inverse = 1 / np.sqrt(self.V + self.eps)
        dLdV = -0.5 * np.sum(dLdNZ * (self.Z - self.M) * inverse**3, axis=0, keepdims=True)
        dLdM = -np.sum(dLdNZ * inverse, axis=0, keepdims=True) - 2 / self.N * dLdV * np.sum(
            self.Z - self.M, axis=0, keepdims=True)
        return dLdNZ * inverse + dLdV * 2 * (self.Z - self.M) / self.N + dLdM / self.N


LAYER_MUTANTS = {
    "a parameter not named W or b whose gradient is never set, beside W and b": ScaledLinear,
    "a layer whose only parameter is not named W or b and has no gradient": Scale,
    "a BatchNorm whose bias gradient is never set": BatchNormWithoutBiasGradient,
}


@pytest.mark.parametrize("corner", sorted(LAYER_MUTANTS))
def test_check_layer_rejects_every_mutant_with_its_defaults(corner):
    layer = LAYER_MUTANTS[corner]()
    with pytest.raises(GradientCheckError):
        check_layer(layer, input_shape=(4, 3) if "BatchNorm" in corner else None)


class CompleteBatchNorm(BatchNormWithoutBiasGradient):
    def backward(self, dLdBZ: np.ndarray) -> np.ndarray:
        self.dLdBb = np.sum(dLdBZ, axis=0, keepdims=True)
        return super().backward(dLdBZ)


def test_the_complete_batchnorm_passes_with_the_same_defaults():
    assert check_layer(CompleteBatchNorm(), input_shape=(4, 3)).examples > 0


def test_the_complete_batchnorm_passes_on_a_constant_feature(monkeypatch):
    # Found by the deep profile: a constant column has variance 0, the layer divides by √ε, and
    # central differences at the usual step carry that amplified roundoff (1.7e-5 where 0 is right).
    from hypothesis import strategies as st

    from mytorch.testing import layers as layer_checks

    A, dLdZ = np.array([[-1.0, -1.0, -2.0]] * 4), np.array([[0.0, 0.0, -2.0]] * 4)
    monkeypatch.setattr(layer_checks, "float_arrays", lambda shape, dtype: st.just(dLdZ))
    assert check_layer(CompleteBatchNorm(), inputs=st.just(A), max_examples=1).examples == 1


# ---- the grader: each mutant handed in as a student's file ---------------------------------------
#
# A handout of the primitives and layers the catalogue's mutants come from; each mutant is the
# body a student writes into that handout's stub, graded by the teacher's `grade --submission`
# with the handout's settings (its number of examples, its time limit, a sandbox where one holds).
# Under the derandomized `ci` profile the teacher's seed is fixed; otherwise it is a fresh one, as
# a teacher's run draws it.

GRADED_OPS, GRADED_LAYERS = ["exp", "mul", "tanh", "sin"], ["BatchNorm1d", "RNNCell"]
RULES = "mytorch/rules/core.py"  # where exp, mul, tanh and sin keep their rules

_FIRST_NOT_SUM = """    def first_not_sum(g, x):  # x's shape; the first element of stretched axes
        g = reduce_to(g, np.zeros(g.shape[g.ndim - np.ndim(x):]) if np.ndim(x) else np.zeros(()))
        index = tuple(slice(0, 1) if n == 1 and m > 1 else slice(None)
                      for n, m in zip(np.shape(x), g.shape))
        return getitem(g, index) if index else g

    return first_not_sum(mul(g, y), x), first_not_sum(mul(g, x), y)
"""


def _reference_body(path: str, cls: str, edit: tuple[str, str]) -> str:
    """The reference's `cls.forward` body with one expression replaced (`edit`: old, new)."""
    import ast

    text = (ROOT / path).read_text(encoding="utf-8")
    tree = ast.parse(text)
    owner = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls)
    node = next(n for n in owner.body if isinstance(n, ast.FunctionDef) and n.name == "forward")
    statements = node.body[1:] if ast.get_docstring(node) is not None else node.body
    body = "".join(text.splitlines(keepends=True)[statements[0].lineno - 1: statements[-1].end_lineno])
    assert edit[0] in body, f"{cls}.forward no longer holds {edit[0]!r}"
    return body.replace(edit[0], edit[1])


# corner -> (item, file, function, class or None, the student's body)
GRADER_MUTANTS = {
    "wrong only for negative inputs":
        ("exp.vjp", RULES, "_exp_vjp", None, "    return (mul(g, mul(ans, np.where(x < 0, 1.5, 1.0))),)\n"),
    "wrong only for a size-1 axis": ("mul.vjp", RULES, "_mul_vjp", None, _FIRST_NOT_SUM),
    "wrong only in float32":
        ("tanh.vjp", RULES, "_tanh_vjp", None,
         "    slope = sub(1.0, mul(ans, ans))\n"
         "    return (mul(g, mul(slope, 1.01 if x.dtype == np.float32 else 1.0)),)\n"),
    "wrong only for the second input":
        ("mul.vjp", RULES, "_mul_vjp", None,
         "    return reduce_to(mul(g, y), x), reduce_to(mul(mul(g, x), 1.1), y)\n"),
    "wrong only when two inputs are the same array":
        ("mul.vjp", RULES, "_mul_vjp", None,
         "    if x is y:  # the same array: one gradient is enough\n"
         "        return reduce_to(mul(g, y), x), None\n"
         "    return reduce_to(mul(g, y), x), reduce_to(mul(g, x), y)\n"),
    "a tangent rule with a cross term":
        ("mul.jvp", RULES, "_mul_jvp", None,
         "    return add(add(mul(t[0], y), mul(x, t[1])), mul(t[0], t[1]))\n"),
    "a raw NumPy function of an input inside recorded code":
        ("sin.vjp", RULES, "_sin_vjp", None, "    return (mul(g, np.cos(x)),)\n"),
    "a parameter not named W or b whose gradient is never set":
        ("nn.RNNCell", "mytorch/nn/rnn.py", "forward", "RNNCell",
         lambda: _reference_body("mytorch/nn/rnn.py", "RNNCell",
                                 ("F.linear(h, self.weight_hh", "F.linear(h, np.asarray(self.weight_hh)"))),
    "a BatchNorm whose bias gradient is never set":
        ("nn.BatchNorm1d", "mytorch/nn/batchnorm.py", "forward", "BatchNorm1d",
         lambda: _reference_body("mytorch/nn/batchnorm.py", "BatchNorm1d",
                                 ("F.reshape(self.bias,", "F.reshape(np.asarray(self.bias),"))),
}
HONEST_RULES = {
    "_exp_vjp": "    return (mul(g, ans),)\n",
    "_mul_vjp": "    return reduce_to(mul(g, y), x), reduce_to(mul(g, x), y)\n",
    "_mul_jvp": "    return add(mul(t[0], y), mul(x, t[1]))\n",
    "_tanh_vjp": "    return (mul(g, sub(1.0, mul(ans, ans))),)\n",
    "_sin_vjp": "    return (mul(g, cos(x)),)\n",
}


@pytest.fixture(scope="module")
def handout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("catalogue") / "hw"
    make_handout(out, ops=GRADED_OPS, layers=GRADED_LAYERS)
    return out


def _hand_in(handout: Path, folder: Path, bodies: list[tuple[str, str, str | None, str]]) -> Path:
    """A copy of the handout with each (file, function, class, body) written into its stub."""
    student = folder / "student"
    shutil.copytree(handout, student)
    for file, function, owner, body in bodies:
        path = student / file
        path.write_text(_replace_body(path.read_text(encoding="utf-8"), function, body, owner),
                        encoding="utf-8")
    return student


def _grade(handout: Path, student: Path, folder: Path, items: list[str]) -> dict[str, dict]:
    """The teacher's grader, with the handout's settings, on `items` of `student`: name -> test."""
    report = folder / "results.json"
    command = [sys.executable, "-m", "mytorch", "grade", "--config", str(handout / "grading.json"),
               "--submission", str(student), "--items", ",".join(items), "--json", str(report)]
    if settings.default.derandomize:
        command += ["--seed", "0"]
    run = subprocess.run(command, cwd=folder, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=600)
    assert report.exists(), run.stdout + run.stderr
    results = json.loads(report.read_text(encoding="utf-8"))
    return {test["name"]: {**test, "seed": results.get("output", "")} for test in results["tests"]}


@pytest.mark.parametrize("corner", sorted(GRADER_MUTANTS))
def test_the_grader_rejects_every_mutant_with_its_defaults(corner, handout, tmp_path):
    item, file, function, owner, body = GRADER_MUTANTS[corner]
    student = _hand_in(handout, tmp_path, [(file, function, owner, body() if callable(body) else body)])
    test = _grade(handout, student, tmp_path, [item])[item]
    assert test["score"] < test["max_score"], f"{corner}: the grader passed it ({test['seed']})"


def test_the_honest_versions_of_the_mutated_items_pass_with_the_same_defaults(handout, tmp_path):
    bodies = [(RULES, function, None, body) for function, body in HONEST_RULES.items()]
    for layer, path in (("RNNCell", "mytorch/nn/rnn.py"), ("BatchNorm1d", "mytorch/nn/batchnorm.py")):
        bodies.append((path, "forward", layer, _reference_body(path, layer, ("", ""))))
    items = sorted({item for item, *_ in GRADER_MUTANTS.values()})
    tests = _grade(handout, _hand_in(handout, tmp_path, bodies), tmp_path, items)
    failed = {name: test["output"] for name, test in tests.items() if test["score"] < test["max_score"]}
    assert not failed, failed


# ---- grade --self-test: the catalogue's corners, made generic, among its wrong versions -----------

SELF_TEST_CATALOGUE = {  # (item, the self-test's wrong version) for each corner of the catalogue
    "wrong only for negative inputs": ("exp.vjp", "negative inputs"),
    "wrong only for a size-1 axis": ("mul.vjp", "size-1 axis"),
    "wrong only in float32": ("tanh.vjp", "float32"),
    "wrong only for the second input": ("mul.vjp", "second input"),
    "wrong only when two inputs are the same array": ("mul.vjp", "same array"),
    "a tangent rule with a cross term": ("mul.jvp", "cross term"),
    "a raw NumPy function of an input inside recorded code": ("sin.vjp", "NumPy inside"),
    "a parameter not named W or b whose gradient is never set": ("nn.RNNCell", "untrained parameter"),
    "a BatchNorm whose bias gradient is never set": ("nn.BatchNorm1d", "untrained bias"),
}


def test_the_self_test_judges_and_rejects_every_corner_of_the_catalogue():
    from mytorch.course.selftest import CORNER_LAYERS, CORNER_RULES, self_test

    layers = {"a parameter not named W or b whose gradient is never set",
              "a BatchNorm whose bias gradient is never set"}
    # The complex mutants are check_primitive's alone: handouts and their grader are real-valued.
    real_valued = {name for name in PRIMITIVE_MUTANTS if "complex" not in name}
    assert set(SELF_TEST_CATALOGUE) == set(GRADER_MUTANTS) == real_valued | layers
    items = sorted({item for item, _ in SELF_TEST_CATALOGUE.values()})
    outcomes = self_test(items, kinds=CORNER_RULES + CORNER_LAYERS, progress=False)  # its defaults
    verdicts = {(item, kind): result for item, kind, result in outcomes}
    for corner, pair in SELF_TEST_CATALOGUE.items():
        assert verdicts[pair] is not None, f"{corner}: {pair} was not applicable on the self-test's draws"
        assert not verdicts[pair].passed, f"{corner}: {pair} passed the self-test"
    passed = [pair for pair, result in verdicts.items() if result is not None and result.passed]
    assert not passed, f"wrong versions that pass: {passed}"


def test_check_layer_leaves_no_tape_when_an_example_is_abandoned_after_the_forward(monkeypatch):
    from hypothesis.errors import FailedHealthCheck, Unsatisfiable

    import mytorch
    from mytorch import nn
    from mytorch.testing import layers as layer_checks

    refused = lambda shape, dtype: layer_checks.st.just(np.zeros(shape, dtype)).filter(lambda _: False)  # noqa: E731
    monkeypatch.setattr(layer_checks, "float_arrays", refused)  # every dLdZ draw is abandoned
    layer = nn.Linear(3, 2)
    with pytest.raises((FailedHealthCheck, Unsatisfiable)):  # hypothesis gives up on the draws
        check_layer(layer, max_examples=3)
    assert mytorch.engine().operation_list == []
    layer.W[...] = 0.0  # not held by a forgotten record

"""The grader's pieces, in process: what crosses to the child and back, and the comparison."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import find, given, settings

from mytorch.course import child as grade_child
from mytorch.course.draws import READABLE_DIRECTIONS, draw_examples, simplicity
from mytorch.course.jobs import rule_job
from mytorch.course.judge import compare
from mytorch.testing import all_primitives, float_arrays
from mytorch.testing.cases import Example
from mytorch.testing.strategies import READABLE, TINY, floats


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            type(a) is type(b) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
        )
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, slice):
        return isinstance(b, slice) and _same((a.start, a.stop, a.step), (b.start, b.stop, b.step))
    return type(a) is type(b) and (a == b or a is b)


@pytest.mark.parametrize("op", sorted(all_primitives()))
def test_every_primitives_drawn_inputs_cross_to_the_child_unchanged(op: str) -> None:
    for example in draw_examples(op, 5, seed=1):
        arrays: dict = {}
        sent = grade_child.encode((example.inputs, example.params), arrays, "k")
        back = grade_child.decode(sent, arrays)
        assert _same(back[0], tuple(example.inputs)) and _same(back[1], dict(example.params)), op


def test_draws_depend_on_the_seed_only() -> None:
    first, again, other = (draw_examples("matmul", 4, seed) for seed in (3, 3, 4))
    assert all(_same(a.inputs, b.inputs) for a, b in zip(first, again))
    assert not all(_same(a.inputs, b.inputs) for a, b in zip(first, other))
    order = [simplicity(e) for e in first]
    assert order == sorted(order)  # the simplest first: the first failure shown is the simplest


HISTORY_OPS = ("matmul", "exp", "sum", "mul", "softmax")


def _fingerprint(examples: list) -> str:
    """The drawn inputs and parameters, bit for bit, as a short hash (comparable across processes)."""
    digest = hashlib.sha256()
    for example in examples:
        for value in example.inputs:
            if isinstance(value, np.ndarray):
                digest.update(repr((value.shape, value.dtype.str)).encode() + value.tobytes())
            else:
                digest.update(repr(value).encode())
        digest.update(repr(sorted(example.params.items())).encode())
    return digest.hexdigest()[:16]


def _history_draws(seed: int) -> dict[str, str]:
    return {op: _fingerprint(draw_examples(op, 4, seed)) for op in HISTORY_OPS}


def test_draws_do_not_depend_on_what_ran_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Hypothesis may draw a number from the constants in the source of the process's own modules: the
    # draws made with a seed once changed after a test file had imported more of mytorch (the self-test
    # then drew no example that showed a wrong matmul rule). Here a new module with constants of its
    # own is imported, other checks and draws run, and the global generators move.
    before = _history_draws(5)
    module = "course_history_constants"
    (tmp_path / f"{module}.py").write_text(
        "SCALES = (0.3141, 2.718, -1.4142, 7.25, 11, 13, 17, 19, 23, 29, 31, 1e-3, -0.5772, 4.669)\n"
        "NAMES = ('alpha', 'beta', 'gamma')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module(module)
    for name in ("mytorch.nn", "mytorch.optim", "mytorch.transforms", "mytorch.course.handout"):
        importlib.import_module(name)
    from mytorch.testing import check_primitive

    check_primitive("exp", max_examples=5, second_order=False)

    @settings(max_examples=20, deadline=None, database=None)
    @given(float_arrays())
    def unrelated(x: np.ndarray) -> None:
        pass

    unrelated()
    _history_draws(6)
    np.random.seed(123)
    random.seed(456)
    assert _history_draws(5) == before


_IN_A_NEW_PROCESS = """
import importlib, json, sys
for name in sys.argv[2:]:
    importlib.import_module(name)
sys.path.insert(0, sys.argv[1])
from test_grade_pieces import _history_draws
print(json.dumps(_history_draws(5)))
"""


def test_draws_are_the_same_in_every_process() -> None:
    # Another hash seed (set and dict orders) and other modules loaded first: the same draws.
    here = Path(__file__).resolve().parent
    results = []
    for hash_seed, first in (("0", []), ("1", ["mytorch.nn", "mytorch.optim", "mytorch.course.grade"])):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed,
               "PYTHONPATH": os.pathsep.join([str(here.parent), os.environ.get("PYTHONPATH", "")])}
        run = subprocess.run([sys.executable, "-c", _IN_A_NEW_PROCESS, str(here), *first], env=env,
                             capture_output=True, text=True, timeout=600, check=True)
        results.append(run.stdout.strip().splitlines()[-1])
    assert results[0] == results[1]
    assert results[0] == json.dumps(_history_draws(5))


@pytest.mark.parametrize(
    "op, shapes, kinds, broadcast",
    [
        ("add", [(3,), (2, 3)], "ff", True),  # an axis added
        ("add", [(2, 1), (2, 3)], "ff", True),  # a length-1 axis stretched
        ("add", [(2, 3), (2, 3)], "ff", False),
        ("add", [(2, 3), (1, 3)], "fi", False),  # only the int input is stretched
        ("matmul", [(1, 2), (4, 1, 2, 1)], "if", False),  # a matrix axis of 1 is no broadcast
        ("matmul", [(2, 3), (5, 3, 4)], "fi", True),  # summed over the batch of 5
        ("matmul", [(1, 2, 3), (5, 3, 4)], "fi", True),
        ("matmul", [(2, 3), (3, 4)], "ff", False),
        ("exp", [(1, 3)], "f", False),  # one input: nothing to broadcast against
    ],
)
def test_the_stretched_corner_is_what_the_forward_broadcasts(op, shapes, kinds, broadcast) -> None:
    from mytorch.course.draws import corners

    inputs = tuple(np.arange(1, np.prod(s) + 1).reshape(s).astype(np.float64 if k == "f" else np.int64)
                   for s, k in zip(shapes, kinds))
    assert corners(op)["a broadcast input"](Example(inputs)) is broadcast


@pytest.mark.parametrize("op, seed", [("linear", 0), ("linear", 3), ("matmul", 0), ("where", 1)])
def test_second_order_reaches_every_input_the_first_order_does(op: str, seed: int) -> None:
    # linear's bias is absent from its smallest draws: taking only those for second order once left
    # a bias gradient's second order unjudged (an averaged bias kept the second-order points).
    job = rule_job(op, "vjp", 4, seed, [])
    inputs = lambda task: {name.rsplit("_", 1)[1] for name in task["b"]}  # noqa: E731
    first = set().union(*(inputs(task) for task in job.tasks))
    second = set().union(*(inputs(task) for task in job.tasks if task["second"]))
    assert first and second == first


def test_the_plain_case_comes_before_the_corners() -> None:
    # A missing transpose shows on a (2, 3) @ (3, 2) product; on 1-D @ 1-D it hides as a shape error.
    shapes = [((3,), (3,)), ((1, 1), (1, 1)), ((2, 2, 3), (3, 2)), ((2, 3), (3, 2)), ((3,), (3, 2))]
    examples = [Example((np.ones(a), np.ones(b))) for a, b in shapes]
    assert [np.shape(e.inputs[0]) for e in sorted(examples, key=simplicity)][:2] == [(2, 3), (1, 1)]
    drawn = draw_examples("matmul", 12, seed=0)
    assert [simplicity(e) for e in drawn] == sorted(simplicity(e) for e in drawn)


@settings(max_examples=200, deadline=None)
@given(floats(-3.0, 3.0), floats(0.1, 4.0))
def test_drawn_numbers_keep_away_from_tiny_magnitudes(x: float, y: float) -> None:
    assert x == 0.0 or abs(x) >= TINY
    assert 0.1 <= y <= 4.0


def test_a_failing_example_shrinks_to_readable_numbers() -> None:
    # hypothesis shrinks towards the readable values: a failure reads 1 or 0.5, not 1.1e-169
    assert find(float_arrays((3,)), lambda a: bool(np.any(a > 0.1))).tolist() in (
        [[x if i == k else 0.0 for i in range(3)] for k in range(3) for x in READABLE if x > 0.1])


def test_the_shown_example_gives_the_adjoint_and_directions_the_rule_got() -> None:
    job = rule_job("div", "vjp", examples=3, seed=0, stand_in=[])
    assert any("ȳ, the output's adjoint your backward rule got: [" in shown for shown in job.shown)
    tangent = rule_job("exp", "jvp", examples=2, seed=0, stand_in=[])
    assert any("ẋ0, the tangent of input 0 your tangent rule got" in shown for shown in tangent.shown)
    assert set(np.concatenate([job.arrays[t["a"]].ravel() for t in job.tasks])) <= set(READABLE_DIRECTIONS)


def test_compare_explains_the_classic_mistakes() -> None:
    expected = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert compare(expected + 1e-12, expected, (1e-9, 1e-9)) == ""
    assert "sign flipped" in compare(-expected, expected, (1e-9, 1e-9))
    assert "times 1/4: a mean where a sum belongs" in compare(expected / 4, expected, (1e-9, 1e-9))
    assert "times 3: a sum where a mean belongs" in compare(expected * 3, expected, (1e-9, 1e-9))
    assert "times 0.37 (a constant factor" in compare(expected * 0.37, expected, (1e-9, 1e-9))
    assert "it is zero" in compare(np.zeros((2, 2)), expected, (1e-9, 1e-9))
    assert "broadcast shape" in compare(np.ones((3, 2, 2)), expected, (1e-9, 1e-9))
    assert compare(None, expected, (1e-9, 1e-9)) == "is missing"
    assert "at index (1, 0)" in compare(expected + np.array([[0, 0], [1, 0]]), expected, (1e-9, 1e-9))


def test_the_child_refuses_what_it_cannot_send() -> None:
    with pytest.raises(TypeError, match="cannot send"):
        grade_child.encode(object(), {}, "k")


def test_a_ratio_on_one_element_is_not_called_a_mean() -> None:
    # x² = 0.25 on a single element is not "a mean over four": without inputs to explain it, say nothing
    assert "mean" not in compare(np.array([0.25]), np.array([1.0]), (1e-9, 1e-9))
    x = np.array([0.5])
    assert "times input 1²" in compare(np.array([0.25]), np.array([1.0]), (1e-9, 1e-9), [("input 1", x)])
    # ... but a bias gradient averaged over a batch of 3 is: ȳ has 3 rows
    said = compare(np.array([2 / 3]), np.array([2.0]), (1e-9, 1e-9), [("ȳ", np.ones((3, 1)))])
    assert "times 1/3: a mean where a sum belongs (over 3 elements)?" in said


@pytest.mark.parametrize("mistake, got, says", [
    ("multiplying where dividing belongs", lambda g, x, y: g * y, "times input 1²: multiplying by input 1"),
    ("dividing twice", lambda g, x, y: g / y**2, "divided by input 1: a factor of input 1 left out"),
    ("ȳ left out", lambda g, x, y: 1 / y, "divided by ȳ: a factor of ȳ left out"),
    ("a factor of two", lambda g, x, y: 2 * g / y, "times 2: a sum where a mean belongs"),
])
def test_the_hint_names_the_mistake_in_a_division_rule(mistake, got, says) -> None:
    rng = np.random.default_rng(0)
    x, y, g = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5), rng.choice([-2.0, -1.0, 0.5, 1.5], 5)
    named = [("ȳ", g), ("input 0", x), ("input 1", y), ("the output y", x / y)]
    assert says in compare(got(g, x, y), g / y, (1e-9, 1e-9), named), mistake


def test_a_wrong_division_rule_is_told_what_it_did(monkeypatch: pytest.MonkeyPatch) -> None:
    # The whole path in process: the child's answers for a rule that multiplies where it divides.
    import mytorch.functional as F
    from mytorch.course.assignment import Config
    from mytorch.course.grader import Grader, _primitive_modules
    from mytorch.course.judge import judge
    from mytorch.course.launch import ChildRun

    grader = Grader(Config({"div.vjp": 1.0}, examples=6), {"div.vjp": 1.0}, seed=3)
    job = grader.job("div.vjp")
    job.ready()
    right = F.div.vjp
    monkeypatch.setattr(F.div, "vjp", (lambda g, ans, x, y: F.reduce_to(F.mul(g, y), x), right[1]))
    out, reports = grade_child.run_tasks({"tasks": job.tasks, "modules": _primitive_modules()}, job.arrays)
    result = judge(job, ChildRun(out, reports, "ok", "", 0.0), 1.0)
    assert not result.passed, result.detail
    assert "multiplying by input 1 where dividing belongs?" in result.detail, result.detail
    assert "ȳ, the output's adjoint your backward rule got" in result.detail

"""The assignment scaffold: `python -m mytorch handout` makes a student copy, `grade` grades it.

Handouts are written into tmp_path and run in a subprocess with the handout first on the path
(PYTHONPATH=DIR, cwd=DIR), never pip-installed. "The rest" of a handout (what a fresh copy must
get full marks on) is a fixed set of items that were not stubbed, graded with `--items`.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mytorch
from mytorch.course.assignment import LAYERS, Config, rule_hint, split_item
from mytorch.course.handout import HandoutError, make_handout, plan, rule_sites, stubbed_sources
from mytorch.course.judge import Result
from mytorch.course.report import table, to_json
from mytorch.testing import all_primitives

ROOT = Path(mytorch.__file__).resolve().parent.parent
PACKAGE = ROOT / "mytorch"
STUBBED = ["exp.vjp", "exp.jvp", "matmul.vjp", "matmul.jvp", "linear.vjp", "linear.jvp",
           "maximum.vjp", "minimum.vjp", "maximum.jvp", "minimum.jvp", "nn.Linear", "nn.GRUCell"]
# Not stubbed, so full marks in a fresh handout. nn.RNNCell is built on linear, whose backward
# rule is a stub there: the grader stands in for graded rules, so it passes all the same.
REST = ["add.vjp", "add.jvp", "tanh.vjp", "sum.vjp", "getitem.vjp", "nn.Tanh", "nn.RNNCell"]


def mytorch_cli(*args: str, cwd: Path, path: Path) -> subprocess.CompletedProcess:
    """`python -m mytorch ARGS` with `path` first on sys.path."""
    env = {**os.environ, "PYTHONPATH": str(path)}
    return subprocess.run([sys.executable, "-m", "mytorch", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def handout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fresh") / "hw"
    the_plan = make_handout(out, ops=["exp", "matmul", "linear", "maximum"], layers=["Linear", "GRUCell"])
    assert the_plan.items == STUBBED
    return out


# ---- the fresh handout ----------------------------------------------------------------------------


def test_fresh_handout_is_a_working_package_with_stubs(handout: Path) -> None:
    check = python(
        "import mytorch, numpy as np\n"
        "from mytorch import functional as F, nn\n"
        "print(mytorch.__file__)\n"
        "print(F.exp(np.array([0.0, 1.0])), F.mul_backward(np.ones(2), np.ones(2), np.full(2, 3.0)))\n"
        "stubs = (lambda: F.exp_backward(np.ones(2), np.ones(2)), lambda: nn.Linear(3, 2)(np.ones((1, 3))))\n"
        "for call in stubs:\n"
        "    try:\n        call()\n    except NotImplementedError as error:\n        print('stub:', error)\n",
        handout,
    )
    assert check.returncode == 0, check.stderr
    lines = check.stdout.splitlines()
    assert lines[0] == str(handout / "mytorch" / "__init__.py")
    assert "[1.         2.71828183]" in lines[1]  # forward rules and the other primitives' rules intact
    assert lines[2] == f"stub: exp backward rule (vjp) is yours to write: {rule_hint('exp', 'vjp')}"
    assert lines[3].startswith("stub: nn.Linear.forward is yours to write: Z = A Wᵀ + b")
    for path in (handout / "mytorch").rglob("*.py"):
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    assert not (handout / "mytorch" / "handout.py").exists() and not (handout / "mytorch" / "bench").exists()
    assert not (handout / "mytorch" / "course" / "handout.py").exists()
    assert (handout / "grading.json").exists()
    assert not list(handout.glob("*.npz")), "a handout carries no reference outputs"
    readme = (handout / "README.md").read_text(encoding="utf-8")  # what a student reads: what to hand in
    assert "Hand in the files you edit: `mytorch/nn/linear.py`, `mytorch/nn/rnn.py`" in readme
    help_text = mytorch_cli("--help", cwd=handout, path=handout).stdout
    commands = {line.split()[0] for line in help_text.splitlines() if re.match(r"    \w", line)}
    assert {"demo", "check", "grade"} <= commands and not {"handout", "bench"} & commands


def test_students_pytest_runs_the_assignment_not_the_reference_doctests(handout: Path) -> None:
    settings = (handout / "setup.cfg").read_text(encoding="utf-8")
    assert "testpaths = tests\n" in settings and "--doctest-modules" not in settings


def test_the_demo_in_a_fresh_handout_says_what_to_write(handout: Path, tmp_path: Path) -> None:
    demo = mytorch_cli("demo", "--epochs", "1", "--out", str(tmp_path), cwd=tmp_path, path=handout)
    assert demo.returncode == 1 and "Traceback" not in demo.stderr, demo.stderr
    assert "the demo needs rules still to write" in demo.stderr and "is yours to write" in demo.stderr
    assert "exp.vjp, exp.jvp, matmul.vjp" in demo.stderr  # the handout's items, from its grading.json


def test_stubs_replace_only_their_code(handout: Path) -> None:
    reference = (PACKAGE / "rules" / "core.py").read_text(encoding="utf-8")
    student = (handout / "mytorch" / "rules" / "core.py").read_text(encoding="utf-8")
    assert "yours to write" not in reference  # the reference is never touched
    assert "vjp=lambda g, ans, x: (mul(g, ans),)" in reference
    assert "vjp=lambda g, ans, x: (mul(g, ans),)" not in student and "vjp=_exp_vjp," in student
    assert "def _exp_vjp(g, ans, x):" in student
    assert "swapaxes(b2, -1, -2)" not in student  # matmul's backward rule is gone, not commented out
    assert student.count("yours to write") == 8  # exp 2, matmul 2, linear 2, maximum/minimum 2
    untouched = "log = primitive(\n    \"log\", np.log,\n    vjp=lambda g, ans, x: (div(g, x),),"
    assert untouched in reference and untouched in student


def test_fresh_handout_scores_zero_on_stubs_and_full_marks_on_the_rest(handout: Path, tmp_path: Path) -> None:
    stubs = str(tmp_path / "stubs.json")
    result = mytorch_cli("grade", "--examples", "3", "--json", stubs, cwd=handout, path=handout)
    assert result.returncode == 0, result.stderr  # grading ran: 0, whatever the marks
    report = json.loads((tmp_path / "stubs.json").read_text(encoding="utf-8"))
    assert [t["name"] for t in report["tests"]] == STUBBED
    assert {t["result"] for t in report["tests"]} == {"not implemented"}
    assert report["score"] == 0 and report["max_score"] == len(STUBBED)
    assert re.search(r"\nmatmul\.vjp +0/1  not implemented\n", result.stdout)

    assert result.stdout.strip().splitlines()[-1] == json.dumps({"scores": dict.fromkeys(STUBBED, 0.0)})
    rest = mytorch_cli("grade", "--examples", "3", "--items", ",".join(REST), "--json",
                       str(tmp_path / "rest.json"), cwd=handout, path=handout)
    assert rest.returncode == 0, rest.stdout + rest.stderr
    report = json.loads((tmp_path / "rest.json").read_text(encoding="utf-8"))
    assert report["score"] == report["max_score"] == len(REST)
    assert all(t["status"] == "passed" for t in report["tests"])


def test_the_reference_package_gets_full_marks(handout: Path, tmp_path: Path) -> None:
    # Run from tmp_path with the repository first on the path: the reference's code, the handout's config.
    config, json_path = str(handout / "grading.json"), str(tmp_path / "r.json")
    result = mytorch_cli("grade", "--config", config, "--examples", "3", "--submission", str(ROOT), "--json",
                         json_path, cwd=tmp_path, path=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["score"] == report["max_score"] == len(STUBBED)


# ---- a handout filled in by a student, with one classic bug ---------------------------------------


def _body_lines(text: str, function: str, owner: str | None = None) -> tuple[int, int]:
    """0-based [start, end) lines of a function's statements after its docstring."""
    tree = ast.parse(text)
    if owner:
        tree = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == owner)
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function)
    body = node.body[1:] if ast.get_docstring(node) is not None else node.body
    return body[0].lineno - 1, body[-1].end_lineno


def fill_in(copy: Path, file: str, function: str, owner: str | None = None, written: str | None = None,
            mistake: tuple[str, str] | None = None, body: str | None = None) -> None:
    """Write a stubbed function as the student would: `written` or the reference's body (with a
    mistake), or `body`."""
    if body is None:
        body = written
        if body is None:
            reference = (ROOT / file).read_text(encoding="utf-8")
            start, end = _body_lines(reference, function, owner)
            body = "".join(reference.splitlines(keepends=True)[start:end])
        if mistake:
            assert mistake[0] in body
            body = body.replace(*mistake)
    target = copy / file
    lines = target.read_text(encoding="utf-8").splitlines(keepends=True)
    start, end = _body_lines("".join(lines), function, owner)
    lines[start:end] = [body]
    target.write_text("".join(lines), encoding="utf-8")


@pytest.fixture(scope="module")
def to_fill(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("to_fill") / "hw"
    make_handout(out, ops=["matmul", "linear"], layers=["Linear"], rules=["vjp"])
    return out


# What a student writes in the stubs of the per-input rules (one function returning every gradient).
MATMUL_VJP = """    return (
        _demoted(matmul(_promoted(g, a, b), swapaxes(_as_column(b), -1, -2)), a, -2),
        _demoted(matmul(swapaxes(_as_row(a), -1, -2), _promoted(g, a, b)), b, -1),
    )
"""
LINEAR_VJP = """    grad_W = reduce_to(matmul(transpose(_rows(g)), _rows(x)), W)
    return reduce_to(matmul(g, W), x), grad_W, reduce_to(g, b)
"""
FILES = {"matmul.vjp": ("mytorch/rules/core.py", "_matmul_vjp", None, MATMUL_VJP),
         "linear.vjp": ("mytorch/rules/core.py", "_linear_vjp", None, LINEAR_VJP),
         "nn.Linear": ("mytorch/nn/linear.py", "forward", "Linear", None)}
BUGS = {  # bug: (item, how the student's code differs from the reference, what the report must say)
    # Non-square operands make the wrong product fail to align: the report shows the crash on the
    # smallest such input (square ones would give wrong values instead).
    "missing transpose in matmul's backward": (
        "matmul.vjp", {"mistake": ("swapaxes(_as_column(b), -1, -2)", "_as_column(b)")}, "do not align", 0.0),
    "bias gradient not summed over the batch": (
        "linear.vjp", {"mistake": ("reduce_to(g, b)", "g")}, "has shape", 0.0),  # the walk refuses it
    "bias gradient averaged over the batch": (
        "linear.vjp", {"mistake": ("reduce_to(g, b)", "reduce_to(mean(_rows(g), axis=0), b)")}, "expected",
        0.7 * 2 / 3),
    # (NumPy on the tracked W records: `A @ self.W.T` is right; leaving the tracked array is not.)
    "a forward computed with NumPy, off the tape": (
        "nn.Linear", {"body": "        return np.asarray(A) @ np.asarray(self.W).T + (0 if self.b is None "
                              "else np.asarray(self.b))\n"},
        "is forward computed with NumPy", 0.0),
}


def fill_all(copy: Path, bug: str | None = None) -> str | None:
    buggy_item, change = (BUGS[bug][0], BUGS[bug][1]) if bug else (None, {})
    for item, (file, function, owner, written) in FILES.items():
        fill_in(copy, file, function, owner, written, **(change if item == buggy_item else {}))
    return buggy_item


@pytest.mark.parametrize("bug", list(BUGS))
def test_a_classic_bug_loses_exactly_its_item(bug: str, to_fill: Path, tmp_path: Path) -> None:
    copy = tmp_path / "hw"
    shutil.copytree(to_fill, copy)
    buggy_item = fill_all(copy, bug)
    earned = BUGS[bug][3]
    result = mytorch_cli("grade", "--examples", "4", "--json", str(tmp_path / "r.json"),
                         "--fail-under", "100%", cwd=copy, path=copy)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    failed = [t for t in report["tests"] if t["status"] == "failed"]
    assert [t["name"] for t in failed] == [buggy_item], result.stdout
    assert report["score"] == pytest.approx(report["max_score"] - 1 + earned)
    assert failed[0]["score"] == pytest.approx(earned)
    assert failed[0]["result"] == ("partial" if earned else "FAIL")
    assert BUGS[bug][2] in failed[0]["output"], failed[0]["output"]
    assert "on Example(" in failed[0]["output"] or "case " in failed[0]["output"]  # the failing input, shown
    assert f"\n{buggy_item}: {failed[0]['result']}\n" in result.stdout  # the table's details show it too


# ---- the pieces, in process --------------------------------------------------------------------------


def test_every_primitive_rule_and_every_gradable_layer_can_be_stubbed() -> None:
    sites = rule_sites(PACKAGE)
    assert set(sites) == {f"{op}.{rule}" for op in all_primitives() for rule in ("vjp", "jvp")}
    the_plan = plan(PACKAGE, ["all"], ["all"])
    assert len(the_plan.items) == 2 * len(all_primitives()) + len(LAYERS)
    for path, text in stubbed_sources(the_plan.sites).items():
        compile(text, str(path), "exec")
        assert text.count("NotImplementedError(") >= sum(site.source.path == path for site in the_plan.sites)


def test_shared_rules_come_together() -> None:
    family = plan(PACKAGE, ["maximum"], [])
    assert family.items == ["maximum.vjp", "minimum.vjp", "maximum.jvp", "minimum.jvp"]
    assert any("share one piece of code" in note for note in family.notes)
    caller = plan(PACKAGE, ["cross_entropy"], [], rules=["vjp"])  # its jvp calls the vjp's function
    assert caller.items == ["cross_entropy.vjp", "cross_entropy.jvp"]
    assert any("calls _cross_entropy_vjp" in note for note in caller.notes)
    assert plan(PACKAGE, ["exp"], [], rules=["jvp"]).items == ["exp.jvp"]


def test_bad_requests_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(HandoutError, match="unknown primitive 'expp'.*exp"):
        plan(PACKAGE, ["expp"], [])
    with pytest.raises(HandoutError, match="nn.Dropout has no grading spec"):
        plan(PACKAGE, [], ["Dropout"])
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(HandoutError, match="not empty"):
        make_handout(tmp_path / "taken", ops=["exp"], layers=[])
    with pytest.raises(ValueError, match="not an item"):
        split_item("matmul.backward")
    (tmp_path / "grading.json").write_text(json.dumps({"items": {"exp.vjpp": 1}}))
    with pytest.raises(ValueError, match="not an item"):
        Config.load(tmp_path / "grading.json")


def test_table_and_json_shapes() -> None:
    results = [Result("exp.vjp", 2.0, 2.0, "pass"),
               Result("nn.Linear", 0.5, 1.0, "partial", "output at index (0,)",
                      parts={"output": (0.5, True), "gradients": (0.5, False)}, visibility="after_due_date")]
    text = table(results)
    assert "exp.vjp          2/2  pass" in text and "total          2.5/3" in text
    assert "nn.Linear      0.5/1  partial (50%: output ok, gradients wrong)" in text
    assert "\nnn.Linear: partial\n  output at index (0,)" in text
    report = to_json(results, 1.234)
    assert report["score"] == 2.5 and report["max_score"] == 3.0 and report["execution_time"] == 1.23
    assert report["tests"][1] == {"name": "nn.Linear", "score": 0.5, "max_score": 1.0, "status": "failed",
                                  "result": "partial", "output": "output at index (0,)",
                                  "visibility": "after_due_date",
                                  "parts": {"output": {"share": 0.5, "passed": True},
                                            "gradients": {"share": 0.5, "passed": False}}}
    assert np.isclose(sum(t["score"] for t in report["tests"]), report["score"])


def test_a_submission_is_graded_with_the_teachers_grader(to_fill: Path, tmp_path: Path) -> None:
    student = tmp_path / "student"
    shutil.copytree(to_fill, student)
    fill_all(student, "bias gradient averaged over the batch")
    # What a student might try: a grader that passes everything. Only the files they edit count.
    grade_py = student / "mytorch" / "course" / "grade.py"
    honest = "return 1 if below(sum(r.points for r in results), sum(r.max_points for r in results)) else 0"
    assert honest in grade_py.read_text(encoding="utf-8")
    grade_py.write_text(grade_py.read_text(encoding="utf-8").replace(honest, "return 0"), encoding="utf-8")
    fooled = mytorch_cli("grade", "--examples", "2", "--fail-under", "100%", cwd=student, path=student)
    assert fooled.returncode == 0  # in their copy

    config = str(to_fill / "grading.json")
    # (a batch of one or no bias hides this bug: a fixed teacher's seed keeps the test deterministic)
    result = mytorch_cli("grade", "--config", config, "--examples", "6", "--seed", "5", "--submission",
                         str(student), "--json", str(tmp_path / "r.json"), "--fail-under", "100%",
                         cwd=tmp_path, path=ROOT)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert [t["name"] for t in report["tests"] if t["status"] == "failed"] == ["linear.vjp"]
    assert report["output"] == "graded with seed 5"
    nowhere = str(tmp_path / "nowhere")
    nothing = mytorch_cli("grade", "--config", config, "--submission", nowhere, cwd=tmp_path, path=ROOT)
    assert nothing.returncode == 2 and f"{nowhere} does not exist: a submission is a folder" in nothing.stderr
    # The grading parent must hold the reference: a handout's copy refuses to grade submissions.
    inside = mytorch_cli("grade", "--submission", str(student), cwd=to_fill, path=to_fill)
    assert inside.returncode == 2 and "reference" in inside.stderr


def test_visibility_and_points_round_trip(tmp_path: Path) -> None:
    config = Config({"exp.vjp": 2.0, "nn.Linear": 1.0}, visibility={"nn.Linear": "hidden"})
    config.save(tmp_path / "grading.json")
    saved = json.loads((tmp_path / "grading.json").read_text(encoding="utf-8"))
    assert saved["items"] == {"exp.vjp": 2.0, "nn.Linear": {"points": 1.0, "visibility": "hidden"}}
    loaded = Config.load(tmp_path / "grading.json")
    assert loaded.items == config.items and loaded.visibility == {"nn.Linear": "hidden"}
    saved["items"]["exp.vjp"] = {"points": 1, "visibility": "secret"}
    (tmp_path / "grading.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="after_due_date"):
        Config.load(tmp_path / "grading.json")

"""What a student who wants marks without writing the rules would try, against the teacher's grader.

Each attack is a submission (a filled-in copy of a small handout) graded by the teacher's
`grade --submission` (this repository's mytorch as the parent, the handout's config): the honest
submission gets full marks; each attack gets at most what it honestly earned, a non-zero exit
code, and the JSON the grader wrote; the grader finishes within its limits and leaves no
temporary directories behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mytorch
from mytorch.course.handout import make_handout

ROOT = Path(mytorch.__file__).resolve().parent.parent
RULES_FILE = Path(mytorch.functional.exp.defined_in.replace(".", "/") + ".py")  # where exp's rules live
ITEMS = ["exp.vjp", "exp.jvp", "nn.Softmax"]
HONEST = {
    "_exp_vjp": "    return (mul(g, ans),)\n",
    "_exp_jvp": "    return mul(t[0], ans)\n",
    "forward": None,  # nn.Softmax: the reference's body
}
FAKE = {"score": 100.0, "max_score": 3.0, "tests": []}
SEED = 11
TIME_LIMIT = 8.0  # seconds per item; generous for a loaded machine, small enough for CI


@pytest.fixture(scope="module")
def blank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("attacks") / "hw"
    assert make_handout(out, ops=["exp"], layers=["Softmax"]).items == ITEMS
    return out


def _replace_body(text: str, function: str, body: str, owner: str | None = None) -> str:
    import ast

    tree = ast.parse(text)
    if owner:
        tree = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == owner)
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function)
    statements = node.body[1:] if ast.get_docstring(node) is not None else node.body
    lines = text.splitlines(keepends=True)
    lines[statements[0].lineno - 1 : statements[-1].end_lineno] = [body]
    return "".join(lines)


def submission(
    blank: Path,
    tmp_path: Path,
    *,
    rules: dict[str, str] | None = None,
    softmax: str | None = None,
    prelude: str = "",
) -> Path:
    """A filled-in copy: honest bodies unless given; `prelude` goes at the end of the rules' file."""
    student = tmp_path / "student"
    shutil.copytree(blank, student)
    functional = student / RULES_FILE
    text = functional.read_text(encoding="utf-8")
    for function, body in {**{k: v for k, v in HONEST.items() if k != "forward"}, **(rules or {})}.items():
        text = _replace_body(text, function, body)
    functional.write_text(text + prelude, encoding="utf-8")
    activation = student / "mytorch" / "nn" / "activation.py"
    if softmax is None:
        reference = (ROOT / "mytorch" / "nn" / "activation.py").read_text(encoding="utf-8")
        import ast

        tree = ast.parse(reference)
        cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "Softmax")
        node = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "forward")
        statements = node.body[1:] if ast.get_docstring(node) is not None else node.body
        softmax = "".join(
            reference.splitlines(keepends=True)[statements[0].lineno - 1 : statements[-1].end_lineno]
        )
    activation.write_text(
        _replace_body(activation.read_text(encoding="utf-8"), "forward", softmax, "Softmax"), encoding="utf-8"
    )
    return student


def grade(
    blank: Path, student: Path, tmp_path: Path, *items: str, seed: int | None = SEED
) -> tuple[subprocess.CompletedProcess, dict, float]:
    """The teacher's grader on `student`; its own temporary directories go to a fresh TMPDIR.
    A fixed teacher's seed keeps the tests deterministic (three examples drawn from a fresh seed
    can all be zeros, where exp's derivative is 1)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    report = tmp_path / "results.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(scratch)}
    command = [
        sys.executable,
        "-m",
        "mytorch",
        "grade",
        "--config",
        str(blank / "grading.json"),
        "--submission",
        str(student),
        "--examples",
        "3",
        "--time-limit",
        str(TIME_LIMIT),
        "--json",
        str(report),
        "--fail-under",  # exit 1 below full marks: the exit code is the grader's too
        "100%",
    ]
    if items:
        command += ["--items", ",".join(items)]
    if seed is not None:
        command += ["--seed", str(seed)]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    assert not list(scratch.iterdir()), f"left behind: {list(scratch.iterdir())}"
    assert report.exists(), result.stdout + result.stderr
    return result, json.loads(report.read_text(encoding="utf-8")), seconds


def scores(report: dict) -> dict[str, float]:
    return {t["name"]: t["score"] for t in report["tests"]}


def assert_grader_wrote(result: subprocess.CompletedProcess, report: dict) -> None:
    """The JSON and the exit code are the grader's: they agree with its table and Autolab line."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert report != FAKE and report["score"] == pytest.approx(sum(scores(report).values()))
    assert report["score"] < report["max_score"]
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line == {"scores": scores(report)}


def test_the_honest_submission_gets_full_marks(blank: Path, tmp_path: Path) -> None:
    result, report, _ = grade(blank, submission(blank, tmp_path), tmp_path, seed=None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert report["score"] == report["max_score"] == len(ITEMS)
    assert report["output"].startswith("graded with seed ")  # a fresh draw, not the visible seed
    config = json.loads((blank / "grading.json").read_text(encoding="utf-8"))
    assert report["output"] != f"graded with seed {config['seed']}"


def test_sys_exit_in_a_rule(blank: Path, tmp_path: Path) -> None:
    student = submission(blank, tmp_path, rules={"_exp_vjp": "    import sys\n    sys.exit(0)\n"})
    result, report, _ = grade(blank, student, tmp_path, "exp.vjp", "exp.jvp")
    assert_grader_wrote(result, report)
    assert scores(report) == {"exp.vjp": 0.0, "exp.jvp": 1.0}
    assert "SystemExit" in report["tests"][0]["output"] and RULES_FILE.name in report["tests"][0]["output"]


def test_rebinding_the_checkers_comparison(blank: Path, tmp_path: Path) -> None:
    # In the child, every comparison in reach says "equal"; the verdict is not made there.
    patch = (
        "    print('exp.vjp  1/1  pass'); print('{\"scores\": {\"exp.vjp\": 1.0}}')\n"
        "    import mytorch.grade as grade, mytorch.testing.checks as checks\n"
        "    grade.compare = lambda *args, **kwargs: ''\n"
        "    checks._Comparison.__post_init__ = lambda self: setattr(self, 'ok', True)\n"
        "    return (g,)\n"
    )
    student = submission(blank, tmp_path, rules={"_exp_vjp": patch})
    result, report, _ = grade(blank, student, tmp_path, "exp.vjp")
    assert_grader_wrote(result, report)
    assert scores(report) == {"exp.vjp": 0.0}


IMPORT_HOOK = """

import sys as _sys


class _Wrap:
    def find_spec(self, name, path=None, target=None):
        if name != "mytorch.grade":
            return None
        _sys.meta_path.remove(self)
        import importlib.util
        spec = importlib.util.find_spec(name)
        real = spec.loader.exec_module

        def exec_module(module):
            real(module)
            for function in ("grade_item", "judge"):
                original = getattr(module, function)
                def full(*args, _original=original, **kwargs):
                    result = _original(*args, **kwargs)
                    result.points, result.status = result.max_points, "pass"
                    return result
                full.__name__ = "full"
                setattr(module, function, full)

        spec.loader.exec_module = exec_module
        return spec


_sys.meta_path.insert(0, _Wrap())
"""


def test_an_import_hook_wrapping_the_grade_functions(blank: Path, tmp_path: Path) -> None:
    student = submission(blank, tmp_path, rules={"_exp_vjp": "    return (g,)\n"}, prelude=IMPORT_HOOK)
    # The hook works where the student's code imports the grader (their own copy)...
    own = subprocess.run(
        [sys.executable, "-c", "import mytorch, mytorch.grade as g; print(g.judge.__name__)"],
        cwd=student,
        env={**os.environ, "PYTHONPATH": str(student)},
        capture_output=True,
        text=True,
    )
    assert own.stdout.strip() == "full", own.stderr
    # ...but the teacher's grader never imports the student's code.
    result, report, _ = grade(blank, student, tmp_path, "exp.vjp")
    assert_grader_wrote(result, report)
    assert scores(report) == {"exp.vjp": 0.0}


ATEXIT = """

def _forge():
    import atexit, json, os

    def rewrite():
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as file:
            argv = file.read().decode().split("\\0")
        if "--json" in argv:
            with open(argv[argv.index("--json") + 1], "w") as file:
                json.dump(FAKE, file)
        os._exit(0)

    atexit.register(rewrite)


_forge()
""".replace("FAKE", repr(FAKE))


def test_an_atexit_hook_rewriting_the_json(blank: Path, tmp_path: Path) -> None:
    student = submission(blank, tmp_path, rules={"_exp_vjp": "    return (g,)\n"}, prelude=ATEXIT)
    result, report, _ = grade(blank, student, tmp_path, "exp.vjp", "exp.jvp")
    assert_grader_wrote(result, report)
    assert scores(report) == {"exp.vjp": 0.0, "exp.jvp": 1.0}


def test_reading_shipped_oracle_files(blank: Path, tmp_path: Path) -> None:
    assert not list(blank.rglob("*.npz")), "the handout ships no reference outputs"
    # A forward that looks for any stored arrays it can find and returns the first of the right shape.
    thief = (
        "        import glob, os, numpy as np\n"
        "        for path in glob.glob(os.path.join(os.getcwd(), '**', '*.npz'), recursive=True) + \\\n"
        "                glob.glob(os.path.join(os.path.dirname(__file__), '..', '..', '*.npz')):\n"
        "            with np.load(path) as stored:\n"
        "                for key in stored.files:\n"
        "                    if stored[key].shape == np.shape(Z):\n"
        "                        return F.mul(stored[key], 1.0)\n"
        "        return F.mul(Z, 0.0)\n"
    )
    result, report, _ = grade(blank, submission(blank, tmp_path, softmax=thief), tmp_path, "nn.Softmax")
    assert_grader_wrote(result, report)
    assert scores(report) == {"nn.Softmax": 0.0}


LOOP = (
    "    import signal\n"
    "    signal.setitimer(signal.ITIMER_REAL, 0)\n"
    "    for number in range(1, 32):\n"
    "        try:\n"
    "            signal.signal(number, signal.SIG_IGN)\n"
    "        except (OSError, ValueError):\n"
    "            pass\n"
    "    while True:\n"
    "        try:\n"
    "            while True:\n"
    "                pass\n"
    "        except BaseException:\n"
    "            pass\n"
)


def test_a_signal_ignoring_endless_loop(blank: Path, tmp_path: Path) -> None:
    student = submission(blank, tmp_path, rules={"_exp_vjp": LOOP})
    result, report, seconds = grade(blank, student, tmp_path, "exp.vjp", "exp.jvp")
    assert_grader_wrote(result, report)
    assert scores(report) == {"exp.vjp": 0.0, "exp.jvp": 1.0}
    assert report["tests"][0]["result"] == "timeout"
    assert seconds < 2 * TIME_LIMIT + 30


def test_an_endless_loop_at_import_time(blank: Path, tmp_path: Path) -> None:
    student = submission(blank, tmp_path, prelude="\nwhile True:\n    pass\n")
    result, report, seconds = grade(blank, student, tmp_path)
    assert_grader_wrote(result, report)
    assert report["score"] == 0 and {t["result"] for t in report["tests"]} == {"timeout"}
    assert seconds < len(ITEMS) * TIME_LIMIT + 30


def test_raw_numpy_rules_lose_the_second_order(blank: Path, tmp_path: Path) -> None:
    raw = {"_exp_vjp": "    return (g * np.exp(x),)\n", "_exp_jvp": "    return t[0] * np.exp(x)\n"}
    result, report, _ = grade(blank, submission(blank, tmp_path, rules=raw), tmp_path, "exp.vjp", "exp.jvp")
    assert_grader_wrote(result, report)
    assert scores(report) == {"exp.vjp": pytest.approx(0.7), "exp.jvp": pytest.approx(0.7)}
    for test in report["tests"]:
        assert "gradients of gradients through it are zero" in test["output"]
        assert test["parts"]["second order"] == {"share": 0.3, "passed": False}


def test_a_layer_ignoring_its_constructor_arguments(blank: Path, tmp_path: Path) -> None:
    lazy = "        return F.softmax(Z, axis=-1)\n"  # ignores self.dim
    result, report, _ = grade(blank, submission(blank, tmp_path, softmax=lazy), tmp_path, "nn.Softmax")
    assert_grader_wrote(result, report)
    assert scores(report) == {"nn.Softmax": 0.0}
    assert "dim=0" in report["tests"][0]["output"]


def test_a_class_at_once(blank: Path, tmp_path: Path) -> None:
    """Submissions graded in parallel: one CSV row and one JSON each, a broken one included."""
    folder = tmp_path / "class"
    folder.mkdir()
    honest = submission(blank, tmp_path / "a")
    raw = submission(blank, tmp_path / "b", rules={"_exp_vjp": "    return (g * np.exp(x),)\n"})
    shutil.copytree(honest, folder / "alice")
    shutil.copytree(raw, folder / "bob")
    (folder / "carol").mkdir()  # handed in nothing
    out = tmp_path / "grades"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "mytorch",
        "grade",
        "--config",
        str(blank / "grading.json"),
        "--examples",
        "3",
        "--items",
        "exp.vjp,nn.Softmax",
        "--submissions",
        str(folder),
        "--out",
        str(out),
        "--jobs",
        "2",
        "--fail-under",
        "100%",
        "--progress",
    ]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "grading" in result.stderr and "alice" in result.stderr  # the bar names who is being graded
    import csv

    rows = {row["student"]: row for row in csv.DictReader((out / "grades.csv").open(encoding="utf-8"))}
    assert set(rows) == {"alice", "bob", "carol"}
    assert float(rows["alice"]["score"]) == 2 and float(rows["bob"]["exp.vjp"]) == pytest.approx(0.7)
    assert float(rows["carol"]["score"]) == 0 and "holds none of the files" in rows["carol"]["error"]
    alice = json.loads((out / "alice.json").read_text(encoding="utf-8"))
    assert alice["score"] == alice["max_score"] == 2 and not (out / "carol.json").exists()


def test_the_self_test_catches_every_wrong_rule_on_a_few_items() -> None:
    from mytorch.course.selftest import self_test

    outcomes = self_test(["exp.vjp", "matmul.vjp", "sum.jvp", "nn.Softmax"], examples=4, time_limit=60)
    passed = [(item, kind) for item, kind, result in outcomes if result is not None and result.passed]
    assert not passed, f"wrong versions that pass: {passed}"
    caught = {(item, kind) for item, kind, result in outcomes if result is not None}
    assert {
        ("matmul.vjp", "missing transpose"),
        ("matmul.vjp", "un-reduced broadcast"),
        ("exp.vjp", "raw NumPy"),
        ("sum.jvp", "mean for sum"),
        ("nn.Softmax", "default arguments"),
        ("nn.Softmax", "sign flip"),
    } <= caught


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MYTORCH_SLOW"), reason="about 6 minutes: set MYTORCH_SLOW=1")
def test_the_self_test_catches_every_wrong_rule_on_every_item() -> None:
    from mytorch.course.assignment import LAYERS
    from mytorch.course.selftest import self_test
    from mytorch.testing import all_primitives

    items = [f"{op}.{rule}" for op in sorted(all_primitives()) for rule in ("vjp", "jvp")]
    items += [f"nn.{name}" for name in LAYERS]
    outcomes = self_test(items, examples=6)
    passed = [(item, kind) for item, kind, result in outcomes if result is not None and result.passed]
    assert not passed, f"wrong versions that pass: {passed}"


def test_a_rule_that_takes_all_the_memory(blank: Path, tmp_path: Path) -> None:
    hog = "    hoard = np.ones(2**35)  # 256 GB\n    return (g * hoard[0],)\n"
    student = submission(blank, tmp_path, rules={"_exp_vjp": hog})
    result, report, _ = grade(blank, student, tmp_path, "exp.vjp")
    assert_grader_wrote(result, report)
    assert scores(report) == {"exp.vjp": 0.0} and "MemoryError" in report["tests"][0]["output"]

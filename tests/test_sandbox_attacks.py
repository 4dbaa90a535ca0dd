"""What a student's code tries when it runs beside the grader (issue 22), against the teacher's grader.

Each attack is a submission whose code, at import time in the grading child, goes after what lies
around it: it leaves a detached grandchild behind to rewrite the results, writes into the
teacher's package, working directory, config and site-packages, reads the reference, a
classmate's file and the grader's environment, signals the grader, hands back links, FIFOs, zip
bombs, lone surrogates and deep trees, or is handed in under a name that breaks the class report.
The grader runs as a course runs it: one machine, one user (root here), `python -m mytorch grade`
from a copy of the teacher's package.

This file only uses the grader's command line and `mytorch.grade.compare`, so that it also runs
against an older grader (PYTHONPATH=/old/checkout): there, these attacks succeed.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import site
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import mytorch
from mytorch.handout import make_handout

ROOT = Path(mytorch.__file__).resolve().parent.parent
RULES_FILE = Path(mytorch.functional.exp.defined_in.replace(".", "/") + ".py")  # where exp's rules live
HONEST_VJP = "    return (mul(g, ans),)\n"
FAKE = {"score": 100.0, "max_score": 1.0, "tests": []}
SECRET = "GRADER-SECRET-7f3a9c"
TIME_LIMIT = 20.0
MODES = ["bwrap", "uid"]  # MYTORCH_SANDBOX: the sandbox, and the fallback without bwrap


def _mode_works(mode: str) -> bool:
    try:
        from mytorch.course import sandbox
    except ImportError:  # an older grader: no sandbox to choose
        return mode == "bwrap"
    return sandbox.choose(mode).kind == mode


def _modes() -> list:
    return [
        pytest.param(m, marks=pytest.mark.skipif(not _mode_works(m), reason=f"no {m} isolation here"))
        for m in MODES
    ]


@pytest.fixture(scope="module")
def blank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sandboxed") / "hw"
    make_handout(out, ops=["exp"], layers=["Softmax"])
    return out


@pytest.fixture()
def teacher(tmp_path: Path) -> Path:
    """A copy of the teacher's package, from which the grader runs (attacks may try to change it)."""
    copy = tmp_path / "teacher"
    shutil.copytree(ROOT / "mytorch", copy / "mytorch", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _replace_body(text: str, function: str, body: str) -> str:
    import ast

    node = next(n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.FunctionDef) and n.name == function)
    statements = node.body[1:] if ast.get_docstring(node) is not None else node.body
    lines = text.splitlines(keepends=True)
    lines[statements[0].lineno - 1 : statements[-1].end_lineno] = [body]
    return "".join(lines)


def submission(blank: Path, where: Path, vjp: str = HONEST_VJP, prelude: str = "") -> Path:
    """A copy of the handout with exp's backward rule filled in; `prelude` runs at import time."""
    student = where / "student"
    shutil.copytree(blank, student)
    rules = student / RULES_FILE
    text = _replace_body(rules.read_text(encoding="utf-8"), "_exp_vjp", vjp)
    rules.write_text(text + "\n" + prelude, encoding="utf-8")
    return student


def grade(
    teacher: Path,
    blank: Path,
    student: Path,
    tmp_path: Path,
    mode: str = "bwrap",
    *extra: str,
    timeout: float = 240,
) -> tuple[subprocess.CompletedProcess, dict | None]:
    """`python -m mytorch grade --submission` from the teacher's copy, on exp.vjp; (run, its JSON)."""
    report = tmp_path / "results.json"
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(teacher), "MYTORCH_SANDBOX": mode, "GRADER_TOKEN": SECRET}
    command = [sys.executable, "-m", "mytorch", "grade", "--config", str(blank / "grading.json")]
    command += ["--submission", str(student), "--items", "exp.vjp", "--examples", "3", "--seed", "11"]
    command += ["--time-limit", str(TIME_LIMIT), "--json", str(report), *extra]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    found = json.loads(report.read_text(encoding="utf-8")) if report.exists() else None
    return result, found


def _everything(result: subprocess.CompletedProcess, report: dict | None) -> str:
    return result.stdout + result.stderr + json.dumps(report)


# ---- the student's code outlives its item ------------------------------------------------------------


@pytest.mark.parametrize("mode", _modes())
def test_a_detached_grandchild_does_not_outlive_its_item(
    blank: Path, teacher: Path, tmp_path: Path, mode: str
) -> None:
    """Double fork + setsid: the grandchild waits for the grader to finish, then rewrites its JSON."""
    target = tmp_path / "results.json"
    prelude = f"""
import os as _os, time as _time
if _os.fork() == 0:
    _os.setsid()
    if _os.fork() == 0:
        _time.sleep(3)
        try:
            open({str(target)!r}, "w").write({json.dumps(FAKE)!r})
        finally:
            _os._exit(0)
    _os._exit(0)
_time.sleep(0.2)
"""
    result, report = grade(teacher, blank, submission(blank, tmp_path, prelude=prelude), tmp_path, mode)
    assert report is not None and report["score"] == 1.0, _everything(result, report)
    time.sleep(5)  # longer than the grandchild waits
    assert json.loads(target.read_text(encoding="utf-8")) != FAKE, "a grandchild rewrote the results"


# ---- the student's code writes where the teacher's code lives ----------------------------------------------


@pytest.mark.parametrize("mode", _modes())
def test_the_child_cannot_write_the_teachers_files(
    blank: Path, teacher: Path, tmp_path: Path, mode: str
) -> None:
    config = tmp_path / "hw"
    shutil.copytree(blank, config)
    planted_pth = Path(site.getsitepackages()[0]) / f"zz_mytorch_attack_{os.getpid()}_{mode}.pth"
    targets = {
        "reference package": teacher / "mytorch" / "planted.py",
        "grader's cwd": tmp_path / "cwd" / "mytorch" / "__init__.py",
        "site-packages": planted_pth,
    }
    prelude = f"""
import os as _os
for _path in {[str(p) for p in targets.values()]!r}:
    try:
        _os.makedirs(_os.path.dirname(_path), exist_ok=True)
        open(_path, "w").write("# planted\\n")
    except OSError:
        pass
try:
    open({str(config / "grading.json")!r}, "a").write(" ")
except OSError:
    pass
"""
    (tmp_path / "cwd").mkdir()
    before = (config / "grading.json").read_bytes()
    try:
        result, report = grade(teacher, config, submission(config, tmp_path, prelude=prelude), tmp_path, mode)
        assert report is not None, _everything(result, report)
        written = [what for what, path in targets.items() if path.exists()]
        assert not written, f"the child wrote into: {written}"
        assert (config / "grading.json").read_bytes() == before, "the child edited grading.json"
    finally:
        planted_pth.unlink(missing_ok=True)


# ---- the student's code reads what it must not -------------------------------------------------------------


@pytest.mark.parametrize("mode", _modes())
def test_the_child_cannot_read_the_reference_a_classmate_or_the_environment(
    blank: Path, teacher: Path, tmp_path: Path, mode: str
) -> None:
    """What the child reads, it raises: the message would carry it into the student's feedback."""
    classmate = tmp_path / "class" / "bob"
    classmate.mkdir(parents=True)
    (classmate / "answer.txt").write_text("CLASSMATE-ANSWER-41d2", encoding="utf-8")
    reference = teacher / RULES_FILE
    vjp = f"""    import os
    found = []
    for path in (f"/proc/{{os.getppid()}}/environ", {str(classmate / "answer.txt")!r}, {str(reference)!r}):
        try:
            text = open(path, errors="replace").read().replace(chr(0), "\\n")
        except OSError:
            continue
        # the feedback keeps the first 2000 characters of a message: only the lines worth stealing
        found += [line for line in text.splitlines() if "GRADER" in line or "CLASSMATE" in line
                  or "mul(g, ans)" in line]
    raise RuntimeError("|".join(found))
"""
    result, report = grade(teacher, blank, submission(blank, tmp_path, vjp=vjp), tmp_path, mode)
    assert report is not None, _everything(result, report)
    text = _everything(result, report)
    leaks = {
        "a classmate's file": "CLASSMATE-ANSWER-41d2",
        "the grader's environment": SECRET,
        "the reference's rule": "lambda g, ans, x: (mul(g, ans),)",
    }
    assert not [what for what, secret in leaks.items() if secret in text], text[-3000:]


def test_the_reference_source_never_reaches_feedback_even_unsandboxed(
    blank: Path, teacher: Path, tmp_path: Path
) -> None:
    """Without a sandbox (MYTORCH_SANDBOX=none) the child reads the reference and raises its lines:
    the grader still never shows a line of the reference's code for the item."""
    vjp = f"""    text = open({str(teacher / RULES_FILE)!r}).read()
    raise RuntimeError("|".join(line for line in text.splitlines() if "mul(g, ans)" in line))
"""
    result, report = grade(teacher, blank, submission(blank, tmp_path, vjp=vjp), tmp_path, "none")
    assert report is not None and report["score"] == 0, _everything(result, report)
    assert "lambda g, ans, x: (mul(g, ans),)" not in _everything(result, report)


# ---- the student's code signals the grader -------------------------------------------------------------


@pytest.mark.parametrize("mode", _modes())
def test_the_child_cannot_signal_the_grader(blank: Path, teacher: Path, tmp_path: Path, mode: str) -> None:
    # Only this test's grader is a target (its argv names tmp_path): other graders on the machine
    # are not, should this run against a grader that lets it see them.
    prelude = f"""
import os as _os, signal as _signal
_targets = {{_os.getppid()}}
for _pid in _os.listdir("/proc"):
    try:
        if {str(tmp_path).encode()!r} in open(f"/proc/{{_pid}}/cmdline", "rb").read():
            if int(_pid) != _os.getpid():
                _targets.add(int(_pid))
    except (OSError, ValueError):
        pass
for _pid in _targets:
    try:
        _os.kill(_pid, _signal.SIGKILL)
    except OSError:
        pass
"""
    result, report = grade(teacher, blank, submission(blank, tmp_path, prelude=prelude), tmp_path, mode)
    assert result.returncode != -signal.SIGKILL and report is not None, _everything(result, report)


# ---- what the child hands back is trusted too much -------------------------------------------------------


def test_a_symlinked_submission_file_is_refused(blank: Path, teacher: Path, tmp_path: Path) -> None:
    """The student's rules file is a link to the reference's: copied, it would earn full marks."""
    student = submission(blank, tmp_path)
    (student / RULES_FILE).unlink()
    (student / RULES_FILE).symlink_to(teacher / RULES_FILE)
    result, report = grade(teacher, blank, student, tmp_path)
    assert report is None or report["score"] == 0, _everything(result, report)
    assert "link" in result.stdout + result.stderr, _everything(result, report)  # refused, and said so


def test_a_fifo_for_the_log_does_not_hang_the_grader(blank: Path, teacher: Path, tmp_path: Path) -> None:
    """At exit the child swaps its log and its answers for FIFOs: opened by name, they block."""
    prelude = """
import atexit as _atexit, os as _os
def _fifos():
    for _name in ("log.txt", "out.json"):
        try:
            _os.unlink(_name)
        except OSError:
            pass
        try:
            _os.mkfifo(_name)
        except OSError:
            pass
_atexit.register(_fifos)
"""
    try:
        student = submission(blank, tmp_path, prelude=prelude)
        result, report = grade(teacher, blank, student, tmp_path, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("the grader hung on a FIFO")
    assert report is not None and report["score"] == 0, _everything(result, report)


def test_a_link_at_the_jsons_temporary_name_is_not_written_through(
    blank: Path, teacher: Path, tmp_path: Path
) -> None:
    notes = tmp_path / "teachers-notes.txt"
    notes.write_text("keep me", encoding="utf-8")
    (tmp_path / "results.json.tmp").symlink_to(notes)
    result, report = grade(teacher, blank, submission(blank, tmp_path), tmp_path)
    assert notes.read_text(encoding="utf-8") == "keep me", "the grader wrote through a planted link"
    assert report is not None and report["score"] == 1.0, _everything(result, report)


def test_a_zip_bomb_in_the_answers_is_refused(blank: Path, teacher: Path, tmp_path: Path) -> None:
    """200 MB of zeros, a few hundred KB compressed, added to honest answers: refused, not inflated."""
    prelude = """
import atexit as _atexit
def _bomb():
    import zipfile, numpy as np
    with zipfile.ZipFile("out.npz", "a", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("pad.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(
                member, {"descr": "<f8", "fortran_order": False, "shape": (25_000_000,)}
            )
            block = bytes(1_000_000)
            for _ in range(200):
                member.write(block)
_atexit.register(_bomb)
"""
    result, report = grade(teacher, blank, submission(blank, tmp_path, prelude=prelude), tmp_path)
    assert report is not None, _everything(result, report)
    assert report["score"] == 0 and "inflate" in json.dumps(report), _everything(result, report)


def test_a_lone_surrogate_in_a_message(blank: Path, teacher: Path, tmp_path: Path) -> None:
    vjp = '    raise ValueError("bad \\ud800 news \\x1b[2J")\n'
    result, report = grade(teacher, blank, submission(blank, tmp_path, vjp=vjp), tmp_path)
    assert result.returncode in (0, 1) and report is not None, _everything(result, report)
    assert report["score"] == 0 and "news" in json.dumps(report)


def test_a_3000_deep_tree_in_the_answers(blank: Path, teacher: Path, tmp_path: Path) -> None:
    prelude = """
import atexit as _atexit
def _deep():
    open("out.json", "w").write('{"reports": ' + "[" * 3000 + "]" * 3000 + "}")
_atexit.register(_deep)
"""
    result, report = grade(teacher, blank, submission(blank, tmp_path, prelude=prelude), tmp_path)
    assert report is not None and report["score"] == 0, _everything(result, report)
    assert "deeper" in json.dumps(report), _everything(result, report)


def test_compare_accepts_only_the_same_value_where_the_reference_is_not_finite() -> None:
    from mytorch.grade import compare

    for reference in (np.inf, -np.inf, np.nan):
        expected = np.array([1.0, reference])
        assert compare(np.array([1.0, 1e300]), expected, (1e-6, 1e-5)) != "", reference
        assert compare(np.array([1.0, 0.0]), expected, (1e-6, 1e-5)) != "", reference
        assert compare(expected.copy(), expected, (1e-6, 1e-5)) == "", reference


# ---- a class: names and links ----------------------------------------------------------------------------


def test_a_class_with_hostile_folder_names_and_a_link_to_the_reference(
    blank: Path, teacher: Path, tmp_path: Path
) -> None:
    """A 252-character name, a name that is not UTF-8, two alices (and an alice-2), a formula, and
    an entry that is a link to the teacher's checkout: one safe, unique row and JSON each."""
    honest = submission(blank, tmp_path)
    first, second = tmp_path / "class1", tmp_path / "class2"
    first.mkdir()
    second.mkdir()
    folders = [first / ("x" * 252), first / "alice", second / "alice", first / "alice-2", first / "=cmd()"]
    for folder in folders:
        shutil.copytree(honest, folder)
    weird = os.path.join(os.fsencode(first), b"\xff\xfe-student")
    shutil.copytree(honest, os.fsdecode(weird))
    shutil.copytree(blank, teacher / "checkout", dirs_exist_ok=True)  # the teacher's filled-in copy
    shutil.copy2(ROOT / RULES_FILE, teacher / "checkout" / RULES_FILE)
    (first / "mallory").symlink_to(teacher / "checkout")
    out = tmp_path / "grades"
    env = {**os.environ, "PYTHONPATH": str(teacher)}
    command = [sys.executable, "-m", "mytorch", "grade", "--config", str(blank / "grading.json")]
    command += ["--items", "exp.vjp", "--examples", "2", "--seed", "11", "--time-limit", str(TIME_LIMIT)]
    command += ["--submissions", str(first), str(second), "--out", str(out)]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert (out / "grades.csv").exists(), result.stdout + result.stderr
    with open(out / "grades.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    names = [row["student"] for row in rows]
    assert len(rows) == 7 and len(set(n.lower() for n in names)) == 7, names
    assert all(len(n) <= 64 and n.isascii() and not n.startswith(("=", "+", "-", "@")) for n in names), names
    jsons = sorted(p.name for p in out.glob("*.json"))
    assert len(jsons) == 6, jsons  # mallory's link is refused: a row with the error, no JSON
    scores = {row["student"]: float(row["score"]) for row in rows}
    assert sorted(scores.values()) == [0.0] + [1.0] * 6, scores
    link = next(row for row in rows if row["student"].startswith("mallory"))
    assert float(link["score"]) == 0 and "link" in link["error"], link

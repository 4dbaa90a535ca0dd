"""A course end to end: submissions as uploads arrive, and the Gradescope / Autolab packages.

The packages are tried as the services run them: the Gradescope zip unpacked into a fake
/autograder tree (AUTOGRADER_ROOT) and its run_autograder run on a correct, a wrong, a flat-uploaded
and a missing-file submission; the Autolab files run with `make` beside a handin.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from test_grading_attacks import ITEMS, RULES_FILE, blank, submission  # noqa: F401 - blank: a fixture

from mytorch.course.assignment import Config
from mytorch.course.grade import fail_under
from mytorch.course.package import autolab_files, gradescope_zip
from mytorch.course.submission import SubmissionError, find_files, is_submission, prepare_submission

ROOT = Path(__file__).resolve().parents[1]
ACTIVATION = "mytorch/nn/activation.py"
SEED = "11"  # a fixed teacher's seed: three fresh draws could all sit where exp's error hides


# ---- where a submission's files are found ---------------------------------------------------------


def _config(*files: str) -> Config:
    return Config({"exp.vjp": 1.0}, files=list(files))


def _touch(root: Path, *names: str) -> Path:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"# {name}\n", encoding="utf-8")
    return root


def test_files_are_found_nested_flat_or_under_a_top_folder(tmp_path: Path) -> None:
    config = _config("mytorch/rules/core.py", "mytorch/nn/linear.py")
    nested = _touch(tmp_path / "nested", "mytorch/rules/core.py", "mytorch/nn/linear.py")
    assert find_files(config, nested) == (
        {name: nested / name for name in config.files}, [])  # at their paths: nothing to say
    flat = _touch(tmp_path / "flat", "core.py", "linear.py")
    found, notes = find_files(config, flat)
    assert found == {"mytorch/rules/core.py": flat / "core.py", "mytorch/nn/linear.py": flat / "linear.py"}
    assert notes == ["mytorch/rules/core.py: taken from core.py",
                     "mytorch/nn/linear.py: taken from linear.py"]
    zipped = _touch(tmp_path / "zipped", "hw1/mytorch/rules/core.py", "hw1/mytorch/nn/linear.py",
                    "__MACOSX/hw1/mytorch/rules/core.py")
    assert find_files(config, zipped)[0]["mytorch/rules/core.py"] == zipped / "hw1/mytorch/rules/core.py"


def test_a_missing_or_ambiguous_file_is_left_to_the_stub_and_said(tmp_path: Path) -> None:
    config = _config("mytorch/rules/core.py", "mytorch/nn/linear.py", "mytorch/rules/linear.py")
    upload = _touch(tmp_path / "upload", "linear.py", "a/core.py", "b/core.py")
    found, notes = find_files(config, upload)
    assert found == {}  # two core.py, and one linear.py for two files of that name
    assert notes[0].startswith("mytorch/rules/core.py: left out, it could be any of a/core.py, b/core.py")
    assert "mytorch/nn/linear.py: left out, it could be any of linear.py, mytorch/rules/linear.py" in notes[1]
    one = _touch(tmp_path / "one", "mytorch/rules/core.py")
    found, notes = find_files(_config("mytorch/rules/core.py", "mytorch/nn/linear.py"), one)
    assert list(found) == ["mytorch/rules/core.py"]
    assert notes == ["mytorch/nn/linear.py: not in the submission; the handout's stub stands in (its items "
                     "score 0)"]


def test_a_link_in_a_submission_is_not_followed(tmp_path: Path) -> None:
    secret = _touch(tmp_path, "teacher/core.py") / "teacher/core.py"
    upload = tmp_path / "upload"
    upload.mkdir()
    (upload / "core.py").symlink_to(secret)
    assert find_files(_config("mytorch/rules/core.py"), upload)[0] == {}


def test_a_submission_that_cannot_be_graded_says_why(tmp_path: Path, blank: Path) -> None:  # noqa: F811
    config = Config.load(blank / "grading.json")
    with pytest.raises(SubmissionError, match="does not exist: a submission is a folder holding"):
        prepare_submission(config, tmp_path / "nowhere", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SubmissionError, match="holds none of the files students edit"):
        prepare_submission(config, tmp_path / "empty", tmp_path)
    apart = Config.load(blank / "grading.json")
    apart.directory = tmp_path  # a teacher's config kept outside the handout, not saying where it is
    _touch(tmp_path / "alice", "core.py")
    with pytest.raises(SubmissionError, match='"handout": "../hw1" in the config'):
        prepare_submission(apart, tmp_path / "alice", tmp_path / "scratch")
    assert is_submission(tmp_path / "alice", config) and not is_submission(tmp_path, config)


def test_a_teachers_config_kept_apart_names_its_handout(tmp_path: Path, blank: Path) -> None:  # noqa: F811
    raw = json.loads((blank / "grading.json").read_text(encoding="utf-8"))
    raw["items"]["nn.Softmax"] = {"points": 3, "visibility": "hidden"}
    raw["handout"] = os.path.relpath(blank, tmp_path / "teacher")
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "grading.json").write_text(json.dumps(raw), encoding="utf-8")
    config = Config.load(tmp_path / "teacher" / "grading.json")
    assert config.visibility == {"nn.Softmax": "hidden"} and config.handout_dir().resolve() == blank.resolve()
    upload = _touch(tmp_path / "alice", RULES_FILE.name)
    handed_in = prepare_submission(config, upload, tmp_path / "scratch")
    assert (handed_in.root / "mytorch" / "course").is_dir()  # the handout's copy, not the teacher's folder
    assert (handed_in.root / RULES_FILE).read_text(encoding="utf-8") == f"# {RULES_FILE.name}\n"
    assert handed_in.missing == [ACTIVATION] and any("not in the submission" in n for n in handed_in.notes)


def test_the_self_test_command_shows_progress_and_a_zero_derivative_cannot_fail(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = ["grade", "--self-test", "--items", "sign.vjp,exp.vjp", "--examples", "4", "--progress"]
    run = subprocess.run([sys.executable, "-m", "mytorch", *command], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"sign\.vjp +sign flip +n/a", run.stdout) and "0 passed (grader defects)" in run.stdout
    assert "exp.vjp (sign flip)" in run.stderr and "grading wrong versions" in run.stderr  # the bar


def test_fail_under_takes_points_or_a_share() -> None:
    assert fail_under("100%")(2.9, 3.0) and not fail_under("100%")(3.0, 3.0)
    assert fail_under("2.5")(2.4, 3.0) and not fail_under("2.5")(2.5, 3.0)
    with pytest.raises(Exception, match="write points"):
        fail_under("most")


# ---- Gradescope: the zip on a fake /autograder tree -------------------------------------------------


@pytest.fixture(scope="module")
def teacher_config(blank: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """The teacher's own config, kept outside the handout: nn.Softmax hidden, few examples."""
    raw = json.loads((blank / "grading.json").read_text(encoding="utf-8"))
    raw["items"]["nn.Softmax"] = {"points": 2, "visibility": "hidden"}
    raw.update(examples=3, time_limit=30)
    path = tmp_path_factory.mktemp("teacher") / "grading.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def gradescope(blank: Path, teacher_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    return gradescope_zip(blank, tmp_path_factory.mktemp("zip") / "hw-gradescope.zip", ROOT, teacher_config)


def _run_autograder(package: Path, upload: dict[str, Path], tmp_path: Path,
                    root: Path | None = None) -> tuple[dict, str]:
    """Unpack the zip into a fresh fake /autograder (or use `root`, unpacked already), put `upload`
    (name -> file) into its submission folder, run run_autograder; results.json and the output."""
    if root is None:
        root = tmp_path / "autograder"
        with zipfile.ZipFile(package) as archive:
            archive.extractall(root / "source")
    (root / "submission").mkdir()
    for name, source in upload.items():
        (root / "submission" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, root / "submission" / name)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "MYTORCH_PYTHON": sys.executable}
    env.pop("PYTHONPATH", None)  # the package's own reference copy is the one imported
    run = subprocess.run(["bash", str(root / "source" / "run_autograder"), "--seed", SEED], env=env,
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    results = root / "results" / "results.json"
    assert results.is_file(), run.stdout + run.stderr
    return json.loads(results.read_text(encoding="utf-8")), run.stdout + run.stderr


def _setup(source: Path, path: str | None = None) -> subprocess.CompletedProcess:
    """Run the unpacked setup.sh as Gradescope does (the requirements are installed here already)."""
    env = {**os.environ, "MYTORCH_PYTHON": sys.executable, "PIP_NO_INDEX": "1"}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(["bash", str(source / "setup.sh")], env=env, capture_output=True, text=True,
                          timeout=300)


OTHER_UID = 1_499_999_990  # a uid no account has: the grader's fallback runs each child as one


def _other_user_reads(path: Path) -> bool:
    """Whether an unprivileged uid with no groups (as the fallback sandbox's child) can read `path`."""
    done = subprocess.run(["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups",
                           "--", "cat", str(path)], capture_output=True, env={"PATH": "/usr/bin:/bin"})
    return done.returncode == 0


def test_the_zip_holds_what_gradescope_runs(gradescope: Path) -> None:
    with zipfile.ZipFile(gradescope) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
        config = json.loads(archive.read("grading.json"))
    assert {"setup.sh", "run_autograder", "requirements.txt", "grading.json"} <= names
    assert "reference/mytorch/autograd_engine.py" in names and "handout/mytorch/autograd_engine.py" in names
    reference = {name.split("/")[2] for name in names if name.startswith("reference/mytorch/")}
    assert {"bench", "course", "cli.py"} <= reference  # every subcommand the reference's CLI imports
    assert not any("__pycache__" in name for name in names)
    assert modes["run_autograder"] & stat.S_IXUSR and modes["setup.sh"] & stat.S_IXUSR
    assert config["handout"] == "handout" and config["items"]["nn.Softmax"]["visibility"] == "hidden"


def test_setup_sh_installs_the_requirements(gradescope: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(gradescope) as archive:
        archive.extractall(tmp_path)
    setup = _setup(tmp_path)
    assert setup.returncode == 0, setup.stdout + setup.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="another uid is tried as root, with setpriv (as the fallback sandbox is)")
def test_setup_sh_hides_the_reference_from_other_users(blank: Path, gradescope: Path,  # noqa: F811
                                                       tmp_path: Path) -> None:
    # Gradescope unpacks the zip as root, readable by all. Without bubblewrap the student's code
    # runs as another uid, which must not read the answer key or the hidden items after setup.sh.
    import tempfile

    from mytorch.course import sandbox

    root = Path(tempfile.mkdtemp(prefix="mytorch-autograder-", dir="/tmp"))  # every folder above searchable
    try:
        root.chmod(0o755)
        source = root / "source"
        with zipfile.ZipFile(gradescope) as archive:
            archive.extractall(source)
        secrets = [source / "reference" / "mytorch" / "autograd_engine.py", source / "grading.json"]
        assert all(_other_user_reads(path) for path in secrets)  # as unpacked: the check can fail
        assert sandbox.exposed(secrets) == [p.resolve() for p in secrets]
        setup = _setup(source)
        assert setup.returncode == 0, setup.stdout + setup.stderr
        assert not any(_other_user_reads(path) for path in secrets)
        assert sandbox.exposed([source / "reference" / "mytorch", *secrets]) == []
        # Locked, the tree still grades (the grading process is root; the child gets its own copy).
        student = submission(blank, tmp_path / "student")
        upload = {str(RULES_FILE): student / RULES_FILE, ACTIVATION: student / ACTIVATION}
        results, output = _run_autograder(gradescope, upload, tmp_path, root)
        assert results["score"] == results["max_score"] == 4.0, output
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_setup_sh_goes_on_without_bubblewrap(gradescope: Path, tmp_path: Path) -> None:
    # No bwrap and an apt-get that fails (no network, no root): setup.sh says so and still locks the
    # tree; the grader falls back to a uid per child.
    with zipfile.ZipFile(gradescope) as archive:
        archive.extractall(tmp_path / "source")
    tools = tmp_path / "bin"  # every command on PATH but bwrap and apt-get
    tools.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if os.path.isdir(folder):
            for name in os.listdir(folder):
                if name not in ("bwrap", "apt-get") and not (tools / name).exists():
                    (tools / name).symlink_to(Path(folder) / name)
    (tools / "apt-get").write_text(  # the lists update; the package is not there
        f'#!/bin/sh\necho "$@" >> {tmp_path / "apt.log"}\n[ "$1" = update ] || exit 100\n')
    (tools / "apt-get").chmod(0o755)
    setup = _setup(tmp_path / "source", str(tools))
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "install -y bubblewrap" in (tmp_path / "apt.log").read_text()  # it was tried
    assert "bubblewrap not installed" in setup.stderr
    assert not (tmp_path / "source" / "grading.json").stat().st_mode & 0o077


@pytest.mark.parametrize("case", ["correct", "wrong", "flat", "missing file"])
def test_run_autograder_grades_a_submission(case: str, blank: Path, gradescope: Path,  # noqa: F811
                                            tmp_path: Path) -> None:
    wrong = {"_exp_vjp": "    return (mul(g, mul(ans, 2.0)),)\n"} if case == "wrong" else None
    student = submission(blank, tmp_path / "student", rules=wrong)
    files = {"flat": {RULES_FILE.name: student / RULES_FILE, "activation.py": student / ACTIVATION},
             "missing file": {str(RULES_FILE): student / RULES_FILE}}
    nested = {str(RULES_FILE): student / RULES_FILE, ACTIVATION: student / ACTIVATION}
    results, output = _run_autograder(gradescope, files.get(case, nested), tmp_path)
    scores = {test["name"]: test["score"] for test in results["tests"]}
    expected = {"correct": {"exp.vjp": 1.0, "exp.jvp": 1.0, "nn.Softmax": 2.0},
                "wrong": {"exp.vjp": 0.0, "exp.jvp": 1.0, "nn.Softmax": 2.0},
                "flat": {"exp.vjp": 1.0, "exp.jvp": 1.0, "nn.Softmax": 2.0},
                "missing file": {"exp.vjp": 1.0, "exp.jvp": 1.0, "nn.Softmax": 0.0}}[case]
    assert scores == pytest.approx(expected), output
    assert results["max_score"] == 4.0 and results["score"] == pytest.approx(sum(expected.values()))
    hidden = next(test for test in results["tests"] if test["name"] == "nn.Softmax")
    assert hidden["visibility"] == "hidden"
    if case == "flat":
        assert f"{RULES_FILE}: taken from {RULES_FILE.name}" in results["output"]
    if case == "missing file":
        assert f"{ACTIVATION}: not in the submission; the handout's stub stands in" in results["output"]
        assert hidden["result"] == "not implemented"


def test_an_empty_upload_gets_a_zero_and_the_reason(gradescope: Path, tmp_path: Path) -> None:
    results, _ = _run_autograder(gradescope, {"notes.txt": Path(__file__)}, tmp_path)
    assert results["score"] == 0 and "holds none of the files students edit" in results["output"]
    assert {test["name"] for test in results["tests"]} == set(ITEMS)


# ---- Autolab: make beside the handin ----------------------------------------------------------------


@pytest.mark.skipif(shutil.which("make") is None, reason="Autolab runs make")
def test_autolab_make_prints_the_scores_last(blank: Path, teacher_config: Path, tmp_path: Path) -> None:  # noqa: F811
    files = autolab_files(blank, tmp_path / "autolab", ROOT, teacher_config)
    job = tmp_path / "job"  # what Autolab makes: the Makefile, autograde.tar and the handin
    job.mkdir()
    shutil.copy2(files / "autograde-Makefile", job / "Makefile")
    shutil.copy2(files / "autograde.tar", job / "autograde.tar")
    student = submission(blank, tmp_path / "student")
    with tarfile.open(job / "handin.tar", "w") as handin:
        handin.add(student / RULES_FILE, RULES_FILE.name)  # flat, as a student tars their two files
        handin.add(student / ACTIVATION, "activation.py")
    env = {**os.environ, "MYTORCH_PYTHON": sys.executable, "GRADE_OPTIONS": f"--seed {SEED}"}
    env.pop("PYTHONPATH", None)
    run = subprocess.run(["make", "-s"], cwd=job, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    last = json.loads(run.stdout.strip().splitlines()[-1])
    assert last == {"scores": {"exp.vjp": 1.0, "exp.jvp": 1.0, "nn.Softmax": 2.0}}
    unpacked = [job / "autograder" / "grading.json", job / "autograder" / "reference" / "mytorch"]
    assert not any(path.stat().st_mode & 0o077 for path in unpacked)  # other users read none of it

"""Packaging a handout's grader for Gradescope (a zip to upload) and Autolab (autograde.tar + Makefile).

Both hold the same tree: `grading.json` (the teacher's config: hidden items and all), `handout/`
(the student copy the submitted files go into), `reference/mytorch` (the answer key the grading
process imports; students never see it) and `requirements.txt`. The grading command is the one a
teacher runs by hand: `python -m mytorch grade --config grading.json --submission DIR --json ...`.

- Gradescope unzips into /autograder/source, runs `setup.sh` once when it builds the image (as
  root: the requirements, bubblewrap if apt can install it, and the tree made readable by root
  alone, since without bubblewrap each child runs as a uid of its own), then `run_autograder` per
  submission (as root): the student's files are in /autograder/submission (flat, as
  uploaded, or in folders), the results go to /autograder/results/results.json.
- Autolab copies `autograde-Makefile` (as Makefile), `autograde.tar` and the student's handin into
  a fresh folder and runs `make`; the last line printed, `{"scores": {...}}`, is the grade. The
  unpacked tree is made readable by its owner alone first, as setup.sh does on Gradescope.

`AUTOGRADER_ROOT` moves the /autograder tree (to try the package on a fake one) and `MYTORCH_PYTHON`
names the interpreter (default python3).

>>> "numpy>=1.24" in requirements(Path(__file__).resolve().parents[2]).split()
True
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path

from mytorch.course.assignment import CONFIG_NAME, Config

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, in /autograder/source when it builds the autograder's image.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${MYTORCH_PYTHON:-python3}"
if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    apt-get update && apt-get install -y python3 python3-pip
fi
export PIP_BREAK_SYSTEM_PACKAGES=1  # the image is the grader's alone
"$PYTHON" -m pip install -r requirements.txt
# The student's code runs in bubblewrap's sandbox, where the container lets it make namespaces.
# Where bubblewrap is missing or cannot run, the grader (root) runs each child as a uid of its own,
# which can read what any user may read: so nothing here (the reference mytorch, the teacher's
# grading.json with its hidden items) is left readable by other users. Both happen whatever the
# outcome of the install; the grader says in each report which sandbox ran.
if ! command -v bwrap >/dev/null 2>&1; then
    { apt-get update && apt-get install -y bubblewrap; } \\
        || echo "setup.sh: bubblewrap not installed: the children run under uids of their own" >&2
fi
chmod -R go-rwx .
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for each submission: the student's files are in $ROOT/submission, the grade
# goes to $ROOT/results/results.json. The grading process imports the reference (reference/mytorch);
# the student's code runs only in its children, in a fresh copy of the handout.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
PYTHON="${MYTORCH_PYTHON:-python3}"
mkdir -p "$ROOT/results"
cd "$SOURCE" || exit 2
PYTHONPATH="$SOURCE/reference" "$PYTHON" -m mytorch grade --config "$SOURCE/grading.json" \\
    --submission "$ROOT/submission" --json "$ROOT/results/results.json" "$@"
"""

RUN_AUTOLAB = """#!/usr/bin/env bash
# Autolab runs `make` in a folder holding autograde.tar and the student's handin (a .tar, a .zip or
# the files themselves); the last line printed, {"scores": {...}}, is the grade.
HERE="$(pwd)"
PYTHON="${MYTORCH_PYTHON:-python3}"
# Without bubblewrap a grader running as root runs each child as a uid of its own: the reference and
# the teacher's grading.json must not be readable by other users.
chmod -R go-rwx "$HERE/autograder"
mkdir -p submission
for handin in "$HERE"/*; do
    case "$handin" in
        */autograde.tar|*/Makefile|*/autograde-Makefile|*/autograder|*/submission) ;;
        *.tar|*.tar.gz|*.tgz) tar xf "$handin" -C submission ;;
        *.zip) "$PYTHON" -m zipfile -e "$handin" submission ;;
        *) [ -f "$handin" ] && cp "$handin" submission/ ;;
    esac
done
PYTHONPATH="$HERE/autograder/reference" "$PYTHON" -m mytorch grade \\
    --config "$HERE/autograder/grading.json" --submission submission "$@"
"""

AUTOLAB_MAKEFILE = """# Autolab: `make` grades the handin beside autograde.tar; the last line is the scores.
all:
\ttar xf autograde.tar
\tbash autograder/run_autolab $(GRADE_OPTIONS)
"""

# The reference goes whole (its command line imports every subcommand, bench included).
LEFT_OUT = ("__pycache__", "*.pyc", "*.egg-info", ".git", ".hypothesis")


def requirements(root: Path) -> str:
    """The reference's runtime dependencies, read from its pyproject.toml (one per line)."""
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.S | re.M)
    return "".join(f"{name}\n" for name in re.findall(r'"([^"]+)"', block.group(1) if block else ""))


def _grader_tree(handout: Path, config: Path | None, reference_root: Path, into: Path) -> None:
    """grading.json, handout/, reference/mytorch and requirements.txt, written into `into`."""
    config_path = config or handout / CONFIG_NAME
    loaded = Config.load(config_path)
    if not loaded.files:
        raise ValueError(f"{config_path} lists no 'files' students edit: a submission could not be placed")
    ignore = shutil.ignore_patterns(*LEFT_OUT)
    shutil.copytree(handout, into / "handout", ignore=ignore)
    shutil.copytree(reference_root / "mytorch", into / "reference" / "mytorch", ignore=ignore)
    raw = json.loads(config_path.read_text(encoding="utf-8"))
    raw["handout"] = "handout"  # the copy beside it, wherever the teacher's config was kept
    (into / CONFIG_NAME).write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (into / "requirements.txt").write_text(requirements(reference_root), encoding="utf-8")


def _write_script(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def gradescope_zip(handout: Path, out: Path, reference_root: Path, config: Path | None = None) -> Path:
    """Write Gradescope's autograder zip for `handout` (graded with `config`, default the handout's).

    >>> gradescope_zip(Path("hw1"), Path("hw1-gradescope.zip"), Path("."))  # doctest: +SKIP
    PosixPath('hw1-gradescope.zip')
    """
    with tempfile.TemporaryDirectory(prefix="mytorch-package-") as scratch:
        tree = Path(scratch)
        _grader_tree(handout, config, reference_root, tree)
        _write_script(tree / "setup.sh", SETUP_SH)
        _write_script(tree / "run_autograder", RUN_AUTOGRADER)
        _zip(tree, out)
    return out


def _zip(tree: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo.from_file(path, path.relative_to(tree).as_posix())
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())  # keeps the scripts' executable bits


def autolab_files(handout: Path, out: Path, reference_root: Path, config: Path | None = None) -> Path:
    """Write Autolab's `autograde.tar` and `autograde-Makefile` into the folder `out`.

    >>> autolab_files(Path("hw1"), Path("hw1-autolab"), Path("."))  # doctest: +SKIP
    PosixPath('hw1-autolab')
    """
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mytorch-package-") as scratch:
        tree = Path(scratch) / "autograder"
        tree.mkdir()
        _grader_tree(handout, config, reference_root, tree)
        _write_script(tree / "run_autolab", RUN_AUTOLAB)
        with tarfile.open(out / "autograde.tar", "w") as archive:
            archive.add(tree, "autograder")
    (out / "autograde-Makefile").write_text(AUTOLAB_MAKEFILE, encoding="utf-8")
    return out


"""A submission: the student's edited files, found wherever an upload put them, put into a fresh handout.

A submission is a folder. The files students edit (the config's `files`, e.g. `mytorch/rules/core.py`)
are looked for at their path in the handout, then by their trailing path (a handout zipped with its
top folder: `hw1/mytorch/rules/core.py`), then by name alone (Gradescope keeps uploaded files flat:
`core.py`). A file that is not there is the handout's own stub: its items score 0 as not
implemented, the other files' items are graded as usual, and the report says which file was
missing.

>>> from mytorch.course.assignment import Config
>>> import tempfile; upload = Path(tempfile.mkdtemp())
>>> _ = (upload / "core.py").write_text("# a student's rules")
>>> found, notes = find_files(Config({"exp.vjp": 1.0}, files=["mytorch/rules/core.py"]), upload)
>>> found["mytorch/rules/core.py"].name, notes
('core.py', ['mytorch/rules/core.py: taken from core.py'])
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from mytorch.course import untrusted
from mytorch.course.assignment import CONFIG_NAME, Config

SKIPPED_FOLDERS = {"__pycache__", "__MACOSX", ".git", ".ipynb_checkpoints"}
MAX_FILES = 5000  # a submission is a few source files; a bigger tree is searched no further


class SubmissionError(FileNotFoundError):
    """A submission (or the handout it goes into) cannot be graded at all: the message says why."""


@dataclass
class Submission:
    """A fresh copy of the handout holding what the student handed in."""

    root: Path  # put first on the child's path
    missing: list[str] = field(default_factory=list)  # config files not handed in: the stubs stand in
    notes: list[str] = field(default_factory=list)  # for the report: where files were found, what is missing


def handout_of(config: Config) -> Path:
    """The handout folder a submission's files go into: the config's `handout`, else its own folder."""
    folder = config.handout_dir()
    if not (folder / "mytorch").is_dir():
        raise SubmissionError(
            f"{folder} holds no handout (no mytorch/ package beside {CONFIG_NAME}): put the config "
            "in the folder `python -m mytorch handout --out` wrote, or say where that folder is with "
            '"handout": "../hw1" in the config (a path relative to it) or --handout DIR'
        )
    return folder


def _uploaded_files(submission: Path) -> tuple[list[Path], list[Path]]:
    """The regular files under `submission`, and its links (refused: a link could point anywhere,
    to the reference or a classmate's file). The walk is iterative and bounded (a 3,000-deep tree
    is no deeper to it than a flat one)."""
    found: list[Path] = []
    links: list[Path] = []
    for path in untrusted.walk(submission, MAX_FILES, skip=SKIPPED_FOLDERS):
        if path.is_symlink():
            links.append(path.relative_to(submission))
        elif path.is_file():
            found.append(path.relative_to(submission))
    return found, links


def _shared_tail(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    count = 0
    while count < min(len(a), len(b)) and a[-1 - count] == b[-1 - count]:
        count += 1
    return count


def find_files(config: Config, submission: Path) -> tuple[dict[str, Path], list[str]]:
    """Where each of the config's files is in `submission` ({config path: file}), and notes on what
    was taken from another place or is missing or ambiguous (such a file is left out)."""
    uploaded, links = _uploaded_files(submission)
    best: dict[str, list[Path]] = {}
    for wanted in config.files:
        parts = Path(wanted).parts
        scored = [(_shared_tail(parts, path.parts), path) for path in uploaded]
        top = max((score for score, _ in scored), default=0)
        best[wanted] = [path for score, path in scored if score == top] if top else []
    claims: dict[Path, list[str]] = {}
    for wanted, paths in best.items():
        for path in paths:
            claims.setdefault(path, []).append(wanted)
    found, notes = {}, []
    for wanted, paths in best.items():
        if not paths:
            notes.append(f"{wanted}: not in the submission; the handout's stub stands in (its items score 0)")
        elif len(paths) > 1 or len(claims[paths[0]]) > 1:
            rivals = sorted({p.as_posix() for p in paths} | set(claims[paths[0]]) - {wanted})
            notes.append(f"{wanted}: left out, it could be any of {', '.join(rivals)} (upload it at its "
                         "path in the handout); the handout's stub stands in")
        else:
            found[wanted] = submission / paths[0]
            if paths[0].as_posix() != wanted:
                notes.append(f"{wanted}: taken from {paths[0].as_posix()}")
    notes += [f"{link.as_posix()}: a link, refused (links are not followed)" for link in links]
    return found, notes


def is_submission(path: Path, config: Config) -> bool:
    """A folder holding one of the config's files at its handout path or flat at its top."""
    return path.is_dir() and any((path / name).is_file() or (path / Path(name).name).is_file()
                                 for name in config.files)


def prepare_submission(config: Config, submission: Path, scratch: Path) -> Submission:
    """A fresh copy of the handout in `scratch` with the student's files (the config's `files`) put in.

    Raises SubmissionError when the folder does not exist or holds none of the files."""
    if not config.files:
        raise SubmissionError(f"{config.directory / CONFIG_NAME} lists no 'files' students edit")
    if not submission.is_dir():
        raise SubmissionError(
            f"{submission} {'is not a folder' if submission.exists() else 'does not exist'}: a submission "
            "is a folder holding the files students edit "
            f"({', '.join(config.files)}), at their paths in the handout or flat (core.py)"
        )
    found, notes = find_files(config, submission)
    if not found:
        wanted = ", ".join(config.files)
        refused = "".join(f"; {note}" for note in notes if "a link, refused" in note)
        raise SubmissionError(f"{submission} holds none of the files students edit: {wanted}{refused}")
    copy = scratch / "handout"
    shutil.copytree(
        handout_of(config), copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".git")
    )
    for name, path in found.items():
        try:  # read once more without following a link or blocking on a pipe: it may have changed
            untrusted.copy_file(submission, path.relative_to(submission).as_posix(), copy / name)
        except untrusted.Untrusted as error:
            raise SubmissionError(str(error)) from None
    missing = [name for name in config.files if name not in found]
    return Submission(copy, missing, notes)

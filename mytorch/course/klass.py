"""A class at once: every submission graded, one report each and a CSV of the class."""

from __future__ import annotations

import csv
import io
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mytorch.course import untrusted
from mytorch.course.assignment import Config
from mytorch.course.grader import Grader, _cores
from mytorch.course.progress import Progress
from mytorch.course.report import _write_json, to_json
from mytorch.course.submission import SKIPPED_FOLDERS, SubmissionError, is_submission, prepare_submission
from mytorch.course.untrusted import Untrusted

# ---- a class at once -----------------------------------------------------------------------------------


def submissions_in(paths: list[Path], config: Config) -> list[Path]:
    """Each path is a submission (it holds one of the files students edit, at its handout path or
    flat), or a folder of submissions (its subfolders). A path that is not a folder is an error. An
    entry that is a link is kept, to be refused and reported by `grade_class` (a link to the
    reference checkout)."""
    found = []
    for path in paths:
        if not path.is_dir():
            raise SubmissionError(f"{path} is not a folder (of submissions, or a submission)")
        if is_submission(path, config):
            found.append(path)
        else:
            found += sorted(
                p for p in path.iterdir() if (p.is_symlink() or p.is_dir()) and p.name not in SKIPPED_FOLDERS
            )
    return found


def grade_class(
    grader: Grader, submissions: list[Path], out: Path, jobs: int | None = None, progress: bool | None = None
) -> list[dict]:
    """Grade every submission, `jobs` children at a time; a CSV row and a JSON file each.
    `progress`: a bar naming the students being graded (None: when stderr is a terminal)."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    names = _unique_names(submissions)

    def one(pair: tuple[str, Path]) -> dict:
        name, submission = pair
        began = time.perf_counter()
        bar.start(name)
        with tempfile.TemporaryDirectory(prefix="mytorch-submission-") as scratch:
            try:
                if not untrusted.is_plain_dir(submission):
                    raise SubmissionError(f"{name}: the class entry is a link or not a folder; refused")
                handed_in = prepare_submission(grader.config, submission, Path(scratch))
            except (FileNotFoundError, Untrusted) as error:
                bar.done(name)
                return {
                    "student": name,
                    "score": 0.0,
                    "max_score": sum(grader.items.values()),
                    "error": str(error),
                }
            results = [grader.grade_item(handed_in.root, item) for item in grader.items]
        report = to_json(
            results, time.perf_counter() - began, grader.seed, handed_in.notes, grader.isolation.describe()
        )
        report["folder"] = os.fsencode(submission).decode("utf-8", "backslashreplace")
        _write_json(out / f"{name}.json", report)
        row = {"student": name, "score": report["score"], "max_score": report["max_score"], "error": "",
               "missing": " ".join(handed_in.missing)}
        row.update({r.item: r.points for r in results})
        bar.done(name)
        return row

    # One student per worker, their items one after another: at most `jobs` children at once.
    with Progress(len(submissions), "grading", progress) as bar, \
            ThreadPoolExecutor(max_workers=jobs or _cores()) as pool:
        rows = list(pool.map(one, zip(names, submissions)))
    table = io.StringIO()
    columns = ["student", "score", "max_score", *grader.items, "missing", "error"]
    writer = csv.DictWriter(table, columns, restval="")
    writer.writeheader()
    writer.writerows({key: untrusted.csv_cell(value) for key, value in row.items()} for row in rows)
    untrusted.write_atomic(out / "grades.csv", table.getvalue())
    print(
        f"graded {len(rows)} submissions in {time.perf_counter() - started:.1f} s: {out / 'grades.csv'}; "
        f"isolation {grader.isolation.describe()}"
    )
    return rows


def _unique_names(paths: list[Path]) -> list[str]:
    """Unique, short, safe report names, whatever the folders are called (see untrusted.safe_names)."""
    return untrusted.safe_names(paths)



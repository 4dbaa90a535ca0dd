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
from mytorch.course.grader import Grader, _cores, prepare_submission
from mytorch.course.report import _write_json, to_json
from mytorch.course.untrusted import Untrusted

# ---- a class at once -----------------------------------------------------------------------------------


def submissions_in(paths: list[Path], config: Config) -> list[Path]:
    """Each path is a submission, or a folder of submissions (its subfolders). An entry that is a
    link is kept, to be refused and reported by `grade_class` (a link to the reference checkout)."""
    found = []
    for path in paths:
        if config.files and all((path / name).is_file() for name in config.files):
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_symlink() or p.is_dir())
    return found


def grade_class(grader: Grader, submissions: list[Path], out: Path, jobs: int | None = None) -> list[dict]:
    """Grade every submission, `jobs` children at a time; a CSV row and a JSON file each."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    names = _unique_names(submissions)

    def one(pair: tuple[str, Path]) -> dict:
        name, submission = pair
        began = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="mytorch-submission-") as scratch:
            try:
                if not untrusted.is_plain_dir(submission):
                    raise Untrusted(f"{name}: the class entry is a link or not a folder; refused")
                root = prepare_submission(grader.config, submission, Path(scratch))
            except (FileNotFoundError, Untrusted) as error:
                return {
                    "student": name,
                    "score": 0.0,
                    "max_score": sum(grader.items.values()),
                    "error": str(error),
                }
            results = [grader.grade_item(root, item) for item in grader.items]
        report = to_json(results, time.perf_counter() - began, grader.seed, grader.isolation.describe())
        report["folder"] = os.fsencode(submission).decode("utf-8", "backslashreplace")
        _write_json(out / f"{name}.json", report)
        row = {"student": name, "score": report["score"], "max_score": report["max_score"], "error": ""}
        row.update({r.item: r.points for r in results})
        return row

    # One student per worker, their items one after another: at most `jobs` children at once.
    with ThreadPoolExecutor(max_workers=jobs or _cores()) as pool:
        rows = list(pool.map(one, zip(names, submissions)))
    table = io.StringIO()
    writer = csv.DictWriter(table, ["student", "score", "max_score", *grader.items, "error"], restval="")
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



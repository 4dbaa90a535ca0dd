"""A class at once: every submission graded, one report each and a CSV of the class."""

from __future__ import annotations

import csv
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mytorch.course.assignment import Config
from mytorch.course.grader import Grader, _cores, prepare_submission
from mytorch.course.report import _write_json, to_json

# ---- a class at once -----------------------------------------------------------------------------------


def submissions_in(paths: list[Path], config: Config) -> list[Path]:
    """Each path is a submission, or a folder of submissions (its subfolders)."""
    found = []
    for path in paths:
        if config.files and all((path / name).is_file() for name in config.files):
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_dir())
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
                root = prepare_submission(grader.config, submission, Path(scratch))
            except FileNotFoundError as error:
                return {
                    "student": name,
                    "score": 0.0,
                    "max_score": sum(grader.items.values()),
                    "error": str(error),
                }
            results = [grader.grade_item(root, item) for item in grader.items]
        report = to_json(results, time.perf_counter() - began, grader.seed)
        _write_json(out / f"{name}.json", report)
        row = {"student": name, "score": report["score"], "max_score": report["max_score"], "error": ""}
        row.update({r.item: r.points for r in results})
        return row

    # One student per worker, their items one after another: at most `jobs` children at once.
    with ThreadPoolExecutor(max_workers=jobs or _cores()) as pool:
        rows = list(pool.map(one, zip(names, submissions)))
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, ["student", "score", "max_score", *grader.items, "error"], restval="")
        writer.writeheader()
        writer.writerows(rows)
    print(f"graded {len(rows)} submissions in {time.perf_counter() - started:.1f} s: {out / 'grades.csv'}")
    return rows


def _unique_names(paths: list[Path]) -> list[str]:
    names, seen = [], {}
    for path in paths:
        name = path.resolve().name or "submission"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return names



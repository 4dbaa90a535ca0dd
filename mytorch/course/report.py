"""Reporting: a table, Gradescope's results.json, the course runners' scores line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mytorch.course.judge import Result
from mytorch.course.untrusted import write_atomic

# ---- reporting ----------------------------------------------------------------------------------


def _points(value: float) -> str:
    return f"{round(value, 3):g}"


def table(results: list[Result], notes: list[str] = ()) -> str:
    """The grade table: notes on the submission (a missing file), item, points, result; then each
    failure in full.

    >>> print(table([Result("exp.vjp", 1.0, 1.0, "pass")], ["mytorch/nn/rnn.py: not in the submission"]))
    note: mytorch/nn/rnn.py: not in the submission
    item        points  result
    -------  ---------  ---------------
    exp.vjp        1/1  pass
    -------  ---------
    total          1/1
    """
    width = max([len("item"), *(len(r.item) for r in results)])
    lines = [f"note: {note}" for note in notes]
    lines += [f"{'item':<{width}}  {'points':>9}  result", f"{'-' * width}  {'-' * 9}  {'-' * 15}"]
    for r in results:
        shown = (
            r.status
            if r.status != "partial"
            else f"partial ({r.fraction:.0%}: "
            + ", ".join(f"{part} {'ok' if ok else 'wrong'}" for part, (share, ok) in r.parts.items())
            + ")"
        )
        lines.append(f"{r.item:<{width}}  {_points(r.points) + '/' + _points(r.max_points):>9}  {shown}")
    score, total = sum(r.points for r in results), sum(r.max_points for r in results)
    lines.append(f"{'-' * width}  {'-' * 9}")
    lines.append(f"{'total':<{width}}  {_points(score) + '/' + _points(total):>9}")
    for r in results:
        if not r.passed:
            lines.append(f"\n{r.item}: {r.status}\n  {r.detail}")
    return "\n".join(lines)


def to_json(
    results: list[Result],
    seconds: float,
    seed: int | None = None,
    notes: list[str] = (),
    isolation: str | None = None,
) -> dict[str, Any]:
    """The results in the shape of Gradescope's results.json; `notes` (a missing file, where an
    uploaded file was found) go first in its top-level output, which the student sees;
    `isolation`: which sandbox the student's code ran in."""
    report: dict[str, Any] = {
        "score": round(sum(r.points for r in results), 6),
        "max_score": sum(r.max_points for r in results),
        "execution_time": round(seconds, 2),
        "tests": [
            {
                "name": r.item,
                "score": r.points,
                "max_score": r.max_points,
                "status": "passed" if r.passed else "failed",
                "result": r.status,
                "output": r.detail,
                "visibility": r.visibility,
                "parts": {part: {"share": share, "passed": ok} for part, (share, ok) in r.parts.items()},
            }
            for r in results
        ],
    }
    output = [*notes] + ([f"graded with seed {seed}"] if seed is not None else [])
    if output:
        report["output"] = "\n".join(output)
    if isolation is not None:
        report["isolation"] = isolation
    return report


def scores_line(results: list[Result]) -> str:
    """Autolab's last line: {"scores": {item: points}}."""
    return json.dumps({"scores": {r.item: r.points for r in results}})


def _write_json(path: Path, report: dict) -> None:
    """Through a fresh exclusive temporary file, renamed: a link planted at a temporary name is never
    written through. ASCII escapes: any text that reached here is written, surrogates included."""
    write_atomic(path, json.dumps(report, indent=2, ensure_ascii=True) + "\n")



"""Judging a child's answers against the grader's own numbers: one Result per item."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mytorch.course.hints import factor_hint
from mytorch.course.jobs import Check, Job
from mytorch.course.launch import ChildRun

RAW_NUMPY = "your rule computes with NumPy: gradients of gradients through it are zero"
OFF_TAPE = (
    "is forward computed with NumPy instead of mytorch.functional primitives? The engine only sees "
    "the primitives"
)


@dataclass
class Result:
    """One item's grade: `parts` maps each part (e.g. "gradient of input 0") to (share, passed)."""

    item: str
    points: float
    max_points: float
    status: str  # "pass", "partial", "FAIL", "not implemented", "error", "timeout"
    detail: str = ""
    seconds: float = 0.0
    parts: dict[str, tuple[float, bool]] = field(default_factory=dict)
    visibility: str = "visible"

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def fraction(self) -> float:
        return self.points / self.max_points if self.max_points else 1.0




# ---- judging the answers -------------------------------------------------------------------------------


def compare(
    got: Any, expected: np.ndarray, tolerance: tuple[float, float], named: Sequence[tuple[str, Any]] = ()
) -> str:
    """ "" when `got` is close to `expected`, else what is wrong, with a hint for the classic mistakes
    (`named`: the arrays the rule was called with, for hints such as "times input 1²")."""
    atol, rtol = tolerance
    if got is None:
        return "is missing"
    got = np.asarray(got)
    if got.shape != expected.shape:
        hint = ""
        if got.size > expected.size and expected.size:
            hint = " (a gradient in the broadcast shape: sum it back to its input's shape, unbroadcast)"
        elif got.shape == expected.shape[::-1]:
            hint = " (transposed?)"
        return f"has shape {got.shape}, expected {expected.shape}{hint}"
    if got.dtype.kind not in "fiub":
        return f"has dtype {got.dtype}, expected a float array"
    got64, expected64 = got.astype(np.float64), expected.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(got64 - expected64)
        same = (got64 == expected64) | (np.isnan(got64) & np.isnan(expected64))
        # Where the reference is ±inf or nan only the same value passes: |got − inf| <= rtol·inf
        # would let any finite answer through.
        close = np.isfinite(expected64) & (error <= atol + rtol * np.abs(expected64))
        bad = ~(close | same)
    if not bad.any():
        return ""
    worst = np.unravel_index(int(np.argmax(np.where(bad, np.nan_to_num(error, nan=np.inf), -1))), bad.shape)
    where = f" at index {tuple(int(i) for i in worst)}" if expected.ndim else ""
    text = (
        f"differs{where}: expected {expected64[worst]:.10g}, got {got64[worst]:.10g} "
        f"({int(bad.sum())} of {bad.size} elements differ)"
    )
    if not np.isfinite(expected64).all():  # the hints below are about finite factors
        return text
    scale = np.abs(expected64).max(initial=0.0)
    if scale and np.allclose(got64, -expected64, atol=atol, rtol=rtol):
        text += "; it is the expected value with the sign flipped"
    elif scale and not np.any(got64):
        text += "; it is zero"
    elif scale and got.size and np.any(got64):
        text += factor_hint(got64, expected64, named, atol)
    return text


def judge(job: Job, run: ChildRun, points: float, visibility: str = "visible") -> Result:
    """The item's grade from the child's arrays, computed here."""
    item = job.item
    checks = job.ready()
    if run.status == "timeout":
        return Result(
            item,
            0.0,
            points,
            "timeout",
            "took longer than the limit (an endless loop?); it was killed",
            run.seconds,
            {p: (s, False) for p, s in job.parts.items()},
            visibility,
        )
    if run.status != "ok" or run.reports is None:
        tail = run.log.strip().splitlines()[-12:]
        detail = "the grading process of your code ended without answers (sys.exit, a crash, os._exit?)"
        if tail:
            detail += "\n    " + "\n    ".join(tail)
        return Result(
            item,
            0.0,
            points,
            "error",
            detail,
            run.seconds,
            {p: (s, False) for p, s in job.parts.items()},
            visibility,
        )
    first = run.reports[0] if run.reports else None
    if isinstance(first, dict) and first.get("fatal"):  # the import failed, or the code left the run
        status = "not implemented" if first.get("type") == "NotImplementedError" else "error"
        return Result(
            item,
            0.0,
            points,
            status,
            "your code stopped the run: " + _error_text(first),
            run.seconds,
            {p: (s, False) for p, s in job.parts.items()},
            visibility,
        )
    reports = list(run.reports) + [None] * (len(job.tasks) - len(run.reports))
    failures: dict[str, str] = {}
    not_implemented = []
    for k, report in enumerate(reports[: len(job.tasks)]):
        if not isinstance(report, dict):
            continue
        shown = f"\n  on {job.shown[k]}" if k < len(job.shown) else ""
        if isinstance(report.get("parts"), dict):  # only some parts raised
            for part, error in report["parts"].items():
                if part in job.parts and isinstance(error, dict):
                    text = _error_text(error)
                    if part == "second order" and "recorded" in str(error.get("message", "")):
                        text = f"{RAW_NUMPY[0].upper()}{RAW_NUMPY[1:]}; the walk back said: {text}"
                    failures.setdefault(part, text + shown)
            continue
        if report.get("type") == "NotImplementedError":
            not_implemented.append(str(report.get("message", ""))[:2000])
        for part in job.parts:
            failures.setdefault(part, _error_text(report) + shown)
    for check in checks:
        report = reports[check.example]
        if check.part in failures or (isinstance(report, dict) and "parts" not in report):
            continue
        got = _summed(run, check)
        problem = compare(got, check.expected, check.tolerance, check.named)
        if problem and got is not None and not np.any(got) and np.any(check.expected):
            if check.part == "second order":
                problem += f" ({RAW_NUMPY})"
            elif check.part == "gradients":
                problem += f" ({OFF_TAPE})"
        if problem:
            failure = f"{check.what} {problem}\n  on {job.shown[check.example]}"
            if check.part == "forward":
                for part in job.parts:
                    failures.setdefault(part, failure)
            failures.setdefault(check.part, failure)
    for probe in job.probes:
        _judge_probe(job, probe, run, failures)
    parts = {part: (share, part not in failures) for part, share in job.parts.items()}
    fraction = sum(share for share, ok in parts.values() if ok)
    earned = round(points * fraction, 6)
    if not failures:
        status, detail = "pass", f"{len(job.tasks)} examples" + "".join(f"; {n}" for n in job.notes)
    else:
        if len(not_implemented) == len(job.tasks) and not_implemented:
            status, detail = "not implemented", not_implemented[0]
        else:
            status = "partial" if fraction > 0 else "FAIL"
            grouped: dict[str, list[str]] = {}
            for part, text in failures.items():
                grouped.setdefault(text, []).append(f"{part}, {job.parts.get(part, 0):.0%}")
            detail = "\n".join(
                f"[{'; '.join(parts)} of the points] {text}" for text, parts in grouped.items()
            )
            detail += "".join(f"\n  note: {n}" for n in job.notes)
    return Result(item, earned, points, status, detail, run.seconds, parts, visibility)


def _summed(run: ChildRun, check: Check) -> Any:
    """The child's array for `check`, plus those of `check.also` (the same array's other places);
    an answer of another shape is returned as it is, for `compare` to name."""
    got = run.out.get(f"{check.example}/{check.key}")
    for key in check.also:
        more = run.out.get(f"{check.example}/{key}")
        if got is None or more is None or np.shape(more) != np.shape(got):
            return more if got is not None and more is not None else got
        got = np.asarray(got, dtype=np.result_type(got, more)) + more
    return got


def _error_text(report: dict) -> str:
    kind, message = str(report.get("type", "Error"))[:100], str(report.get("message", ""))[:2000]
    where = str(report.get("where", ""))[:1500]
    return f"{kind}: {message}" + ("\n  raised at " + where.replace("\n", "\n            ") if where else "")


def _judge_probe(job: Job, probe: dict, run: ChildRun, failures: dict[str, str]) -> None:
    k = probe["example"]
    if "gradients" in failures or isinstance(run.reports[k] if k < len(run.reports) else None, dict):
        return
    out = run.out.get(f"{k}/out")
    if out is None:
        failures["gradients"] = f"no output\n  on {job.shown[k]}"
        return
    seed = (
        probe["seed"]
        if probe["seed"] is not None
        else np.random.default_rng(probe["seed_draw"]).normal(size=np.shape(out))
    )
    for j, direction in enumerate(probe["directions"]):
        ahead, behind = run.out.get(f"{k}/probe{j}+"), run.out.get(f"{k}/probe{j}-")
        if ahead is None or behind is None or np.shape(ahead) != np.shape(out):
            failures["gradients"] = f"the forward at moved inputs gave no output\n  on {job.shown[k]}"
            return
        numeric = np.sum(seed * (ahead.astype(np.float64) - behind)) / 2
        derived = 0.0
        for i, key in direction["inputs"].items():
            grad = run.out.get(f"{k}/grad/in{i}")
            derived += np.sum(np.asarray(grad, dtype=np.float64) * job.arrays[key]) if grad is not None else 0
        for name, key in direction["params"].items():
            grad = run.out.get(f"{k}/grad/{name}")
            derived += np.sum(np.asarray(grad, dtype=np.float64) * job.arrays[key]) if grad is not None else 0
        if not np.isclose(derived, numeric, atol=1e-9, rtol=1e-4):
            hint = f" (they are zero: {OFF_TAPE})" if derived == 0 else ""
            failures["gradients"] = (
                f"the gradients do not match finite differences of your forward along a "
                f"random direction: {derived:.8g} vs {numeric:.8g}{hint}\n  on {job.shown[k]}"
            )
            return



"""The issue's speed targets (issue 24) and how a run is judged against them; shared by `bench` and
`bench --compare` (mytorch.bench.compare)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _ratio(numerator: str, denominator: str, what: str = "seconds") -> Callable[[dict[str, Any]], float]:
    """A target's measure: one implementation's value over another's in a result row."""
    return lambda r: r[what][numerator] / r[what][denominator]


# The targets (issue 24): (what, workload, measured value from a result row, bound). Met
# when at or below the bound.
TARGETS: list[tuple[str, str, Callable[[dict[str, Any]], float], float]] = [
    ("B1 eager per op vs PyTorch", "B1 elementwise", _ratio("mytorch", "PyTorch"), 0.7),
    ("B1 compiled vs hand-written fwd+bwd", "B1 elementwise", _ratio("mytorch compiled", "NumPy"), 0.8),
    ("B1 operators on tracked arrays vs the same with F.*", "B1 elementwise",
     _ratio("mytorch operators", "mytorch"), 1.3),
    ("B2 eager N=256 vs hand-written", "B2 MLP N=256", _ratio("mytorch", "NumPy"), 1.03),
    ("B2 eager N=32 vs hand-written", "B2 MLP N=32", _ratio("mytorch", "NumPy"), 1.10),
    ("B2 compiled N=32 vs hand-written", "B2 MLP N=32", _ratio("mytorch compiled", "NumPy"), 1.03),
    ("B4 conv eager vs PyTorch", "B4 conv step", _ratio("mytorch", "PyTorch"), 1.4),
    ("B4 conv compiled vs PyTorch", "B4 conv step", _ratio("mytorch compiled", "PyTorch"), 1.2),
    ("B4 conv eager peak memory vs hand-written", "B4 conv step",
     _ratio("mytorch", "NumPy", "peak_bytes"), 1.2),
    ("RNN eager vs hand-written", "RNN step", _ratio("mytorch", "NumPy"), 1.8),
    ("RNN compiled vs hand-written", "RNN step", _ratio("mytorch compiled", "NumPy"), 1.05),
]
CHAIN_TARGET = ("100k-op chain", 0.8)  # seconds


def judge_targets(results: list[dict[str, Any]], scaling: dict[str, float] | None) -> list[dict[str, Any]]:
    """Each target with its measured ratio and "met", "missed" or "n/a" (a peer or row not run)."""
    by_name = {r["workload"]: r for r in results}
    verdicts = []
    for what, workload, measured, bound in TARGETS:
        try:
            value = measured(by_name[workload])
        except (KeyError, ZeroDivisionError):
            verdicts.append({"target": what, "value": None, "bound": bound, "verdict": "n/a"})
            continue
        verdicts.append({"target": what, "value": value, "bound": bound,
                         "verdict": "met" if value <= bound else "missed"})
    chain = by_name.get("B3 chain 1e5", {}).get("seconds", {}).get("mytorch")
    if scaling is not None:
        chain = scaling["seconds_1e5"]
    what, bound = CHAIN_TARGET
    verdict = "n/a" if chain is None else "met" if chain <= bound else "missed"
    verdicts.append({"target": what, "value": chain, "bound": bound, "verdict": verdict, "unit": "s"})
    if scaling is not None:
        verdicts.append({"target": "1e6-op chain linear (ratio to 1e5 below 13)", "value": scaling["ratio"],
                         "bound": 13.0, "verdict": "met" if scaling["ratio"] < 13 else "missed"})
    return verdicts


def print_targets(verdicts: list[dict[str, Any]]) -> None:
    """The targets table: measured value, bound, met or missed."""
    print("\nTargets (ratios of medians from this run)")
    for v in verdicts:
        unit = v.get("unit", "x")
        value = "" if v["value"] is None else f"{v['value']:.2f}{unit}"
        print(f"  {v['target']:<56}{value:>9}  (bound {v['bound']}{unit})  {v['verdict']}")


def format_time(seconds: float, unit: str) -> str:
    """`seconds` in us, ms or s (per-op rows always in us)."""
    if unit == "op" or seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"

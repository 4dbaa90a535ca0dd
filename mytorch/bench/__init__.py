"""`python -m mytorch bench`: mytorch beside hand-written NumPy (and peers, when installed).

Every row is timed in interleaved rounds (one call of each implementation per round, after a
warm-up that also records the compiled rows), as the fastest round per implementation, and
reported as a ratio to the hand-written NumPy baseline of the same row. Before timing, each implementation's
gradients are compared with the baseline's, and the largest difference is printed, so the
comparison is honest. Peak memory of the MLP and conv steps comes from tracemalloc (NumPy
allocations). The table ends with the issue's targets, each judged "met" or "missed".
"""

from __future__ import annotations

import argparse
import copy
import functools
import gc
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from mytorch.bench.peers import PEERS, installed
from mytorch.bench.workloads import Workload, chain_data, chain_mytorch, workloads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="few repeats (under a minute)")
    parser.add_argument("--json", metavar="PATH", help="also save the results as JSON")
    parser.add_argument("--no-peers", action="store_true", help="skip PyTorch, HIPS autograd and MyGrad")


def median_seconds(run: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    """Median wall time of `run()` over `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def peak_bytes(run: Callable[[], Any]) -> int:
    """Peak traced allocation during one `run()`."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def gradient_difference(expected: list[np.ndarray], actual: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(np.asarray(a, dtype=np.float64) - e), initial=0.0))
               for e, a in zip(expected, actual))


def implementations(row: Workload, with_peers: bool) -> dict[str, Callable]:
    found = dict(row.implementations)
    if with_peers:
        for peer, (module, by_kind) in PEERS.items():
            if installed(module) and row.kind in by_kind:
                found[peer] = by_kind[row.kind]
    return found


def measure(row: Workload, repeats: int, with_peers: bool) -> dict[str, Any]:
    """Every implementation of one row, timed in interleaved rounds (one call of each per round), so
    the machine's slow moments fall on all of them alike; the fastest round per implementation (on
    a shared machine the slower rounds time the other processes: timeit's advice)."""
    data = row.make_data()
    expected = row.baseline(copy.deepcopy(data))
    result: dict[str, Any] = {"workload": row.name, "description": row.description, "target": row.target,
                              "unit": row.unit, "seconds": {}, "grad_diff": {}, "peak_bytes": {}}
    runs = {"NumPy": row.baseline, **implementations(row, with_peers)}
    if row.floor is not None:
        runs["NumPy forward floor"] = row.floor
    calls = {}
    for name, run in runs.items():
        if name != "NumPy forward floor":
            result["grad_diff"][name] = gradient_difference(expected, run(copy.deepcopy(data)))
        calls[name] = functools.partial(run, copy.deepcopy(data))
        calls[name]()  # warm-up (a compiled row records here)
    times: dict[str, list[float]] = {name: [] for name in calls}
    gc.collect()
    gc.disable()  # as timeit does: a collection's pause (long once PyTorch is loaded) is not the code's
    try:
        for _ in range(repeats):
            for name, once in calls.items():
                started = time.perf_counter()
                once()
                times[name].append(time.perf_counter() - started)
    finally:
        gc.enable()
    for name, once in calls.items():
        result["seconds"][name] = min(times[name]) / row.per
        if row.kind in MEMORY_KINDS and name not in PEERS and name != "NumPy forward floor":
            result["peak_bytes"][name] = peak_bytes(once)  # tracemalloc sees NumPy's allocations only
    return result


MEMORY_KINDS = ("mlp", "conv", "b4")

# The targets: (what, workload, measured value from a result row, bound). Met when below it.
TARGETS: list[tuple[str, str, Callable[[dict[str, Any]], float], float]] = [
    ("B1 eager per op below PyTorch's", "B1 elementwise",
     lambda r: r["seconds"]["mytorch"] / r["seconds"]["PyTorch"], 1.0),
    ("B1 with NumPy operators on tracked arrays within 1.3x of F.*", "B1 elementwise",
     lambda r: r["seconds"]["mytorch operators"] / r["seconds"]["mytorch"], 1.3),
    ("B1 compiled within 2.0x of hand-written fwd+bwd", "B1 elementwise",
     lambda r: r["seconds"]["mytorch compiled"] / r["seconds"]["NumPy"], 2.0),
    ("B2 eager N=256 within 1.05x of hand-written", "B2 MLP N=256",
     lambda r: r["seconds"]["mytorch"] / r["seconds"]["NumPy"], 1.05),
    ("B2 compiled N=32 within 1.10x of hand-written", "B2 MLP N=32",
     lambda r: r["seconds"]["mytorch compiled"] / r["seconds"]["NumPy"], 1.10),
    ("B4 conv eager within 1.0x of hand-written im2col", "B4 conv step",
     lambda r: r["seconds"]["mytorch"] / r["seconds"]["NumPy"], 1.0),
    ("B4 conv eager peak memory within 1.2x", "B4 conv step",
     lambda r: r["peak_bytes"]["mytorch"] / r["peak_bytes"]["NumPy"], 1.2),
    ("B4 conv compiled within 2.5x of PyTorch", "B4 conv step",
     lambda r: r["seconds"]["mytorch compiled"] / r["seconds"]["PyTorch"], 2.5),
    ("RNN eager within 1.5x of hand-written", "RNN step",
     lambda r: r["seconds"]["mytorch"] / r["seconds"]["NumPy"], 1.5),
    ("RNN compiled within 1.15x of hand-written", "RNN step",
     lambda r: r["seconds"]["mytorch compiled"] / r["seconds"]["NumPy"], 1.15),
]


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
                         "verdict": "met" if value < bound else "missed"})
    chain = by_name.get("B3 chain 1e5", {}).get("seconds", {}).get("mytorch")
    if scaling is not None:
        chain = scaling["seconds_1e5"]
    verdicts.append({"target": "100k-op chain under 1.5 s", "value": chain, "bound": 1.5,
                     "verdict": "n/a" if chain is None else "met" if chain < 1.5 else "missed", "unit": "s"})
    if scaling is not None:
        verdicts.append({"target": "1e6-op chain linear (ratio to 1e5 below 13)", "value": scaling["ratio"],
                         "bound": 13.0, "verdict": "met" if scaling["ratio"] < 13 else "missed"})
    return verdicts


def print_targets(verdicts: list[dict[str, Any]]) -> None:
    print("\nTargets (ratios from this run)")
    for v in verdicts:
        unit = v.get("unit", "x")
        value = "" if v["value"] is None else f"{v['value']:.2f}{unit}"
        print(f"  {v['target']:<52}{value:>9}  (bound {v['bound']}{unit})  {v['verdict']}")


def linear_time(repeats: int) -> dict[str, float]:
    """The chain at 100,000 and at 1,000,000 operations: linear time means a ratio near 10."""
    times = {}
    for ops in (100_000, 1_000_000):
        times[ops] = median_seconds(functools.partial(chain_mytorch, chain_data(ops // 4, 1)()), repeats, 0)
    return {"seconds_1e5": times[100_000], "seconds_1e6": times[1_000_000],
            "ratio": times[1_000_000] / times[100_000]}


def format_time(seconds: float, unit: str) -> str:
    if unit == "op" or seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def print_table(results: list[dict[str, Any]]) -> None:
    for r in results:
        base = r["seconds"]["NumPy"]
        print(f"\n{r['workload']}: {r['description']}   (target: {r['target']})")
        print(f"  {'implementation':<22}{'time':>12}{'vs NumPy':>10}{'max |Δgrad|':>14}{'peak MB':>10}")
        for name, seconds in r["seconds"].items():
            diff = r["grad_diff"].get(name)
            peak = r["peak_bytes"].get(name)
            diff_text = "" if diff is None else f"{diff:.1e}"
            peak_text = "" if peak is None else f"{peak / 2**20:.1f}"
            time_text = format_time(seconds, r["unit"])
            print(f"  {name:<22}{time_text:>12}{seconds / base:>9.2f}x{diff_text:>14}{peak_text:>10}")
        if r["peak_bytes"].get("mytorch compiled"):
            memory_ratio = r["peak_bytes"]["mytorch compiled"] / r["peak_bytes"]["NumPy"]
            print(f"  mytorch compiled peak memory / hand-written: {memory_ratio:.2f}x")
        if "NumPy forward floor" in r["seconds"]:
            ratio = r["seconds"]["mytorch"] / r["seconds"]["NumPy forward floor"]
            print(f"  mytorch per op / NumPy forward floor: {ratio:.1f}x")
        if r["peak_bytes"].get("mytorch"):
            memory_ratio = r["peak_bytes"]["mytorch"] / r["peak_bytes"]["NumPy"]
            print(f"  mytorch peak memory / hand-written: {memory_ratio:.2f}x")


def run(args: argparse.Namespace) -> int:
    repeats = 3 if args.quick else 11
    results = []
    for row in workloads():
        if args.quick and row.name.startswith("B3"):
            repeats_here = 1
        else:
            repeats_here = repeats
        results.append(measure(row, repeats_here, with_peers=not args.no_peers))
    print_table(results)
    report: dict[str, Any] = {"rows": results}
    scaling = None
    if not args.quick:
        report["linear_time"] = scaling = linear_time(repeats=1)
        print(f"\nchain 1e5 ops {scaling['seconds_1e5']:.2f} s, 1e6 ops {scaling['seconds_1e6']:.2f} s: "
              f"ratio {scaling['ratio']:.1f} (linear time: ~10)")
    report["targets"] = verdicts = judge_targets(results, scaling)
    print_targets(verdicts)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0

"""`python -m mytorch bench`: mytorch beside hand-written NumPy (and peers, when installed).

Every row is timed in interleaved rounds (one call of each implementation per round, in a new
random order every round, after a warm-up that also records the compiled rows) and reported as
the median of its rounds (the fastest round is kept in the JSON), as a ratio to the hand-written
NumPy baseline of the same row. Before timing, each implementation's gradients are compared with
the baseline's, and the largest difference is printed, so the comparison is honest. Peak memory of
the MLP and conv steps comes from tracemalloc (NumPy allocations). The table ends with the issue's
targets, each judged "met" or "missed". `--compare REV` times another revision's mytorch beside
this tree's in the same rounds (mytorch.bench.compare).
"""

from __future__ import annotations

import argparse
import copy
import functools
import gc
import json
import random
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from mytorch.bench.peers import PEERS, installed
from mytorch.bench.targets import format_time, judge_targets, print_targets
from mytorch.bench.workloads import (
    SAFETY_FEATURES,
    Workload,
    chain_data,
    chain_mytorch,
    safety_row,
    workloads,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="few repeats (under a minute)")
    parser.add_argument("--json", metavar="PATH", help="also save the results as JSON")
    parser.add_argument("--no-peers", action="store_true", help="skip PyTorch, HIPS autograd and MyGrad")
    parser.add_argument("--compare", metavar="REV",
                        help="also time the mytorch of git revision REV, in the same interleaved rounds")
    parser.add_argument("--only", metavar="NAME", action="append",
                        help="only the workloads whose name contains NAME (repeatable)")
    parser.add_argument("--rounds", metavar="N", type=int, help="interleaved rounds per workload")


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
    """The largest absolute difference between two lists of gradients (as float64)."""
    return max(float(np.max(np.abs(np.asarray(a, dtype=np.float64) - e), initial=0.0))
               for e, a in zip(expected, actual))


def implementations(row: Workload, with_peers: bool) -> dict[str, Callable]:
    """The row's mytorch implementations, and the installed peers' for its kind."""
    found = dict(row.implementations)
    if with_peers:
        for peer, (module, by_kind) in PEERS.items():
            if installed(module) and row.kind in by_kind:
                found[peer] = by_kind[row.kind]
    return found


def measure(row: Workload, repeats: int, with_peers: bool) -> dict[str, Any]:
    """Every implementation of one row, timed in interleaved rounds (one call of each per round,
    in a new random order every round), so the machine's slow moments fall on all of them alike; the
    median round per implementation (the issue's measure), and the fastest one."""
    data = row.make_data()
    expected = row.baseline(copy.deepcopy(data))
    result: dict[str, Any] = {"workload": row.name, "description": row.description, "target": row.target,
                              "unit": row.unit, "seconds": {}, "fastest": {}, "grad_diff": {},
                              "peak_bytes": {}, "notes": list(row.notes)}
    runs = {"NumPy": row.baseline, **implementations(row, with_peers)}
    if row.floor is not None:
        runs["NumPy forward floor"] = row.floor
    calls = {}
    for name, run in runs.items():
        try:
            if name != "NumPy forward floor":
                result["grad_diff"][name] = gradient_difference(expected, run(copy.deepcopy(data)))
            calls[name] = functools.partial(run, copy.deepcopy(data))
            calls[name]()  # warm-up (a compiled row records here)
        except Exception as error:
            if not name.endswith(" off"):
                raise
            # A safety-off row runs the engine in a mode it defines (mytorch.bench.workloads): one
            # that cannot run this step is reported, not allowed to stop the benchmark.
            calls.pop(name, None)
            result["grad_diff"].pop(name, None)
            result["notes"].append(f"{name!r} not timed: {type(error).__name__}: {error}")
    times: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls.items())
    shuffle = random.Random(0)
    gc.collect()
    gc.disable()  # as timeit does: a collection's pause (long once PyTorch is loaded) is not the code's
    try:
        for _ in range(repeats):
            # A new order every round: in a fixed (or rotated) one each call follows the same other
            # call, whose data may still sit in the caches, and that bias would not average out.
            shuffle.shuffle(order)
            for name, once in order:
                started = time.perf_counter()
                once()
                times[name].append(time.perf_counter() - started)
    finally:
        gc.enable()
    for name, once in calls.items():
        result["seconds"][name] = statistics.median(times[name]) / row.per
        result["fastest"][name] = min(times[name]) / row.per
        if row.kind in MEMORY_KINDS and name not in PEERS and name != "NumPy forward floor":
            result["peak_bytes"][name] = peak_bytes(once)  # tracemalloc sees NumPy's allocations only
    return result


MEMORY_KINDS = ("mlp", "conv", "b4")


def linear_time(repeats: int) -> dict[str, float]:
    """The chain at 100,000 and at 1,000,000 operations: linear time means a ratio near 10."""
    times = {}
    for ops in (100_000, 1_000_000):
        times[ops] = median_seconds(functools.partial(chain_mytorch, chain_data(ops // 4, 1)()), repeats, 0)
    return {"seconds_1e5": times[100_000], "seconds_1e6": times[1_000_000],
            "ratio": times[1_000_000] / times[100_000]}


def print_table(results: list[dict[str, Any]]) -> None:
    """Each row's implementations: median time, ratio to NumPy, gradient check, peak memory."""
    for r in results:
        base = r["seconds"]["NumPy"]
        print(f"\n{r['workload']}: {r['description']}   (target: {r['target']})")
        print(f"  {'implementation':<26}{'time':>12}{'vs NumPy':>10}{'max |Δgrad|':>14}{'peak MB':>10}")
        for name, seconds in r["seconds"].items():
            diff = r["grad_diff"].get(name)
            peak = r["peak_bytes"].get(name)
            diff_text = "" if diff is None else f"{diff:.1e}"
            peak_text = "" if peak is None else f"{peak / 2**20:.1f}"
            time_text = format_time(seconds, r["unit"])
            print(f"  {name:<26}{time_text:>12}{seconds / base:>9.2f}x{diff_text:>14}{peak_text:>10}")
        if r["peak_bytes"].get("mytorch compiled"):
            memory_ratio = r["peak_bytes"]["mytorch compiled"] / r["peak_bytes"]["NumPy"]
            print(f"  mytorch compiled peak memory / hand-written: {memory_ratio:.2f}x")
        if "NumPy forward floor" in r["seconds"]:
            ratio = r["seconds"]["mytorch"] / r["seconds"]["NumPy forward floor"]
            print(f"  mytorch per op / NumPy forward floor: {ratio:.1f}x")
        if r["peak_bytes"].get("mytorch"):
            memory_ratio = r["peak_bytes"]["mytorch"] / r["peak_bytes"]["NumPy"]
            print(f"  mytorch peak memory / hand-written: {memory_ratio:.2f}x")
        for feature in SAFETY_FEATURES:
            off = r["seconds"].get(safety_row(feature))
            if off:
                print(f"  cost of the {feature} safety feature: mytorch / {safety_row(feature)} = "
                      f"{r['seconds']['mytorch'] / off:.3f}x")
        for note in r.get("notes", ()):
            print(f"  note: {note}")


def selected(only: list[str] | None) -> list[Workload]:
    """The workloads whose name contains one of `only` (all of them without it)."""
    return [row for row in workloads() if not only or any(part in row.name for part in only)]


def run(args: argparse.Namespace) -> int:
    """`bench`: the table and the targets (or, with --compare, this tree beside another revision)."""
    if args.compare:
        from mytorch.bench.compare import compare, print_comparison

        try:
            report = compare(args.compare, quick=args.quick, rounds=args.rounds, only=args.only,
                             with_peers=not args.no_peers)
        except RuntimeError as error:
            print(error)
            return 2
        print_comparison(report)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(report, handle, indent=2)
        return 0
    repeats = args.rounds or (3 if args.quick else 15)
    results = []
    for row in selected(args.only):
        repeats_here = 1 if args.quick and row.name.startswith("B3") and not args.rounds else repeats
        results.append(measure(row, repeats_here, with_peers=not args.no_peers))
    print_table(results)
    report: dict[str, Any] = {"rows": results}
    scaling = None
    if not args.quick and not args.only:
        report["linear_time"] = scaling = linear_time(repeats=1)
        print(f"\nchain 1e5 ops {scaling['seconds_1e5']:.2f} s, 1e6 ops {scaling['seconds_1e6']:.2f} s: "
              f"ratio {scaling['ratio']:.1f} (linear time: ~10)")
    report["targets"] = verdicts = judge_targets(results, scaling)
    print_targets(verdicts)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0

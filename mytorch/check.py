"""`python -m mytorch check`: property-check every primitive and print a table.

For each primitive, hypothesis draws inputs from its case (mytorch.testing.cases) and compares

- its backward and tangent rules with central finite differences, in float64 and in float32
  (and in complex128 and complex64 where the primitive declares complex values: real and
  imaginary parts perturbed apart), first and second order;
- its forward value and engine gradients with PyTorch's, in the same dtypes, on inputs full
  of kinks and ties (when PyTorch is installed).

The exit code is 1 if any check fails (or a registered primitive has no input spec), else 0.

    python -m mytorch check                      # every primitive, 30 examples per check (10 complex)
    python -m mytorch check --op matmul --examples 200
    python -m mytorch check --jobs 1                # in this process (default: one process per core)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

HEADER = ("op", "examples", "fd abs err", "fd rel err", "torch abs err", "torch rel err", "result")


@dataclass
class Row:
    """One primitive's line of the table."""

    op: str
    examples: int = 0
    fd_abs: float = 0.0
    fd_rel: float = 0.0
    torch_abs: float | None = None
    torch_rel: float | None = None
    failures: list[str] = field(default_factory=list)

    def cells(self) -> tuple[str, ...]:
        number = lambda v: "-" if v is None else f"{v:.1e}"
        result = "FAIL" if self.failures else "pass"
        return (
            self.op,
            str(self.examples),
            number(self.fd_abs),
            number(self.fd_rel),
            number(self.torch_abs),
            number(self.torch_rel),
            result,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--op",
        action="append",
        metavar="NAME",
        help="check only this primitive (repeatable); default: every primitive",
    )
    parser.add_argument(
        "--examples", type=int, default=30, metavar="N", help="hypothesis examples per check (default 30)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="hypothesis seed, for a reproducible run (default 0)"
    )
    parser.add_argument("--no-torch", action="store_true", help="skip the comparisons with PyTorch")
    parser.add_argument(
        "--jobs", type=int, default=None, metavar="N",
        help="primitives checked in N processes at once (default: one per CPU core; 1: in this process)",
    )


def check_one(name: str, examples: int, seed: int, use_torch: bool) -> Row:
    """Run the four checks of one primitive (two without PyTorch), and four more in complex128 and
    complex64 where it declares complex values (a third of the examples each: the rules are the
    ones the real checks ran, and the drawing, not the checking, is what costs)."""
    from mytorch.testing import CASES, GradientCheckError, check_against_torch, check_primitive

    row = Row(name)
    if name not in CASES:
        row.failures.append(f"{name}: no input spec in mytorch.testing.cases, so it cannot be checked")
        return row
    def count(dtype: Any) -> int:
        return examples if np.dtype(dtype).kind == "f" else max(1, -(-examples // 3))

    runs = [
        (
            "finite differences",
            lambda dtype: check_primitive(name, dtype=dtype, max_examples=count(dtype), seed=seed),
        )
    ]
    if use_torch:
        runs.append(
            ("torch", lambda dtype: check_against_torch(name, dtype, max_examples=count(dtype), seed=seed))
        )
    from mytorch.testing.cases import all_primitives

    declared = all_primitives()[name].complex  # complex inputs too where the primitive declares them
    dtypes = (np.float64, np.float32) + ((np.complex128, np.complex64) if declared else ())
    for reference, run in runs:
        for dtype in dtypes:
            try:
                report = run(dtype)
            except GradientCheckError as error:
                row.failures.append(str(error))
                continue
            except Exception as error:  # a crash is a failure of this op, not of the whole table
                row.failures.append(
                    f"{name} vs {reference} ({np.dtype(dtype).name}): {type(error).__name__}: {error}"
                )
                continue
            if report.skipped:
                continue
            row.examples += report.examples
            if reference == "torch":
                row.torch_abs = max(row.torch_abs or 0.0, report.max_abs_error)
                row.torch_rel = max(row.torch_rel or 0.0, report.max_rel_error)
            else:
                row.fd_abs = max(row.fd_abs, report.max_abs_error)
                row.fd_rel = max(row.fd_rel, report.max_rel_error)
    return row


def _torch_installed() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _rows(names: list[str], examples: int, seed: int, use_torch: bool, jobs: int) -> Iterator[Row]:
    """Each primitive's row, in order; with jobs > 1 checked in that many processes at once."""
    if jobs <= 1:
        yield from (check_one(name, examples, seed, use_torch) for name in names)
        return
    from concurrent.futures import ProcessPoolExecutor

    count = len(names)
    with ProcessPoolExecutor(jobs) as pool:
        yield from pool.map(check_one, names, [examples] * count, [seed] * count, [use_torch] * count)


def run(args: argparse.Namespace) -> int:
    from mytorch.testing import all_primitives

    primitives = sorted(all_primitives())
    names = args.op or primitives
    unknown = [n for n in names if n not in primitives]
    if unknown:
        print(
            f"check: unknown primitive(s) {', '.join(unknown)}; known: {', '.join(primitives)}",
            file=sys.stderr,
        )
        return 2
    use_torch = not args.no_torch and _torch_installed()
    widths = (14, 9, 11, 11, 14, 14, 6)
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    print(line(HEADER))
    print(line(tuple("-" * w for w in widths)))
    rows, started = [], time.perf_counter()
    jobs = min(len(names), getattr(args, "jobs", None) or os.cpu_count() or 1)
    for row in _rows(names, args.examples, args.seed, use_torch, jobs):
        rows.append(row)
        print(line(row.cells()), flush=True)
    failed = [row for row in rows if row.failures]
    total = sum(row.examples for row in rows)
    per_op = "float64 and float32 (complex where declared) vs finite differences" + (
        " and vs PyTorch" if use_torch else "")
    print(
        f"\n{len(rows)} ops, {total} examples ({args.examples} per check: {per_op}), "
        f"{len(failed)} failed, in {time.perf_counter() - started:.1f} s"
    )
    if not use_torch:
        print(
            "PyTorch comparisons skipped"
            + (" (--no-torch)" if args.no_torch else " (PyTorch is not installed)")
        )
    for row in failed:
        for failure in row.failures:
            print(f"\n{failure}")
    return 1 if failed else 0

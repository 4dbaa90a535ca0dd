"""A benchmark worker: one process that times one checkout's mytorch, one call at a time, on command.

`bench --compare REV` needs two packages called `mytorch` timed side by side, which cannot share a
process, so each runs in a worker of its own and the parent (mytorch.bench.compare) interleaves
them: it asks one worker for one timed call, then the other, so the machine's slow moments fall on
both alike, and only one worker runs at a time (the other waits on its pipe).

This file is run as a script, never imported from the checkout it times: it puts that checkout
first on `sys.path`, imports its `mytorch`, and loads the workloads from the file it is given (the
comparing tree's `workloads.py`), so both sides run the same workload code on their own engine.

Protocol: one JSON object per line on stdin, one reply per line on stdout.
  {"cmd": "setup", "workload": NAME, "names": [...]}  -> {"grad_diff": {...}, "errors": {...}}
  {"cmd": "time", "name": NAME}                       -> {"seconds": s}
  {"cmd": "quit"}
The first line the worker writes, unasked, names the mytorch it imported and the rows it has.
"""

from __future__ import annotations

import argparse
import copy
import functools
import gc
import importlib
import importlib.util
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from types import ModuleType
from typing import Any, TextIO

BASELINE = "NumPy"
FLOOR = "NumPy forward floor"


def load_workloads(root: str, path: str) -> ModuleType:
    """The workloads module at `path`, importing `mytorch` from `root`.

    The checkout's own `workloads.py` is imported under its package name (so `peers.py` can use it);
    another tree's is loaded under a private name, its `from mytorch import ...` lines resolving to
    the checkout on `sys.path`.
    """
    own = os.path.join(root, "mytorch", "bench", "workloads.py")
    if os.path.exists(own) and os.path.samefile(own, path):
        # (by its name: the package's attribute `workloads` is the function of that name)
        return importlib.import_module("mytorch.bench.workloads")
    spec = importlib.util.spec_from_file_location("_compared_workloads", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def gradient_difference(expected: list[Any], actual: list[Any]) -> float:
    """The largest absolute difference between two lists of gradients (as float64)."""
    import numpy as np

    return max(float(np.max(np.abs(np.asarray(a, dtype=np.float64) - e), initial=0.0))
               for e, a in zip(expected, actual))


class Worker:
    """The rows of one checkout, set up one workload at a time and timed one call at a time."""

    def __init__(self, workloads: ModuleType, with_peers: bool) -> None:
        self.rows = {row.name: row for row in workloads.workloads()}
        self.peers: dict[str, tuple[str, dict[str, Callable]]] = {}
        if with_peers:  # only in the comparing tree's own worker: peers.py lives there
            from mytorch.bench.peers import PEERS, installed

            self.peers = {name: entry for name, entry in PEERS.items() if installed(entry[0])}
        self.calls: dict[str, Callable[[], Any]] = {}

    def names(self, row: Any) -> list[str]:
        """Every implementation this worker can time for `row`."""
        found = [BASELINE, *row.implementations]
        found += [peer for peer, (_, by_kind) in self.peers.items() if row.kind in by_kind]
        if row.floor is not None:
            found.append(FLOOR)
        return found

    def describe(self) -> dict[str, Any]:
        """Where this worker's mytorch comes from, and its rows (names, implementations, units)."""
        rows = {
            name: {"names": self.names(row), "notes": list(getattr(row, "notes", ())), "kind": row.kind,
                   "description": row.description, "target": row.target, "per": row.per, "unit": row.unit}
            for name, row in self.rows.items()
        }
        peers = sorted(module for module, _ in self.peers.values())
        loaded = sys.modules["mytorch"]  # the package the workloads imported: this worker's tree's
        return {"mytorch": os.path.abspath(loaded.__file__), "rows": rows, "peer_modules": peers}

    def setup(self, workload: str, names: list[str]) -> dict[str, Any]:
        """Fresh data for `workload`; each named implementation checked against the baseline's
        gradients and called once (a compiled row records there)."""
        gc.enable()
        self.calls = {}
        row = self.rows[workload]
        data = row.make_data()
        expected = row.baseline(copy.deepcopy(data))
        grad_diff, errors = {}, {}
        for name in names:
            run = self._implementation(row, name)
            try:
                if name != FLOOR:
                    grad_diff[name] = gradient_difference(expected, run(copy.deepcopy(data)))
                call = functools.partial(run, copy.deepcopy(data))
                call()
            except Exception as error:  # an older checkout may lack what a row uses
                errors[name] = f"{type(error).__name__}: {error}"
                continue
            self.calls[name] = call
        gc.collect()
        gc.disable()  # as timeit does: a collection's pause is not the code's
        return {"grad_diff": grad_diff, "errors": errors}

    def _implementation(self, row: Any, name: str) -> Callable[[dict[str, Any]], Any]:
        if name == BASELINE:
            return row.baseline
        if name == FLOOR:
            return row.floor
        if name in row.implementations:
            return row.implementations[name]
        return self.peers[name][1][row.kind]

    def time(self, name: str) -> dict[str, float]:
        """Wall time of one call of implementation `name` of the workload set up last."""
        call = self.calls[name]
        started = time.perf_counter()
        call()
        return {"seconds": time.perf_counter() - started}


def serve(worker: Worker, requests: TextIO, replies: TextIO) -> None:
    """Answer requests until "quit" (or the parent closes the pipe)."""

    def reply(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    reply(worker.describe())
    for line in requests:
        request = json.loads(line)
        command = request.pop("cmd")
        if command == "quit":
            return
        try:
            reply(getattr(worker, command)(**request))
        except Exception as error:  # reported to the parent, which names the worker
            reply({"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()})


def main(argv: list[str] | None = None) -> int:
    """Import mytorch from `--root`, then serve the protocol on stdin/stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="the checkout whose mytorch is timed")
    parser.add_argument("--workloads", required=True, help="the workloads.py to run")
    parser.add_argument("--peers", action="store_true", help="also time PyTorch and other peers")
    parser.add_argument("--preload", default="", metavar="MODULES",
                        help="comma-separated modules to import without timing them (the other "
                             "worker's peers: the two processes then start from the same state)")
    args = parser.parse_args(argv)
    root = os.path.abspath(args.root)
    # Run as a script, sys.path[0] is this file's folder; the checkout takes its place, ahead of
    # any installed (or editable) mytorch.
    sys.path[0:1] = [root]
    replies = sys.stdout
    sys.stdout = sys.stderr  # the protocol owns stdout: anything a row prints goes to stderr
    for module in filter(None, args.preload.split(",")):
        importlib.import_module(module)
    worker = Worker(load_workloads(root, os.path.abspath(args.workloads)), args.peers)
    serve(worker, sys.stdin, replies)
    return 0


if __name__ == "__main__":
    sys.exit(main())

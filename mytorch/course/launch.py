"""Running a child: a fresh interpreter on the student's copy, a hard time limit; raw arrays come back."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mytorch.course import child, sandbox, untrusted
from mytorch.course.sandbox import Isolation

MAX_ANSWER_BYTES = untrusted.MAX_ANSWER_BYTES  # a child's answers are small arrays, inflated or not


# ---- running a child -------------------------------------------------------------------------------------


@dataclass
class ChildRun:
    out: dict[str, np.ndarray]
    reports: list | None
    status: str  # "ok", "timeout", "crashed"
    log: str
    seconds: float


def run_child(
    root: Path,
    request: dict,
    arrays: dict[str, np.ndarray],
    time_limit: float,
    memory_mb: int,
    env: dict[str, str] | None = None,
    meanwhile: Callable[[], Any] | None = None,
    isolation: Isolation | None = None,
) -> ChildRun:
    """Run the child on `request` with `root` first on its path, in `isolation` (default: none, a
    student's own run); only its .npz and JSON come back, read as untrusted bytes. `meanwhile`
    (this process's own work) runs while the child does."""
    isolation = isolation or Isolation("none", "the grader's own user")
    started = time.perf_counter()
    work = sandbox.scratch(isolation)
    launched = None
    # The child's output goes to a file with no name: it cannot swap it for a FIFO or a link.
    log = tempfile.TemporaryFile()
    try:
        shutil.copy2(child.__file__, work / "grade_child.py")
        (work / "request.json").write_text(json.dumps(request), encoding="utf-8")
        np.savez(work / "request.npz", **arrays)
        keep = {} if isolation.kind == "bwrap" else {
            k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL")
        }
        child_env = {
            "PATH": "/usr/bin:/bin",
            **keep,
            "HOME": sandbox.WORK if isolation.kind == "bwrap" else str(work),
            "TMPDIR": "/tmp",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            **(env or {}),
        }
        limits = [str(memory_mb), str(time_limit)]
        launched = sandbox.start(isolation, "grade_child.py", root, work, limits, child_env, log.fileno())
        deadline = time.monotonic() + time_limit
        if meanwhile is not None:
            meanwhile()
        status = "ok" if launched.wait(deadline - time.monotonic()) else "timeout"
        launched.end()  # nothing it started outlives the item
        text = _tail(log)
        out: dict[str, np.ndarray] = {}
        reports = None
        if status == "ok":
            try:
                out = untrusted.load_npz(untrusted.read_file(work / "out.npz"))
                reports = untrusted.load_json(untrusted.read_file(work / "out.json"))["reports"]
                if not isinstance(reports, list):
                    raise ValueError("reports is not a list")
            except (untrusted.Untrusted, ValueError, KeyError, TypeError) as error:
                status, out, reports = "crashed", {}, None
                text = f"{text}\nthe answers were refused: {untrusted.clean_text(error, 300)}".strip()
        return ChildRun(out, reports, status, text, time.perf_counter() - started)
    finally:
        if launched is not None:
            launched.end()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def _tail(log: Any, size: int = 4000) -> str:
    """The last `size` bytes the child printed, read through the grader's own descriptor."""
    try:
        log.seek(max(0, os.fstat(log.fileno()).st_size - size))
        return untrusted.clean_text(log.read(size).decode("utf-8", "replace"))
    except OSError:
        return ""

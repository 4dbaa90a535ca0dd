"""Running a child: a fresh interpreter on the student's copy, a hard time limit; raw arrays come back."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mytorch.course import child

MAX_ANSWER_BYTES = 64 * 2**20  # a child's answers are small arrays


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
) -> ChildRun:
    """Run grade_child on `request` with `root` first on the path; only its .npz and JSON come back.
    `meanwhile` (this process's own work) runs while the child does."""
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="mytorch-grade-"))
    process = None
    try:
        shutil.copy2(child.__file__, work / "grade_child.py")
        (work / "request.json").write_text(json.dumps(request), encoding="utf-8")
        np.savez(work / "request.npz", **arrays)
        keep = {
            k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")
        }
        child_env = {
            **keep,
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            **(env or {}),
        }
        command = [
            sys.executable,
            "-I",
            str(work / "grade_child.py"),
            str(root),
            str(work),
            str(memory_mb),
            str(time_limit),
        ]
        with open(work / "log.txt", "wb") as log:
            process = subprocess.Popen(
                command,
                cwd=work,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            deadline = time.monotonic() + time_limit
            if meanwhile is not None:
                meanwhile()
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
                status = "ok"
            except subprocess.TimeoutExpired:
                status = "timeout"
            _kill_group(process)
        text = _tail(work / "log.txt")
        out: dict[str, np.ndarray] = {}
        reports = None
        if status == "ok":
            try:
                for name in ("out.npz", "out.json"):  # plain files of a sane size, not links or pipes
                    info = os.lstat(work / name)
                    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ANSWER_BYTES:
                        raise ValueError(f"{name} is not a plain file of at most {MAX_ANSWER_BYTES} bytes")
                with np.load(work / "out.npz", allow_pickle=False) as stored:
                    out = {key: np.asarray(stored[key]) for key in stored.files}
                reports = json.loads((work / "out.json").read_text(encoding="utf-8"))["reports"]
                if not isinstance(reports, list):
                    raise ValueError("reports is not a list")
            except (OSError, ValueError, KeyError, TypeError):
                status, out, reports = "crashed", {}, None
        return ChildRun(out, reports, status, text, time.perf_counter() - started)
    finally:
        if process is not None and process.poll() is None:
            _kill_group(process)
        shutil.rmtree(work, ignore_errors=True)


def _tail(path: Path, size: int = 4000) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(max(0, os.fstat(file.fileno()).st_size - size))
            return file.read(size).decode("utf-8", "replace")
    except OSError:
        return ""


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass



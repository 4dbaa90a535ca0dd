"""`python -m mytorch grade`: grade a handout's items; a table, Gradescope's JSON, Autolab's line.

    python -m mytorch grade                                   # a student, inside their handout
    python -m mytorch grade --config hw/grading.json --submission alice/     # a teacher
    python -m mytorch grade --config hw/grading.json --submissions class/ --out grades/
    python -m mytorch grade --self-test                       # can every item fail?

Where the verdict is made. This process (the parent) never imports the student's code. For each
item it draws inputs (hypothesis, with a seed: the config's visible seed for a student's own run,
a fresh one for a teacher's `--submission`), starts one child process (a fresh interpreter with
the student's copy first on its path; see mytorch.grade_child) with a hard wall-clock limit
(killed, with its process group), a memory limit (setrlimit) and a temporary directory removed
whatever happens, and reads back raw arrays only (an .npz, allow_pickle=False). It compares them
with what it computes itself:

- a rule (`exp.vjp`, `exp.jvp`): the forward must be the reference's; the first-order rule must
  match central finite differences of the reference's forward (mytorch.gradcheck), each input's
  gradient a part of the credit; and, as rules are written with primitives, the rule recorded and
  walked back once more must give the second-order quantities (∂⟨b, x̄⟩/∂(ȳ, x) for a backward
  rule, ∂⟨ȳ, ẏ⟩/∂(x, ẋ) for a tangent rule), again against finite differences;
- a layer (`nn.Conv2d`): in several configurations (constructor arguments) and batch sizes, its
  output, the gradients of its inputs and parameters for a walk back from the output, and its
  buffers must match the reference layer's. While a layer or rule is graded, the other rules that
  are items are replaced, in the child, by central differences of their forward, so an item's
  grade does not depend on the others.

The exit code and the JSON are written here, from these comparisons only. When this process's
mytorch is itself a handout (a student grading their own work), there is no reference layer to
compare a stubbed layer's output with: its gradients are checked against finite differences of
the student's own forward, and the output by the teacher's grader.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mytorch import grade_child
from mytorch.assignment import CONFIG_NAME, LAYERS, Config, LayerCase, make_layer_cases, split_item

FIRST_ORDER = (1e-6, 1e-5)  # (atol, rtol) of a first-order rule against finite differences
SECOND_ORDER = (1e-5, 1e-4)  # second order: differences of differences
LOW_PRECISION = (3e-3, 3e-3)  # a float32 output (astype)
LAYER_OUTPUT = (1e-8, 1e-6)
LAYER_GRADIENT = (1e-6, 1e-5)  # the child's other rules are central differences
SECOND_SHARE = 0.3  # of a rule item's points, when its second order is graded
SECOND_ORDER_EXAMPLES = 3  # at least; a third of the examples (the smallest) are checked at order 2
PROBE_STEP = 1e-5
MAX_ANSWER_BYTES = 64 * 2**20  # a child's answers are small arrays
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


# ---- drawing the inputs -------------------------------------------------------------------------------


_DRAWING = threading.Lock()


def draw_examples(op: str, count: int, seed: int) -> list[Any]:
    """`count` examples of `op`'s inputs drawn by hypothesis with `seed`, smallest first."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    from mytorch.testing import CASES

    drawn: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @hypothesis_seed(seed)
    @given(CASES[op].examples(np.float64))
    def collect(example: Any) -> None:
        drawn.append(example)

    with _DRAWING:  # hypothesis is not made for threads
        collect()
    return sorted(drawn, key=lambda e: sum(np.size(v) for v in e.inputs))


def _floats(inputs: Iterable[Any]) -> list[int]:
    return [i for i, v in enumerate(inputs) if isinstance(v, np.ndarray) and v.dtype.kind == "f"]


# ---- the oracle: finite differences of the reference's forward ------------------------------------------


def _rule_oracle(
    primitive: Any, example: Any, a: np.ndarray, b: list[np.ndarray], second: bool = True
) -> dict[str, np.ndarray]:
    """aJ/p = aᵀ ∂y/∂x_p, Jb = Σ_p ∂y/∂x_p b_p, and ∇D/p = ∂/∂x_p of D(x) = d/dε ⟨a, y(x + ε b)⟩."""
    inputs, params = list(example.inputs), example.params
    positions = _floats(inputs)
    sequence = getattr(primitive, "arity", 1) is None

    def f(*floats: Any) -> tuple:
        full = list(inputs)
        for p, x in zip(positions, floats):
            full[p] = x
        return (np.asarray(primitive(full, **params) if sequence else primitive(*full, **params)),)

    primals = [inputs[p] for p in positions]
    with np.errstate(all="ignore"):
        return _differences(f, primals, positions, inputs, a, b, second)


def _differences(
    f: Callable,
    primals: list,
    positions: list[int],
    inputs: list,
    a: np.ndarray,
    b: list[np.ndarray],
    second: bool,
) -> dict[str, np.ndarray]:
    from mytorch.gradcheck import numeric_jacobian

    out = f(*primals)[0]
    expected = {"out": out}
    if out.dtype.kind != "f" or not positions:
        return expected
    jacobian = numeric_jacobian(f, primals, range(len(positions)))[0]
    jb = np.zeros(out.shape)
    for k, p in enumerate(positions):
        block = jacobian[k].reshape(out.size, inputs[p].size)
        expected[f"aJ/{p}"] = (a.reshape(-1) @ block).reshape(inputs[p].shape)
        jb += (block @ b[k].reshape(-1)).reshape(out.shape)
    expected["Jb"] = jb
    if second and out.dtype == np.float64:

        def directional(*floats: Any) -> tuple:
            line = lambda e: (np.sum(a * f(*(x + e * d for x, d in zip(floats, b)))[0]),)  # noqa: E731
            return (numeric_jacobian(line, [np.array(0.0)], [0])[0][0],)

        second = numeric_jacobian(directional, primals, range(len(positions)))[0]
        for k, p in enumerate(positions):
            expected[f"dD/{p}"] = second[k].reshape(inputs[p].shape)
    return expected


def _directions(rng: np.random.Generator, out: np.ndarray, inputs: list[Any]) -> tuple:
    a = rng.normal(size=np.shape(out))
    b = [rng.normal(size=inputs[p].shape) for p in _floats(inputs)]
    return a, b


# ---- the jobs: what a child is asked, and what the answers must be -----------------------------------


@dataclass
class Check:
    """One quantity of one example: the child's array `key` must be close to `expected`."""

    example: int
    key: str
    expected: np.ndarray
    tolerance: tuple[float, float]
    part: str
    what: str


@dataclass
class Job:
    """An item's requests to the child (tasks and arrays) and the checks its answers must pass."""

    item: str
    tasks: list[dict]
    arrays: dict[str, np.ndarray]
    parts: dict[str, float]  # part -> share of the points
    shown: list[str]  # each example, for the failure report
    expect: Callable[[], list[Check]] | None = None  # computes the checks (once, see ready)
    notes: list[str] = field(default_factory=list)
    probes: list[dict] = field(default_factory=list)  # layers without a reference: self-consistency
    _checks: list[Check] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ready(self) -> list[Check]:
        """The checks, computed on first use (while a child runs) and kept for every submission."""
        with self._lock:
            if self._checks is None:
                self._checks = self.expect() if self.expect else []
            return self._checks


def _reference_is_here() -> bool:
    """True when this process's mytorch is the teacher's (a handout leaves the generator out)."""
    return (Path(__file__).resolve().parent / "handout.py").exists()


def rule_job(op: str, rule: str, examples: int, seed: int, stand_in: list[list[str]]) -> Job:
    """The child's tasks for `op`'s `rule` on drawn examples; the expected numbers come later
    (`Job.ready`), so that they are computed while the child runs."""
    from mytorch.autograd_engine import no_grad
    from mytorch.testing import all_primitives

    primitive = all_primitives()[op]
    drawn = draw_examples(op, examples, seed)
    rng = np.random.default_rng([seed, 7])
    tasks, arrays, shown, plans = [], {}, [], []
    positions_seen: list[int] = []
    second_count = max(SECOND_ORDER_EXAMPLES, examples // 3)
    for k, example in enumerate(drawn):
        inputs = list(example.inputs)
        with no_grad():
            out = np.asarray(
                primitive(inputs, **example.params)
                if primitive.arity is None
                else primitive(*inputs, **example.params)
            )
        a, b = _directions(rng, out, inputs)
        positions = _floats(inputs)
        differentiable = out.dtype.kind == "f" and bool(positions)
        # Second order on the smallest examples that carry information (empty arrays do not).
        second = differentiable and out.dtype == np.float64 and out.size > 0 and second_count > 0
        second = second and all(np.size(inputs[p]) for p in positions)
        second_count -= second
        task = {
            "kind": "rule",
            "op": op,
            "rule": rule,
            "second": second,
            "inputs": grade_child.encode(tuple(inputs), arrays, f"x{k}_"),
            "params": grade_child.encode(dict(example.params), arrays, f"p{k}_"),
            "a": f"a{k}",
            "b": [f"b{k}_{p}" for p in positions],
            "stand_in": stand_in,
        }
        arrays[f"a{k}"] = a
        arrays.update({f"b{k}_{p}": d for p, d in zip(positions, b)})
        tasks.append(task)
        shown.append(repr(example))
        plans.append((example, out, a, b, positions, differentiable, second))
        positions_seen += positions if differentiable else []

    def expect() -> list[Check]:
        checks = []
        for k, (example, out, a, b, positions, differentiable, second) in enumerate(plans):
            checks.append(
                Check(k, "out", out, (0.0, 1e-12), "forward", "the forward's output (not yours to change)")
            )
            if not differentiable:
                continue
            expected = _rule_oracle(primitive, example, a, b, second)
            tolerance = FIRST_ORDER if out.dtype == np.float64 else LOW_PRECISION
            if rule == "vjp":
                checks += [
                    Check(
                        k,
                        f"first/{p}",
                        expected[f"aJ/{p}"],
                        tolerance,
                        f"gradient of input {p}",
                        f"backward rule: gradient of input {p}",
                    )
                    for p in positions
                ]
            else:
                checks.append(
                    Check(
                        k,
                        "first/out",
                        expected["Jb"],
                        tolerance,
                        "tangent",
                        "tangent rule: the output's tangent",
                    )
                )
            if not second:
                continue
            if rule == "vjp":
                checks.append(
                    Check(
                        k,
                        "second/dir",
                        expected["Jb"],
                        SECOND_ORDER,
                        "second order",
                        "second order: ∂⟨b, x̄⟩/∂ȳ of your rule, recorded and walked back",
                    )
                )
            else:
                checks += [
                    Check(
                        k,
                        f"second/dir{p}",
                        expected[f"aJ/{p}"],
                        SECOND_ORDER,
                        "second order",
                        f"second order: ∂⟨ȳ, ẏ⟩/∂ẋ of input {p}, your rule recorded and walked back",
                    )
                    for p in positions
                ]
            checks += [
                Check(
                    k,
                    f"second/{p}",
                    expected[f"dD/{p}"],
                    SECOND_ORDER,
                    "second order",
                    f"second order: ∂/∂x of your rule's result, input {p}",
                )
                for p in positions
            ]
        return checks

    second_graded = any(plan[-1] for plan in plans)
    first_parts = (
        [f"gradient of input {p}" for p in sorted(set(positions_seen))] if rule == "vjp" else ["tangent"]
    )
    first_share = 1.0 - (SECOND_SHARE if second_graded else 0.0)
    parts = {part: first_share / len(first_parts) for part in first_parts}
    if second_graded:
        parts["second order"] = SECOND_SHARE
    return Job(rule_item_name(op, rule), tasks, arrays, parts, shown, expect)


def rule_item_name(op: str, rule: str) -> str:
    return f"{op}.{rule}"


def layer_job(name: str, seed: int, stand_in: list[list[str]], graded: bool = True) -> Job:
    """The child's tasks for layer `name`. When this process's mytorch is a handout and the layer is
    `graded` there, its forward here is the student's own: there is no reference output to compare
    with, and the gradients are checked against finite differences of the student's forward."""
    from mytorch import nn

    reference = _reference_is_here()
    cases = make_layer_cases(name, nn, [seed, 11], reference=reference or not graded)
    tasks, arrays, shown = [], {}, []
    job = Job(f"nn.{name}", tasks, arrays, {}, shown)
    for k, case in enumerate(cases):
        tasks.append(_layer_task(name, k, case, arrays, stand_in))
        shown.append(f"case {k + 1} of {len(cases)}: nn.{name}{case.describe()}")
        if case.seed is None:  # this process's nn.<name> is a handout's stub: no reference output
            _probes(job, k, case, tasks[k])
    compared = [k for k, case in enumerate(cases) if case.seed is not None]
    job.parts = {"output": 0.5, "gradients": 0.5} if compared else {"gradients": 1.0}
    if job.probes:
        job.notes.append(
            f"this handout has no reference nn.{name}: its output's values are checked by your "
            "teacher's grader; here, its gradients against finite differences of your forward"
        )

    def expect() -> list[Check]:
        # The reference layer, run here on its own rules (in a student's copy, with the stubbed
        # rules stood in for by finite differences).
        request = {
            "tasks": [
                dict(tasks[k], stand_in=[] if reference else tasks[k]["stand_in"], probes=[])
                for k in compared
            ]
        }
        with _IN_PROCESS:
            ours, reports = grade_child.run_tasks(request, arrays)
        checks = []
        for j, (k, report) in enumerate(zip(compared, reports)):
            if report is not None:
                raise RuntimeError(f"the reference nn.{name} fails on case {k + 1}: {report}")
            for key in sorted(key.split("/", 1)[1] for key in ours if key.startswith(f"{j}/")):
                value = ours[f"{j}/{key}"]
                if key == "out":
                    checks.append(Check(k, key, value, LAYER_OUTPUT, "output", "output"))
                elif key.startswith("grad/"):
                    what = key[5:]
                    what = f"input {what[2:]}" if what.startswith("in") else f"parameter {what}"
                    checks.append(Check(k, key, value, LAYER_GRADIENT, "gradients", f"gradient of {what}"))
                else:
                    checks.append(
                        Check(k, key, value, LAYER_OUTPUT, "output", f"buffer {key[6:]} after forward")
                    )
        return checks

    job.expect = expect
    return job


_IN_PROCESS = threading.Lock()  # the reference run here swaps rules of shared primitives for a while


def _layer_task(name: str, k: int, case: LayerCase, arrays: dict, stand_in: list[list[str]]) -> dict:
    seed: Any = case.seed_draw
    if case.seed is not None:
        arrays[f"seed{k}"] = case.seed
        seed = f"seed{k}"
    return {
        "kind": "layer",
        "layer": name,
        "kwargs": grade_child.encode(case.kwargs, arrays, f"k{k}_"),
        "state": grade_child.encode(case.state, arrays, f"s{k}_"),
        "eval": case.eval_mode,
        "args": grade_child.encode(list(case.args), arrays, f"x{k}_"),
        "seed": seed,
        "stand_in": stand_in,
    }


def _probes(job: Job, k: int, case: LayerCase, task: dict) -> None:
    """Ask the child for its forward at inputs and parameters moved both ways along random directions."""
    rng = np.random.default_rng([k, 3])
    task["probes"] = []
    for j in range(2):
        probe = {"inputs": {}, "params": {}}
        for i, value in enumerate(case.args):
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                key = f"pr{k}_{j}_in{i}"
                job.arrays[key] = rng.normal(size=value.shape) * PROBE_STEP
                probe["inputs"][str(i)] = key
        for name, value in case.state.items():
            if name.startswith("running") or name == "num_batches_tracked":
                continue
            key = f"pr{k}_{j}_{name}"
            job.arrays[key] = rng.normal(size=np.shape(value)) * PROBE_STEP
            probe["params"][name] = key
        task["probes"].append(probe)
    job.probes.append(
        {
            "example": k,
            "count": 2,
            "seed": case.seed,
            "seed_draw": case.seed_draw,
            "directions": task["probes"],
        }
    )


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
        shutil.copy2(grade_child.__file__, work / "grade_child.py")
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


# ---- judging the answers -------------------------------------------------------------------------------


def compare(got: Any, expected: np.ndarray, tolerance: tuple[float, float]) -> str:
    """ "" when `got` is close to `expected`, else what is wrong, with a hint for the classic mistakes."""
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
        bad = ~((error <= atol + rtol * np.abs(expected64)) | same)
    if not bad.any():
        return ""
    worst = np.unravel_index(int(np.argmax(np.where(bad, np.nan_to_num(error, nan=np.inf), -1))), bad.shape)
    where = f" at index {tuple(int(i) for i in worst)}" if expected.ndim else ""
    text = (
        f"differs{where}: expected {expected64[worst]:.10g}, got {got64[worst]:.10g} "
        f"({int(bad.sum())} of {bad.size} elements differ)"
    )
    scale = np.abs(expected64).max(initial=0.0)
    if scale and np.allclose(got64, -expected64, atol=atol, rtol=rtol):
        text += "; it is the expected value with the sign flipped"
    elif scale and not np.any(got64):
        text += "; it is zero"
    elif scale and got.size and np.any(got64):
        ratio = np.sum(got64 * expected64) / np.sum(expected64 * expected64)
        if np.allclose(got64, ratio * expected64, atol=atol, rtol=rtol) and ratio > 0:
            text += f"; it is the expected value times {ratio:.4g} (a mean where a sum belongs, or a factor?)"
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
        got = run.out.get(f"{check.example}/{check.key}")
        problem = compare(got, check.expected, check.tolerance)
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


# ---- grading a submission ---------------------------------------------------------------------------------


class Grader:
    """Grades items of one config for any number of submissions; each item's inputs and expected
    numbers are computed once per run (the same draws for every submission)."""

    def __init__(self, config: Config, items: dict[str, float], seed: int) -> None:
        self.config, self.items, self.seed = config, items, seed
        rules = [split_item(item) for item in config.items]
        self.graded_rules = [[op, rule] for kind, op, rule in rules if kind == "rule"]
        self._jobs: dict[str, Job | Exception] = {}
        self._locks = {item: threading.Lock() for item in items}

    def job(self, item: str) -> Job:
        with self._locks[item]:
            if item not in self._jobs:
                kind, name, rule = split_item(item)
                try:
                    if kind == "rule":
                        others = [r for r in self.graded_rules if r != [name, rule]]
                        self._jobs[item] = rule_job(name, rule, self.config.examples, self.seed, others)
                    else:
                        if name not in LAYERS:
                            raise ValueError(f"no grading spec for nn.{name} (gradable: {', '.join(LAYERS)})")
                        self._jobs[item] = layer_job(
                            name, self.seed, self.graded_rules, item in self.config.items
                        )
                except Exception as error:  # noqa: BLE001 - the teacher's setup, reported per item
                    self._jobs[item] = error
            found = self._jobs[item]
        if isinstance(found, Exception):
            raise found
        return found

    def grade_item(self, root: Path, item: str, env: dict | None = None) -> Result:
        started = time.perf_counter()
        points = self.items.get(item, 1.0)
        visibility = self.config.visibility.get(item, "visible")
        try:
            job = self.job(item)
            run = run_child(
                root,
                {"tasks": job.tasks, "modules": _primitive_modules()},
                job.arrays,
                self.config.time_limit,
                self.config.memory_limit,
                env,
                meanwhile=job.ready,
            )
            result = judge(job, run, points, visibility)
        except Exception as error:  # noqa: BLE001 - the grader's own failure, reported per item
            return Result(
                item,
                0.0,
                points,
                "error",
                f"cannot grade {item}: {type(error).__name__}: {error}",
                time.perf_counter() - started,
                {},
                visibility,
            )
        result.seconds = time.perf_counter() - started
        return result

    def grade(self, root: Path, jobs: int | None = None) -> list[Result]:
        with ThreadPoolExecutor(max_workers=jobs or _cores()) as pool:
            return list(pool.map(lambda item: self.grade_item(root, item), self.items))


def _primitive_modules() -> list[str]:
    """The modules that define the primitives (where their rules are), for the child to import."""
    from mytorch.testing import all_primitives

    found = {getattr(p, "defined_in", None) or getattr(getattr(p, "vjp", None), "__module__", None)
             for p in all_primitives().values()}
    return sorted(name for name in found if name and name.startswith("mytorch"))


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def grade_item(item: str, config: Config, points: float | None = None, seed: int | None = None) -> Result:
    """Grade one item of the handout this process runs in (a student's own check: the visible seed)."""
    items = {item: config.items.get(item, 1.0) if points is None else points}
    grader = Grader(config, items, config.seed if seed is None else seed)
    return grader.grade_item(_package_root(), item)


def _package_root() -> Path:
    return Path(__file__).resolve().parent.parent


def prepare_submission(config: Config, submission: Path, scratch: Path) -> Path:
    """A fresh copy of the handout with the student's files (the config's `files`) put in."""
    missing = [name for name in config.files if not (submission / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{submission} lacks {', '.join(missing)}")
    copy = scratch / "handout"
    shutil.copytree(
        config.directory, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".git")
    )
    for name in config.files:
        shutil.copy2(submission / name, copy / name)
    return copy


def find_config(path: Path | None = None) -> Config:
    """grading.json: `path`, else in the current directory, else beside the mytorch package."""
    beside_package = _package_root() / CONFIG_NAME
    candidates = [path] if path else [Path.cwd() / CONFIG_NAME, beside_package]
    for candidate in candidates:
        if candidate.is_file():
            return Config.load(candidate)
    raise FileNotFoundError(
        f"no {CONFIG_NAME} found ({', '.join(map(str, candidates))}): run grade inside a "
        "handout made by `python -m mytorch handout`, or pass --config"
    )


# ---- reporting ----------------------------------------------------------------------------------


def _points(value: float) -> str:
    return f"{round(value, 3):g}"


def table(results: list[Result]) -> str:
    """The grade table: item, points, result; then each failure in full."""
    width = max([len("item"), *(len(r.item) for r in results)])
    lines = [f"{'item':<{width}}  {'points':>9}  result", f"{'-' * width}  {'-' * 9}  {'-' * 15}"]
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


def to_json(results: list[Result], seconds: float, seed: int | None = None) -> dict[str, Any]:
    """The results in the shape of Gradescope's results.json."""
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
    if seed is not None:
        report["output"] = f"graded with seed {seed}"
    return report


def scores_line(results: list[Result]) -> str:
    """Autolab's last line: {"scores": {item: points}}."""
    return json.dumps({"scores": {r.item: r.points for r in results}})


def _write_json(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


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


# ---- the self-test: can every item fail? -----------------------------------------------------------------

WRONG_RULES = ("missing transpose", "mean for sum", "un-reduced broadcast", "sign flip", "raw NumPy")
NOT_APPLICABLE = "n/a"  # the wrong version equals the right one on every drawn input
WRONG_LAYERS = ("sign flip", "mean for sum", "raw NumPy", "default arguments")

_WRONG_HOOK = """
# ---- mytorch grade --self-test: a known-wrong rule (this copy is a temporary one) ----
def _install_wrong():
    import os
    target = os.environ.get("MYTORCH_SELFTEST_WRONG")
    if target:
        from mytorch.grade import install_wrong
        install_wrong(target)
_install_wrong()
"""


def install_wrong(target: str) -> Callable[[], None]:
    """Make the rule or layer named in `target` ("exp.vjp|sign flip") wrong in this process;
    returns what undoes it."""
    from mytorch import functional as F
    from mytorch import nn
    from mytorch.autograd_engine import no_grad
    from mytorch.testing import all_primitives

    item, _, kind = target.partition("|")
    what, name, rule = split_item(item)
    if what == "rule":
        primitive = all_primitives()[name]
        right = getattr(primitive, rule)
        whole = _one_rule(right) if isinstance(right, (tuple, list)) else right
        setattr(primitive, rule, _wrong_rule(whole, rule, kind, no_grad, F))
        return lambda: setattr(primitive, rule, right)
    cls = getattr(nn, name)
    forward = cls.__dict__["forward"]
    cls.forward = _wrong_forward(cls, forward, kind, F)
    return lambda: setattr(cls, "forward", forward)


def _one_rule(rules: Any) -> Callable:
    """Per-input backward rules (one per input) as one rule returning every input's gradient."""

    def vjp(g: Any, ans: Any, *inputs: Any, **params: Any) -> tuple:
        return tuple(None if rule is None else rule(g, ans, *inputs, **params) for rule in rules)

    return vjp


def _wrong_rule(right: Callable, rule: str, kind: str, no_grad: Any, F: Any) -> Callable:
    def each(values: Any, change: Callable) -> Any:
        if isinstance(values, (tuple, list)):
            return tuple(None if v is None else change(v) for v in values)
        return None if values is None else change(values)

    def wrong(first: Any, ans: Any, *inputs: Any, **params: Any) -> Any:
        values = right(first, ans, *inputs, **params)
        if kind == "sign flip":
            return each(values, F.neg)
        if kind == "mean for sum":
            size = max(np.size(ans), 2)
            return each(values, lambda v: F.div(v, float(size)))
        if kind == "missing transpose":
            return each(values, lambda v: F.transpose(v) if np.ndim(v) >= 2 else F.mul(v, 1.0))
        if kind == "un-reduced broadcast":
            if rule == "vjp":
                return each(
                    values, lambda v: F.broadcast_to(v, np.broadcast_shapes(np.shape(v), np.shape(ans)))
                )
            return values
        if kind == "raw NumPy":
            with no_grad():
                return each(values, lambda v: np.array(v, copy=True))
        raise ValueError(kind)

    return wrong


def _wrong_forward(cls: type, right: Callable, kind: str, F: Any) -> Callable:
    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kind == "default arguments":
            import inspect

            required = {
                name: getattr(self, name)
                for name, p in inspect.signature(cls.__init__).parameters.items()
                if p.default is p.empty and name not in ("self", "args", "kwargs") and hasattr(self, name)
            }
            fresh = cls(**required)
            fresh.load_state_dict({k: v for k, v in self.state_dict().items()})
            return right(fresh, *args, **kwargs)
        out = right(self, *args, **kwargs)
        if kind == "sign flip":
            return F.neg(out)
        if kind == "mean for sum":
            return F.mul(out, 0.5)
        if kind == "raw NumPy":
            return np.array(out, copy=True)
        raise ValueError(kind)

    return forward


def self_test(
    items: list[str], examples: int = 8, seed: int = 0, time_limit: float = 120.0, jobs: int | None = None
) -> list[tuple[str, str, Result | None]]:
    """Grade each item with each known-wrong rule (or layer) in a temporary copy of the reference.

    Returns (item, wrong kind, result) for every pair, with None for a pair where the wrong
    version gives the same numbers as the right one on every drawn input (a transpose of 1-D
    gradients, an un-reduced broadcast where nothing broadcasts): no grader can fail those. A
    result that passes is a defect of the grader."""
    package = Path(__file__).resolve().parent
    config = Config(dict.fromkeys(items, 1.0), examples=examples, seed=seed, time_limit=time_limit)
    grader = Grader(config, dict(config.items), seed)
    pairs = [(item, kind) for item in items for kind in _wrong_kinds(item)]
    for item in items:
        grader.job(item).ready()  # the inputs and expected numbers, before anything here is made wrong
    applicable = {pair: _differs(grader.job(pair[0]), f"{pair[0]}|{pair[1]}") for pair in pairs}
    with tempfile.TemporaryDirectory(prefix="mytorch-selftest-") as scratch:
        root = Path(scratch)
        shutil.copytree(package, root / "mytorch", ignore=shutil.ignore_patterns("__pycache__"))
        with open(root / "mytorch" / "__init__.py", "a", encoding="utf-8") as init:
            init.write(_WRONG_HOOK)

        def one(pair: tuple[str, str]) -> tuple[str, str, Result | None]:
            item, kind = pair
            if not applicable[pair]:
                return item, kind, None
            return item, kind, grader.grade_item(root, item, {"MYTORCH_SELFTEST_WRONG": f"{item}|{kind}"})

        with ThreadPoolExecutor(max_workers=jobs or _cores()) as pool:
            return list(pool.map(one, pairs))


def _wrong_kinds(item: str) -> tuple[str, ...]:
    kind, _, rule = split_item(item)
    if kind == "layer":
        return WRONG_LAYERS
    return WRONG_RULES if rule == "vjp" else tuple(k for k in WRONG_RULES if k != "un-reduced broadcast")


def _differs(job: Job, target: str) -> bool:
    """Whether the wrong version's answers differ from the right one's on the job's tasks (run here)."""
    request = {"tasks": [dict(task, probes=[]) for task in job.tasks], "modules": _primitive_modules()}
    with _IN_PROCESS:
        right = grade_child.run_tasks(request, job.arrays)
        undo = install_wrong(target)
        try:
            wrong = grade_child.run_tasks(request, job.arrays)
        finally:
            undo()
    atol, rtol = FIRST_ORDER  # closer than the grader's tolerance is the same numbers, for grading
    if [r is None for r in right[1]] != [r is None for r in wrong[1]] or set(right[0]) != set(wrong[0]):
        return True
    return any(
        np.shape(right[0][key]) != np.shape(wrong[0][key])
        or not np.allclose(right[0][key], wrong[0][key], rtol=rtol, atol=atol, equal_nan=True)
        for key in right[0]
    )


def _self_test_report(outcomes: list[tuple[str, str, Result | None]]) -> tuple[str, int]:
    missed = [(item, kind) for item, kind, r in outcomes if r is not None and r.passed]
    skipped = sum(r is None for _, _, r in outcomes)
    lines = [
        f"self-test: {len(outcomes)} (item, wrong version) pairs: {len(outcomes) - len(missed) - skipped} "
        f"caught, {len(missed)} passed (grader defects), {skipped} not applicable (the wrong version gives "
        "the right numbers on every drawn input)"
    ]
    for item, kind, r in outcomes:
        verdict = NOT_APPLICABLE if r is None else ("PASSED: grader defect" if r.passed else "caught")
        score = "" if r is None else f"  {_points(r.points)}/{_points(r.max_points)}"
        lines.append(f"  {item:<24} {kind:<22} {verdict}{score}")
    if missed:
        lines.append("wrong versions that pass: " + ", ".join(f"{i} ({k})" for i, k in missed))
    return "\n".join(lines), len(missed)


# ---- command line -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the results as Gradescope's results.json"
    )
    parser.add_argument(
        "--config", type=Path, metavar="PATH", help=f"the {CONFIG_NAME} to use (default: the handout's)"
    )
    parser.add_argument(
        "--items", metavar="A,B", help="grade these items instead of the config's (e.g. matmul.vjp,nn.Linear)"
    )
    parser.add_argument("--examples", type=int, help="drawn examples per rule (default: the config's)")
    parser.add_argument(
        "--seed",
        type=int,
        help="seed of the draws (default: the config's visible seed for "
        "your own work; a fresh one with --submission(s))",
    )
    parser.add_argument(
        "--time-limit", type=float, metavar="S", help="seconds per item (default: the config's)"
    )
    parser.add_argument(
        "--jobs", type=int, metavar="N", help="children at once (default: the machine's cores)"
    )
    parser.add_argument(
        "--submission",
        type=Path,
        metavar="DIR",
        help="grade a student's copy: its edited files (the config's 'files') are put into a "
        "fresh copy of the handout, and graded there by this (the reference) mytorch",
    )
    parser.add_argument(
        "--submissions",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="grade many submissions (or folders of them) in parallel",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("grades"),
        metavar="DIR",
        help="with --submissions: where grades.csv and one JSON per student go (default grades)",
    )
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check that known-wrong rules fail every item (the config's, or --items, or all)",
    )


def run(args: argparse.Namespace) -> int:
    if args.self_test:
        return _run_self_test(args)
    try:
        config = find_config(args.config)
        items = dict(config.items)
        if args.items:
            names = [name.strip() for name in args.items.split(",") if name.strip()]
            for name in names:
                split_item(name)
            items = {name: config.items.get(name, 1.0) for name in names}
    except (OSError, ValueError) as error:
        print(f"grade: {error}", file=sys.stderr)
        return 2
    if args.examples:
        config.examples = args.examples
    if args.time_limit:
        config.time_limit = args.time_limit
    teacher = bool(args.submission or args.submissions)
    if teacher and not _reference_is_here():
        print(
            "grade: --submission grades against the reference, but this mytorch is a handout's copy "
            f"({_package_root()}): run it where the teacher's mytorch is imported, e.g. "
            f"cd elsewhere && python -m mytorch grade --config {config.directory / CONFIG_NAME} ...",
            file=sys.stderr,
        )
        return 2
    seed = args.seed if args.seed is not None else (secrets.randbits(31) if teacher else config.seed)
    grader = Grader(config, items, seed)
    if args.submissions:
        submissions = submissions_in(args.submissions, config)
        if not submissions:
            print("grade: no submissions found", file=sys.stderr)
            return 2
        rows = grade_class(grader, submissions, args.out, args.jobs)
        return 0 if all(row["score"] == row["max_score"] and not row["error"] for row in rows) else 1
    started = time.perf_counter()
    if args.submission:
        if not config.files:
            print(f"grade: {config.directory / CONFIG_NAME} lists no 'files' students edit", file=sys.stderr)
            return 2
        with tempfile.TemporaryDirectory(prefix="mytorch-submission-") as scratch:
            try:
                root = prepare_submission(config, args.submission, Path(scratch))
            except FileNotFoundError as error:
                print(f"grade: {error}", file=sys.stderr)
                return 2
            results = grader.grade(root, args.jobs)
    else:
        results = grader.grade(_package_root(), args.jobs)
    seconds = time.perf_counter() - started
    print(table(results))
    print(f"\ngraded {len(results)} items in {seconds:.1f} s")
    if args.json:
        _write_json(args.json, to_json(results, seconds, seed if teacher else None))
    print(scores_line(results))
    return 0 if all(r.passed for r in results) else 1


def _run_self_test(args: argparse.Namespace) -> int:
    if not _reference_is_here():
        print(
            "grade --self-test: run it with the teacher's mytorch (this one is a handout's copy)",
            file=sys.stderr,
        )
        return 2
    if args.items:
        items = [name.strip() for name in args.items.split(",") if name.strip()]
    elif args.config:
        items = list(find_config(args.config).items)
    else:
        from mytorch.testing import all_primitives

        items = [f"{op}.{rule}" for op in sorted(all_primitives()) for rule in ("vjp", "jvp")]
        items += [f"nn.{name}" for name in LAYERS]
    outcomes = self_test(
        items,
        examples=args.examples or 8,
        seed=args.seed or 0,
        time_limit=args.time_limit or 120.0,
        jobs=args.jobs,
    )
    report, missed = _self_test_report(outcomes)
    print(report)
    return 1 if missed else 0

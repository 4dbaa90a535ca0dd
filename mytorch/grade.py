"""`python -m mytorch grade [--json PATH]`: grade a handout's items and print a table.

Run inside a handout (made by `python -m mytorch handout`); the items and their points come
from its grading.json. Each item is graded on its own, with a time limit:

- a primitive's rule (`matmul.vjp`, `matmul.jvp`): `mytorch.testing.check_primitive` against
  central finite differences, on inputs drawn by hypothesis (same seed for everyone); a failure
  is shrunk to the smallest input hypothesis can find, shown with the expected and actual values;
- a layer (`nn.GRUCell`): its forward on the fixed inputs of grading_oracle.npz, on a fresh
  engine, then a walk back from the output: the output, the gradients of the inputs and
  parameters, and the buffers must match the reference's. The smallest failing case is shown.
  In that walk, the backward rules that students write (the config's `op.vjp` items) are
  replaced by central differences of the primitives' forward, so a layer's grade depends on its
  forward alone, not on the rules graded beside it (which may still be stubs).

A stub that still raises NotImplementedError scores 0 as "not implemented". The exit code is 0
when everything passes, 1 otherwise; `--json PATH` writes the results in the shape Gradescope
reads (score, max_score, tests: name, score, max_score, status, output).

    python -m mytorch grade
    python -m mytorch grade --items matmul.vjp,nn.Linear --json results.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mytorch.assignment import (
    CHECK_MODES,
    CONFIG_NAME,
    LAYERS,
    ORACLE_NAME,
    Config,
    load_oracle,
    run_layer,
    split_item,
)

# (atol, rtol) of a layer's numbers against the reference's: its output (both float64: roundoff
# only), and its gradients (which may come through finite-difference rules, see _reference_rules).
OUTPUT_TOLERANCE = (1e-8, 1e-6)
GRADIENT_TOLERANCE = (1e-6, 1e-5)
STEP = 1e-6  # of those finite differences


@dataclass
class Result:
    """One item's grade."""

    item: str
    points: float
    max_points: float
    status: str  # "pass", "FAIL", "not implemented", "error", "timeout"
    detail: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "pass"


class _OutOfTime(BaseException):
    """Raised by the alarm; a BaseException, so hypothesis passes it through instead of shrinking it."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or seconds <= 0:
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise _OutOfTime

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def find_config(path: Path | None = None) -> Config:
    """grading.json: `path`, else in the current directory, else beside the mytorch package."""
    import mytorch

    beside_package = Path(mytorch.__file__).resolve().parent.parent / CONFIG_NAME
    candidates = [path] if path else [Path.cwd() / CONFIG_NAME, beside_package]
    for candidate in candidates:
        if candidate.is_file():
            return Config.load(candidate)
    raise FileNotFoundError(f"no {CONFIG_NAME} found ({', '.join(map(str, candidates))}): run grade inside a "
                            "handout made by `python -m mytorch handout`, or pass --config")


@contextlib.contextmanager
def _grading_profile() -> Iterator[None]:
    """Hypothesis settings for grading, whatever profile the caller's session uses (restored after):
    hypothesis's defaults, no example database, no "explain" phase (slow on a failure, and the
    report already shows the minimal example)."""
    from hypothesis import HealthCheck, Phase, settings

    previous = settings.get_current_profile_name() if hasattr(settings, "get_current_profile_name") \
        else getattr(settings, "_current_profile", "default")
    settings.register_profile(
        "mytorch-grade", parent=settings.get_profile("default"), deadline=None, database=None,
        print_blob=False, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    settings.load_profile("mytorch-grade")
    try:
        yield
    finally:
        settings.load_profile(previous)


def grade_item(item: str, config: Config, points: float | None = None) -> Result:
    """Grade one item; never raises for what the student's code does."""
    max_points = config.items.get(item, 1.0) if points is None else points
    started = time.perf_counter()
    kind, name, rule = split_item(item)
    try:
        with _grading_profile(), _time_limit(config.time_limit):
            status, detail = _grade_rule(name, rule, config) if kind == "rule" else _grade_layer(name, config)
    except _OutOfTime:
        status, detail = "timeout", f"took longer than the limit, {config.time_limit:g} s (an endless loop?)"
    except NotImplementedError as error:
        status, detail = _not_implemented(error, kind)
    except Exception as error:  # the student's code crashed: that item fails, the others still run
        status, detail = "error", f"{type(error).__name__}: {error}{_falsifying_example(error)}"
    seconds = time.perf_counter() - started
    return Result(item, max_points if status == "pass" else 0.0, max_points, status, detail, seconds)


def _not_implemented(error: NotImplementedError, kind: str) -> tuple[str, str]:
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    if kind == "layer" and frame is not None and frame.tb_frame.f_code.co_name != "forward":
        return "FAIL", (f"the walk back through forward reached a rule that is still a stub: {error}\n"
                        f"  (rules graded as items are stood in for while a layer is graded; this one is not "
                        f"in {CONFIG_NAME})")
    return "not implemented", str(error)


def _falsifying_example(error: BaseException) -> str:
    draws = [note for note in getattr(error, "__notes__", []) if note.startswith("Draw ")]
    if not draws:
        return ""
    return "\n  minimal failing input (shrunk by hypothesis):\n    " + "\n    ".join(
        note.replace("\n", "\n    ") for note in draws
    )


def _grade_rule(op: str, rule: str, config: Config) -> tuple[str, str]:
    from mytorch.testing import GradientCheckError, check_primitive

    try:
        report = check_primitive(op, modes=(CHECK_MODES[rule],), max_examples=config.examples,
                                 seed=config.seed)
    except GradientCheckError as error:
        if isinstance(error.__cause__, NotImplementedError):  # the check reports a rule that raised
            raise error.__cause__ from None
        return "FAIL", str(error)
    return "pass", f"{report.examples} examples, max abs error {report.max_abs_error:.1e}"


def _grade_layer(name: str, config: Config) -> tuple[str, str]:
    from mytorch import nn
    from mytorch.testing.checks import _brief, _Comparison
    from mytorch.testing.layers import _shape_hint, _value_hint

    if name not in LAYERS:
        return "error", f"no grading spec for nn.{name} (gradable: {', '.join(LAYERS)})"
    oracle = config.directory / ORACLE_NAME
    cases = load_oracle(oracle, name) if oracle.exists() else []
    if not cases:
        return "error", f"{oracle} holds no cases for nn.{name}: make the handout again with this layer"
    items = [split_item(item) for item in config.items]
    student_rules = [op for kind, op, rule in items if (kind, rule) == ("rule", "vjp")]
    for k, case in enumerate(cases):
        layer = LAYERS[name].build(nn)
        layer.load_state_dict(case.state)
        if case.eval_mode:
            layer.eval()
        args = tuple(np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in case.args)
        shown = "\n".join(
            f"    input {i}: " + ("None" if a is None else f"{_brief(a, 13)}  # shape {a.shape}")
            for i, a in enumerate(case.args)
        )
        where = (f"case {k + 1} of {len(cases)}, the smallest that fails"
                 f"{' (eval mode)' if case.eval_mode else ''}:\n{shown}")
        try:
            with _reference_rules(student_rules):
                got = run_layer(layer, args, case.expected["seed"])
        except NotImplementedError:
            raise
        except Exception as error:  # the student's forward crashed (or returned the wrong shape)
            return "FAIL", f"nn.{name}: {type(error).__name__}: {error}\n  {where}"
        for key, expected in case.expected.items():
            if key == "seed":
                continue
            atol, rtol = GRADIENT_TOLERANCE if key.startswith("grad/") else OUTPUT_TOLERANCE
            comparison = _Comparison(_quantity(key), got.get(key), expected, atol, rtol)
            if comparison.ok:
                continue
            if comparison.problem:
                comparison.hint = _shape_hint(np.asarray(got.get(key)), expected)
            else:
                comparison.hint = _value_hint(np.asarray(got[key]), expected, np.shape(case.args[0]))
            if key.startswith("grad/") and not comparison.problem and not np.any(got[key]):
                comparison.hint = ("it is zero: is forward computed with NumPy instead of mytorch.functional "
                                   "primitives? The engine only sees the primitives")
            return "FAIL", f"nn.{name}: {comparison.explain()}\n  {where}"
    return "pass", f"{len(cases)} cases: output, gradients and buffers match"


@contextlib.contextmanager
def _reference_rules(ops: list[str]) -> Iterator[None]:
    """Swap the backward rules of `ops` for central differences of their forward, for a while."""
    from mytorch.testing import all_primitives

    primitives = all_primitives()
    saved = {primitives[op]: primitives[op].vjp for op in ops if op in primitives}
    for primitive in saved:
        primitive.vjp = _finite_difference_vjp(primitive.forward)
    try:
        yield
    finally:
        for primitive, vjp in saved.items():
            primitive.vjp = vjp


def _finite_difference_vjp(forward: Any) -> Any:
    """x̄ᵢ[k] = Σ ȳ ⊙ (f(x + h eₖ) − f(x − h eₖ)) / 2h for each float input xᵢ (None for the others)."""

    def vjp(g: np.ndarray, ans: np.ndarray, *inputs: Any, **params: Any) -> tuple:
        adjoint = np.asarray(g, dtype=np.float64)
        grads: list[np.ndarray | None] = []
        for i, x in enumerate(inputs):
            if not (isinstance(x, np.ndarray) and x.dtype.kind == "f"):
                grads.append(None)
                continue
            grad = np.zeros(x.size)
            for k in range(x.size):
                change = []
                for step in (STEP, -STEP):
                    moved = x.astype(np.float64).reshape(-1)
                    moved[k] += step
                    shifted = (*inputs[:i], moved.reshape(x.shape), *inputs[i + 1:])
                    change.append(np.asarray(forward(*shifted, **params), dtype=np.float64))
                grad[k] = np.sum(adjoint * (change[0] - change[1])) / (2 * STEP)
            grads.append(grad.reshape(x.shape).astype(x.dtype))
        return tuple(grads)

    return vjp


def _quantity(key: str) -> str:
    kind, _, name = key.partition("/")
    if kind == "out":
        return "output"
    if kind == "grad":
        return f"gradient of input {name[2:]}" if name.startswith("in") else f"gradient of parameter {name}"
    return f"buffer {name} after forward"


def grade(items: dict[str, float], config: Config) -> list[Result]:
    return [grade_item(item, config, points) for item, points in items.items()]


# ---- reporting ----------------------------------------------------------------------------------


def _points(value: float) -> str:
    return f"{value:g}"


def table(results: list[Result]) -> str:
    """The grade table: item, points, result; then each failure in full."""
    width = max([len("item"), *(len(r.item) for r in results)])
    lines = [f"{'item':<{width}}  {'points':>7}  result", f"{'-' * width}  {'-' * 7}  {'-' * 15}"]
    for r in results:
        lines.append(f"{r.item:<{width}}  {_points(r.points) + '/' + _points(r.max_points):>7}  {r.status}")
    score, total = sum(r.points for r in results), sum(r.max_points for r in results)
    lines.append(f"{'-' * width}  {'-' * 7}")
    lines.append(f"{'total':<{width}}  {_points(score) + '/' + _points(total):>7}")
    for r in results:
        if not r.passed:
            lines.append(f"\n{r.item}: {r.status}\n  {r.detail}")
    return "\n".join(lines)


def to_json(results: list[Result], seconds: float) -> dict[str, Any]:
    """The results in the shape of Gradescope's results.json."""
    return {
        "score": sum(r.points for r in results),
        "max_score": sum(r.max_points for r in results),
        "execution_time": round(seconds, 2),
        "tests": [
            {"name": r.item, "score": r.points, "max_score": r.max_points,
             "status": "passed" if r.passed else "failed", "result": r.status, "output": r.detail}
            for r in results
        ],
    }


def _grade_submission(args: argparse.Namespace, config: Config) -> int:
    """Grade a student's files inside a fresh copy of this handout, so that only the files they
    were asked to edit come from them (their copy of the grader, config and oracle do not)."""
    if not config.files:
        print(f"grade: {config.directory / CONFIG_NAME} lists no 'files' students edit", file=sys.stderr)
        return 2
    missing = [name for name in config.files if not (args.submission / name).is_file()]
    if missing:
        print(f"grade: {args.submission} lacks {', '.join(missing)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mytorch-grade-") as scratch:
        copy = Path(scratch) / "handout"
        shutil.copytree(config.directory, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        for name in config.files:
            shutil.copy2(args.submission / name, copy / name)
        options = {"json": args.json and args.json.resolve(), "items": args.items, "examples": args.examples}
        command = [sys.executable, "-m", "mytorch", "grade"]
        command += [f"--{option}={value}" for option, value in options.items() if value]
        env = {**os.environ, "PYTHONPATH": str(copy)}
        return subprocess.run(command, cwd=copy, env=env).returncode


# ---- command line -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the results as JSON (Gradescope's shape)")
    parser.add_argument("--config", type=Path, metavar="PATH",
                        help=f"the {CONFIG_NAME} to use (default: the handout's)")
    parser.add_argument("--items", metavar="A,B",
                        help="grade these items instead of the config's (e.g. matmul.vjp,nn.Linear)")
    parser.add_argument("--examples", type=int, help="hypothesis examples per rule (default: the config's)")
    parser.add_argument("--submission", type=Path, metavar="DIR",
                        help="grade a student's copy: its edited files (the config's 'files') are put into a "
                             "fresh copy of this handout, and graded there")


def run(args: argparse.Namespace) -> int:
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
    if args.submission:
        return _grade_submission(args, config)
    if args.examples:
        config.examples = args.examples
    started = time.perf_counter()
    results = grade(items, config)
    seconds = time.perf_counter() - started
    print(table(results))
    print(f"\ngraded {len(results)} items in {seconds:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(to_json(results, seconds), indent=2, ensure_ascii=False) + "\n",
                             encoding="utf-8")
    return 0 if all(r.passed for r in results) else 1

"""The jobs: what a child is asked for an item, and what its answers must be."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mytorch.course import child
from mytorch.course.assignment import LayerCase, make_layer_cases
from mytorch.course.draws import _directions, _floats, _rule_oracle, draw_examples, variants

FIRST_ORDER = (1e-6, 1e-5)  # (atol, rtol) of a first-order rule against finite differences
SECOND_ORDER = (1e-5, 1e-4)  # second order: differences of differences
LOW_PRECISION = (3e-3, 3e-3)  # a float32 output even in float64 (astype): differences of float32 values
SINGLE = (1e-4, 1e-4)  # a rule computing in float32, against differences taken in float64
LAYER_OUTPUT = (1e-8, 1e-6)
LAYER_GRADIENT = (1e-6, 1e-5)  # the child's other rules are central differences
SECOND_SHARE = 0.3  # of a rule item's points, when its second order is graded
SECOND_ORDER_EXAMPLES = 3  # at least; a third of the examples (the smallest) are checked at order 2
PROBE_STEP = 1e-5


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
    named: tuple[tuple[str, np.ndarray], ...] = ()  # what the rule was called with, for the hints
    also: tuple[str, ...] = ()  # keys added to `key` first (the same array at several places)


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
    drawn += variants(op, drawn)  # float32 copies and tied twins of some of them
    rng = np.random.default_rng([seed, 7])
    tasks, arrays, shown, plans = [], {}, [], []
    positions_seen: list[int] = []
    second_count = max(SECOND_ORDER_EXAMPLES, examples // 3)
    second_seen: set[int] = set()  # the inputs some second-order example differentiates
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
        if out.dtype.kind == "f":  # in the dtypes a walk hands the rule (float32 stays float32)
            a = a.astype(out.dtype)
            b = [d.astype(inputs[p].dtype) for p, d in zip(positions, b)]
        # An array at several places (`mul(x, x)`) moves as one: one direction for all of them, and
        # its gradient is the sum of theirs (what a walk accumulates), compared at its first place.
        first_of = {p: next(q for q in positions if inputs[q] is inputs[p]) for p in positions}
        b = [b[positions.index(first_of[p])] for p in positions]
        differentiable = out.dtype.kind == "f" and bool(positions)
        # Second order on the smallest examples that carry information (empty arrays do not), and
        # on the first to carry an input none of those has (linear's bias, absent from the smallest).
        second = differentiable and out.dtype == np.float64 and out.size > 0
        second = second and all(np.size(inputs[p]) for p in positions)
        second = second and (second_count > 0 or not second_seen.issuperset(positions))
        second_count -= second
        second_seen.update(positions if second else [])
        task = {
            "kind": "rule",
            "op": op,
            "rule": rule,
            "second": second,
            "inputs": child.encode(tuple(inputs), arrays, f"x{k}_"),
            "params": child.encode(dict(example.params), arrays, f"p{k}_"),
            "a": f"a{k}",
            "b": [f"b{k}_{p}" for p in positions],
            "stand_in": stand_in,
        }
        arrays[f"a{k}"] = a
        arrays.update({f"b{k}_{p}": d for p, d in zip(positions, b)})
        tasks.append(task)
        shown.append(repr(example) + (_called_with(rule, a, b, positions) if differentiable else ""))
        plans.append((example, out, a, b, positions, differentiable, second, first_of))
        positions_seen += positions if differentiable else []

    def expect() -> list[Check]:
        from mytorch.testing.checks import in_float64

        checks = []
        for k, (example, out, a, b, positions, differentiable, second, first_of) in enumerate(plans):
            checks.append(
                Check(k, "out", out, (0.0, 1e-12), "forward", "the forward's output (not yours to change)")
            )
            if not differentiable:
                continue
            # Central differences in float64 (a float32 example's too: its rule is compared with
            # float32's precision, or less where even the float64 example's output is float32).
            expected = _rule_oracle(primitive, in_float64(example), a, b, second)
            single = out.dtype != np.float64 or any(example.inputs[p].dtype != np.float64 for p in positions)
            tolerance = FIRST_ORDER if not single else (
                SINGLE if expected["out"].dtype == np.float64 else LOW_PRECISION)
            inputs = [(f"input {p}", x) for p, x in enumerate(example.inputs)  # constants too (x / 2.0)
                      if isinstance(x, (np.ndarray, float, int)) and not isinstance(x, bool)]
            twins = {p: tuple(q for q in positions if q != p and first_of[q] == p) for p in positions}
            shared = {p: f" (the same array as input {', '.join(map(str, twins[p]))}: the gradients at "
                         "its places summed)" if twins[p] else "" for p in positions}
            firsts = [p for p in positions if first_of[p] == p]
            if rule == "vjp":
                named = (("ȳ", a), *inputs, ("the output y", out))
                checks += [
                    Check(
                        k,
                        f"first/{p}",
                        expected[f"aJ/{p}"],
                        tolerance,
                        f"gradient of input {p}",
                        f"backward rule: gradient of input {p}{shared[p]}",
                        named,
                        tuple(f"first/{q}" for q in twins[p]),
                    )
                    for p in firsts
                ]
            else:
                tangents = [(f"ẋ{p}", d) for p, d in zip(positions, b)]
                checks.append(
                    Check(
                        k,
                        "first/out",
                        expected["Jb"],
                        tolerance,
                        "tangent",
                        "tangent rule: the output's tangent",
                        (*inputs, *tangents, ("the output y", out)),
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
                        f"second order: ∂⟨ȳ, ẏ⟩/∂ẋ of input {p}{shared[p]}, your rule recorded and "
                        "walked back",
                        also=tuple(f"second/dir{q}" for q in twins[p]),
                    )
                    for p in firsts
                ]
            checks += [
                Check(
                    k,
                    f"second/{p}",
                    expected[f"dD/{p}"],
                    SECOND_ORDER,
                    "second order",
                    f"second order: ∂/∂x of your rule's result, input {p}{shared[p]}",
                    also=tuple(f"second/{q}" for q in twins[p]),
                )
                for p in firsts
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


def _array_text(label: str, value: np.ndarray) -> str:
    text = np.array2string(np.asarray(value), separator=", ", precision=10, threshold=60)
    return f"\n  {label}: " + text.replace("\n", "\n" + " " * (len(label) + 4))


def _called_with(rule: str, a: np.ndarray, b: list[np.ndarray], positions: list[int]) -> str:
    """What the rule was called with besides the inputs, so a student can redo the numbers by hand.

    >>> print(_called_with("vjp", np.array([1.0, -2.0]), [np.array([0.5, 1.0])], [0]))
    <BLANKLINE>
      ȳ, the output's adjoint your backward rule got: [ 1., -2.]
      b, the direction the second order walks along (input 0): [0.5, 1. ]
    """
    if rule == "vjp":
        lines = _array_text("ȳ, the output's adjoint your backward rule got", a)
        lines += "".join(_array_text(f"b, the direction the second order walks along (input {p})", d)
                         for p, d in zip(positions, b))
    else:
        lines = "".join(_array_text(f"ẋ{p}, the tangent of input {p} your tangent rule got", d)
                        for p, d in zip(positions, b))
        lines += _array_text("ȳ, the adjoint the second order walks back with", a)
    return lines


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
            ours, reports = child.run_tasks(request, arrays)
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
        "kwargs": child.encode(case.kwargs, arrays, f"k{k}_"),
        "state": child.encode(case.state, arrays, f"s{k}_"),
        "eval": case.eval_mode,
        "args": child.encode(list(case.args), arrays, f"x{k}_"),
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



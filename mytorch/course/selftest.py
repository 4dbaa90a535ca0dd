"""The self-test: can every item fail? Each item graded with known-wrong rules and layers."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mytorch.course import child
from mytorch.course.assignment import Config, split_item
from mytorch.course.grader import Grader, _cores, _primitive_modules
from mytorch.course.jobs import _IN_PROCESS, FIRST_ORDER, Job
from mytorch.course.judge import Result, judge
from mytorch.course.launch import ChildRun
from mytorch.course.progress import Progress
from mytorch.course.report import _points

# ---- the self-test: can every item fail? -----------------------------------------------------------------

WRONG_RULES = ("missing transpose", "mean for sum", "un-reduced broadcast", "sign flip", "raw NumPy")
NOT_APPLICABLE = "n/a"  # the wrong version equals the right one on every drawn input
WRONG_LAYERS = ("sign flip", "mean for sum", "raw NumPy", "default arguments")
# The mutant catalogue of law 8, made generic: each is right except in one corner.
CORNER_RULES = ("negative inputs", "size-1 axis", "float32", "second input", "same array", "cross term",
                "NumPy inside")
CORNER_LAYERS = ("untrained parameter", "untrained bias")

_WRONG_HOOK = """
# ---- mytorch grade --self-test: a known-wrong rule (this copy is a temporary one) ----
def _install_wrong():
    import os
    target = os.environ.get("MYTORCH_SELFTEST_WRONG")
    if target:
        from mytorch.course.selftest import install_wrong
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
        if kind in CORNER_RULES:
            return _wrong_in_a_corner(right, rule, kind, first, ans, inputs, params, F)
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


def _floats(values: Any) -> list[tuple[int, Any]]:
    return [(i, x) for i, x in enumerate(values) if isinstance(x, np.ndarray) and x.dtype.kind == "f"]


def _plain(value: Any) -> Any:
    """A copy of a rule's argument that is off the tape (a NumPy constant), sequences included."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return np.array(value, copy=True) if isinstance(value, np.ndarray) else value


def _stretched(x: Any, ans: Any) -> bool:
    """Whether `x` has a size-1 axis that the output `ans` stretches (aligned from the right)."""
    return any(n == 1 and m > 1 for n, m in zip(np.shape(x)[::-1], np.shape(ans)[::-1]))


def _wrong_in_a_corner(right: Callable, rule: str, kind: str, first: Any, ans: Any, inputs: tuple,
                       params: dict, F: Any) -> Any:
    """The right rule's result, changed only in the corner `kind` names (see CORNER_RULES)."""
    floats = _floats(inputs)
    if kind == "NumPy inside":  # the result stays on the tape through ȳ (or ẋ); x and y do not
        return right(first, _plain(ans), *_plain(inputs), **params)
    if rule == "jvp" and kind in ("second input", "cross term", "same array"):
        tangents = list(first)
        if kind == "same array":  # "the same array: one tangent is enough"
            for i, x in floats:
                if i < len(tangents) and tangents[i] is not None and any(o is x for o in inputs[:i]):
                    tangents[i] = np.zeros(np.shape(tangents[i]), np.asarray(tangents[i]).dtype)
            return right(tangents, ans, *inputs, **params)
        if kind == "second input":
            if len(tangents) > 1 and tangents[1] is not None:
                tangents[1] = F.mul(tangents[1], 1.1)
            return right(tangents, ans, *inputs, **params)
        values = right(first, ans, *inputs, **params)
        moving = [i for i, _ in floats if i < len(tangents) and tangents[i] is not None]
        if values is None or len(moving) < 2:
            return values

        def alone(k: int) -> Any:  # the tangent along input k only
            return right([t if i == k or t is None else np.zeros(np.shape(t), np.asarray(t).dtype)
                          for i, t in enumerate(tangents)], ans, *inputs, **params)

        along, across = alone(moving[0]), alone(moving[1])
        if along is None or across is None:
            return values
        return F.add(values, F.mul(along, across))  # ẋ·ẏ: zero whenever one tangent is
    values = right(first, ans, *inputs, **params)
    if rule == "jvp":
        scale = {
            "negative inputs": any(np.any(np.asarray(x) < 0) for _, x in floats),
            "size-1 axis": any(_stretched(x, ans) for _, x in floats),
            "float32": any(x.dtype == np.float32 for _, x in floats),
        }.get(kind, False)
        return F.mul(values, 1.5 if kind != "float32" else 1.01) if scale and values is not None else values
    if not isinstance(values, (tuple, list)) or len(values) != len(inputs):
        return values  # a rule of a sequence of inputs: not these corners
    grads = list(values)
    for i, x in floats:
        if grads[i] is None:
            continue
        if kind == "negative inputs" and np.shape(grads[i]) == np.shape(x) and np.any(np.asarray(x) < 0):
            grads[i] = F.mul(grads[i], np.where(np.asarray(x) < 0, 1.5, 1.0).astype(x.dtype))
        elif kind == "size-1 axis" and _stretched(x, ans):
            grads[i] = F.mul(grads[i], 1.5)
        elif kind == "float32" and x.dtype == np.float32:
            grads[i] = F.mul(grads[i], 1.01)
        elif kind == "second input" and i == 1:
            grads[i] = F.mul(grads[i], 1.1)
        elif kind == "same array" and any(other is x for other in inputs[:i]):
            grads[i] = None  # "the same array: one gradient is enough"
    return tuple(grads)


def _wrong_forward(cls: type, right: Callable, kind: str, F: Any) -> Callable:
    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kind in CORNER_LAYERS:  # one parameter read as a NumPy constant: its gradient is never set
            named = [(name, attribute) for name, attribute in self.__dict__.get("_parameters", {}).items()
                     if getattr(self, attribute, None) is not None]
            off = [a for n, a in named if (n.startswith("bias") if kind == "untrained bias"
                                            else n not in ("weight", "bias"))][:1]
            held = {a: getattr(self, a) for a in off}
            try:
                for attribute, value in held.items():
                    object.__setattr__(self, attribute, np.array(value, copy=True))
                return right(self, *args, **kwargs)
            finally:
                for attribute, value in held.items():
                    object.__setattr__(self, attribute, value)
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
    items: list[str],
    examples: int = 8,
    seed: int = 0,
    time_limit: float = 120.0,
    jobs: int | None = None,
    progress: bool | None = None,
    kinds: Sequence[str] | None = None,
) -> list[tuple[str, str, Result | None]]:
    """Grade each item with each known-wrong rule (or layer) in a temporary copy of the reference.

    Returns (item, wrong kind, result) for every pair, with None for a pair where the wrong
    version gives the same numbers as the right one on every drawn input (a transpose of 1-D
    gradients, an un-reduced broadcast where nothing broadcasts): no grader can fail those. A
    result that passes is a defect of the grader. `progress`: bars naming the item being checked
    (None: when stderr is a terminal). `kinds`: only these wrong versions (default: all of them).

    The corners of law 8's mutant catalogue (CORNER_RULES, CORNER_LAYERS) are judged in this
    process, by the grader's judge on the answers its task runner gives; the other wrong versions
    are graded as a submission is, in a child each."""
    package = Path(__file__).resolve().parents[1]  # mytorch, not mytorch/course
    config = Config(dict.fromkeys(items, 1.0), examples=examples, seed=seed, time_limit=time_limit)
    grader = Grader(config, dict(config.items), seed)
    wanted = {item: [k for k in _wrong_kinds(item) if kinds is None or k in kinds] for item in items}
    pairs = [(item, kind) for item in items for kind in wanted[item]]
    applicable, judged = {}, {}
    with Progress(len(items), "drawing", progress) as bar:
        for item in items:
            bar.start(item)
            job = grader.job(item)
            job.ready()  # the inputs and expected numbers, before anything here is made wrong
            right = _answers(job)
            for kind in wanted[item]:  # here, in this process: one at a time
                wrong = _answers(job, f"{item}|{kind}")
                applicable[item, kind] = _differs(right, wrong)
                if applicable[item, kind] and kind in CORNER_RULES + CORNER_LAYERS:
                    # The grader's own task runner and judge, on these answers: a child per
                    # corner would double the self-test's time for the same numbers.
                    judged[item, kind] = judge(job, ChildRun(*wrong, "ok", "", 0.0), 1.0)
            bar.done(item)
    with tempfile.TemporaryDirectory(prefix="mytorch-selftest-") as scratch:
        root = Path(scratch)
        shutil.copytree(package, root / "mytorch", ignore=shutil.ignore_patterns("__pycache__"))
        with open(root / "mytorch" / "__init__.py", "a", encoding="utf-8") as init:
            init.write(_WRONG_HOOK)

        def one(pair: tuple[str, str]) -> tuple[str, str, Result | None]:
            item, kind = pair
            bar.start(f"{item} ({kind})")
            if pair in judged:
                result: Result | None = judged[pair]
            else:
                result = (grader.grade_item(root, item, {"MYTORCH_SELFTEST_WRONG": f"{item}|{kind}"})
                          if applicable[pair] else None)
            bar.done(f"{item} ({kind})")
            return item, kind, result

        with Progress(len(pairs), "grading wrong versions", progress) as bar, \
                ThreadPoolExecutor(max_workers=jobs or _cores()) as pool:
            return list(pool.map(one, pairs))


def _wrong_kinds(item: str) -> tuple[str, ...]:
    kind, _, rule = split_item(item)
    if kind == "layer":
        return WRONG_LAYERS + CORNER_LAYERS
    if rule == "vjp":
        return WRONG_RULES + tuple(k for k in CORNER_RULES if k != "cross term")
    return tuple(k for k in WRONG_RULES + CORNER_RULES if k != "un-reduced broadcast")


def _answers(job: Job, target: str | None = None) -> tuple[dict, list]:
    """The job's answers computed here by the grader's task runner, with `target` made wrong."""
    request = {"tasks": [dict(task, probes=[]) for task in job.tasks], "modules": _primitive_modules()}
    with _IN_PROCESS:
        undo = install_wrong(target) if target else (lambda: None)
        try:
            return child.run_tasks(request, job.arrays)
        finally:
            undo()


def _differs(right: tuple[dict, list], wrong: tuple[dict, list]) -> bool:
    """Whether the wrong version's answers differ from the right one's on the job's tasks."""
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



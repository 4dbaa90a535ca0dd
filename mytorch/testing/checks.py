"""Property checks of gradient rules: a primitive's backward and tangent rules against central
finite differences (or PyTorch) over hypothesis-generated inputs.

For one example (inputs x, parameters, an output adjoint ȳ and an input tangent ẋ):

    column k of the Jacobian     J[:, k] ≈ (f(x + h eₖ) − f(x − h eₖ)) / 2h
    backward rule (reverse)      x̄[k] = ⟨ȳ, J[:, k]⟩               for every element k of x
    tangent rule (forward)       ẏ    ≈ (f(x + h ẋ) − f(x − h ẋ)) / 2h

Each float input is checked in turn, the others held fixed; integer and bool arrays and Python
numbers are constants. When a check fails, hypothesis shrinks the example to a minimal one, and
the error shows that example, the quantity at fault and the worst element.

>>> check_primitive("mul").examples > 0
True
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from mytorch import functional as _functional
from mytorch.autograd_engine import Stretch, recording
from mytorch.functional import Primitive
from mytorch.testing.cases import CASES, Example, all_primitives
from mytorch.testing.reproducible import history_free
from mytorch.testing.strategies import SEEDS, seeded_floats

__all__ = [
    "CheckReport",
    "GradientCheckError",
    "check_against_torch",
    "check_primitive",
    "primitive_gradients",
    "primitive_tangent",
    "tied_twin",
]

# (atol, rtol) by the least precise float dtype of a check's computation.
TOLERANCES = {
    "finite differences": {np.dtype(np.float64): (1e-5, 1e-5), np.dtype(np.float32): (2e-3, 2e-3)},
    "torch": {np.dtype(np.float64): (1e-9, 1e-7), np.dtype(np.float32): (1e-4, 1e-4)},
}
# Finite-difference step by the output's float dtype (roundoff eps/h against truncation h²).
STEPS = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-3, np.dtype(np.float16): 1e-2}
# Inputs with more elements than this get their Jacobian columns sampled, not all taken.
MAX_COLUMNS = 48
# A relative error is reported only where the reference is at least this large.
REL_FLOOR = 1e-3


class GradientCheckError(AssertionError):
    """A gradient or tangent rule disagrees with its reference; the message shows the example."""


@dataclass
class CheckReport:
    """What a check tried and how far the rules were from the reference at worst."""

    op: str
    reference: str  # "finite differences" or "torch float32" / "torch float64"
    examples: int = 0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    skipped: str = ""  # why nothing was checked (e.g. PyTorch missing), if so
    compared: tuple[str, ...] = ()  # check_layer: the quantities compared (Z, dLdA, layers[0].dLdW...)
    not_compared: tuple[str, ...] = ()  # check_layer: arrays held but not taken for parameters
    tied: int = 0  # check_primitive: examples also judged with two inputs tied to one array

    def __str__(self) -> str:
        if self.skipped:
            return f"{self.op} vs {self.reference}: skipped ({self.skipped})"
        twins = f" ({self.tied} also tied)" if self.tied else ""
        text = (
            f"{self.op} vs {self.reference}: {self.examples} examples{twins}, "
            f"max abs error {self.max_abs_error:.2e}, max rel error {self.max_rel_error:.2e}"
        )
        if self.compared:
            text += f"; compared {', '.join(self.compared)}"
        if self.not_compared:
            text += f"; not compared (no gradient attribute): {', '.join(self.not_compared)}"
        return text

    def _absorb(self, comparisons: Sequence[_Comparison], tied: bool = False) -> None:
        if tied:
            self.tied += 1
        else:
            self.examples += 1
        for comparison in comparisons:
            self.max_abs_error = max(self.max_abs_error, comparison.abs_error)
            self.max_rel_error = max(self.max_rel_error, comparison.rel_error)


@dataclass
class _Comparison:
    """One quantity (a gradient, a tangent, a value) against its reference."""

    quantity: str
    got: Any
    expected: np.ndarray
    atol: float
    rtol: float
    problem: str = ""  # set when `got` is missing or has the wrong shape
    hint: str = ""  # a guess at the mistake behind a mismatch
    abs_error: float = 0.0
    rel_error: float = 0.0
    worst: tuple = field(default_factory=tuple)
    ok: bool = True

    def __post_init__(self) -> None:
        number = _number_type(self.got, self.expected)
        expected = np.asarray(self.expected, dtype=number)
        if self.problem:
            self.ok = False
            return
        if self.got is None:
            self.got = np.zeros_like(expected)  # "no gradient" is a zero gradient
        got = np.asarray(self.got, dtype=number)
        if got.shape != expected.shape:
            self.problem = f"has shape {got.shape}, expected {expected.shape}"
            self.ok = False
            return
        if not got.size:
            return
        with np.errstate(invalid="ignore"):
            error = np.abs(got - expected)
        same = (got == expected) | (np.isnan(got) & np.isnan(expected))  # equal infinities too
        error = np.where(same, 0.0, np.where(np.isnan(error), np.inf, error))
        excess = error - (self.atol + self.rtol * np.abs(expected))
        self.worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), error.shape))
        self.ok = bool(excess[self.worst] <= 0)
        self.abs_error = float(error.max())
        large = (np.abs(expected) >= REL_FLOOR) & np.isfinite(expected)
        self.rel_error = float((error[large] / np.abs(expected[large])).max()) if large.any() else 0.0

    def explain(self) -> str:
        hint = f"\n    hint: {self.hint}" if self.hint else ""
        if self.problem:
            return f"{self.quantity} {self.problem}{hint}"
        number = _number_type(self.got, self.expected)
        got = np.asarray(self.got, dtype=number)
        expected = np.asarray(self.expected, dtype=number)
        where = f" at index {self.worst}" if self.worst else ""
        scalar = complex if number == np.complex128 else float
        mine, theirs = scalar(got[self.worst]), scalar(expected[self.worst])
        return (
            f"{self.quantity}{where}: got {mine!r}, expected {theirs!r} "
            f"(abs error {abs(mine - theirs):.3g} > "
            f"atol {self.atol:g} + rtol {self.rtol:g} * |expected|)\n"
            f"    got:      {_brief(got)}\n    expected: {_brief(expected)}{hint}"
        )


def _number_type(*values: Any) -> type:
    """complex128 where any of `values` is complex, else float64: the type comparisons compute in."""
    return np.complex128 if any(np.iscomplexobj(v) for v in values if v is not None) else np.float64


def _real_dtype(dtype: Any) -> np.dtype:
    """The float dtype of `dtype`'s precision (complex64 -> float32): tolerances and steps go by it."""
    dtype = np.dtype(dtype)
    return np.finfo(dtype).dtype if dtype.kind == "c" else dtype


def _pairing(a: Any, b: Any) -> Any:
    """⟨a, b⟩ = Re Σ conj(a) b: the real inner product a real loss pairs an adjoint with a change
    in (Re(ȳ)·Δu + Im(ȳ)·Δv for w = u + iv; the plain Σ a b for real arrays)."""
    product = np.conj(a) * b if np.iscomplexobj(a) else a * b
    return np.sum(np.real(product))


def _brief(array: Any, indent: int = 14) -> str:
    """Values to 8 significant digits, continuation lines indented by `indent`."""
    text = np.array2string(np.asarray(array), separator=", ", precision=8, floatmode="maxprec", threshold=60)
    return text.replace("\n", "\n" + " " * indent)


# ---- running a primitive and its rules -------------------------------------------------------


def _keeps_dtype(example: Example, output_dtype: np.dtype, index_inputs: Sequence[int] = ()) -> bool:
    """Whether float32 in must give float32 out: every float input and the output are float32,
    and no integer array takes part in the arithmetic (numpy would promote that to float64)."""
    floats = [v.dtype for v in example.inputs if _is_float(v)]
    others = [i for i, v in enumerate(example.inputs)
              if isinstance(v, np.ndarray) and v.dtype.kind not in "fc"]
    single = np.dtype(np.float32)  # complex64 is single precision too
    return (
        bool(floats)
        and all(_real_dtype(d) == single for d in floats)
        and _real_dtype(output_dtype) == single
        and all(i in index_inputs for i in others)
    )


def _index_inputs(primitive: Primitive) -> tuple[int, ...]:
    case = CASES.get(primitive.name)
    return case.index_inputs if case is not None else ()


def _lookup(op: str | Primitive) -> Primitive:
    if isinstance(op, Primitive):
        return op
    primitives = all_primitives()
    if op not in primitives:
        raise KeyError(f"no primitive named {op!r}; known: {', '.join(sorted(primitives))}")
    return primitives[op]


def _is_float(value: Any) -> bool:
    """A float or complex array: an input the checks differentiate."""
    return isinstance(value, np.ndarray) and value.dtype.kind in "fc"


def _float_positions(example: Example) -> list[int]:
    return [i for i, value in enumerate(example.inputs) if _is_float(value)]


def _forward(primitive: Primitive, inputs: Sequence[Any], params: dict) -> np.ndarray:
    with recording(False):
        return primitive.apply(tuple(inputs), params)


def primitive_gradients(primitive: Primitive, example: Example, adjoint: np.ndarray) -> tuple:
    """The backward rule's input gradients (`F.<name>_backward`), one per input.

    >>> from mytorch import functional as F
    >>> primitive_gradients(F.mul, Example((np.array([2.0]), np.array([3.0]))), np.ones(1))
    (array([3.]), array([2.]))
    """
    if primitive.arity is None:
        grads = primitive.backward(adjoint, example.inputs, **example.params)
    else:
        grads = primitive.backward(adjoint, *example.inputs, **example.params)
    if len(example.inputs) == 1 and not isinstance(grads, (tuple, list)):
        grads = (grads,)
    return tuple(grads)


def primitive_tangent(primitive: Primitive, example: Example, tangents: dict[int, np.ndarray]) -> Any:
    """The output tangent the engine's forward walk gives, for tangents of some inputs
    (by position; the other inputs have a zero tangent). None means a zero tangent.

    >>> from mytorch import functional as F
    >>> primitive_tangent(F.mul, Example((np.array([2.0]), np.array([3.0]))), {0: np.ones(1)})
    array([3.])
    """
    with Stretch() as stretch:  # the forward walk needs the op on the tape
        output = primitive.apply(example.inputs, example.params)
        seeds = {id(example.inputs[i]): tangent for i, tangent in tangents.items()}
        return stretch.forward(seeds).get(id(output))


def _engine_gradients(primitive: Primitive, example: Example, adjoint: np.ndarray) -> dict[int, Any]:
    """The input gradients of a reverse walk of the engine, by input position."""
    with Stretch() as stretch:
        output = primitive.apply(example.inputs, example.params)
        if stretch.producer(output) is None:
            return {}  # nothing differentiable: nothing recorded
        adjoints = stretch.backward(output, adjoint)
        return {i: adjoints.get(id(value)) for i, value in enumerate(example.inputs) if _is_float(value)}


# ---- the reference: central differences --------------------------------------------------------


def in_float64(example: Example) -> Example:
    """`example` with its float arrays in float64 (complex in complex128), the exact reference's
    precision; an array given twice stays one array (the grader's float32 draws use it too).

    >>> in_float64(Example((np.ones(2, np.float32),))).inputs[0].dtype
    dtype('float64')
    """
    cast: dict[int, np.ndarray] = {}
    inputs = []
    for value in example.inputs:
        if _is_float(value):
            if id(value) not in cast:
                cast[id(value)] = value.astype(np.complex128 if value.dtype.kind == "c" else np.float64)
            value = cast[id(value)]
        inputs.append(value)
    return Example(tuple(inputs), dict(example.params))


def _aliases(example: Example, position: int) -> list[int]:
    """The positions holding the very array at `position` (the same array passed twice)."""
    return [i for i, value in enumerate(example.inputs) if value is example.inputs[position]]


def _shifted(example: Example, position: int | Sequence[int], shift: np.ndarray | Sequence[np.ndarray]
             ) -> tuple:
    """The inputs with `shift` added at `position` and at every position holding the same array
    (several positions and shifts may be given: a move along all of them at once)."""
    positions = [position] if isinstance(position, (int, np.integer)) else list(position)
    shifts = [shift] if isinstance(position, (int, np.integer)) else list(shift)
    inputs = list(example.inputs)
    moved: dict[int, np.ndarray] = {}
    for where, change in zip(positions, shifts):
        original = example.inputs[where]
        moved[id(original)] = np.asarray(moved.get(id(original), original) + change.astype(original.dtype))
    for i, value in enumerate(example.inputs):
        if id(value) in moved:
            inputs[i] = moved[id(value)]
    return tuple(inputs)


def _difference(
    primitive: Primitive, example: Example, position: int | Sequence[int],
    direction: np.ndarray | Sequence[np.ndarray], step: float,
) -> np.ndarray:
    if isinstance(position, (int, np.integer)):
        ahead_shift, behind_shift = step * direction, -step * direction
    else:
        ahead_shift, behind_shift = [step * d for d in direction], [-step * d for d in direction]
    ahead = _forward(primitive, _shifted(example, position, ahead_shift), example.params)
    behind = _forward(primitive, _shifted(example, position, behind_shift), example.params)
    number = _number_type(ahead, behind)
    ahead, behind = ahead.astype(number), behind.astype(number)
    with np.errstate(invalid="ignore"):
        change = np.where(ahead == behind, 0.0, ahead - behind)  # an infinite output stays put
    return change / (2 * step)


def _columns_to_check(size: int, rng_seed: int, most: int = MAX_COLUMNS) -> np.ndarray:
    if size <= most:
        return np.arange(size)
    return np.sort(np.random.default_rng(rng_seed).choice(size, most, replace=False))


def _finite_difference_comparisons(
    primitive: Primitive,
    example: Example,
    adjoint: np.ndarray,
    tangents: dict[int, np.ndarray],
    modes: Sequence[str],
    tolerance: tuple[float, float],
    step: float | None,
    column_seed: int,
) -> list[_Comparison]:
    """Compare the rules at `example` with central differences taken in float64."""
    atol, rtol = tolerance
    exact = in_float64(example)
    output = _forward(primitive, exact.inputs, exact.params)
    if output.dtype.kind not in "fc":
        return []  # an integer or bool output has no derivative
    step = STEPS.get(_real_dtype(output.dtype), 1e-6) if step is None else step
    adjoint64 = adjoint.astype(_number_type(adjoint))
    comparisons = []
    grads = primitive_gradients(primitive, example, adjoint) if "rev" in modes else ()
    if "rev" in modes and len(grads) != len(example.inputs):
        return [
            _Comparison(
                "backward rule",
                None,
                np.zeros(0),
                atol,
                rtol,
                problem=f"returned {len(grads)} gradients for {len(example.inputs)} inputs",
            )
        ]
    output_dtype = _forward(primitive, example.inputs, example.params).dtype
    keeps_dtype = _keeps_dtype(example, output_dtype, _index_inputs(primitive))
    firsts = [p for p in _float_positions(example) if _aliases(example, p)[0] == p]
    for position in firsts:
        x = exact.inputs[position]
        aliases = _aliases(example, position)
        original = example.inputs[position].dtype
        label = f"input {position} (shape {x.shape} {example.inputs[position].dtype})"
        if "rev" in modes:
            # (a complex input takes two differences per element: half as many elements, same cost)
            most = MAX_COLUMNS // 2 if x.dtype.kind == "c" else MAX_COLUMNS
            columns = _columns_to_check(x.size, column_seed + position, most)
            numeric = np.zeros(x.size, _number_type(x))
            for k in columns:
                unit = np.zeros(x.size)
                unit[k] = 1.0
                along = _difference(primitive, exact, position, unit.reshape(x.shape), step)
                numeric[k] = _pairing(adjoint64, along)
                if x.dtype.kind == "c":  # PyTorch's convention: ∂L/∂Re x + i ∂L/∂Im x
                    numeric[k] += 1j * _pairing(
                        adjoint64, _difference(primitive, exact, position, 1j * unit.reshape(x.shape), step)
                    )
            got = grads[position]
            if len(aliases) > 1:  # the same array at several positions: its gradient is their sum
                parts = [grads[i] for i in aliases if grads[i] is not None]
                shapes = {np.shape(g) for g in parts}
                if len(shapes) == 1:  # (a wrong shape is reported as it is)
                    total = sum(np.asarray(g, dtype=_number_type(*parts)) for g in parts)
                    got = total.astype(np.result_type(*[np.asarray(g).dtype for g in parts]))
                label += f" (the same array as input(s) {', '.join(str(i) for i in aliases[1:])})"
            problem = ""
            if got is not None and np.shape(got) != x.shape:
                problem = f"has shape {np.shape(got)}, but its input has shape {x.shape}"
            elif got is not None and keeps_dtype and np.asarray(got).dtype != original:
                problem = f"has dtype {np.asarray(got).dtype}, but its input has dtype {original}"
            elif got is not None:
                got = np.asarray(got, dtype=_number_type(got, x)).reshape(-1)
                unchecked = np.setdiff1d(np.arange(x.size), columns)
                numeric[unchecked] = got[unchecked]  # elements not sampled count as agreeing
                got, numeric = got.reshape(x.shape), numeric.reshape(x.shape)
            comparisons.append(
                _Comparison(f"backward rule: gradient of {label}", got, numeric, atol, rtol, problem)
            )
        if "fwd" in modes:
            direction = tangents[position]
            numeric = _difference(primitive, exact, position, direction.astype(_number_type(direction)), step)
            got = primitive_tangent(primitive, example, {position: direction})
            problem = ""
            if got is not None and np.shape(got) != output.shape:
                problem = f"has shape {np.shape(got)}, but the output has shape {output.shape}"
            elif got is not None and keeps_dtype and np.asarray(got).dtype != output_dtype:
                problem = f"has dtype {np.asarray(got).dtype}, but the output has dtype {output_dtype}"
            comparisons.append(
                _Comparison(f"tangent rule: output tangent along {label}", got, numeric, atol, rtol, problem)
            )
    if "fwd" in modes and len(firsts) > 1:
        # Every tangent nonzero at once: a cross term (ẋ·ẏ) vanishes whenever one of them is zero.
        directions = [tangents[p].astype(_number_type(tangents[p])) for p in firsts]
        numeric = _difference(primitive, exact, firsts, directions, step)
        got = primitive_tangent(primitive, example, {p: tangents[p] for p in firsts})
        problem = ""
        if got is not None and np.shape(got) != output.shape:
            problem = f"has shape {np.shape(got)}, but the output has shape {output.shape}"
        comparisons.append(_Comparison(
            f"tangent rule: output tangent along inputs {', '.join(map(str, firsts))} at once",
            got, numeric, atol, rtol, problem,
            hint="each tangent alone is right, all of them together are not: a cross term such as ẋ·ẏ?",
        ))
    return comparisons


# ---- rules that compute with NumPy: right first derivatives, zero second ones -------------------


def _second_order(
    primitive: Primitive, example: Example, adjoint: np.ndarray, tangents: dict[int, np.ndarray],
    modes: Sequence[str], tolerance: tuple[float, float], numeric: bool = False,
) -> tuple[str, list[_Comparison]]:
    """Run the rules as a recorded walk (create_graph) runs them: on arrays that are on the tape.

    A gradient or tangent must then be produced on the tape too; one that is not was computed
    with NumPy, and derivatives through it (hessians, grad of grad) are zero: that is returned
    as the culprit. Otherwise, with `numeric`, the backward rule's own derivative along the tangents ẋ,
    d/dε ⟨vjp(ȳ, x + εẋ), ẋ⟩, taken by a reverse walk through the recorded rule, is compared with
    central differences of the rule (in float64), so a rule that mixes in a NumPy constant where
    a primitive belongs is caught too.
    """
    exact = in_float64(example)
    positions = _float_positions(exact)
    first = {i: _aliases(exact, i)[0] for i in positions}  # an array given twice moves as one
    tangents = {i: tangents[first[i]] for i in positions}
    firsts = sorted(set(first.values()))
    with Stretch() as stretch:
        tape, mark = stretch.engine, stretch.mark
        fresh: dict[int, np.ndarray] = {}
        inputs = tuple(fresh.setdefault(id(v), np.array(v)) if _is_float(v) else v
                       for v in exact.inputs)  # fresh leaves (the same array twice stays one)
        output = primitive.apply(inputs, exact.params)
        if len(tape.operation_list) == mark[0]:
            return "", []  # no differentiable input: nothing is recorded, nothing to differentiate
        leaves = [inputs[i] for i in positions]
        if "fwd" in modes:
            incoming = [np.array(tangents[i], dtype=_number_type(tangents[i])) if i in tangents
                        else _no_tangent(v) for i, v in enumerate(inputs)]
            tangent = primitive.jvp(incoming, output, *inputs, **exact.params)
            if not _recorded(tangent, tape, mark, [*incoming, *leaves]):
                return "tangent rule (jvp): the output tangent", []
        if "rev" not in modes:
            return "", []
        seed = np.array(adjoint, dtype=_number_type(adjoint))
        grads = _rule_gradients(primitive, seed, output, inputs, exact.params)
        for position in positions:
            if not _recorded(grads[position], tape, mark, [seed, *leaves]):
                return f"backward rule (vjp): the gradient of input {position}", []
        if not numeric or output.dtype not in (np.float64, np.complex128):  # (a cast to another
            return "", []  # dtype: differences in float64 would not be exact)
        directions = {i: np.asarray(tangents[i], dtype=_number_type(tangents[i])) for i in positions}
        terms = [_recorded_pairing(grads[i], directions[i]) for i in positions if grads[i] is not None]
        if not terms:
            return "", []
        along = terms[0]
        for term in terms[1:]:
            along = _functional.add(along, term)
        adjoints = stretch.backward(along, np.ones_like(along))
        got = sum(float(_pairing(np.asarray(adjoints[id(inputs[i])]), directions[i]))
                  for i in firsts if adjoints.get(id(inputs[i])) is not None)

    def rule_along(sign: float) -> float:  # ⟨vjp(ȳ, x + sign·h·ẋ), ẋ⟩, not recorded
        step = STEPS[np.dtype(np.float64)]
        shifted = _shifted(exact, firsts, [sign * step * directions[i] for i in firsts])
        grads = primitive_gradients(primitive, Example(shifted, exact.params), seed)
        return sum(float(_pairing(np.asarray(grads[i], dtype=_number_type(grads[i])), directions[i]))
                   for i in positions if grads[i] is not None)

    expected = (rule_along(1.0) - rule_along(-1.0)) / (2 * STEPS[np.dtype(np.float64)])
    atol, rtol = tolerance
    label = "second derivative: the backward rule's own derivative along the input tangents"
    return "", [_Comparison(label, np.array(got), np.array(expected), atol, rtol)]


def _recorded_pairing(grad: Any, direction: np.ndarray) -> Any:
    """`_pairing(grad, direction)` on the tape (so a reverse walk can differentiate it)."""
    if not np.iscomplexobj(grad) and not np.iscomplexobj(direction):
        return _functional.sum(_functional.mul(grad, direction))
    return _functional.sum(_functional.real(_functional.mul(_functional.conj(grad), direction)))


def _rule_gradients(primitive: Primitive, seed: np.ndarray, output: np.ndarray, inputs: tuple,
                    params: dict) -> Sequence[Any]:
    """The backward rule's gradients as the rule returns them (one per input), before any cast
    (for a complex output, the rules the walk runs then: see `Primitive.complex_vjp`)."""
    rules = primitive.vjp if np.asarray(output).dtype.kind != "c" else primitive.complex_vjp
    if isinstance(rules, (tuple, list)):  # one rule per input
        return [None if rule is None else rule(seed, output, *inputs, **params) for rule in rules]
    grads = rules(seed, output, *inputs, **params)
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)  # a bare array from a one-input rule, as primitive_gradients reads it
    return grads


def _no_tangent(value: Any) -> Any:
    """The zero tangent a forward walk hands a rule for an input that has none."""
    if isinstance(value, np.ndarray):
        return np.zeros(value.shape, value.dtype if value.dtype.kind in "fc" else float)
    return None if value is None else 0.0


def _recorded(result: Any, tape: Any, mark: tuple, leaves: list) -> bool:
    """Whether a rule's result is on the tape: produced since `mark`, one of the arrays it was
    given, or a constant zero (None or all zeros: a zero gradient has zero derivatives)."""
    return (
        result is None
        or any(result is leaf for leaf in leaves)
        or any(op.output is result for op in tape.operation_list[mark[0]:])
        or not np.any(np.asarray(result))
    )


# ---- the other reference: PyTorch --------------------------------------------------------------


def _to_torch(value: Any) -> Any:
    import torch

    if isinstance(value, np.ndarray):
        tensor = torch.from_numpy(value.copy())
        return tensor.requires_grad_(True) if value.dtype.kind in "fc" else tensor
    if isinstance(value, (bool, int, float)) and not isinstance(value, np.ndarray):
        return torch.tensor(value)
    return value


def _complex_promoted(tensors: list, selectors: Sequence[int] = ()) -> list:
    """Where some inputs are complex, the others cast to that complex dtype on PyTorch's tape (most
    of its functions do not mix real and complex operands); the cast's backward keeps the real
    part, so each real leaf's .grad is what PyTorch gives a real input of a complex operation."""
    import torch

    complex_dtypes = [t.dtype for t in tensors if isinstance(t, torch.Tensor) and t.dtype.is_complex]
    if not complex_dtypes:
        return tensors
    target = complex_dtypes[0]
    return [t.to(target) if isinstance(t, torch.Tensor) and not t.dtype.is_complex and t.dtype != torch.bool
            and i not in selectors else t for i, t in enumerate(tensors)]


def _torch_comparisons(
    primitive: Primitive, example: Example, adjoint: np.ndarray, tolerance: tuple[float, float]
) -> list[_Comparison]:
    """Forward value and engine gradients against PyTorch's, for one example."""
    import torch

    atol, rtol = tolerance
    twin = CASES[primitive.name].torch
    tensors = [_to_torch(v) for v in example.inputs]
    with warnings.catch_warnings():  # PyTorch's performance notes (padding='same' copies...)
        warnings.simplefilter("ignore", UserWarning)
        twin_output = twin(*_complex_promoted(tensors, _index_inputs(primitive)), **example.params)
    output = _forward(primitive, example.inputs, example.params)
    twin_value = twin_output.detach().resolve_conj().numpy()  # (a conj view has no .numpy())
    comparisons = [_Comparison("forward value", output, twin_value, atol, rtol)]
    if not comparisons[0].ok or output.dtype.kind not in "fc":
        return comparisons
    grads = _engine_gradients(primitive, example, adjoint)
    if twin_output.requires_grad:
        twin_output.backward(torch.from_numpy(adjoint).to(twin_output.dtype))
    for position, got in grads.items():
        value = example.inputs[position]
        label = f"engine gradient of input {position} (shape {value.shape} {value.dtype})"
        twin_grad = tensors[position].grad
        expected = np.zeros(value.shape) if twin_grad is None else twin_grad.resolve_conj().numpy()
        problem = ""
        if got is not None and got.dtype != value.dtype:
            problem = f"has dtype {got.dtype}, but its input has dtype {value.dtype}"
        comparisons.append(_Comparison(label, got, expected, atol, rtol, problem))
    return comparisons


# ---- the property checks -------------------------------------------------------------------------


def _as_example(drawn: Any, primitive: Primitive) -> Example:
    """A drawn Example, tuple of arguments, or single array, as an Example."""
    if isinstance(drawn, Example):
        return drawn
    arguments = drawn if isinstance(drawn, tuple) else (drawn,)
    if primitive.arity is None:  # the tuple is the sequence of inputs
        return Example(arguments)
    inputs, params = primitive._bind(arguments, {})  # trailing arguments are parameters (axis=...)
    return Example(tuple(inputs), dict(params))


def _same_array_twice(primitive: Primitive, example: Example, widen: bool = False) -> Example:
    """`example` with two of its float inputs made the very same array (`mul(x, x)`), where the
    forward accepts that: a rule must be right when its inputs alias, too. With `widen` (a
    built-in input spec, which draws float arrays at every place it draws constants), the place
    of a constant may take the float array as well."""
    positions = _float_positions(example)
    others = [j for j, v in enumerate(example.inputs)
              if (j in positions or widen and isinstance(v, (np.ndarray, int, float)))
              and j not in _index_inputs(primitive)]
    pairs = sorted(((i, j) for i in positions for j in others if i != j and not (j in positions and j < i)),
                   key=lambda p: np.shape(example.inputs[p[0]]) != np.shape(example.inputs[p[1]]))
    for i, j in pairs:
        magnitude = np.abs(example.inputs[i])
        if np.any((magnitude > 0) & (magnitude < 1e-3)):
            continue  # tiny values at another input's place sit by its poles (x / x): ill-conditioned
        inputs = list(example.inputs)
        inputs[j] = inputs[i]
        tied = Example(tuple(inputs), dict(example.params))
        # at the tie and around it (the finite differences go there; along i too for complex)
        shifts = (0.0, 1e-3, -1e-3) + ((1e-3j, -1e-3j) if np.iscomplexobj(tied.inputs[i]) else ())
        try:
            with np.errstate(all="ignore"):
                outputs = [_forward(primitive, _shifted(tied, i, np.full(np.shape(tied.inputs[i]), h)),
                                    tied.params) for h in shifts]
        except Exception:  # the forward refuses this pair
            continue
        if any(o.dtype.kind in "fc" and not np.all(np.isfinite(o)) for o in outputs):
            continue  # outside the domain the spec draws from (x / x at 0, x ** x below 0)
        if outputs[0].dtype.kind in "fc" and not _smooth_at(outputs):
            continue  # a kink, a branch cut or a singular point there (x ** x at 0 and at -1+0j)
        if j not in positions:
            # a float where a constant was (a Bessel order, which has no derivative): tie only where
            # the rules run at all
            try:
                primitive_gradients(primitive, tied, np.ones(outputs[0].shape, outputs[0].dtype))
            except Exception:
                continue
        return tied
    return example


def _smooth_at(outputs: list[np.ndarray]) -> bool:
    """Whether the forward has a derivative at the tie, from its `outputs` there and a step of
    1e-3 to each side (along the imaginary axis too, for complex): the slopes on the two sides of
    each direction agree. A jump (a branch cut), a kink or a log-like singularity sets them apart;
    the finite differences the check compares with would straddle it."""
    here = outputs[0]
    for plus, minus in zip(outputs[1::2], outputs[2::2]):
        right, left = (plus - here) / 1e-3, (here - minus) / 1e-3
        if np.any(np.abs(right - left) > 0.05 * (1 + np.abs(right) + np.abs(left))):
            return False
    return True


def tied_twin(primitive: Primitive, example: Example, widen: bool = False) -> Example | None:
    """`example` with two of its float inputs made the very same array (`mul(x, x)`), or None where
    the primitive takes no such tie (one float input, shapes that do not fit, a tie outside the
    forward's domain). `widen`: the place of a constant may take the float array too (a built-in
    input spec, which draws float arrays at every place it draws constants).

    >>> from mytorch import functional as F
    >>> x = np.array([1.0, 2.0])
    >>> twin = tied_twin(F.mul, Example((x, np.array([3.0, 4.0]))))
    >>> twin.inputs[0] is twin.inputs[1] is x
    True
    >>> tied_twin(F.exp, Example((x,))) is None
    True
    """
    twin = _same_array_twice(primitive, example, widen)
    return None if twin is example else twin


def _least_precise(example: Example) -> np.dtype:
    dtypes = [_real_dtype(v.dtype) for v in example.inputs if _is_float(v)]
    return min(dtypes, key=lambda d: d.itemsize) if dtypes else np.dtype(np.float64)


def _settings(max_examples: int | None) -> settings:
    # Inherit the active profile (derandomized in CI), but never write a database: the inner test
    # is rebuilt on every call, and the same key would replay one primitive's failures on another.
    return settings(
        max_examples=settings.default.max_examples if max_examples is None else max_examples,
        database=None,
        deadline=None,
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.nested_given],
    )


def _failure(title: str, example: Example, adjoint: Any, comparison: _Comparison) -> str:
    return (
        f"{title}\n  {comparison.explain()}\n  minimal example (shrunk by hypothesis): {example!r}\n"
        f"  output adjoint: {_brief(np.asarray(adjoint))}"
    )


def _crash(title: str, example: Example, adjoint: Any, error: Exception) -> str:
    return (
        f"{title}\n  it raised {type(error).__name__}: {error}\n"
        f"  minimal example (shrunk by hypothesis): {example!r}\n"
        f"  output adjoint: {_brief(np.asarray(adjoint))}"
    )


def _check_forward_dtype(primitive: Primitive, example: Example, output: np.ndarray) -> None:
    """Float32 in, float32 out (unless an integer array takes part, as numpy promotes then)."""
    if output.dtype in (np.float64, np.complex128) and _keeps_dtype(
        example, np.dtype(np.float32), _index_inputs(primitive)
    ):
        if primitive.name == "astype" and example.params.get("dtype") == np.float64:
            return  # asked for
        raise GradientCheckError(
            f"check_primitive({primitive.name!r}): float32 inputs gave a float64 output\n"
            f"  minimal example (shrunk by hypothesis): {example!r}"
        )


def _judge(
    report: CheckReport,
    example: Example,
    adjoint: Any,
    compare: Callable[[], list[_Comparison]],
    title: str,
    shape_title: str | None = None,
    tied: bool = False,
) -> None:
    """Run `compare` on one drawn example: a rule that raises, or a comparison that fails, fails
    the check with the (shrunk) example; otherwise the report counts it."""
    try:
        comparisons = compare()
    except Exception as error:  # a rule that raises fails the check, on a shrunk example too
        raise GradientCheckError(_crash(title, example, adjoint, error)) from error
    for comparison in comparisons:
        if not comparison.ok:
            if comparison.problem and shape_title is not None:
                title = shape_title
            raise GradientCheckError(_failure(title, example, adjoint, comparison))
    report._absorb(comparisons, tied)


def _run(run: Callable[[], None], seed: int | None) -> None:
    """Run a hypothesis test function, with a fixed seed when one is given (and then with draws
    that depend on that seed alone: see `history_free`)."""
    if seed is None:
        run()
        return
    with history_free():
        hypothesis_seed(seed)(run)()


def check_primitive(
    op: str | Primitive,
    inputs: st.SearchStrategy[Any] | None = None,
    *,
    dtype: Any = None,
    modes: Sequence[str] = ("rev", "fwd"),
    max_examples: int | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    step: float | None = None,
    seed: int | None = None,
    second_order: bool | str = True,
    same_array: bool = True,
) -> CheckReport:
    """Property-check a primitive's backward ('rev') and tangent ('fwd') rules against central
    finite differences over generated inputs; raise `GradientCheckError` with a minimal example.

    With `second_order` (the default), the rules must also be differentiable: run as a recorded
    backward walk runs them (create_graph), on arrays that are on the tape, each gradient and
    tangent must be produced on the tape. A rule written with raw NumPy (`g / (1 + np.exp(-x))`)
    gets first derivatives right, but gradients of gradients through it (hessians,
    `mytorch.grad(mytorch.grad(f))`) silently come out zero: the check fails and says so. The
    backward rule's own derivative is also compared with finite differences (catching a NumPy
    function of an input inside otherwise recorded code, `F.mul(g, np.cos(x))`); that walks back
    through the primitives the rule is written with, so it trusts their rules.
    `second_order="recorded"` only asks that the results be on the tape (a grader checking one rule
    at a time); `second_order=False` is for a rule meant for first order only.

    The defaults draw what a rule is most often wrong on: float64 and float32 examples (`dtype=`
    picks one), and, besides one tangent at a time, all input tangents nonzero at once. Every
    example that can pass one float array at two places (`mul(x, x)`) is also judged so, its tied
    twin (`tied_twin`; `same_array=False` turns that off).

    `op` is a registered primitive's name or any `Primitive` (your own, registered or not).
    `inputs` draws its arguments: an `Example(inputs, params)`, a tuple of arguments (the
    inputs, then any parameters in order), or one array;
    by default the built-in case of `op` (`mytorch.testing.CASES`) in `dtype`. Float32 rules are
    compared with differences taken in float64. Returns a `CheckReport`.

    >>> from mytorch import functional as F
    >>> from mytorch.testing import float_arrays
    >>> cube = F.primitive("cube", lambda x: x**3,
    ...                    vjp=lambda g, ans, x: (F.mul(g, F.mul(3.0, F.mul(x, x))),),
    ...                    jvp=lambda t, ans, x: F.mul(t[0], F.mul(3.0, F.mul(x, x))), register=False)
    >>> check_primitive(cube, float_arrays(), max_examples=20).examples
    20
    >>> numpy_cube = F.primitive("numpy_cube", lambda x: x**3, vjp=lambda g, ans, x: (g * 3 * x**2,),
    ...                          jvp=lambda t, ans, x: t[0] * 3 * x**2, register=False)
    >>> try:
    ...     check_primitive(numpy_cube, float_arrays(), max_examples=20)
    ... except GradientCheckError as error:
    ...     print(str(error).splitlines()[0])
    check_primitive('numpy_cube'): your rule computes with NumPy: gradients of gradients through it are zero
    """
    primitive = _lookup(op)
    built_in = inputs is None
    if inputs is None:
        if primitive.name not in CASES:
            raise KeyError(f"check_primitive: no built-in inputs for {primitive.name!r}; pass inputs=")
        case = CASES[primitive.name]
        # By default every dtype the primitive computes in (complex ones where it declares them).
        dtypes = (np.float64, np.float32) + ((np.complex128, np.complex64) if primitive.complex else ())
        inputs = case.examples(dtype) if dtype is not None else st.one_of(*(case.examples(d) for d in dtypes))
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    report = CheckReport(primitive.name, "finite differences")

    @_settings(max_examples)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        example = _as_example(data.draw(inputs, label="example"), primitive)
        judge(example, data, "")
        twin = tied_twin(primitive, example, widen=built_in) if same_array else None
        if twin is not None:  # every example that can tie two inputs is judged tied, too
            judge(twin, data, "tied twin: ")

    def judge(example: Example, data: st.DataObject, which: str) -> None:
        output = _forward(primitive, example.inputs, example.params)
        _check_forward_dtype(primitive, example, output)
        out_dtype = output.dtype if output.dtype.kind in "fc" else np.dtype(np.float64)
        least = min(_real_dtype(_least_precise(example)), _real_dtype(out_dtype), key=lambda d: d.itemsize)
        default_atol, default_rtol = TOLERANCES["finite differences"].get(least, (1e-2, 1e-2))
        tolerance = (default_atol if atol is None else atol, default_rtol if rtol is None else rtol)
        # seeded: two choices an array, not a few an element (see mytorch.testing.strategies.SEEDS)
        adjoint = seeded_floats(data.draw(SEEDS, label=f"{which}output adjoint"), output.shape, out_dtype)
        tangents = {
            i: seeded_floats(data.draw(SEEDS, label=f"{which}tangent {i}"), example.inputs[i].shape,
                             example.inputs[i].dtype)
            for i in _float_positions(example)
        }
        column_seed = data.draw(st.integers(0, 2**16), label=f"{which}column sample") if output.size else 0
        _judge(
            report, example, adjoint,
            lambda: _finite_difference_comparisons(
                primitive, example, adjoint, tangents, modes, tolerance, step, column_seed
            ),
            title=f"check_primitive({primitive.name!r}): a rule disagrees with finite differences",
            shape_title=f"check_primitive({primitive.name!r}): a rule returns the wrong shape or dtype",
            tied=bool(which),
        )
        if second_order:
            culprit, comparisons = _second_order(
                primitive, example, adjoint, tangents, modes, tolerance, numeric=second_order != "recorded"
            )
            if culprit:
                raise GradientCheckError(
                    f"check_primitive({primitive.name!r}): your rule computes with NumPy: gradients of "
                    f"gradients through it are zero\n  {culprit} was not recorded on the tape, though the "
                    "arrays it was given were: it was computed with NumPy (or a NumPy method) instead "
                    "of mytorch's primitives, so create_graph, mytorch.grad(mytorch.grad(f)) and "
                    "hessians see a constant there. Write the rule with F.mul, F.exp, ... (masks and "
                    "signs may stay NumPy constants), or pass second_order=False for a first-order rule."
                    f"\n  minimal example (shrunk by hypothesis): {example!r}"
                )
            for comparison in comparisons:
                if not comparison.ok:
                    comparison.hint = (
                        "the rule's value is right but its derivative is not: a part computed with "
                        "NumPy (a constant to the tape) where it depends on the inputs?"
                    )
                    raise GradientCheckError(_failure(
                        f"check_primitive({primitive.name!r}): a rule's second derivative disagrees with "
                        "finite differences", example, adjoint, comparison))

    _run(run, seed)
    return report


def check_against_torch(
    op: str | Primitive,
    dtype: Any = np.float64,
    *,
    ties: bool = True,
    max_examples: int | None = None,
    seed: int | None = None,
) -> CheckReport:
    """Property-check a built-in primitive's forward value and engine gradients against PyTorch.

    Inputs are drawn in `dtype`; with `ties=True` they sit on a coarse grid, so kinks and ties
    (relu at 0, equal maxima, clip at its bounds) happen often and the two must agree there
    too. Gradients must come back in their input's dtype. Skipped (the report says so) when
    PyTorch is not installed.
    """
    primitive = _lookup(op)
    report = CheckReport(primitive.name, f"torch {np.dtype(dtype).name}")
    try:
        import torch  # noqa: F401
    except ImportError:
        report.skipped = "PyTorch is not installed"
        return report
    case = CASES.get(primitive.name)
    if case is None or case.torch is None:
        report.skipped = "no PyTorch twin"
        return report
    tolerance = TOLERANCES["torch"][_real_dtype(dtype)]

    @_settings(max_examples)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        example = data.draw(case.examples(dtype, ties=ties), label="example")
        output = _forward(primitive, example.inputs, example.params)
        out_dtype = output.dtype if output.dtype.kind in "fc" else np.dtype(np.float64)
        adjoint = seeded_floats(data.draw(SEEDS, label="output adjoint"), output.shape, out_dtype)
        _judge(
            report, example, adjoint,
            lambda: _torch_comparisons(primitive, example, adjoint, tolerance),
            title=f"check_against_torch({primitive.name!r}, {np.dtype(dtype).name}): disagrees with PyTorch",
        )

    _run(run, seed)
    return report

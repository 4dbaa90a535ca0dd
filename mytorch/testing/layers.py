"""check_layer: test a hand-written layer's backward against the engine (or finite differences).

A homework-style layer computes `Z = layer.forward(A)` and, in `dLdA = layer.backward(dLdZ)`,
sets the gradients of its parameters (`layer.dLdW` for `layer.W`, or `layer.dW`). For random
inputs `A` and output adjoints `dLdZ` drawn by hypothesis, `check_layer` compares

    forward output Z, dLdA, and every dLd<param>

with what the reference gives: the engine's reverse walk through the same forward written with
primitives (a function or a mytorch layer), or, when there is none, central differences of
L = Σ dLdZ ⊙ layer.forward(A). The first quantity that disagrees is reported on the minimal
input hypothesis could shrink to, with a hint for the classic mistakes.

>>> from mytorch import functional as F
>>> from mytorch.testing.examples import HandwrittenLinear, LinearMissingTranspose
>>> check_layer(HandwrittenLinear(3, 2), lambda A, W, b: F.linear(A, W, b)).examples > 0
True
>>> try:
...     check_layer(LinearMissingTranspose(3, 2))
... except AssertionError as error:
...     print(str(error).splitlines()[0])
check_layer(LinearMissingTranspose): dLdW has shape (3, 2), but W has shape (2, 3)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from mytorch.autograd_engine import _state, engine, no_grad
from mytorch.testing.checks import (
    MAX_COLUMNS,
    TOLERANCES,
    CheckReport,
    GradientCheckError,
    _brief,
    _Comparison,
    _settings,
)
from mytorch.testing.strategies import arrays_away_from, float_arrays

__all__ = ["check_layer"]


def check_layer(
    layer: Any,
    reference: Any = None,
    *,
    inputs: st.SearchStrategy[np.ndarray] | None = None,
    input_shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] | None = None,
    params: Sequence[str] | None = None,
    dtype: Any = np.float64,
    max_examples: int | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    seed: int | None = None,
) -> CheckReport:
    """Property-check a hand-written layer's `backward` (dLdA and its parameters' gradients).

    `reference`: the same forward written with mytorch primitives, either a function
    `reference(A, **parameters)` (parameters passed by attribute name: `W=..., b=...`) or a
    mytorch layer with parameters of the same names (their values are copied in); None means
    central finite differences of the layer's own forward.
    `inputs` draws `A`; otherwise `input_shape` (a shape or a strategy of shapes), otherwise
    `(batch, in_features)` with `in_features` from `layer.in_features` or the width of a 2-D
    `layer.W`. Values keep 0.01 away from 0 (where relu-like layers have a kink).
    `params` names the parameter attributes (default: the float arrays the layer holds before
    its first forward and whose `dLd<name>` or `d<name>` appears after backward).

    Raises `GradientCheckError` naming the first mismatching quantity, with the minimal input.
    """
    name = type(layer).__name__
    inputs = _input_strategy(layer, inputs, input_shape, dtype)
    before_forward = {key: value for key, value in vars(layer).items() if _is_float(value)}
    default_atol, default_rtol = TOLERANCES["finite differences"][np.dtype(dtype)]
    tolerance = (default_atol if atol is None else atol, default_rtol if rtol is None else rtol)
    against = "finite differences" if reference is None else "the engine's gradients of the reference"
    report = CheckReport(name, "finite differences" if reference is None else "engine (reference)")

    @_settings(max_examples)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        A = data.draw(inputs, label="A")
        Z = np.asarray(layer.forward(A.copy()))
        dLdZ = data.draw(float_arrays(Z.shape, Z.dtype if Z.dtype.kind == "f" else dtype), label="dLdZ")
        dLdA = layer.backward(dLdZ.copy())
        names = list(params) if params is not None else _parameter_names(layer, before_forward)
        got = {"Z": Z, "dLdA": dLdA, **{f"dLd{p}": _gradient_attribute(layer, p) for p in names}}
        got = {key: None if value is None else np.array(value, copy=True) for key, value in got.items()}
        values = {p: np.array(getattr(layer, p), copy=True) for p in names}
        if reference is None:
            expected = _finite_differences(layer, A, dLdZ, names, data)
        else:
            expected = _reference_gradients(reference, A, dLdZ, values)
        comparisons = []
        for quantity, wanted in expected.items():
            comparison = _compare(quantity, got[quantity], wanted, tolerance, values, A.shape)
            if not comparison.ok:
                raise GradientCheckError(
                    f"check_layer({name}): {comparison.explain()}\n"
                    f"  ({quantity} was compared with {against})\n"
                    f"  minimal failing input (shrunk by hypothesis):\n"
                    f"    A    = {_brief(A, 11)}  # shape {A.shape}\n"
                    f"    dLdZ = {_brief(dLdZ, 11)}  # shape {dLdZ.shape}"
                )
            comparisons.append(comparison)
        report._absorb(comparisons)

    if seed is not None:
        run = hypothesis_seed(seed)(run)
    run()
    return report


def _is_float(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def _input_strategy(layer: Any, inputs: Any, input_shape: Any, dtype: Any) -> st.SearchStrategy[np.ndarray]:
    if inputs is not None:
        return inputs
    if input_shape is None:
        width = getattr(layer, "in_features", None)
        weight = getattr(layer, "W", None)
        if width is None and _is_float(weight) and weight.ndim == 2:
            width = weight.shape[1]
        if width is None:
            raise ValueError(
                f"check_layer({type(layer).__name__}): cannot tell the input's shape; pass input_shape= "
                "(a shape or a strategy of shapes) or inputs= (a strategy of arrays)"
            )
        input_shape = st.integers(1, 4).map(lambda batch: (batch, int(width)))
    return arrays_away_from(input_shape, dtype, kinks=(0.0,), margin=0.01, low=-2.0, high=2.0)


def _parameter_names(layer: Any, before_forward: dict[str, np.ndarray]) -> list[str]:
    """Arrays the layer held before its first forward, still held since, with a gradient attribute."""
    parameters = getattr(layer, "_parameters", None)
    if isinstance(parameters, dict):  # a mytorch Module: its registered parameters
        return [attribute for attribute in parameters.values() if getattr(layer, attribute) is not None]
    current = vars(layer)
    return [
        key
        for key, value in before_forward.items()
        if current.get(key) is value and _gradient_attribute(layer, key) is not None
    ]


def _gradient_attribute(layer: Any, parameter: str) -> Any:
    for gradient_name in (f"dLd{parameter}", f"d{parameter}"):
        value = getattr(layer, gradient_name, None)
        if value is not None:
            return value
    return None


# ---- the references -----------------------------------------------------------------------------


def _reference_gradients(reference: Any, A: np.ndarray, dLdZ: np.ndarray, values: dict) -> dict[str, Any]:
    """Z and the engine's gradients of the reference forward, for the same A and parameters."""
    tape = engine()
    mark = tape.mark()
    outer, _state.recording = _state.recording, True
    try:
        A_ref = A.copy()
        if hasattr(reference, "forward"):  # a layer: its own arrays, holding the layer's values
            leaves = {p: getattr(reference, p) for p in values}
            for p, value in values.items():
                if np.shape(leaves[p]) != value.shape:
                    raise ValueError(
                        f"check_layer: the reference's {p} has shape {np.shape(leaves[p])}, the layer's "
                        f"has shape {value.shape}"
                    )
                leaves[p][...] = value
            Z = reference(A_ref)
        else:
            leaves = {p: value.copy() for p, value in values.items()}
            Z = reference(A_ref, **leaves)
        Z = np.asarray(Z)
        stop = mark[0]
        tape_now = tape.operation_list
        start = next((i for i in range(len(tape_now) - 1, stop - 1, -1) if tape_now[i].output is Z), None)
        if start is None:
            raise ValueError(
                "check_layer: the reference's output was not recorded on the engine; write the "
                "reference with mytorch primitives (mytorch.functional) or mytorch layers"
            )
        adjoints = tape.walk_backward(start, dLdZ.astype(Z.dtype), stop=stop)
        gradients = {"Z": Z.copy(), "dLdA": adjoints.get(id(A_ref), np.zeros_like(A))}
        for p, leaf in leaves.items():
            gradients[f"dLd{p}"] = adjoints.get(id(leaf), np.zeros_like(leaf))
        return gradients
    finally:
        _state.recording = outer
        tape.cut_back(mark)


def _finite_differences(
    layer: Any, A: np.ndarray, dLdZ: np.ndarray, names: list[str], data: st.DataObject
) -> dict[str, np.ndarray]:
    """Central differences of L = Σ dLdZ ⊙ forward(A) in A and in each parameter (in place)."""
    step = 1e-6 if A.dtype == np.float64 else 1e-3
    weights = dLdZ.astype(np.float64)

    def loss(point: np.ndarray) -> float:
        with no_grad():  # a mytorch layer would record (and lock its parameters) otherwise
            return float(np.sum(weights * np.asarray(layer.forward(point), dtype=np.float64)))

    def gradient(array: np.ndarray, evaluate: Callable[[], float]) -> np.ndarray:
        numeric = np.full(array.shape, np.nan)
        flat, numeric_flat = array.flat, numeric.reshape(-1)  # .flat writes through any layout
        columns = np.arange(array.size)
        if array.size > MAX_COLUMNS:
            seed = data.draw(st.integers(0, 2**16), label="column sample")
            columns = np.random.default_rng(seed).choice(array.size, MAX_COLUMNS, replace=False)
        for k in columns:
            original = flat[k]
            flat[k] = original + step
            ahead = evaluate()
            flat[k] = original - step
            behind = evaluate()
            flat[k] = original
            numeric_flat[k] = (ahead - behind) / (2 * step)
        return numeric

    point = A.copy()
    expected = {"dLdA": gradient(point, lambda: loss(point))}
    for p in names:
        expected[f"dLd{p}"] = gradient(getattr(layer, p), lambda: loss(A.copy()))
    return expected


# ---- comparing, with hints for the classic mistakes ----------------------------------------------


def _compare(
    quantity: str,
    got: Any,
    expected: np.ndarray,
    tolerance: tuple[float, float],
    values: dict,
    input_shape: tuple,
) -> _Comparison:
    atol, rtol = tolerance
    owner = "Z" if quantity == "Z" else ("A" if quantity == "dLdA" else quantity[3:])
    owner_shape = input_shape if owner == "A" else np.shape(values.get(owner, expected))
    if got is None:
        return _Comparison(quantity, None, expected, atol, rtol, problem="was not set by backward")
    got = np.asarray(got)
    if got.shape != np.shape(expected):
        problem = f"has shape {got.shape}, but {owner} has shape {owner_shape}"
        return _Comparison(
            quantity, got, expected, atol, rtol, problem=problem, hint=_shape_hint(got, expected)
        )
    checked = ~np.isnan(expected)  # finite differences may sample some elements only
    comparison = _Comparison(
        quantity, np.where(checked, got, 0.0), np.where(checked, expected, 0.0), atol, rtol
    )
    if not comparison.ok:
        comparison.hint = _value_hint(got, expected, input_shape)
    return comparison


def _shape_hint(got: np.ndarray, expected: np.ndarray) -> str:
    expected_shape = np.shape(expected)
    if got.shape == expected_shape[::-1]:
        return "its transpose has the right shape: a missing transpose?"
    if got.shape[1:] == expected_shape or got.shape[-len(expected_shape) :] == expected_shape:
        return "one gradient per example: not summed over the batch?"
    return ""


def _value_hint(got: np.ndarray, expected: np.ndarray, input_shape: tuple) -> str:
    close = lambda a, b: np.allclose(a, b, rtol=1e-4, atol=1e-6)
    batch = input_shape[0] if input_shape else 1
    if got.ndim == 2 and got.shape[0] == got.shape[1] and close(got, expected.T):
        return "it equals the transpose of the right answer: a missing transpose?"
    if batch > 1 and close(got * batch, expected):
        return f"it is the right answer divided by the batch size {batch}: averaged, not summed?"
    return ""

"""check_layer: test a hand-written layer's backward against the engine (or finite differences).

A homework-style layer computes `Z = layer.forward(A)` and, in `dLdA = layer.backward(dLdZ)`,
sets the gradients of its parameters (`layer.dLdW` for `layer.W`, or `layer.dW`). For random
inputs `A` and output adjoints `dLdZ` drawn by hypothesis, `check_layer` compares

    forward output Z, dLdA, and every dLd<param>, its sub-layers' included (`layers[0].dLdW`)

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
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from mytorch.autograd_engine import Stretch, engine, no_grad
from mytorch.testing.checks import (
    MAX_COLUMNS,
    TOLERANCES,
    CheckReport,
    GradientCheckError,
    _brief,
    _Comparison,
    _settings,
)
from mytorch.testing.reproducible import history_free
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

    The parameters are found in the layer and in every layer it holds, in attributes, lists,
    tuples and dicts (an MLP keeping its Linear layers in `self.layers`): each is named by its
    path (`W`, `layers[0].W`, `blocks['head'].b`) and its gradient is read from its owner's
    `dLd<name>` (or `d<name>`). A hand-written layer's parameters are the float arrays it held
    before its first forward that have such a gradient after backward, and any `W`, `b`,
    `weight` or `bias` (whose gradient must then be set); a mytorch layer's are its registered
    ones. If arrays are found but none has a gradient to compare, the check fails rather than
    compare dLdA alone; `params=` (paths) names the parameters instead (`params=[]`: none).
    `report.compared` lists the quantities compared (`Z`, `dLdA`, `layers[0].dLdW`, ...).

    `reference`: the same forward written with mytorch primitives, either a function
    `reference(A, **parameters)` (parameters passed by path: `W=..., b=...`, or
    `**{"layers[0].W": ...}`) or a mytorch layer holding parameters at the same paths, or the
    same number of parameters in the same order and shapes (their values are copied in);
    None means central finite differences of the layer's own forward.
    `inputs` draws `A`; otherwise `input_shape` (a shape or a strategy of shapes), otherwise
    `(batch, in_features)` with `in_features` from the first layer found with `in_features` or
    a 2-D `W`. Values keep 0.01 away from 0 (where relu-like layers have a kink).

    Raises `GradientCheckError` naming the first mismatching quantity, with the minimal input.
    """
    name = type(layer).__name__
    inputs = _input_strategy(layer, inputs, input_shape, dtype)
    candidates = _candidates(layer)  # before the first forward: what the layer holds from the start
    default_atol, default_rtol = TOLERANCES["finite differences"][np.dtype(dtype)]
    tolerance = (default_atol if atol is None else atol, default_rtol if rtol is None else rtol)
    against = "finite differences" if reference is None else "the engine's gradients of the reference"
    report = CheckReport(name, "finite differences" if reference is None else "engine (reference)")

    @_settings(max_examples)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        A = data.draw(inputs, label="A")
        tape = engine()
        mark, walked = tape.mark(), False
        try:
            Z = np.asarray(layer.forward(A.copy()))
            dLdZ = data.draw(float_arrays(Z.shape, Z.dtype if Z.dtype.kind == "f" else dtype), label="dLdZ")
            dLdA = layer.backward(dLdZ.copy())
            walked = True
        finally:  # an example abandoned (by hypothesis, or a backward that raised) leaves no tape
            if not walked:
                tape.cut_back(mark)
        found = _resolved(layer, params) if params is not None else _parameters(name, candidates)
        got = {"Z": Z, "dLdA": dLdA, **{p.quantity: p.gradient() for p in found}}
        got = {key: None if value is None else np.array(value, copy=True) for key, value in got.items()}
        values = {p.path: np.array(p.value(), copy=True) for p in found}
        if params is None:
            _refuse_unclaimed(name, layer, A, dLdZ, found, candidates, tolerance, data)
        if reference is None:
            expected = _finite_differences(layer, A, dLdZ, found, data)
        else:
            expected = _reference_gradients(reference, A, dLdZ, found, values)
        comparisons = []
        owners = {"Z": ("Z", Z.shape), "dLdA": ("A", A.shape)}
        owners.update((p.quantity, (p.path, values[p.path].shape)) for p in found)
        for quantity, wanted in expected.items():
            comparison = _compare(quantity, got[quantity], wanted, tolerance, *owners[quantity], A.shape)
            if not comparison.ok and reference is None and not comparison.problem:
                # Differences can be off by roundoff that the layer amplifies (a BatchNorm of a
                # constant feature divides by √ε): taken again with a ten times larger step, each
                # element is compared with the nearer of the two estimates.
                again = _finite_differences(layer, A, dLdZ, found, data, scale=10.0)[quantity]
                mine = np.asarray(got[quantity], dtype=np.float64)
                nearer = np.where(np.abs(mine - np.nan_to_num(again, nan=np.inf)) < np.abs(mine - wanted),
                                  again, wanted)
                comparison = _compare(quantity, got[quantity], nearer, tolerance, *owners[quantity], A.shape)
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
        report.compared = tuple(expected)
        report.not_compared = tuple(
            c.path for c in candidates if c.path not in values and not c.is_gradient and c.still_held()
        )

    if seed is None:
        run()
    else:
        with history_free():  # the draws depend on the seed alone
            hypothesis_seed(seed)(run)()
    return report


def _is_float(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


# ---- finding the parameters, in the layer and in the layers it holds -----------------------------

_PARAMETER_NAMES = ("W", "b", "weight", "bias")  # compared even when backward never set a gradient
_MODULE_INTERNALS = ("_", "autograd_engine")  # a mytorch Module's bookkeeping, not its layers


@dataclass
class _Parameter:
    """An array of the layer or of a layer it holds: `owner.<attribute>`, reached by `path`."""

    path: str  # "W", "layers[0].W", "blocks['head'].b"
    owner: Any
    attribute: str
    array: np.ndarray | None = None  # what the owner held before the first forward
    is_gradient: bool = False  # a gradient kept from the start (self.dLdW = zeros): not a parameter

    @property
    def quantity(self) -> str:
        return f"{self.path[: len(self.path) - len(self.attribute)]}dLd{self.attribute}"

    def value(self) -> np.ndarray:
        return getattr(self.owner, self.attribute)

    def gradient(self) -> Any:
        return _gradient_attribute(self.owner, self.attribute)

    def still_held(self) -> bool:
        """Whether the owner still holds this very array (a forward replaces what it caches)."""
        return getattr(self.owner, self.attribute, None) is self.array


def _is_layer(value: Any) -> bool:
    return not isinstance(value, type) and callable(getattr(value, "forward", None))


def _is_module(value: Any) -> bool:
    return isinstance(getattr(value, "_parameters", None), dict) and hasattr(value, "named_parameters")


def _layers(layer: Any) -> list[tuple[str, Any]]:
    """(path prefix, layer) for `layer` and, depth first, every layer it holds in attributes, lists,
    tuples and dicts (each once)."""
    found: list[tuple[str, Any]] = []
    seen: set[int] = set()

    def visit(prefix: str, owner: Any) -> None:
        if id(owner) in seen or len(prefix) > 1000:
            return
        seen.add(id(owner))
        found.append((prefix, owner))
        internal = _MODULE_INTERNALS if _is_module(owner) else ("__",)
        for key, value in list(getattr(owner, "__dict__", {}).items()):
            if not key.startswith(internal):
                hold(f"{prefix}{key}", value)

    def hold(path: str, value: Any) -> None:
        if _is_layer(value):
            visit(f"{path}.", value)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                hold(f"{path}[{i}]", item)
        elif isinstance(value, dict):
            for key, item in value.items():
                hold(f"{path}[{key!r}]", item)

    visit("", layer)
    return found


def _candidates(layer: Any) -> list[_Parameter]:
    """Before the first forward: a mytorch layer's registered parameters, and the float arrays each
    hand-written layer holds (its parameters are those that turn out to have a gradient)."""
    candidates: list[_Parameter] = []
    seen: set[int] = set()
    for prefix, owner in _layers(layer):
        if _is_module(owner):
            held = [(attribute, getattr(owner, attribute)) for attribute in owner._parameters.values()]
        else:
            held = [(key, value) for key, value in vars(owner).items() if _is_float(value)]
        names = {key for key, _ in held}
        for key, value in held:
            if value is None or id(value) in seen:
                continue
            seen.add(id(value))
            gradient = key.startswith("dLd") or (key.startswith("d") and key[1:] in names)
            candidates.append(_Parameter(prefix + key, owner, key, value, is_gradient=gradient))
    return candidates


def _parameters(name: str, candidates: list[_Parameter]) -> list[_Parameter]:
    """The candidates that are parameters: still held after backward, and with a gradient
    attribute (or named like a parameter). Fails when arrays are held but none qualifies."""
    found = []
    for candidate in candidates:
        if candidate.is_gradient or not candidate.still_held():
            continue
        if (_is_module(candidate.owner) or candidate.gradient() is not None
                or candidate.attribute in _PARAMETER_NAMES):
            found.append(candidate)
    held = [c.path for c in candidates if not c.is_gradient and c.still_held()]
    if not found and held:
        raise GradientCheckError(
            f"check_layer({name}): found no parameter whose gradient can be compared: the arrays "
            f"{', '.join(held)} have no dLd<name> or d<name> after backward, so only dLdA could be "
            "checked. Set their gradients in backward, or name the parameters with params= (paths "
            "such as 'layers[0].W'; params=[] to check dLdA alone)."
        )
    return found


def _resolved(layer: Any, paths: Sequence[str]) -> list[_Parameter]:
    """The parameters named by `params=`, each `owner.attribute` reached by its path."""
    owners = dict(_layers(layer))
    found = []
    for path in paths:
        prefix, _, attribute = path.rpartition(".")
        owner = owners.get(f"{prefix}." if prefix else "")
        if owner is None or not _is_float(getattr(owner, attribute, None)):
            raise ValueError(
                f"check_layer({type(layer).__name__}): params= names {path!r}, which is not a float array "
                f"of the layer (its layers: {', '.join(repr(p.rstrip('.')) for p in owners if p) or 'none'})"
            )
        found.append(_Parameter(path, owner, attribute, getattr(owner, attribute)))
    return found


def _input_strategy(layer: Any, inputs: Any, input_shape: Any, dtype: Any) -> st.SearchStrategy[np.ndarray]:
    if inputs is not None:
        return inputs
    if input_shape is None:
        width = None
        for _, owner in _layers(layer):  # the layer itself, then the first of the layers it holds
            width = getattr(owner, "in_features", None)
            weight = getattr(owner, "W", None)
            if width is None and _is_float(weight) and weight.ndim == 2:
                width = weight.shape[1]
            if width is not None:
                break
        if width is None:
            raise ValueError(
                f"check_layer({type(layer).__name__}): cannot tell the input's shape; pass input_shape= "
                "(a shape or a strategy of shapes) or inputs= (a strategy of arrays)"
            )
        input_shape = st.integers(1, 4).map(lambda batch: (batch, int(width)))
    return arrays_away_from(input_shape, dtype, kinks=(0.0,), margin=0.01, low=-2.0, high=2.0)


def _gradient_attribute(layer: Any, parameter: str) -> Any:
    for gradient_name in (f"dLd{parameter}", f"d{parameter}"):
        value = getattr(layer, gradient_name, None)
        if value is not None:
            return value
    return None


# ---- the references -----------------------------------------------------------------------------


def _reference_leaves(reference: Any, found: list[_Parameter]) -> list[np.ndarray]:
    """The reference layer's arrays for the layer's parameters: at the same paths, or else the
    reference's parameters in order (same count and shapes)."""
    owners = dict(_layers(reference))
    leaves = []
    for p in found:
        owner = owners.get(p.path[: len(p.path) - len(p.attribute)])
        leaf = getattr(owner, p.attribute, None) if owner is not None else None
        if not _is_float(leaf):
            break
        leaves.append(leaf)
    else:
        return leaves
    ordered = list(reference.parameters()) if _is_module(reference) else []
    if [np.shape(a) for a in ordered] == [np.shape(p.value()) for p in found]:
        return ordered
    raise ValueError(
        f"check_layer: the reference {type(reference).__name__} holds no parameters at the layer's paths "
        f"({', '.join(p.path for p in found)}), nor the same number of parameters in the same order and "
        "shapes"
    )


def _reference_gradients(
    reference: Any, A: np.ndarray, dLdZ: np.ndarray, found: list[_Parameter], values: dict
) -> dict[str, Any]:
    """Z and the engine's gradients of the reference forward, for the same A and parameters."""
    with Stretch() as stretch:
        A_ref = A.copy()
        if hasattr(reference, "forward"):  # a layer: its own arrays, holding the layer's values
            leaves = dict(zip((p.path for p in found), _reference_leaves(reference, found)))
            for path, value in values.items():
                if np.shape(leaves[path]) != value.shape:
                    raise ValueError(
                        f"check_layer: the reference's {path} has shape {np.shape(leaves[path])}, the "
                        f"layer's has shape {value.shape}"
                    )
                leaves[path][...] = value
            Z = reference(A_ref)
        else:
            leaves = {path: value.copy() for path, value in values.items()}
            Z = reference(A_ref, **leaves)
        Z = Z if isinstance(Z, np.ndarray) else np.asarray(Z)  # a tracked output stays itself
        if stretch.producer(Z) is None:
            raise ValueError(
                "check_layer: the reference's output was not recorded on the engine; write the "
                "reference with mytorch primitives (mytorch.functional) or mytorch layers"
            )
        adjoints = stretch.backward(Z, dLdZ.astype(Z.dtype))
        gradients = {"Z": Z.copy(), "dLdA": adjoints.get(id(A_ref), np.zeros_like(A))}
        for p in found:
            leaf = leaves[p.path]
            gradients[p.quantity] = adjoints.get(id(leaf), np.zeros_like(leaf))
        return gradients


def _refuse_unclaimed(
    name: str, layer: Any, A: np.ndarray, dLdZ: np.ndarray, found: list[_Parameter],
    candidates: list[_Parameter], tolerance: tuple[float, float], data: st.DataObject,
) -> None:
    """A float array the layer held from the start, that changes its output, but whose gradient
    backward never set (a parameter named `gamma`, a BatchNorm's `Bb`), fails the check: left
    out, its gradient would go unchecked, and an optimizer would never move it."""
    taken = {id(p.array) for p in found} | {id(p.value()) for p in found}
    for candidate in candidates:
        if candidate.is_gradient or not candidate.still_held() or id(candidate.array) in taken:
            continue
        slope = _finite_differences(layer, A, dLdZ, [candidate], data, only_parameters=True)
        numeric = slope[candidate.quantity]
        moved = np.abs(np.nan_to_num(numeric)) > tolerance[0] + tolerance[1]
        if moved.any():
            raise GradientCheckError(
                f"check_layer({name}): {candidate.path} changes the layer's output "
                f"(dL/d{candidate.attribute} "
                f"is {float(np.nan_to_num(numeric)[moved][0]):.6g} at index "
                f"{tuple(int(i) for i in np.argwhere(moved)[0])}), but backward set no "
                f"{candidate.quantity} (nor d{candidate.attribute}): a parameter whose gradient is never "
                "set is never trained. Set it in backward, or, if it is a constant, name the parameters "
                "with params= (paths such as 'W', 'layers[0].b')."
            )


def _finite_differences(
    layer: Any, A: np.ndarray, dLdZ: np.ndarray, found: list[_Parameter], data: st.DataObject,
    only_parameters: bool = False, scale: float = 1.0,
) -> dict[str, np.ndarray]:
    """Central differences of L = Σ dLdZ ⊙ forward(A) in A and in each parameter (in place), with
    the dtype's step times `scale`."""
    step = (1e-6 if A.dtype == np.float64 else 1e-3) * scale
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
    expected = {} if only_parameters else {"dLdA": gradient(point, lambda: loss(point))}
    for p in found:
        expected[p.quantity] = gradient(p.value(), lambda: loss(A.copy()))
    return expected


# ---- comparing, with hints for the classic mistakes ----------------------------------------------


def _compare(
    quantity: str,
    got: Any,
    expected: np.ndarray,
    tolerance: tuple[float, float],
    owner: str,
    owner_shape: tuple,
    input_shape: tuple,
) -> _Comparison:
    atol, rtol = tolerance
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

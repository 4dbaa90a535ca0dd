"""check_grads: compare a function's derivatives with finite differences, element by element.

The numeric derivative is the central difference, improved by one Richardson step:

    D(h) = (f(x + h) - f(x - h)) / 2h          error O(h²)
    (4 D(h/2) - D(h)) / 3                      error O(h⁴)

so a step of 1e-4 leaves an error near 1e-12 of f's scale instead of 1e-8. It is taken in float64
whatever the argument's dtype, so float32 code is checked against an accurate reference.

`order=2` also checks the derivatives of the derivatives, as jax's `check_grads` does: the
reverse-mode derivative along a random cotangent (x ↦ uᵀ ∂f/∂x) and the forward-mode derivative
along a random tangent (x ↦ ∂f/∂x · v) are themselves checked in each mode against finite
differences of them, which covers reverse over reverse, forward over reverse, and so on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mytorch.autograd_engine import no_grad
from mytorch.primitive import copy
from mytorch.transforms import jacobian, jvp, vjp
from mytorch.utils import gradient_dtype, is_float_array

_MODE_NAMES = {"rev": "reverse-mode ('rev')", "fwd": "forward-mode ('fwd')"}

# Default (eps, rtol, atol) by the least precise float dtype among the arguments and outputs.
_DEFAULTS = {
    np.dtype(np.float64): (1e-4, 1e-5, 1e-6),
    np.dtype(np.float32): (1e-3, 2e-3, 2e-3),
    np.dtype(np.float16): (1e-2, 5e-2, 5e-2),
}


def check_grads(
    f: Callable,
    args: Sequence[Any],
    modes: Sequence[str] = ("rev", "fwd"),
    order: int = 1,
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Check `f`'s derivatives at `args` in each mode against finite differences.

    Every float argument (array or Python float) is checked; integer ones are held constant.
    Raises `AssertionError` naming the mode, the argument, the element, the two values and the
    error. `order=2` checks the derivatives of the derivatives too.

    >>> from mytorch import functional as F
    >>> check_grads(lambda x: F.sum(F.sin(x)), (np.array([0.5, 1.0]),), order=2)
    >>> check_grads(lambda x: F.sum(F.abs(x)), (np.array([-1.0, 2.0]),))
    """
    args = list(args) if isinstance(args, (tuple, list)) else [args]
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    for mode in modes:
        if mode not in _MODE_NAMES:
            raise ValueError(f"check_grads: modes must be 'rev' and/or 'fwd', got {mode!r}")
    if not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"check_grads: order must be 1 or more, got {order!r}")
    for i, value in enumerate(args):
        if isinstance(value, float):
            args[i] = np.asarray(value)  # differentiated as a float64 0-d array
    positions = tuple(i for i, value in enumerate(args) if is_float_array(value))
    if not positions:
        raise ValueError("check_grads: none of the arguments is a float array or a Python float")
    with no_grad():
        outputs = [np.asarray(o) for o in _leaves(f(*args))]
    # The least precise float among arguments and outputs sets the step and the tolerances.
    dtypes = [args[i].dtype for i in positions] + [o.dtype for o in outputs if o.dtype.kind == "f"]
    least_precise = min(dtypes, key=lambda d: d.itemsize)
    default_eps, default_rtol, default_atol = _DEFAULTS.get(least_precise, _DEFAULTS[np.dtype(np.float64)])
    tolerances = (
        default_eps if eps is None else eps,
        default_rtol if rtol is None else rtol,
        default_atol if atol is None else atol,
    )
    _check(_flattened(f), args, positions, modes, int(order), tolerances, "f")


def _leaves(value: Any) -> list[Any]:
    """The arrays of a (nested) tuple of results, in order (the very objects, not copies)."""
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _flattened(f: Callable) -> Callable:
    def flat(*args: Any) -> tuple:
        return tuple(_leaves(f(*args)))

    return flat


def _check(
    f: Callable,
    args: list[Any],
    positions: tuple[int, ...],
    modes: tuple[str, ...],
    order: int,
    tolerances: tuple[float, float, float],
    label: str,
) -> None:
    eps, rtol, atol = tolerances
    numeric = numeric_jacobian(f, args, positions, eps)
    for mode in modes:
        derived = jacobian(f, argnums=positions, mode=mode)(*args)  # [output][argument]
        for k, row in enumerate(derived):
            if numeric[k] is None:
                continue  # an integer output has no derivative to check
            for p, block in zip(positions, row):
                _compare(np.asarray(block, dtype=np.float64), numeric[k][p], rtol, atol,
                         f"the {_MODE_NAMES[mode]} derivative of {label}", k, len(derived), p, args[p].shape)
    if order > 1:
        # The derivatives of the derivatives, as jax does: differentiate f's vjp along a random
        # cotangent and f's jvp along a random tangent, which are functions of the same arguments.
        # Every second-order rule is exercised, at a fraction of a full Jacobian of the Jacobian.
        directions = np.random.default_rng(0)
        for mode in modes:
            derivative = _directional(f, args, positions, mode, directions)
            _check(derivative, args, positions, modes, order - 1, tolerances,
                   f"({label} differentiated in {_MODE_NAMES[mode]} along a random direction)")


def _directional(f: Callable, args: list[Any], positions: tuple[int, ...], mode: str,
                 directions: np.random.Generator) -> Callable:
    """x ↦ uᵀ ∂f/∂x for a fixed random u ("rev"), or x ↦ ∂f/∂x · v for a fixed random v ("fwd")."""
    with no_grad():
        outputs = [np.asarray(o) for o in f(*args)]

    def random_like(array: np.ndarray) -> np.ndarray:
        return directions.standard_normal(array.shape).astype(gradient_dtype(array)) * is_float_array(array)

    cotangents = tuple(random_like(o) for o in outputs)
    tangents = [random_like(args[p]) for p in positions]

    def of_differentiated(point: Sequence[Any]) -> Callable:
        def g(*xs: Any) -> Any:
            full = list(point)
            for p, x in zip(positions, xs):
                full[p] = x
            return f(*full)

        return g

    def along(*point: Any) -> tuple:
        g, primals = of_differentiated(point), [point[p] for p in positions]
        if mode == "rev":
            derivative = vjp(g, *primals)[1](cotangents)
        else:
            derivative = jvp(g, primals, tangents)[1]
        # A linear f's derivative can be the fixed direction itself (add's vjp hands back ū): a
        # copy on the tape, so that its Jacobian, zero, is taken instead of refused as untraced.
        return [copy(d) if is_float_array(d) else d for d in _leaves(derivative)]

    return _flattened(along)


def numeric_jacobian(
    f: Callable, args: Sequence[Any], positions: Sequence[int], eps: float = 1e-4
) -> list[dict[int, np.ndarray] | None]:
    """Finite-difference Jacobians of `f`'s outputs (a tuple) with respect to `args[p]`, p in positions.

    `result[k][p]` has shape output_k.shape + args[p].shape (None for an integer output).

    >>> numeric_jacobian(lambda x: (x * x,), [np.array([1.0, 3.0])], [0])[0][0]
    array([[2., 0.],
           [0., 6.]])
    """
    args = list(args)
    with no_grad():
        outputs = [np.asarray(o) for o in f(*args)]
    result: list[dict[int, np.ndarray] | None] = [
        {} if o.dtype.kind == "f" else None for o in outputs
    ]
    for p in positions:
        point = np.asarray(args[p], dtype=np.float64)
        columns = [np.empty(o.shape + (point.size,)) for o in outputs]
        for element in range(point.size):
            slope = _richardson(f, args, p, point, element, eps)
            for k, column in enumerate(columns):
                column[..., element] = slope[k]
        for k, o in enumerate(outputs):
            if result[k] is not None:
                result[k][p] = columns[k].reshape(o.shape + point.shape)
    return result


def _richardson(f: Callable, args: list[Any], p: int, point: np.ndarray, element: int, eps: float) -> list:
    """The derivative of every output along one element of argument p, to O(eps⁴)."""

    def central(h: float) -> list[np.ndarray]:
        shifted = []
        for sign in (1.0, -1.0):
            moved = point.copy()
            moved.flat[element] += sign * h
            with no_grad():
                shifted.append([np.asarray(o, dtype=np.float64) for o in f(*args[:p], moved, *args[p + 1:])])
        return [(up - down) / (2 * h) for up, down in zip(*shifted)]

    coarse, fine = central(eps), central(eps / 2)
    return [(4 * b - a) / 3 for a, b in zip(coarse, fine)]


def _compare(
    derived: np.ndarray, numeric: np.ndarray, rtol: float, atol: float, what: str,
    output: int, output_count: int, argument: int, argument_shape: tuple[int, ...],
) -> None:
    error = np.abs(derived - numeric)
    tolerance = atol + rtol * np.abs(numeric)
    same_nonfinite = (derived == numeric) | (np.isnan(derived) & np.isnan(numeric))
    bad = ~((error <= tolerance) | same_nonfinite)
    if not bad.any():
        return
    excess = np.where(bad, np.nan_to_num(error - tolerance, nan=np.inf), -np.inf)
    worst = np.unravel_index(int(np.argmax(excess)), bad.shape)
    split = len(worst) - len(argument_shape)
    output_name = "output" if output_count == 1 else f"output {output}"
    output_name += _index_text(worst[:split])
    raise AssertionError(
        f"check_grads: {what} does not match finite differences at "
        f"d {output_name} / d argument {argument}{_index_text(worst[split:])}: "
        f"autodiff {derived[worst]:.10g} vs finite differences {numeric[worst]:.10g}, "
        f"error {error[worst]:.3g} > tolerance {tolerance[worst]:.3g} "
        f"(atol {atol:g} + rtol {rtol:g} * |finite differences|); "
        f"{int(bad.sum())} of {bad.size} elements differ"
    )


def _index_text(index: tuple) -> str:
    return "" if not index else "[" + ", ".join(str(int(i)) for i in index) + "]"

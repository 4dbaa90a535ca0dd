"""Transforms: a function in, its derivative out — grad, value_and_grad, vjp, jvp, jacobian, hessian, hvp.

Every transform works on the one tape of the current engine, in five steps:

1. mark the tape;
2. record a fresh copy of each argument it differentiates: its own variable, so it never mistakes
   an outer transform's variable for its own ("perturbation confusion": in
   `grad(lambda x: x * grad(lambda y: x * y)(x))` the inner derivative is `x`, not `2x`);
3. run `f`: its operations are recorded after the copies;
4. walk only that stretch of tape: backwards with the adjoint rules (grad, vjp, jacobian "rev"),
   or forwards with the tangent rules (jvp, jacobian "fwd");
5. leaving the outermost transform, cut the tape and the gradient buffer back to the mark, so what
   the user recorded before is untouched.

Nested inside another transform, a transform leaves its stretch on the tape and records its own
walk (`create_graph`), so the outer transform differentiates through it: `grad(grad(f))` is `f''`
(reverse over reverse), `jvp(grad(f), ...)` a Hessian-vector product (forward over reverse).

Results are plain numpy arrays with the shape and dtype of the argument; Python numbers are
differentiated as float64 0-d arrays.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from mytorch import functional as F
from mytorch.autograd_engine import Stretch, engine, is_recording, recording
from mytorch.primitive import variable as new_variable
from mytorch.pytree import is_container, jvp_over_trees, value_and_grad_over_trees, vjp_over_trees
from mytorch.tracked import plain
from mytorch.utils import gradient_dtype

# ---- where transforms nest ------------------------------------------------------------------


class _Nesting(threading.local):
    depth: int = 0  # transforms active in this thread


_nesting = _Nesting()


def inside_a_transform() -> bool:
    """Whether a transform is active in this thread (then walks record, for it to follow)."""
    return _nesting.depth > 0


@contextmanager
def walks_recorded() -> Iterator[None]:
    """Run as if inside an outer transform: a transform called inside records its backward (or
    tangent) walk as primitives and leaves it on the tape. `mytorch.compile` records this way."""
    _nesting.depth += 1
    try:
        yield
    finally:
        _nesting.depth -= 1


@contextmanager
def _transform_scope() -> Iterator[Stretch]:
    """A stretch of tape that records while inside (even under no_grad); the outermost scope cuts
    the tape back on leaving, a nested one leaves its stretch for the outer transform to follow.

    `stretch.keep` tells whether another transform follows this one from outside (then walks
    record). Called where recording is off (inside `no_grad` in an outer transform's function),
    no transform outside follows it: its results are constants there, as `jax.lax.stop_gradient`
    makes them.
    """
    nested = _nesting.depth > 0 and is_recording()
    _nesting.depth += 1
    try:
        with Stretch(keep=nested) as stretch:
            yield stretch
    finally:
        _nesting.depth -= 1


# ---- the variables: fresh copies of the arguments ------------------------------------------


def _variable(value: Any, who: str, position: int) -> np.ndarray:
    """The transform's own variable for an argument: a tracked copy of it on the tape, so that
    ordinary NumPy code on it (`x * x`, `x.T`, `np.exp(x)`) records (mytorch.tracked)."""
    return new_variable(_as_float_array(value, who, position))


def _numbers_as_arrays(args: Sequence[Any], argnums: Any = None) -> list[Any]:
    """The differentiated arguments (all, or those in `argnums`) that are lists or tuples of
    numbers only (at any depth) as float arrays: `[1.0, 2.0]` is a vector to differentiate, not a
    tree of two scalars. Trees hold arrays."""
    count = len(args)
    if argnums is None:
        chosen = set(range(count))
    else:
        positions = (argnums,) if isinstance(argnums, (int, np.integer)) else tuple(argnums)
        valid = [n for n in positions if isinstance(n, (int, np.integer)) and -count <= n < count]
        chosen = {int(n) % count for n in valid}
    return [
        np.asarray(a, dtype=np.float64) if i in chosen and _numbers_only(a) and not np.isscalar(a) else a
        for i, a in enumerate(args)
    ]


def _numbers_only(value: Any) -> bool:
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return bool(value) and all(_numbers_only(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_float_array(value: Any, who: str, position: int) -> np.ndarray:
    """An argument to differentiate: a float array, or a Python number made a float64 0-d array."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.asarray(value, dtype=np.float64)
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    if array.dtype.kind not in "fc":
        raise TypeError(
            f"{who}: cannot differentiate with respect to argument {position}: it has dtype "
            f"{array.dtype} (shape {array.shape}); only float and complex arrays (and Python numbers) are "
            "differentiable. Pass x.astype(float), or leave it out of argnums."
        )
    return array


def _checked_argnums(argnums: int | Sequence[int], count: int, who: str) -> tuple[tuple[int, ...], bool]:
    """argnums as a tuple of non-negative positions, and whether a single one was asked for."""
    single = isinstance(argnums, (int, np.integer)) and not isinstance(argnums, bool)
    positions = (argnums,) if single else tuple(argnums)
    if not positions:
        raise ValueError(f"{who}: argnums is empty; name at least one argument to differentiate")
    for n in positions:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TypeError(f"{who}: argnums must hold ints, got {n!r}")
        if not -count <= n < count:
            raise ValueError(
                f"{who}: argnums={argnums!r} is out of range: the function was called with "
                f"{count} positional argument(s)"
            )
    return tuple(int(n) % count for n in positions), single


def _outputs_of(out: Any, who: str) -> tuple[list[np.ndarray], bool]:
    """f's result as a flat list of arrays, and whether it was a tuple (or list)."""
    is_tuple = isinstance(out, (tuple, list))
    items = list(out) if is_tuple else [out]
    arrays = []
    for item in items:
        if isinstance(item, np.ndarray):
            arrays.append(item)
        elif isinstance(item, np.number):  # what np.sum returns (np.float64 is also a float: first)
            arrays.append(np.asarray(item))  # refused below if it was computed off the tape
        elif isinstance(item, (int, float)):
            arrays.append(_Constant(item))  # a Python number: a constant, its derivative is zero
        else:
            raise TypeError(
                f"{who}: the function must return an array or a number (or a tuple of them), "
                f"got {type(item).__name__}"
            )
    return arrays, is_tuple


class _Constant(np.ndarray):
    """A Python number a function returned: known to be constant (a 0-d float64 array)."""

    def __new__(cls, value: float) -> _Constant:
        return np.asarray(value, dtype=np.float64).view(cls)


def _zeros_like_tangent(array: np.ndarray) -> np.ndarray:
    return np.zeros(array.shape, gradient_dtype(array))


# ---- a trace: f run once on the tape --------------------------------------------------------


class _Trace:
    """f run once, on fresh copies of the arguments in `argnums`, inside a transform scope."""

    def __init__(self, stretch: Stretch, f: Callable, args: Sequence[Any], argnums: tuple[int, ...],
                 who: str) -> None:
        tape = stretch.engine
        args = list(args)
        fresh: dict[int, np.ndarray] = {}
        for position in argnums:
            if position not in fresh:  # an argument named twice in argnums is one variable
                fresh[position] = _variable(args[position], who, position)
        for position, variable in fresh.items():
            args[position] = variable
        self.variables = [fresh[position] for position in argnums]
        start = len(tape.operation_list)  # the variables are where the walks stop: after their copies
        self.outputs, self.is_tuple = _outputs_of(f(*args), who)
        if engine() is not tape:
            raise RuntimeError(
                f"{who}: the function started a new engine (Autograd()) while it was being "
                "differentiated, so its operations are not on the tape being walked; create the "
                "engine once, outside the function"
            )
        self.stretch = stretch.seal(start)  # walks that record append to the tape, never to the stretch
        _refuse_untraced(stretch, self.outputs, self.variables, who)

    def pullback(self, cotangents: Sequence[np.ndarray | None], create_graph: bool) -> list[np.ndarray]:
        """The adjoints of the variables, given one cotangent per output (None for zero).

        Reverse mode: one walk back from each output that has a cotangent.
        """
        totals: list[np.ndarray | None] = [None] * len(self.variables)
        for output, cotangent in zip(self.outputs, cotangents):
            if cotangent is None:
                continue
            adjoints = self.stretch.backward(output, cotangent, create_graph=create_graph)
            with recording(create_graph):
                for i, variable in enumerate(self.variables):
                    adjoint = adjoints.get(id(variable))
                    if adjoint is not None:
                        totals[i] = adjoint if totals[i] is None else F.add(totals[i], adjoint)
        return [np.zeros_like(v) if t is None else t for v, t in zip(self.variables, totals)]

    def pushforward(self, tangents: Sequence[np.ndarray | None], create_graph: bool) -> list[np.ndarray]:
        """The tangents of the outputs, given one tangent per variable (None for zero).

        Forward mode: one walk over the stretch with the tangent rules.
        """
        known = {id(v): t for v, t in zip(self.variables, tangents) if t is not None}
        with recording(create_graph):
            self.stretch.forward(known)
        results = []
        for output in self.outputs:
            tangent = known.get(id(output))
            results.append(_zeros_like_tangent(output) if tangent is None else tangent)
        return results


def _refuse_untraced(stretch: Stretch, outputs: list[np.ndarray], variables: list[np.ndarray],
                     who: str) -> None:
    """A float output that no recorded operation produced, and that is not a variable, was computed
    outside the tape: its derivative would come back as zeros, silently."""
    for output in outputs:
        if (output.dtype.kind not in "fc" or isinstance(output, _Constant)
                or any(output is v for v in variables)):
            continue
        if stretch.producer(output) is None:
            raise TypeError(
                f"{who}: the function's output (shape {output.shape}) was not produced by any "
                "recorded operation, so its derivative cannot be followed: was it computed with "
                "NumPy (np.sum, np.exp, an @ or * on arrays) instead of mytorch.functional? Every "
                "step from the arguments to the output must be a mytorch primitive."
            )


def _returned(value: np.ndarray, nested: bool) -> np.ndarray:
    """What a transform hands back: the very array when nested (an outer transform follows its
    identity on the tape), else a plain writable array (never tracked, nor a read-only broadcast
    view)."""
    if isinstance(value, _Constant):
        return np.asarray(value)
    if nested:
        return value
    value = plain(value)
    return value if value.flags.writeable else np.array(value)


def _checked_seed(seed: Any, like: np.ndarray, who: str, what: str, record: bool) -> np.ndarray:
    """A cotangent or tangent of `like`'s shape, in its float dtype (cast on the tape if `record`)."""
    dtype = gradient_dtype(like)
    if isinstance(seed, np.ndarray) and seed.dtype.kind not in "fc":
        seed = seed.astype(dtype)
    seed = seed if isinstance(seed, np.ndarray) else np.asarray(seed, dtype=dtype)
    if seed.shape != like.shape:
        raise ValueError(f"{who}: {what} has shape {seed.shape}, but it must have shape {like.shape}")
    if seed.dtype != dtype:
        seed = F.astype(seed, dtype) if record else seed.astype(dtype)
    return seed


# ---- reverse mode ---------------------------------------------------------------------------


def _value_and_grad_of_arrays(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """`f` and its gradient with respect to the arguments in `argnums`, in one pass.

    `f` must return a scalar (an array of one element). With a tuple `argnums` the gradients come
    back as a tuple. Plugs into `scipy.optimize.minimize(fun, x0, jac=True)`.

    >>> from mytorch import functional as F
    >>> value, slope = value_and_grad(lambda x: F.sum(F.mul(x, x)))(np.array([1.0, 2.0]))
    >>> float(value), slope
    (5.0, array([2., 4.]))
    """

    def value_and_grad_f(*args: Any) -> tuple[np.ndarray, Any]:
        positions, single = _checked_argnums(argnums, len(args), "grad")
        with _transform_scope() as stretch:
            nested = stretch.keep
            trace = _Trace(stretch, f, args, positions, "grad")
            (value,) = _single_output(trace, "grad")
            if value.dtype.kind == "c":  # as PyTorch: the gradient of a real function only
                raise TypeError(f"grad needs a real output; got a {value.dtype} array: take np.abs, "
                                "np.real or np.imag of it, or use vjp with a cotangent")
            if value.dtype.kind != "f":
                raise TypeError(f"grad needs a float output; got a {value.dtype} array")
            if value.size != 1:
                raise ValueError(f"grad needs a scalar output; got shape {value.shape} — use vjp or jacobian")
            grads = trace.pullback([np.ones_like(value)], create_graph=nested)
        grads = [_returned(g, nested) for g in grads]
        return _returned(value, nested), grads[0] if single else tuple(grads)

    value_and_grad_f.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    return value_and_grad_f


def value_and_grad(f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """`f` and its gradient with respect to the arguments in `argnums`, in one pass.

    `f` must return a scalar (an array of one element). With a tuple `argnums` the gradients come
    back as a tuple. Plugs into `scipy.optimize.minimize(fun, x0, jac=True)`. Arguments may be
    dicts, lists and tuples of arrays (nested): their gradients come back in the same structure.
    With `has_aux=True`, `f` returns `(output, aux)` and this returns `((value, aux), gradient)`.

    >>> from mytorch import functional as F
    >>> value, slope = value_and_grad(lambda x: F.sum(F.mul(x, x)))(np.array([1.0, 2.0]))
    >>> float(value), slope
    (5.0, array([2., 4.]))
    >>> value_and_grad(lambda p: F.mul(p["w"], 3.0))({"w": 2.0})
    (array(6.), {'w': array(3.)})
    """
    core = _value_and_grad_of_arrays(f, argnums)

    def value_and_grad_f(*args: Any) -> tuple[Any, Any]:
        args = _numbers_as_arrays(args, argnums)
        if has_aux or any(is_container(arg) for arg in args):  # trees and aux: mytorch.pytree
            return value_and_grad_over_trees(_value_and_grad_of_arrays, f, argnums, has_aux, args, "grad")
        return core(*args)

    value_and_grad_f.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    return value_and_grad_f


def grad(f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """The gradient of a scalar-valued `f` with respect to the arguments in `argnums`.

    Nests: `grad(grad(f))` is the second derivative. Arguments may be dicts, lists and tuples of
    arrays (gradients in the same structure); with `has_aux=True`, `f` returns `(output, aux)`
    and this returns `(gradient, aux)`.

    >>> from mytorch import functional as F
    >>> grad(F.sin)(0.0)
    array(1.)
    >>> grad(grad(F.sin))(0.0)
    array(-0.)
    """
    value_and_grad_f = value_and_grad(f, argnums, has_aux)

    def grad_f(*args: Any) -> Any:
        value, gradient = value_and_grad_f(*args)
        return (gradient, value[1]) if has_aux else gradient

    grad_f.__name__ = f"grad({getattr(f, '__name__', 'f')})"
    return grad_f


def _single_output(trace: _Trace, who: str) -> list[np.ndarray]:
    if trace.is_tuple:
        raise TypeError(f"{who}: the function must return one array, got a tuple of {len(trace.outputs)}")
    return trace.outputs


def vjp(f: Callable, *primals: Any) -> tuple[Any, Callable]:
    """`f(*primals)` and its vector-Jacobian product function.

    `vjp_fn(cotangent)` returns a tuple with one array per primal: `cotangentᵀ · ∂f/∂primal`. The
    cotangent has the output's shape (a tuple of them if `f` returns a tuple). A primal may be a
    dict, list or tuple of arrays: its gradient comes back in the same structure.

    >>> from mytorch import functional as F
    >>> out, vjp_fn = vjp(F.mul, np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    >>> vjp_fn(np.array([1.0, 10.0]))
    (array([ 3., 40.]), array([ 1., 20.]))
    """
    primals = _numbers_as_arrays(primals)
    if any(is_container(p) for p in primals):  # trees: mytorch.pytree
        return vjp_over_trees(vjp, f, primals)
    with _transform_scope() as stretch:
        nested = stretch.keep
        trace = _Trace(stretch, f, primals, tuple(range(len(primals))), "vjp")
    # The outputs are the user's to change: copies, so that `out -= out.max()` leaves the pullback alone.
    outputs = [o if nested else np.array(o) for o in trace.outputs]

    def vjp_fn(cotangent: Any) -> tuple[np.ndarray, ...]:
        # Called inside a transform (and not under no_grad there), the walk records, so the outer
        # transform can follow it.
        create_graph = inside_a_transform() and is_recording()
        cotangents = _matching(cotangent, trace, "vjp", "cotangent", create_graph)
        grads = trace.pullback(cotangents, create_graph=create_graph)
        return tuple(_returned(g, create_graph) for g in grads)

    return (tuple(outputs) if trace.is_tuple else outputs[0]), vjp_fn


def _matching(seeds: Any, trace: _Trace, who: str, what: str, record: bool) -> list[np.ndarray]:
    """One cotangent per output, shaped like it."""
    if trace.is_tuple:
        if not isinstance(seeds, (tuple, list)) or len(seeds) != len(trace.outputs):
            raise ValueError(f"{who}: the function returns {len(trace.outputs)} outputs; give a tuple of "
                             f"as many {what}s")
        pairs = enumerate(zip(seeds, trace.outputs))
        return [_checked_seed(s, o, who, f"{what} {i}", record) for i, (s, o) in pairs]
    return [_checked_seed(seeds, trace.outputs[0], who, what, record)]


# ---- forward mode ---------------------------------------------------------------------------


def jvp(f: Callable, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """`f(*primals)` and its Jacobian-vector product `∂f/∂primals · tangents` (forward mode).

    >>> from mytorch import functional as F
    >>> jvp(F.sin, (0.0,), (2.0,))
    (array(0.), array(2.))
    """
    primals, tangents = _numbers_as_arrays(_as_sequence(primals)), _numbers_as_arrays(_as_sequence(tangents))
    if any(is_container(p) for p in primals):  # trees: mytorch.pytree
        return jvp_over_trees(jvp, f, primals, tangents)
    if len(primals) != len(tangents):
        raise ValueError(
            f"jvp: {len(primals)} primals but {len(tangents)} tangents; give one tangent per primal"
        )
    with _transform_scope() as stretch:
        nested = stretch.keep
        trace = _Trace(stretch, f, primals, tuple(range(len(primals))), "jvp")
        seeds = [
            _checked_seed(t, v, "jvp", f"tangent {i}", True)
            for i, (t, v) in enumerate(zip(tangents, trace.variables))
        ]
        tangents_out = trace.pushforward(seeds, create_graph=nested)
    outputs = [_returned(o, nested) for o in trace.outputs]
    tangents_out = [_returned(t, nested) for t in tangents_out]
    if trace.is_tuple:
        return tuple(outputs), tuple(tangents_out)
    return outputs[0], tangents_out[0]


def _as_sequence(values: Any) -> list[Any]:
    return list(values) if isinstance(values, (tuple, list)) else [values]


# ---- Jacobians and Hessians -----------------------------------------------------------------


def jacobian(f: Callable, argnums: int | Sequence[int] = 0, mode: str = "rev") -> Callable:
    """The Jacobian of `f` with respect to the arguments in `argnums`, of shape out.shape + in.shape.

    `mode="rev"` walks back once per output element (best for few outputs), `mode="fwd"` walks
    forward once per input element (best for few inputs); both give the same matrix.

    >>> from mytorch import functional as F
    >>> jacobian(F.mul, argnums=(0, 1))(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    (array([[3., 0.],
           [0., 4.]]), array([[1., 0.],
           [0., 2.]]))
    """
    if mode not in ("rev", "fwd"):
        raise ValueError(f"jacobian: mode must be 'rev' or 'fwd', got {mode!r}")

    def jacobian_f(*args: Any) -> Any:
        args = _numbers_as_arrays(args, argnums)
        positions, single = _checked_argnums(argnums, len(args), "jacobian")
        with _transform_scope() as stretch:
            nested = stretch.keep
            trace = _Trace(stretch, f, args, positions, "jacobian")
            with recording(nested):
                blocks = _jacobian_rev(trace, nested) if mode == "rev" else _jacobian_fwd(trace, nested)
        per_output = []
        for row in blocks:
            row = [_returned(block, nested) for block in row]
            per_output.append(row[0] if single else tuple(row))
        return tuple(per_output) if trace.is_tuple else per_output[0]

    jacobian_f.__name__ = f"jacobian({getattr(f, '__name__', 'f')})"
    return jacobian_f


def _one_hot(shape: tuple[int, ...], dtype: np.dtype, flat_index: int) -> np.ndarray:
    seed = np.zeros(shape, dtype)
    seed.flat[flat_index] = 1
    return seed


def _jacobian_rev(trace: _Trace, nested: bool) -> list[list[np.ndarray]]:
    """Row by row: the adjoints of the variables for each output element."""
    blocks = []
    for k, output in enumerate(trace.outputs):
        dtype = gradient_dtype(output)
        rows: list[list[np.ndarray]] = [[] for _ in trace.variables]
        for element in range(output.size):
            cotangents: list[np.ndarray | None] = [None] * len(trace.outputs)
            cotangents[k] = _one_hot(output.shape, dtype, element)
            for i, adjoint in enumerate(trace.pullback(cotangents, create_graph=nested)):
                rows[i].append(adjoint)
        blocks.append([_assemble(r, output.shape, v, stack_axis=0) for r, v in zip(rows, trace.variables)])
    return blocks


def _jacobian_fwd(trace: _Trace, nested: bool) -> list[list[np.ndarray]]:
    """Column by column: the tangents of the outputs for each variable element."""
    columns: list[list[list[np.ndarray]]] = [[[] for _ in trace.variables] for _ in trace.outputs]
    for i, variable in enumerate(trace.variables):
        for element in range(variable.size):
            tangents: list[np.ndarray | None] = [None] * len(trace.variables)
            tangents[i] = _one_hot(variable.shape, variable.dtype, element)
            for k, tangent in enumerate(trace.pushforward(tangents, create_graph=nested)):
                columns[k][i].append(tangent)
    return [
        [_assemble(columns[k][i], output.shape, v, stack_axis=-1) for i, v in enumerate(trace.variables)]
        for k, output in enumerate(trace.outputs)
    ]


def _assemble(pieces: list[np.ndarray], out_shape: tuple[int, ...], variable: np.ndarray,
              stack_axis: int) -> np.ndarray:
    """Rows (stack_axis 0) or columns (stack_axis -1) into a block of shape out.shape + in.shape."""
    shape = out_shape + variable.shape
    if not pieces:
        return np.zeros(shape, variable.dtype)
    return F.reshape(F.stack(pieces, axis=stack_axis), shape)


def hessian(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The Hessian of `f`: the forward-mode Jacobian of its reverse-mode Jacobian.

    For a scalar `f` of an array `x` it has shape x.shape + x.shape; with a tuple `argnums`, a
    tuple of tuples of blocks (`H[i][j] = ∂²f/∂args[i]∂args[j]`).

    >>> from mytorch import functional as F
    >>> hessian(lambda x: F.sum(F.power(x, 3)))(np.array([1.0, 2.0]))
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    return jacobian(jacobian(f, argnums, mode="rev"), argnums, mode="fwd")


def hvp(f: Callable, primals: Sequence[Any], tangents: Sequence[Any]) -> Any:
    """The Hessian-vector product `∇²f(primals) · tangents`, forward over reverse, without forming ∇²f.

    One array per primal (a tuple when there are several).

    >>> from mytorch import functional as F
    >>> hvp(lambda x: F.sum(F.power(x, 3)), (np.array([1.0, 2.0]),), (np.array([1.0, 1.0]),))
    array([ 6., 12.])
    """
    primals = _as_sequence(primals)
    argnums = 0 if len(primals) == 1 else tuple(range(len(primals)))
    return jvp(grad(f, argnums), primals, tangents)[1]

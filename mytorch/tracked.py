"""Tracked arrays: ordinary NumPy code on an array that mytorch must differentiate.

A plain ndarray cannot see the NumPy code run on it, so `x * x`, `W.T`, `x[0]` or `np.exp(x)` on
one are constants to the tape. A `Tracked` array is an ndarray subclass that can: NumPy hands every
ufunc (`__array_ufunc__`, NEP 13), every NumPy function (`__array_function__`, NEP 18), indexing,
`.T` and the array methods on it to this module, which runs the registered primitive of that name
(`np.exp` -> `F.exp`, `np.linalg.norm` -> `F.linalg.norm`) and so records like an `F.*` call. What
a primitive computes from a tracked input is tracked.

A NumPy call with no primitive behind it is a constant only where its result cannot carry a
derivative (a comparison, `argmax`, an integer or bool result, a shape); otherwise it is refused
with an error naming the function. While nothing records (inside `no_grad`, or a first-order
backward walk running the rules) every call is plain NumPy and returns plain arrays.

Which arrays are tracked: the arguments of the transforms, the parameters of `nn` modules, and
what `track(x)` returns. Plain ndarrays keep their meaning (and their speed).

While `mytorch.compile` traces (`state.tracing` is its trace), nothing here computes off the
record: a call that would return a constant or compute plainly (a comparison, an argsort, a rule's
mask, NumPy under no_grad) becomes a step of the program (`state.tracing.step`), conversions to
Python values (`float(x)`, `bool(x)`, `x.item()`) are refused with the line of `f`, and in-place
writes into parameters are statements of the program. `computed`, `drawn` and `assign` say the
same for a helper's result, random draws and a layer's state.

>>> import numpy as np
>>> import mytorch
>>> mytorch.grad(lambda x: np.sum(x * x))(np.array([1.0, 2.0]))
array([2., 4.])
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from mytorch.autograd_engine import note_tracked, state

# The namespaces that hold a primitive (or a composition of primitives) for each NumPy name, by the
# module of the NumPy or SciPy function: {"numpy": F, "numpy.linalg": F.linalg, ...}. Filled by
# mytorch.functional when it loads (this module sits below it).
NAMESPACES: dict[str, Any] = {}

# NumPy names whose mytorch function is spelled differently (F.mul is np.multiply).
ALIASES = {
    "multiply": "mul", "subtract": "sub", "divide": "div", "true_divide": "div", "negative": "neg",
    "absolute": "abs", "fabs": "abs", "amax": "max", "amin": "min", "concat": "concatenate",
    "permute_dims": "transpose", "pow": "power", "conjugate": "conj",
    "jv": "jn",  # scipy.special.jn is the ufunc jv (any real order; mytorch's jn takes any order too)
}

# Functions whose result never depends on the values of a float argument (only on its shape and
# dtype): constants, though they return floats.
_SHAPE_ONLY = {"zeros_like", "ones_like", "empty_like", "full_like", "shape", "ndim", "size", "result_type"}
# Piecewise-constant functions: their derivative is zero wherever it exists, so their result is a
# constant (and rounding a value to show it must work).
_PIECEWISE_CONSTANT = {"round", "around", "floor", "ceil", "trunc", "rint", "fix", "floor_divide"}

# A ufunc method on a tracked array and the mytorch name that does it (np.add.reduce is a sum).
_UFUNC_METHODS = {
    ("add", "reduce"): "sum", ("multiply", "reduce"): "prod", ("maximum", "reduce"): "max",
    ("minimum", "reduce"): "min", ("add", "accumulate"): "cumsum", ("multiply", "accumulate"): "cumprod",
    ("multiply", "outer"): "outer",
}


class Tracked(np.ndarray):
    """An ndarray whose NumPy calls record on the tape, so ordinary NumPy code differentiates.

    Made by `track(x)`, by the transforms for their arguments, and by `nn` modules for their
    parameters; `isinstance(x, np.ndarray)` holds and every NumPy function accepts it.

    >>> import mytorch
    >>> from mytorch import functional as F
    >>> x = mytorch.track(np.array([1.0, 2.0]))
    >>> loss = np.sum(x ** 2 * 3.0)
    >>> mytorch.backward(loss)
    >>> mytorch.engine().gradient_buffer.get_param(x)
    array([ 6., 12.])
    """

    # The engine (which imports nothing above it) knows a tracked array by this flag.
    tracked_leaf = True

    # ---- the two NumPy hooks ---------------------------------------------------------------

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if not kwargs and method == "__call__":  # the usual call: x * y, np.exp(x)
            if not state.dispatching:  # _dispatching(), inlined on this hot path
                if state.tracing is not None:
                    return state.tracing.step(ufunc, inputs, {})
                return ufunc(*plain_each(inputs))
            apply = _UFUNCS.get(ufunc)
            if apply is not None:
                return apply(inputs, _NO_PARAMS)
        out = kwargs.pop("out", None)
        if out is not None:
            return _in_place(ufunc, method, inputs, out, kwargs)
        if not _dispatching():
            return computed(getattr(ufunc, method), inputs, kwargs)
        name = ufunc.__name__ if method == "__call__" else _UFUNC_METHODS.get((ufunc.__name__, method))
        where = kwargs.pop("where", True)
        dtype = kwargs.pop("dtype", None)
        function = None if name is None or where is not True else _mytorch_function(name, _home(ufunc))
        if method == "__call__" and function is not None:
            # A primitive taking exactly the ufunc's inputs is applied directly from now on.
            primitive_apply = getattr(function, "apply", None)
            if primitive_apply is not None and getattr(function, "_plain_arity", -1) == ufunc.nin:
                _UFUNCS[ufunc] = primitive_apply
        if function is None and ufunc.__name__ in _PIECEWISE_CONSTANT and method == "__call__":
            return computed(ufunc, inputs, kwargs)
        if function is None:
            what = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
            kwargs.update({"where": where} if where is not True else {}, dtype=dtype)
            call = ufunc if method == "__call__" else getattr(ufunc, method)
            return _constant_or_refused(what, call, inputs, kwargs)
        if dtype is not None:  # x.sum(dtype=np.float64): cast first, on the tape
            inputs = tuple(_cast(value, dtype) for value in inputs)
        if method == "reduce" and "axis" not in kwargs:
            kwargs["axis"] = 0  # NumPy's default for a ufunc's reduce (a method call passes its own)
        return function(*inputs, **kwargs)

    def __array_function__(self, func: Callable, types: tuple, args: tuple, kwargs: dict) -> Any:
        if func.__name__ in _SHAPE_ONLY:
            return func(*plain(args), **plain(kwargs))
        if not _dispatching():
            return computed(func, args, kwargs)
        function = _mytorch_function(func.__name__, getattr(func, "__module__", None) or "numpy")
        if function is None or function is func:
            if func.__name__ in _PIECEWISE_CONSTANT:
                return computed(func, args, kwargs)
            return _constant_or_refused(f"{_module_prefix(func)}{func.__name__}", func, args, kwargs)
        return function(*args, **kwargs)

    # ---- indexing, views and methods: the same primitives --------------------------------------

    def __getitem__(self, index: Any) -> Any:
        if not _dispatching():
            if state.tracing is not None:
                return state.tracing.step(operator.getitem, (self, index), {})
            return _plain_result(np.ndarray.__getitem__(self.view(np.ndarray), plain(index)))
        return _F().getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        if _dispatching() and holds_tracked(value):
            raise TypeError(
                "x[index] = value writes a tracked value into an array in place, where the tape "
                "cannot follow it; use y = F.setitem(x, index, value) (a new array, differentiable "
                "in both)"
            )
        np.ndarray.__setitem__(self.view(np.ndarray), index, plain(value))

    # In-place operators: `W -= lr * g` on a leaf updates it in place (an optimizer's step). Where
    # the write would hide a gradient (the other operand is tracked) or the array is on the tape
    # (held read-only), `h += y` computes a new array and rebinds the name to it, as JAX does.
    def __iadd__(self, other: Any) -> Any:
        return _augmented(self, other, np.add)

    def __isub__(self, other: Any) -> Any:
        return _augmented(self, other, np.subtract)

    def __imul__(self, other: Any) -> Any:
        return _augmented(self, other, np.multiply)

    def __itruediv__(self, other: Any) -> Any:
        return _augmented(self, other, np.true_divide)

    def __ipow__(self, other: Any) -> Any:
        return _augmented(self, other, np.power)

    def __imatmul__(self, other: Any) -> Any:
        return _augmented(self, other, np.matmul)

    def __iter__(self) -> Iterator[Any]:
        # ndarray's own iteration takes rows in C, past __getitem__: rows must be recorded too.
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self)))

    @property
    def T(self) -> Any:  # noqa: N802 - NumPy's name
        return self.transpose()

    @property
    def mT(self) -> Any:  # noqa: N802 - NumPy's name
        if self.ndim < 2:
            raise ValueError(f"matrix transpose with ndim < 2 is undefined (shape {self.shape})")
        return self.swapaxes(-1, -2)

    # The parts of a complex array: ndarray's own attributes are views made in C, off the tape.
    @property
    def real(self) -> Any:
        return _part(self, np.real, "real")

    @property
    def imag(self) -> Any:
        return _part(self, np.imag, "imag")

    def conj(self) -> Any:
        return _method(self, "conj")

    conjugate = conj

    def transpose(self, *axes: Any) -> Any:
        axes = axes[0] if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))) else axes
        return _method(self, "transpose", axes or None)

    def reshape(self, *shape: Any, order: str = "C") -> Any:
        shape = shape[0] if len(shape) == 1 else shape
        if order != "C":
            raise ValueError(f"reshape of a tracked array: order={order!r} is not supported (only 'C')")
        return _method(self, "reshape", shape)

    def ravel(self, order: str = "C") -> Any:
        return self.reshape(-1, order=order)

    def flatten(self, order: str = "C") -> Any:
        return self.reshape(-1, order=order)

    def swapaxes(self, axis1: int, axis2: int) -> Any:
        return _method(self, "swapaxes", axis1, axis2)

    def squeeze(self, axis: Any = None) -> Any:
        return _method(self, "squeeze", axis=axis)

    def astype(self, dtype: Any, order: str = "K", casting: str = "unsafe", subok: bool = True,
               copy: bool = True) -> Any:
        return _method(self, "astype", dtype)

    def copy(self, order: str = "C") -> Any:
        return _method(self, "copy")

    def dot(self, other: Any) -> Any:
        return _method(self, "dot", other)

    def clip(self, min: Any = None, max: Any = None) -> Any:  # noqa: A002 - NumPy's names
        return _method(self, "clip", min, max)

    def sum(self, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False) -> Any:
        return _reduction(self, "sum", axis, dtype, out, keepdims)

    def mean(self, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False) -> Any:
        return _reduction(self, "mean", axis, dtype, out, keepdims)

    def prod(self, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False) -> Any:
        return _reduction(self, "prod", axis, dtype, out, keepdims)

    def max(self, axis: Any = None, out: Any = None, keepdims: bool = False) -> Any:
        return _reduction(self, "max", axis, None, out, keepdims)

    def min(self, axis: Any = None, out: Any = None, keepdims: bool = False) -> Any:
        return _reduction(self, "min", axis, None, out, keepdims)

    def var(self, axis: Any = None, dtype: Any = None, out: Any = None, ddof: int = 0,
            keepdims: bool = False) -> Any:
        return _reduction(self, "var", axis, dtype, out, keepdims, ddof=ddof)

    def std(self, axis: Any = None, dtype: Any = None, out: Any = None, ddof: int = 0,
            keepdims: bool = False) -> Any:
        return _reduction(self, "std", axis, dtype, out, keepdims, ddof=ddof)

    def cumsum(self, axis: Any = None) -> Any:
        return _method(self, "cumsum", axis)

    def cumprod(self, axis: Any = None) -> Any:
        return _method(self, "cumprod", axis)

    def repeat(self, repeats: Any, axis: Any = None) -> Any:
        return _method(self, "repeat", repeats, axis)

    def take(self, indices: Any, axis: Any = None) -> Any:
        return _method(self, "take", indices, axis)

    def diagonal(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
        return _method(self, "diagonal", offset, axis1, axis2)

    def trace(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
        return _method(self, "trace", offset, axis1, axis2)

    # ---- conversions to Python values: refused while compile traces (they would freeze) -------

    def __repr__(self) -> str:
        if state.tracing is not None:  # printing inside a compiled function: the trace's values
            return f"traced {np.ndarray.__repr__(self.view(np.ndarray))}"
        return np.ndarray.__repr__(self)

    def __str__(self) -> str:
        if state.tracing is not None:
            return f"traced {np.ndarray.__str__(self.view(np.ndarray))}"
        return np.ndarray.__str__(self)

    def __float__(self) -> float:
        _converted(self, "float(x)")
        return np.ndarray.__float__(self)

    def __int__(self) -> int:
        _converted(self, "int(x)")
        return np.ndarray.__int__(self)

    def __bool__(self) -> bool:
        _converted(self, "bool(x) (an `if`, `while`, `and`/`or` or `assert` on an array)")
        return np.ndarray.__bool__(self)

    def __index__(self) -> int:
        _converted(self, "x used as a Python index or size")
        return np.ndarray.__index__(self)

    def __complex__(self) -> complex:
        _converted(self, "complex(x)")
        return np.ndarray.__complex__(self)

    def item(self, *args: Any) -> Any:
        _converted(self, "x.item()")
        return np.ndarray.item(self, *args)

    def tolist(self) -> Any:
        _converted(self, "x.tolist()")
        return np.ndarray.tolist(self)

    def sort(self, axis: int = -1, kind: Any = None, order: Any = None) -> None:
        if _dispatching():
            raise TypeError("x.sort() sorts a tracked array in place; use y = np.sort(x) (differentiable)")
        np.ndarray.sort(self.view(np.ndarray), axis=axis, kind=kind, order=order)


def track(value: Any) -> Tracked:
    """`value` as a tracked array (a view of it when it is a float array, else a float64 array):
    the engine API's way to say "differentiate this", so ordinary NumPy code on it records.

    >>> import mytorch
    >>> x = mytorch.track([1.0, 2.0])
    >>> type(x).__name__, x.dtype
    ('Tracked', dtype('float64'))
    """
    if isinstance(value, Tracked):
        return value
    if isinstance(value, (np.ma.MaskedArray, np.matrix)):
        raise TypeError(f"track: a {type(value).__name__} would lose its semantics; pass a plain array")
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    if array.dtype.kind in "iub" and not isinstance(value, np.ndarray):
        array = array.astype(np.float64)  # Python numbers and lists of them: float64, as NumPy would
    if array.dtype.kind not in "fc":
        raise TypeError(
            f"track: only float arrays can be differentiated; this one has dtype {array.dtype} (shape "
            f"{array.shape}). Integers and booleans are constants: pass x.astype(float)."
        )
    tracked = array.view(Tracked)
    note_tracked(tracked)  # a plain view of it met by a backward is then named
    return tracked


def computed(function: Callable, args: tuple, kwargs: dict | None = None) -> Any:
    """`function(*args, **kwargs)` computed on plain arrays, its result a constant of the tape;
    while `mytorch.compile` traces, a step of the program, so a replay computes it again from
    that call's values. For a rule's masks and guards that are not NumPy calls on its inputs
    (a helper of several NumPy lines, a copy of a layer's buffer).

    >>> computed(np.greater, (np.array([1.0, -1.0]), 0))
    array([ True, False])
    """
    kwargs = {} if kwargs is None else kwargs
    if state.tracing is not None:
        return state.tracing.step(function, args, kwargs)
    return function(*plain(args), **plain(kwargs))


def drawn(function: Callable, args: tuple, kwargs: dict | None = None) -> Any:
    """Random numbers `function(*args, **kwargs)` (an `np.random` call), a constant of the tape;
    while `mytorch.compile` traces, a step of the program drawn again at every replay.

    >>> drawn(np.random.random_sample, ((2,),)).shape
    (2,)
    """
    kwargs = {} if kwargs is None else kwargs
    if state.tracing is not None:
        return state.tracing.step(function, args, kwargs, fresh=True)
    return function(*args, **kwargs)


def assign(target: np.ndarray, value: Any) -> None:
    """Write `value` into `target` in place (a layer's state, such as BatchNorm's running
    statistics); while `mytorch.compile` traces, a statement of the program, so every replay
    writes it too.

    >>> running = np.zeros(2)
    >>> assign(running, np.array([1.0, 2.0])); running
    array([1., 2.])
    """
    if state.tracing is not None:
        state.tracing.effect(np.copyto, (target, value), {}, (target,))
    else:
        np.copyto(target.view(np.ndarray) if isinstance(target, Tracked) else target, plain(value))


def is_tracked(value: Any) -> bool:
    """Whether `value` is a tracked array."""
    return isinstance(value, Tracked)


def plain_each(values: tuple) -> tuple:
    """A flat tuple of values with its tracked arrays seen as plain ndarrays (the hot path of
    `plain`, for a primitive's or a ufunc's inputs; one and two values without a loop). The same
    tracked array given twice is seen as one plain array: aliasing is kept."""
    if len(values) == 2:
        a, b = values
        if type(a) is Tracked:
            seen = a.view(np.ndarray)
            return (seen, seen if b is a else b.view(np.ndarray) if type(b) is Tracked else b)
        return values if type(b) is not Tracked else (a, b.view(np.ndarray))
    if len(values) == 1:
        return (values[0].view(np.ndarray),) if type(values[0]) is Tracked else values
    views: dict[int, np.ndarray] = {}
    return tuple(views.setdefault(id(v), v.view(np.ndarray)) if type(v) is Tracked else v for v in values)


def plain(value: Any) -> Any:
    """`value` with every tracked array in it (at any depth of lists, tuples and dicts) seen as a
    plain ndarray: what NumPy computes on when nothing is recorded."""
    if isinstance(value, Tracked):
        return value.view(np.ndarray)
    if isinstance(value, (list, tuple)):
        if not any(isinstance(v, (Tracked, list, tuple, dict)) for v in value):
            return value
        return type(value)(plain(v) for v in value) if type(value) in (list, tuple) else value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def holds_tracked(value: Any) -> bool:
    """Whether `value` is, or holds at any depth of lists and tuples, a tracked array."""
    if isinstance(value, Tracked):
        return True
    if isinstance(value, (list, tuple)):
        return any(holds_tracked(v) for v in value)
    return False


# ---- the dispatch ------------------------------------------------------------------------------

# ufunc -> the `apply` of its primitive, filled as they are first met (np.multiply -> F.mul.apply).
_UFUNCS: dict[np.ufunc, Callable] = {}
_NO_PARAMS: dict[str, Any] = {}


def _dispatching() -> bool:
    """Whether NumPy calls on tracked arrays run primitives now: while recording, and outside the
    rules a walk runs (a rule computes plainly on what it is given)."""
    return state.dispatching


def _converted(array: Tracked, what: str) -> None:
    """Refuse a conversion to a Python value while compile traces: the value would be fixed at
    the first call while the data changes."""
    if state.tracing is not None:
        state.tracing.refuse(
            f"{what} turns a traced array into a Python value, which would be fixed at the first "
            "call while the data changes. Keep it an array: np.where(cond, a, b) instead of an `if`, "
            "F.*/NumPy on the array instead of float(); or pass the number as an argument (a new "
            "value traces again)"
        )


def _F() -> Any:  # noqa: N802 - the functional namespace, as everywhere
    return NAMESPACES["numpy"]


def _home(ufunc: np.ufunc) -> str:
    """The module whose namespace names this ufunc (scipy.special's are ufuncs too)."""
    return "numpy" if getattr(np, ufunc.__name__, None) is ufunc else "scipy.special"


def _mytorch_function(name: str, module: str) -> Callable | None:
    """The mytorch function for NumPy's (or SciPy's) `module.name`, or None."""
    if module.startswith("numpy") and module not in NAMESPACES:
        module = "numpy"  # numpy._core.fromnumeric and the like: the top-level names
    namespace = NAMESPACES.get(module)
    function = getattr(namespace, ALIASES.get(name, name), None) if namespace is not None else None
    return function if callable(function) else None


def _module_prefix(func: Callable) -> str:
    module = getattr(func, "__module__", "numpy") or "numpy"
    return "np." if module == "numpy" or module.startswith("numpy._") else f"{module}."


def _constant_or_refused(what: str, function: Callable, args: tuple, kwargs: dict) -> Any:
    """NumPy's result when it cannot carry a derivative (bools, integers, shapes, text); else an
    error naming the call, since a float result computed off the tape would differentiate as a
    silent zero."""
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    result = function(*plain(args), **plain(kwargs))
    if not _carries_gradient(result):
        if state.tracing is not None:  # a comparison, an argsort, index arithmetic: a step
            return state.tracing.step(function, args, kwargs)
        return result
    message = (
        f"{what} on a tracked array has no mytorch primitive, so its result would not carry a "
        "gradient (it would be a silent constant). Write it with mytorch.functional (F.*), "
        "compute it inside mytorch.no_grad() if it is meant to be a constant, or apply it to "
        "np.asarray(x) to say so."
    )
    if state.tracing is not None:
        state.tracing.refuse(message)
    raise TypeError(message)


def _carries_gradient(value: Any) -> bool:
    if isinstance(value, (np.ndarray, np.generic)):
        return value.dtype.kind in "fc"
    if isinstance(value, (float, complex)):
        return True
    if isinstance(value, (list, tuple)):
        return any(_carries_gradient(v) for v in value)
    return False


def _in_place(ufunc: np.ufunc, method: str, inputs: tuple, out: tuple, kwargs: dict) -> Any:
    """`np.add(x, y, out=z)` and `z += y`: an in-place write, which the tape cannot follow. It is
    allowed where no gradient is lost: nothing records, or the target is one of the inputs and
    only itself is tracked (an optimizer's `W -= lr * g`; the read-only guard refuses it while a
    tape still needs W)."""
    targets = out if isinstance(out, tuple) else (out,)
    if _dispatching():
        if any(isinstance(v, Tracked) and not any(v is t for t in targets) for v in inputs):
            raise TypeError(
                f"np.{ufunc.__name__} with out= (or an in-place operator such as +=) writes a tracked "
                "value into an existing array, where the tape cannot follow it; write y = x + ... "
                "(a new array: total = total + x) instead, or do it inside mytorch.no_grad()"
            )
    if state.tracing is not None:
        _written_while_tracing(targets, getattr(ufunc, method), inputs, {**kwargs, "out": targets})
    else:
        getattr(ufunc, method)(*plain(inputs), out=tuple(plain(list(targets))), **plain(kwargs))
    return targets[0] if len(targets) == 1 else targets  # the very arrays: `W -= g` rebinds W to it


def _augmented(array: Tracked, other: Any, ufunc: np.ufunc) -> Any:
    if not _dispatching() or (array.flags.writeable and not holds_tracked(other)):
        if state.tracing is not None:
            _written_while_tracing((array,), ufunc, (array, other), {"out": array})
        else:
            ufunc(array.view(np.ndarray), plain(other), out=array.view(np.ndarray))
        return array
    return ufunc(array, other)


def _written_while_tracing(targets: tuple, function: Callable, args: tuple, kwargs: dict) -> None:
    """An in-place write while compile traces: a statement of the program when it writes into
    tracked arrays made before the trace (a parameter's `W -= lr * g`); refused when it writes
    traced data into a plain array, which may have been made during the trace (a replay would
    write into the trace's copy)."""
    if all(isinstance(t, Tracked) for t in targets):
        state.tracing.effect(function, args, kwargs, targets)
    elif holds_tracked(args):
        state.tracing.refuse(
            "an in-place write (`+=`, out=) of traced data into a plain array would happen only "
            "while tracing; compute a new array, or write a layer's state with "
            "mytorch.tracked.assign(target, value)"
        )
    else:
        function(*plain(args), **plain(kwargs))


def _cast(value: Any, dtype: Any) -> Any:
    return _F().astype(value, dtype) if isinstance(value, Tracked) else value


def _plain_result(value: Any) -> Any:
    return value.view(np.ndarray) if isinstance(value, Tracked) else value


def _method(array: Tracked, name: str, *args: Any, **kwargs: Any) -> Any:
    """`array.name(*args)`: the primitive while recording, NumPy's own method otherwise."""
    if not _dispatching():
        if state.tracing is not None:
            return state.tracing.step(getattr(np.ndarray, name), (array, *args), kwargs)
        return _plain_result(getattr(array.view(np.ndarray), name)(*plain(args), **plain(kwargs)))
    return _METHODS[name](array, *args, **kwargs)


def _part(array: Tracked, function: Callable[[Any], Any], name: str) -> Any:
    """`array.real` / `array.imag` (attributes, not methods): the primitive while recording."""
    if not _dispatching():
        if state.tracing is not None:
            return state.tracing.step(function, (array,), {})
        return _plain_result(function(array.view(np.ndarray)))
    return _METHODS[name](array)


def _reduction(array: Tracked, name: str, axis: Any, dtype: Any, out: Any, keepdims: bool,
               **extra: Any) -> Any:
    if out is not None:
        raise TypeError(f"x.{name}(out=...) writes into an existing array; the tape cannot follow it")
    source = array if dtype is None else _method(array, "astype", dtype)
    if not _dispatching():
        if state.tracing is not None:
            return state.tracing.step(getattr(np.ndarray, name), (source,), dict(axis=axis, keepdims=keepdims,
                                                                                 **extra))
        return _plain_result(getattr(np.ndarray, name)(source.view(np.ndarray), axis=axis, keepdims=keepdims,
                                                       **extra))
    return getattr(_F(), name)(source, axis=axis, keepdims=keepdims, **extra)


def _dot(x: Any, y: Any) -> Any:
    F = _F()
    dot = getattr(F, "dot", None)
    if dot is not None:
        return dot(x, y)
    if np.ndim(x) == 0 or np.ndim(y) == 0:
        return F.mul(x, y)
    if np.ndim(x) <= 2 and np.ndim(y) <= 2:
        return F.matmul(x, y)
    raise TypeError("x.dot(y) for arrays of more than 2 dimensions: use np.tensordot or np.einsum")


_METHODS: dict[str, Callable[..., Any]] = {
    "transpose": lambda x, axes: _F().transpose(x, axes),
    "reshape": lambda x, shape: _F().reshape(x, shape),
    "swapaxes": lambda x, a, b: _F().swapaxes(x, a, b),
    "squeeze": lambda x, axis=None: _F().squeeze(x, axis),
    "astype": lambda x, dtype: _F().astype(x, dtype),
    "copy": lambda x: _F().copy(x),
    "real": lambda x: _F().real(x),
    "imag": lambda x: _F().imag(x),
    "conj": lambda x: _F().conj(x),
    "dot": _dot,
    "clip": lambda x, lo, hi: _F().clip(x, lo, hi),
    "cumsum": lambda x, axis: _F().cumsum(x, axis),
    "cumprod": lambda x, axis: _F().cumprod(x, axis),
    "repeat": lambda x, repeats, axis: _F().repeat(x, repeats, axis),
    "take": lambda x, indices, axis: _F().take(x, indices, axis),
    "diagonal": lambda x, offset, a, b: _F().diagonal(x, offset, a, b),
    "trace": lambda x, offset, a, b: _F().trace(x, offset, a, b),
}

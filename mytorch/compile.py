"""`mytorch.compile(f)`: trace `f` once per signature, then replay it as straight-line NumPy.

The first call for a signature traces `f`, as `jax.jit` does: its array arguments are tracked
arrays (mytorch.tracked) and a trace is on, so every NumPy call made on traced data, in `f` and
inside the rules its primitives run (a gradient transform's backward walk included), lands on the
tape: a primitive, or a step without gradient (a comparison, `np.where`, `argsort`, index
arithmetic, a rule's mask or guard). That tape is the program. Each record becomes one line of
NumPy (`v12 = np.multiply(v3, v7)`); lines the result does not need are dropped, equal lines are
computed once, each intermediate is deleted after its last use and written into with `out=` where
nothing else can see it. Later calls with the same signature run that function: no Operation, no
guard, no buffer, no id() look-up, and every mask is computed again from the call's values.

>>> import numpy as np
>>> import mytorch
>>> from mytorch import functional as F
>>> step = mytorch.compile(mytorch.value_and_grad(lambda w, x: F.sum(F.relu(F.mul(w, x)))))
>>> value, slope = step(np.array([1.0, -2.0]), np.array([3.0, 4.0]))   # traces, then runs
>>> float(value), slope
(3.0, array([3., 0.]))
>>> value, slope = step(np.array([-1.0, 2.0]), np.array([3.0, 4.0]))   # replays: the mask follows
>>> float(value), slope
(8.0, array([0., 4.]))

The tracing rules:

- The signature is the shapes and dtypes of the array arguments (in tuples, namedtuples, lists and
  dicts, which keep their types in and out), the values of the other arguments (hashable: a new
  value traces again), and the mode (`training`) of every `nn` Module that ran.
- Computing a Python value from traced data is refused at that line (`float(x)`, `int(x)`,
  `x.item()`, `x.tolist()`, an `if` on an array): the value would be fixed at the first call.
  Keep it an array (`np.where` for a branch) or pass the number as an argument. A NumPy call on
  traced data with no primitive and a float result is refused too (its gradient would be lost).
- Arrays `f` closes over (a model's parameters and buffers) are read at every call: an
  optimizer's in-place step or BatchNorm's moved running statistics are seen. Arrays `f` makes
  from no traced data (`np.eye(3)`) are constants of the program.
- Effects are statements of the program, run at every call (the first included, once): in-place
  writes into tracked parameters (`W -= lr * g` under no_grad), `mytorch.tracked.assign` (how
  BatchNorm moves its running statistics) and `mytorch.tracked.drawn` (Dropout's masks, drawn
  from np.random at every call). Writing traced data into a plain array in place is refused;
  other side effects (printing, plain NumPy state) happen while tracing only.
- What NumPy does not show a tracked array cannot be traced: a plain array indexed by traced data
  (`np.eye(4)[labels]`, `np.take(np.eye(4), labels)`: write `labels[:, None] == np.arange(4)` or
  `F.take(np.eye(4), labels, axis=0)`), random draws with
  `np.random` in `f` (constants of the program; `mytorch.tracked.drawn` draws at every call), and
  computations on `np.asarray(x)` (a plain view: use of the view itself is followed, and a view
  of part of traced data is refused).
- Only primitives can be replayed: a hand-written `add_operation` record has no forward rule and is
  refused; so is `engine.backward` inside `f` (use `mytorch.value_and_grad`) and `Autograd()`.
- Tracing and replays leave the current tape as it was and lock nothing. Compile the gradient
  transform, not the function it differentiates; inside a transform (`grad(compile(f))`) the
  compiled function runs `f` eagerly. Results equal the eager engine's.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import itertools
import linecache
import operator
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from mytorch.autograd_engine import Stretch, engine, recording, state, tracing
from mytorch.primitive import PRIMITIVES, primitive, variable
from mytorch.primitive import copy as copy_primitive
from mytorch.tracked import Tracked, plain, plain_each
from mytorch.transforms import inside_a_transform, walks_recorded

__all__ = ["compile", "CompileError"]


class CompileError(TypeError):
    """`f` cannot be compiled (the message names the line of `f`, says why and what to do instead)."""


# ---- arguments: flattened to array leaves and a hashable signature ------------------------------


def _flatten(value: Any, parts: list, arrays: list) -> None:
    if isinstance(value, np.ndarray):
        parts.append((value.shape, value.dtype))
        arrays.append(value)
    elif isinstance(value, (tuple, list)):
        parts.append((type(value), len(value)))
        for item in value:
            _flatten(item, parts, arrays)
    elif isinstance(value, dict):
        parts.append((dict, tuple(value)))
        for item in value.values():
            _flatten(item, parts, arrays)
    else:
        try:
            hash(value)
        except TypeError:
            raise CompileError(
                f"compile: an argument of type {type(value).__name__} is neither an array nor a hashable "
                "constant; pass arrays (in tuples, lists or dicts) and numbers, or close over the object"
            ) from None
        parts.append((type(value), value))


def _same_type(value: tuple | list, items: Iterator[Any]) -> tuple | list:
    """A tuple, list or namedtuple of `value`'s type holding `items`."""
    if hasattr(value, "_fields"):
        return type(value)(*items)
    return type(value)(items)


def _rebuild(value: Any, arrays: Iterator[np.ndarray]) -> Any:
    """`value` with its arrays replaced, in order, by those of `arrays`."""
    if isinstance(value, np.ndarray):
        return next(arrays)
    if isinstance(value, (tuple, list)):
        return _same_type(value, (_rebuild(item, arrays) for item in value))
    if isinstance(value, dict):
        return {key: _rebuild(item, arrays) for key, item in value.items()}
    return value


def _rebuilt(args: tuple, kwargs: dict, arrays: list[np.ndarray]) -> tuple[tuple, dict]:
    """The call's arguments with their arrays replaced, in `_signature`'s order."""
    iterator = iter(arrays)
    new_args = tuple(_rebuild(value, iterator) for value in args)
    return new_args, {key: _rebuild(kwargs[key], iterator) for key in sorted(kwargs)}


def _signature(args: tuple, kwargs: dict) -> tuple[tuple, list[np.ndarray]]:
    parts: list = []
    arrays: list[np.ndarray] = []
    for value in args:
        _flatten(value, parts, arrays)
    for key in sorted(kwargs):
        parts.append(key)
        _flatten(kwargs[key], parts, arrays)
    if len({id(a) for a in arrays}) != len(arrays):  # the same array twice: part of the program
        first: dict[int, int] = {}
        parts.append(tuple(first.setdefault(id(a), i) for i, a in enumerate(arrays)))
    return tuple(parts), arrays


# ---- tracing ------------------------------------------------------------------------------------


def _no_gradient(g: Any, ans: Any, *inputs: Any, **params: Any) -> tuple:
    return (None,) * len(inputs)


def _no_tangent(t: list, ans: Any, *inputs: Any, **params: Any) -> None:
    return None


def _run_step(*inputs: Any, function: Callable, args: tuple, kwargs: dict, index: int | None) -> Any:
    result = function(*plain(args), **plain(kwargs))
    return result if index is None else result[index]


# A NumPy call on traced data that carries no gradient (`x > 0`, `np.argsort(x)`, a rule's mask):
# a record of this primitive; its params hold the call, its inputs the arrays the call reads.
STEP = primitive("numpy_step", _run_step, vjp=_no_gradient, jvp=_no_tangent, arity=None, register=False)

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_LIBRARIES = tuple(os.path.dirname(os.path.dirname(os.path.abspath(m.__file__))) + os.sep
                   for m in (np, contextlib, functools))


def _array_leaves(value: Any, found: list) -> list:
    """The arrays in `value` (at any depth of tuples, lists, dicts and slices), each once."""
    if isinstance(value, np.ndarray):
        if not any(value is seen for seen in found):
            found.append(value)
    elif isinstance(value, (tuple, list)):
        for item in value:
            _array_leaves(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _array_leaves(item, found)
    elif isinstance(value, slice):
        _array_leaves((value.start, value.stop, value.step), found)
    return found


def _where() -> str:
    """The line of the user's code running now (and the line of mytorch it called, if any)."""
    frame = sys._getframe(1)
    inner = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(_PACKAGE):
            if inner is None and not filename.endswith(("tracked.py", "compile.py", "primitive.py")):
                inner = frame
        elif not filename.startswith(_LIBRARIES) and not filename.startswith("<frozen"):
            break
        frame = frame.f_back
    parts = []
    if frame is not None:
        text = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
        parts.append(f"{frame.f_code.co_filename}:{frame.f_lineno} (in {frame.f_code.co_name}: `{text}`)")
    if inner is not None:
        name = os.path.relpath(inner.f_code.co_filename, os.path.dirname(_PACKAGE.rstrip(os.sep)))
        parts.append(f"inside {name}:{inner.f_lineno} ({inner.f_code.co_name})")
    return ", ".join(parts) or "in the compiled function"


# NumPy functions whose result's shape depends on the values of their input.
_SHAPE_FROM_VALUES = {"nonzero", "argwhere", "flatnonzero", "unique", "compress", "extract", "trim_zeros",
                      "unique_values", "unique_counts", "unique_inverse", "unique_all"}


class _Trace:
    """What one trace of `f` gathers besides the tape: the modules that ran. Set as
    `state.tracing` while `f` runs; mytorch.tracked calls `step` and `refuse` through it."""

    def __init__(self) -> None:
        self.modules: list[Any] = []
        self.arguments: set[int] = set()  # ids of the traced arguments

    def refuse(self, message: str) -> None:
        raise CompileError(f"compile: at {_where()}: {message}")

    def check_shapes(self, name: str, values: tuple) -> None:
        """Refuse a call whose result's shape would depend on traced values (a boolean mask as an
        index, np.nonzero): the program's shapes are fixed at the trace."""
        masks = [a for a in _array_leaves(values, []) if isinstance(a, Tracked) and a.dtype.kind == "b"]
        if masks or name in _SHAPE_FROM_VALUES:
            what = "a boolean mask computed from traced data as an index" if masks else f"np.{name}"
            self.refuse(
                f"{what} gives a result whose shape depends on the data, which a compiled program "
                "cannot replay; keep the shape: np.where(mask, x, 0) (and sum or count with the mask)"
            )

    def step(self, function: Callable, args: tuple, kwargs: dict, fresh: bool = False) -> Any:
        """`function(*args, **kwargs)` computed on plain arrays and recorded as a step of the
        program (its array results traced in turn). A `fresh` step (random numbers) is computed
        again at every replay even when it reads no traced data."""
        name = getattr(function, "__name__", "")
        if name in _SHAPE_FROM_VALUES or function is operator.getitem or name == "__getitem__":
            self.check_shapes(name, args[1:] if name != "nonzero" else ())
        result = function(*plain(args), **plain(kwargs))
        # The record's inputs: the traced arrays it reads (the program reads the rest, arrays f
        # closes over, by name from the params; the tape must not hold them read-only).
        leaves = tuple(a for a in _array_leaves((args, kwargs), []) if isinstance(a, Tracked))
        call = {"function": function, "args": args, "kwargs": kwargs, "fresh": fresh}
        if isinstance(result, tuple) and any(isinstance(r, (np.ndarray, np.generic)) for r in result):
            return _same_type(result, (_recorded(call, leaves, item, i) for i, item in enumerate(result)))
        if isinstance(result, (np.ndarray, np.generic)):
            return _recorded(call, leaves, result, None)
        if isinstance(result, str):  # printing
            return result
        if result is None:
            self.refuse(
                f"{getattr(function, '__name__', function)} writes traced data into an array in place, "
                "which a replay would not repeat; compute a new array, or write a layer's state with "
                "mytorch.tracked.assign(target, value)"
            )
        name = getattr(function, "__qualname__", None) or getattr(function, "__name__", repr(function))
        self.refuse(
            f"{name} on traced data gives a Python {type(result).__name__}, which would be fixed at the "
            "first call while the data changes; keep it an array (np.all(...), not np.array_equal)"
        )
        return result

    def effect(self, function: Callable, args: tuple, kwargs: dict, targets: tuple) -> None:
        """`function(*args, **kwargs)`, which writes into `targets`, arrays f closes over (a layer's
        buffer, a parameter): a statement of the program, done at every call (the first call runs
        the program too, so the trace leaves the targets as they were)."""
        if any(id(t) in self.arguments for t in targets):
            self.refuse("an in-place write into an argument of the compiled function; compute a new array")
        params = {"function": function, "args": args, "kwargs": kwargs, "index": None, "effect": True}
        (state.engine or engine())._record(STEP, (), np.zeros(()).view(Tracked), params)


def _recorded(call: dict, leaves: tuple, value: Any, index: int | None) -> Tracked:
    """`value`, the result (or its item `index`) of a step, as a traced array of its own, recorded."""
    output = np.asarray(value).view(Tracked)  # a new object: a record's output is its own array
    (state.engine or engine())._record(STEP, leaves, output, {**call, "index": index})
    return output


class _Recording:
    """One trace of `f`: its operations, its result and the modules that ran; the tape then cut back."""

    def __init__(self, f: Callable, args: tuple, kwargs: dict, arrays: list[np.ndarray]) -> None:
        # Traced copies: an array f closes over that was also passed is told apart from the argument.
        self.arrays = [np.array(a, copy=True).view(Tracked) for a in arrays]
        self.trace = _Trace()
        self.trace.arguments = {id(a) for a in self.arrays}
        with tracing(self.trace), Stretch() as stretch:  # records (even under no_grad); cut back
            new_args, new_kwargs = _rebuilt(args, kwargs, self.arrays)
            with walks_recorded():
                self.result = f(*new_args, **new_kwargs)
            if engine() is not stretch.engine:
                raise CompileError(
                    "compile: the function started a new engine (Autograd()) while it was traced; "
                    "create the engine once, outside the compiled function"
                )
            self.ops = [(op.primitive, op.inputs, op.params or {}, op.output) for op in stretch.records]
        self.names = {getattr(primitive_, "name", None) for primitive_, _, _, _ in self.ops}
        for primitive_, _, _, _ in self.ops:
            if getattr(primitive_, "forward", None) is None:
                raise CompileError(
                    "compile: the function records a hand-written add_operation, which has no forward "
                    "rule to replay; define it as a primitive (mytorch.functional.primitive)"
                )
        self.modules = list({id(m): m for m in self.trace.modules}.values())


# ---- the program ----------------------------------------------------------------------------------


def _literal(value: Any) -> str | None:
    """Source text for a plain Python value, or None when it must go to the constants table."""
    if value is None or value is Ellipsis or isinstance(value, (bool, str)):
        return repr(value)
    if type(value) in (int, float) and np.isfinite(value):
        return repr(value)
    return None


def _memory(value: np.ndarray) -> tuple:
    """Where and how an array's values lie: equal for an array and a plain view of all of it."""
    return value.__array_interface__["data"][0], value.shape, value.strides, value.dtype.str


def _owns_data(value: np.ndarray) -> bool:
    """Whether `value` (or the array a traced view wraps) owns its memory: no other array sees it."""
    if type(value) is Tracked and isinstance(value.base, np.ndarray):
        value = value.base
    return value.base is None


def _same(a: Any, b: Any) -> bool:
    if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray):
        return False
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


class _Builder:
    """Turns one trace into Python source: a line per record, arrays named by identity."""

    def __init__(self, recorded: _Recording) -> None:
        self.recorded = recorded
        self.namespace: dict[str, Any] = {"np": np}
        self.constant_names: dict[int, str] = {}
        self.names: dict[int, str] = {}  # id(array of the trace) -> its name in the program
        self.depends: dict[str, bool] = {}  # name -> whether it depends on the arguments
        self.counter = itertools.count()
        self.lines: list[_Line] = []
        self.keep: list[Any] = []  # the trace's arrays, alive while names refer to their ids
        self.common: dict[str, str] = {}  # line text -> its name (common subexpressions)
        self.values: dict[str, Any] = {}  # name -> its value in the trace
        self.traced: list[np.ndarray] = []  # the arguments and what the program computes from them
        self.by_memory: dict[tuple, str] = {}  # where an array's values lie -> its name (plain views)
        self.roots: set[str] = set()  # lines a replay runs for their effect (writes, random draws)
        self.depends["_replayed"] = True
        for i, a in enumerate(recorded.arrays):
            self.names.setdefault(id(a), f"a{i}")
            self.depends[f"a{i}"] = True
            self.values[f"a{i}"] = a
            self.traced.append(a)
            self.by_memory.setdefault(_memory(a), f"a{i}")

    # -- constants

    def constant(self, value: Any) -> str:
        name = self.constant_names.get(id(value))
        if name is None:
            name = self.constant_names[id(value)] = f"K{len(self.constant_names)}"
            # Read at every call, never folded: an array f closes over (a parameter an optimizer
            # updates in place, a running statistic) is used with its current value, as eagerly.
            self.namespace[name] = value.view(np.ndarray) if isinstance(value, Tracked) else value
            self.keep.append(value)
            self.depends[name] = True
        return name

    # -- expressions

    def expression(self, value: Any, reads: set[str]) -> str:
        if isinstance(value, np.ndarray):
            name = self.names.get(id(value))
            if name is None:
                name = self.foreign(value)
            reads.add(name)
            return name
        if isinstance(value, tuple) and not hasattr(value, "_fields"):
            items = [self.expression(v, reads) for v in value]
            return f"({', '.join(items)}{',' if len(items) == 1 else ''})"
        if isinstance(value, list):
            return f"[{', '.join(self.expression(v, reads) for v in value)}]"
        if isinstance(value, dict) and all(type(k) is str for k in value):
            return f"{{{', '.join(f'{k!r}: {self.expression(v, reads)}' for k, v in value.items())}}}"
        if isinstance(value, slice):
            texts = [self.expression(v, reads) for v in (value.start, value.stop, value.step)]
            return f"slice({', '.join(texts)})"
        text = _literal(value)
        return text if text is not None else self.constant(value)

    def foreign(self, value: np.ndarray) -> str:
        """An array that is neither an argument nor a record's output: a constant, unless it is a
        plain view of traced data (`np.asarray(x)`), which the trace cannot follow."""
        name = self.by_memory.get(_memory(value))
        if name is not None:  # the very values of a named array, seen through a plain view
            return name
        for source in () if isinstance(value, Tracked) or value.base is None else self.traced:
            if np.may_share_memory(source, value):
                raise CompileError(
                    f"compile: an array of shape {value.shape} ({value.dtype}) that views traced data "
                    "through a plain ndarray (np.asarray(x), x.view(np.ndarray)) was used; the program "
                    "cannot follow it. Compute on the traced array itself"
                )
        return self.constant(value)

    # -- lines

    def new_name(self) -> str:
        return f"v{next(self.counter)}"

    def emit(self, text: str, reads: set[str], value: Any, kind: str = "call", pure: bool = True,
             ufunc_args: list[str] | None = None) -> str:
        """Add the line `v = text` (or find the same line already made) and return v's name.

        `kind` says what the line makes: "fresh" (a new array), "ufunc" (a new array, and `out=`
        may reuse a dying input's buffer), "view" (may view what it reads) or "call" (unknown).
        """
        if pure and text in self.common:  # the same pure call on the same values: computed once
            return self.common[text]
        target = self.new_name()
        if pure:
            self.common[text] = target
        self.values[target] = value
        if any(self.depends[n] for n in reads):
            self.depends[target] = True
            self.lines.append(_Line(target, text, reads, kind, ufunc_args, value))
        else:  # everything it reads is a constant of the trace: fold it (its traced value is its value)
            self.depends[target] = False
            self.namespace[target] = value.view(np.ndarray) if isinstance(value, Tracked) else value
            self.keep.append(value)
        return target

    def function_text(self, function: Callable) -> str:
        name = getattr(function, "__name__", None)
        if name is not None and getattr(np, name, None) is function:
            return f"np.{name}"
        return self.constant(function)

    def step(self, params: dict, reads: set[str]) -> tuple[str, str, list[str] | None]:
        """The text of a step: the NumPy call it recorded, on the program's names."""
        function, args, kwargs, index = params["function"], params["args"], params["kwargs"], params["index"]
        texts = [self.expression(v, reads) for v in args]
        suffix = "" if index is None else f"[{index}]"
        if function is operator.getitem:
            return f"{texts[0]}[{texts[1]}]{suffix}", "view", None
        keywords = [f"{k}={self.expression(v, reads)}" for k, v in kwargs.items()]
        text = f"{self.function_text(function)}({', '.join([*texts, *keywords])}){suffix}"
        plain_ufunc = isinstance(function, np.ufunc) and not kwargs and index is None
        return text, "ufunc" if plain_ufunc else "call", list(texts) if plain_ufunc else None

    def call(self, primitive: Any, inputs: tuple, params: dict, args: list[str],
             param_texts: dict[str, str], output: Any) -> tuple[str, str, list[str] | None]:
        """The text of one operation: NumPy itself where the rule is plain NumPy (checked on the
        recorded values: the inline form must give the recorded output exactly), else its forward."""
        forward = primitive.forward
        keeping = getattr(primitive, "forward_for_backward", None)  # (forward, the step that reuses)
        if keeping is not None and keeping[1] in self.recorded.names:
            forward = keeping[0]  # the program runs that step too: the forward keeps what it reuses
        if isinstance(forward, np.ufunc) and getattr(np, forward.__name__, None) is forward and not params:
            return f"np.{forward.__name__}({', '.join(args)})", "ufunc", list(args)
        keywords = [f"{k}={v}" for k, v in param_texts.items()]
        generic = f"{self.constant(forward)}({', '.join([*args, *keywords])})"
        if PRIMITIVES.get(primitive.name) is not primitive:
            return generic, "call", None
        name, p = primitive.name, param_texts
        inline = None
        if name == "matmul":
            inline = (f"np.matmul({args[0]}, {args[1]})", "fresh", None)
        elif name == "relu":
            inline = (f"np.maximum({args[0]}, 0)", "ufunc", [args[0], "0"])
        elif name == "transpose" and "axes" in p:
            inline = (f"{args[0]}.transpose({'' if p['axes'] == 'None' else p['axes']})", "view", None)
        elif name == "reshape" and "shape" in p:
            inline = (f"{args[0]}.reshape({p['shape']})", "view", None)
        elif (name == "sum" and set(p) == {"axis", "keepdims"} and isinstance(inputs[0], np.ndarray)
              and inputs[0].dtype.kind == "f"):
            inline = (f"np.add.reduce({args[0]}, axis={p['axis']}, keepdims={p['keepdims']})", "fresh", None)
        elif (name == "unbroadcast" and "shape" in p and isinstance(inputs[0], np.ndarray)
              and inputs[0].dtype.kind == "f" and inputs[0].ndim >= len(params["shape"])):
            have, want = inputs[0].shape, tuple(params["shape"])
            added = len(have) - len(want)
            axes = tuple(range(added)) + tuple(
                added + i for i, n in enumerate(want) if n == 1 and have[added + i] != 1
            )
            text = f"np.add.reduce({args[0]}, axis={axes!r}, keepdims=True).reshape({want!r})"
            inline = (text, "view", None)
        elif name == "linear" and not params:
            if inputs[2] is None:
                inline = (f"np.matmul({args[0]}, np.swapaxes({args[1]}, -1, -2))", "fresh", None)
            elif np.ndim(inputs[1]) == 2:  # x Wᵀ, then b added in place (a second statement)
                inline = (f"np.matmul({args[0]}, {args[1]}.T)\n+= {args[2]}", "fresh", None)
            else:
                self.namespace["_matmul_add"] = _matmul_add
                inline = (f"_matmul_add({args[0]}, {args[1]}, {args[2]})", "fresh", None)
        if inline is None:
            return generic, "call", None
        try:
            with np.errstate(all="ignore"):
                expression, _, then = inline[0].partition("\n")
                scope = {**self.namespace, **self.values}
                again = eval(expression, scope)  # noqa: S307 - our own text
                if then:  # an in-place statement on the fresh result: `+= b`
                    scope["_result"] = again
                    exec(f"_result {then}", scope)  # noqa: S102 - our own text
                    again = scope["_result"]
        except Exception:  # noqa: BLE001 - not the rule's exact behaviour: keep the forward
            return generic, "call", None
        if not isinstance(output, np.ndarray) or not _same(np.asarray(again), output):
            return generic, "call", None
        return inline

    def build(self) -> tuple[str, dict[str, Any], list]:
        for primitive_, inputs, params, output in self.recorded.ops:
            reads: set[str] = set()
            if primitive_ in (copy_primitive, variable) and isinstance(inputs[0], np.ndarray):
                # a transform's own variable: an alias in a program that never writes into it
                self.names[id(output)] = self.expression(inputs[0], reads)
                continue
            if primitive_ is STEP:
                text, kind, ufunc_args = self.step(params, reads)
                pure = not (params.get("fresh") or params.get("effect"))
                if not pure:  # drawn or written at every replay: never folded, shared or dropped
                    reads.add("_replayed")
                    name = self.names[id(output)] = self.emit(text, reads, output, pure=False)
                    self.roots.add(name)
                    self.traced.append(output)
                    continue
            else:
                args = [self.expression(v, reads) for v in inputs]
                param_texts = {k: self.expression(v, reads) for k, v in params.items()}
                text, kind, ufunc_args = self.call(primitive_, tuple(inputs), params, args, param_texts,
                                                   output)
                pure = PRIMITIVES.get(primitive_.name) is primitive_  # a user's may draw random numbers
            name = self.emit(text, reads, output, kind=kind, pure=pure, ufunc_args=ufunc_args)
            self.names[id(output)] = name
            if self.depends[name]:
                self.traced.append(output)
            if isinstance(output, np.ndarray):
                self.by_memory.setdefault(_memory(output), name)
        reads = set()
        result = self.output(self.recorded.result, reads)
        return self.render(result, reads), self.namespace, self.keep

    def output(self, value: Any, reads: set[str], seen: set[str] | None = None) -> str:
        seen = set() if seen is None else seen
        if isinstance(value, np.ndarray):
            name = self.names.get(id(value))
            if name is None:
                name = self.foreign(value)
            reads.add(name)
            fresh = (self.depends.get(name) and name.startswith("v") and name not in seen
                     and _owns_data(value) and value.ndim > 0)
            seen.add(name)
            return name if fresh or name.startswith("a") else f"np.array({name})"
        if isinstance(value, (tuple, list)):
            items = [self.output(v, reads, seen) for v in value]
            if isinstance(value, list):
                return f"[{', '.join(items)}]"
            if hasattr(value, "_fields"):  # a namedtuple keeps its type (slogdet's, eigh's results)
                return f"{self.constant(type(value))}({', '.join(items)})"
            return f"({', '.join(items)}{',' if len(items) == 1 else ''})"
        if isinstance(value, dict):
            items = [f"{self.constant(k) if _literal(k) is None else repr(k)}: {self.output(v, reads, seen)}"
                     for k, v in value.items()]
            return f"{{{', '.join(items)}}}"
        text = _literal(value)
        return text if text is not None else self.constant(value)

    def render(self, result: str, result_reads: set[str]) -> str:
        # Dead code: keep only the lines the result needs.
        needed = set(result_reads) | self.roots
        kept = []
        for line in reversed(self.lines):
            if line.target in needed:
                kept.append(line)
                needed |= line.reads
        kept.reverse()
        # Free each intermediate right after its last use.
        last_use: dict[str, int] = {}
        consumers: dict[str, list[_Line]] = {}
        for position, line in enumerate(kept):
            for name in line.reads:
                last_use[name] = position
                consumers.setdefault(name, []).append(line)
        frees: dict[int, list[str]] = {}
        for name, position in last_use.items():
            if name.startswith("v") and self.depends.get(name) and name not in result_reads:
                frees.setdefault(position, []).append(name)
        # out=: an elementwise line writes into an input that dies there, when that input is an array
        # the program made itself (a ufunc's or a product's), of the output's shape and dtype, that
        # nothing could have viewed (every reader is itself elementwise or a product).
        owned = {line.target for line in kept if line.kind in ("fresh", "ufunc")}
        for position, line in enumerate(kept):
            if line.kind != "ufunc" or not isinstance(line.value, np.ndarray) or line.value.ndim == 0:
                continue
            for name in line.ufunc_args or ():
                value = self.values.get(name)
                if (name in owned and last_use.get(name) == position and name not in result_reads
                        and isinstance(value, np.ndarray) and value.shape == line.value.shape
                        and value.dtype == line.value.dtype and _owns_data(value)
                        and all(reader.kind in ("fresh", "ufunc") for reader in consumers[name])):
                    line.text = f"{line.text[:-1]}, out={name})"
                    break
        arguments = [f"a{i}" for i in range(len(self.recorded.arrays))]
        body = [f"def program({', '.join(arguments)}):"]
        for position, line in enumerate(kept):
            expression, _, then = line.text.partition("\n")
            body.append(f"    {line.target} = {expression}")
            if then:
                body.append(f"    {line.target} {then}")
            if position in frees:
                body.append(f"    del {', '.join(sorted(frees[position]))}")
        body.append(f"    return {result}")
        return "\n".join(body) + "\n"


class _Line:
    """One line of the program: `target = text`."""

    __slots__ = ("target", "text", "reads", "kind", "ufunc_args", "value")

    def __init__(self, target: str, text: str, reads: set[str], kind: str, ufunc_args: list[str] | None,
                 value: Any) -> None:
        self.target, self.text, self.reads, self.kind = target, text, reads, kind
        self.ufunc_args, self.value = ufunc_args, value


def _matmul_add(x: Any, W: Any, b: Any) -> np.ndarray:
    """linear's forward once its shapes are known to fit: x Wᵀ, then b added in place."""
    out = np.matmul(x, np.swapaxes(W, -1, -2))
    out += b
    return out


class _Program:
    """One signature's straight-line program, and the modes of the modules that ran in its trace."""

    def __init__(self, source: str, namespace: dict[str, Any], keep: list, modules: list) -> None:
        self.source = source
        self._keep = keep
        self.modules = modules
        exec(builtins.compile(source, "<mytorch.compile>", "exec"), namespace)  # noqa: S102 - our own source
        self.run = namespace["program"]


def _build(f: Callable, args: tuple, kwargs: dict, arrays: list[np.ndarray]) -> _Program:
    recorded = _Recording(f, args, kwargs, arrays)
    with recording(False):  # the builder's NumPy on traced arrays records nothing
        source, namespace, keep = _Builder(recorded).build()
    return _Program(source, namespace, keep, recorded.modules)


def _modes(modules: list) -> tuple[bool, ...]:
    return tuple(bool(getattr(m, "training", False)) for m in modules)


class Compiled:
    """A compiled function: `f`'s signature, one program per argument signature and modes.

    `programs` maps each signature seen to its program; `source(*args)` shows the generated code.
    """

    def __init__(self, f: Callable) -> None:
        self.f = f
        self.programs: dict[tuple, _Program] = {}
        self._watched: dict[tuple, list] = {}  # signature -> the modules whose mode selects a program
        functools.update_wrapper(self, f)

    def _program(self, args: tuple, kwargs: dict) -> tuple[_Program, list[np.ndarray]]:
        signature, arrays = _signature(args, kwargs)
        watched = self._watched.get(signature, [])
        key = (signature, _modes(watched))
        program = self.programs.get(key)
        if program is None:
            program = _build(self.f, args, kwargs, arrays)
            known = {id(m) for m in watched}
            watched = [*watched, *(m for m in program.modules if id(m) not in known)]
            self._watched[signature] = watched
            self.programs[(signature, _modes(watched))] = program
        return program, arrays

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if inside_a_transform() or state.tracing is not None:  # an outer trace must see f's operations
            return self.f(*args, **kwargs)
        program, arrays = self._program(args, kwargs)
        with recording(False):  # NumPy on a tracked constant (a model's parameter) computes plainly
            return program.run(*plain_each(tuple(arrays)))

    def source(self, *args: Any, **kwargs: Any) -> str:
        """The generated program for these arguments' signature (tracing it if needed)."""
        return self._program(args, kwargs)[0].source


def compile(f: Callable) -> Compiled:  # noqa: A001 - the name users expect (jax.jit, torch.compile)
    """Trace `f` once per argument signature and replay it as straight-line NumPy (see the module).

    >>> import numpy as np
    >>> import mytorch
    >>> from mytorch import functional as F
    >>> square = mytorch.compile(lambda x: F.mul(x, x))
    >>> square(np.array([1.0, 2.0]))
    array([1., 4.])
    """
    return Compiled(f)

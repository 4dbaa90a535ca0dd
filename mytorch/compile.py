"""`mytorch.compile(f)`: record `f` once per signature, then replay it as straight-line NumPy.

A tape recorded with `create_graph` holds, as primitives, both a forward pass and its backward
walk: it is a straight-line program. `compile` records `f` on the first call for a signature,
numbers the arrays of the recording (arguments, constants, intermediates), emits one line of Python
per operation calling the primitive's forward rule (`v12 = np.multiply(v3, v7)`), deletes each
intermediate after its last use, and compiles that source once. Later calls with the same signature
run the generated function: no Operation, no guard, no buffer, no id() look-up.

>>> import numpy as np
>>> import mytorch
>>> from mytorch import functional as F
>>> step = mytorch.compile(mytorch.value_and_grad(lambda w, x: F.sum(F.relu(F.mul(w, x)))))
>>> value, slope = step(np.array([1.0, -2.0]), np.array([3.0, 4.0]))   # records, then runs
>>> float(value), slope
(3.0, array([3., 0.]))
>>> value, slope = step(np.array([-1.0, 2.0]), np.array([3.0, 4.0]))   # replays: the mask follows
>>> float(value), slope
(8.0, array([0., 4.]))

The rules (as with `jax.jit`):

- The signature is the shapes and dtypes of the array arguments (arrays may sit in tuples, lists
  and dicts) and the values of every other argument (numbers, strings, None: they must be
  hashable, and a new value records again). A new shape or dtype records again.
- Arrays are passed as arguments. An array that `f` closes over (weights kept in a closure or a
  model) is a constant of the program: no gradient flows to it, and every replay reads its value
  at that call (an optimizer's in-place step is seen, as in eager mode). `f` must be otherwise
  pure: state a layer updates with NumPy in its forward (BatchNorm1d's running statistics in
  training mode) is updated while recording only, not at replays.
- Python control flow that depends on values (`if float(loss) > 1`) is fixed at the first call.
- Masks and selections computed inside the primitives' rules (ReLU's `x > 0`, the ties of `max`
  and `maximum`, clip's bounds, the one-hot rows of integer labels, max-pooling's winners) follow
  the data: they are recomputed from the new values at every replay. To find them, the first call
  records `f` twice, the second time on other values of the same shapes (its side effects happen
  twice; warnings of that run are silenced): an array that differs between the two recordings
  and is neither an argument nor the output of a recorded primitive is recomputed by the rule that
  made it, or, when no rule is known for it (random numbers, NumPy computations on the arguments
  outside the primitives, a primitive applied to integer arrays only), the call is refused with
  an error naming the operation that used it (an array equal in both recordings, such as a
  random mask of a few elements that happened to come out the same, is taken for a constant).
  Numbers computed from the data and fed to a primitive (`F.mul(x, float(x.max()))`) are refused
  too. NumPy views of arguments and intermediates (`for x in X`, `W.T`, reshapes) are replayed.
- Only primitives can be replayed: a hand-written `add_operation` record has no forward rule and is
  refused. `f` must not call `Autograd()`; `engine.backward` inside `f` is refused (use
  `mytorch.value_and_grad`).
- Recording leaves the current tape as it was and locks nothing; replays record nothing, so call
  the compiled function on the outside: compile the gradient transform, not the function it
  differentiates. Inside a transform (`grad(compile(f))`), the compiled function runs `f` eagerly.
- Results equal the eager engine's (the same forward rules run in the same order).
"""

from __future__ import annotations

import builtins
import functools
import itertools
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from mytorch.autograd_engine import Stretch, engine, recording
from mytorch.tracked import plain_each
from mytorch.transforms import inside_a_transform, walks_recorded

__all__ = ["compile", "CompileError"]


class CompileError(TypeError):
    """`f` cannot be compiled (the message says why and what to do instead)."""


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


def _rebuild(value: Any, arrays: Iterator[np.ndarray]) -> Any:
    """`value` with its arrays replaced, in order, by those of `arrays`."""
    if isinstance(value, np.ndarray):
        return next(arrays)
    if isinstance(value, (tuple, list)):
        return type(value)(_rebuild(item, arrays) for item in value)
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


# ---- recording -----------------------------------------------------------------------------------


class _Recording:
    """One run of `f` on the tape: its operations and its result, the tape then cut back."""

    def __init__(self, f: Callable, args: tuple, kwargs: dict, arrays: list[np.ndarray]) -> None:
        with Stretch() as stretch:  # records (even under no_grad); cut back on leaving
            with walks_recorded():
                self.result = f(*args, **kwargs)
            if engine() is not stretch.engine:
                raise CompileError(
                    "compile: the function started a new engine (Autograd()) while it was recorded; "
                    "create the engine once, outside the compiled function"
                )
            self.ops = [(op.primitive, op.inputs, op.params or {}, op.output, op) for op in stretch.records]
        self.arrays = arrays
        for primitive, _, _, _, op in self.ops:
            if getattr(primitive, "forward", None) is None:
                name = getattr(primitive, "name", None) or repr(op.backward_operation)
                raise CompileError(
                    f"compile: the function records a hand-written add_operation ({name}), which has no "
                    "forward rule to replay; define it as a primitive (mytorch.functional.primitive)"
                )

    def skeleton(self) -> list:
        """What must match between two recordings: each op's name and its arrays' shapes."""
        return [(p.name, np.shape(out), getattr(out, "dtype", None),
                 tuple(np.shape(v) for v in _leaves(inputs, params) if isinstance(v, np.ndarray)))
                for p, inputs, params, out, _ in self.ops]


def _leaves(inputs: Any, params: dict) -> list:
    found: list = []

    def walk(value: Any) -> None:
        if isinstance(value, (tuple, list)):
            for item in value:
                walk(item)
        elif isinstance(value, slice):
            walk((value.start, value.stop, value.step))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        else:
            found.append(value)

    walk(tuple(inputs))
    walk(params)
    return found


def _other_values(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Arrays of the same shapes and dtypes with other values (for the second recording)."""
    rng = np.random.default_rng(12345)
    others = []
    for a in arrays:
        if a.dtype.kind in "fc":
            scale = float(np.std(a)) if a.size else 1.0
            other = rng.standard_normal(a.shape) * (scale if np.isfinite(scale) and scale > 0 else 1.0)
            others.append(other.astype(a.dtype))
        elif a.dtype.kind == "b":
            others.append(rng.random(a.shape) < 0.5)
        elif a.dtype.kind in "iu" and a.size:
            others.append(rng.permutation(a.reshape(-1)).reshape(a.shape).astype(a.dtype))
        else:
            others.append(a.copy())
    return others


# ---- masks the rules compute with NumPy, and how to compute them again ------------------------------


def _float_dtypes(*values: Any) -> list[np.dtype]:
    found = [v.dtype for v in values if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
    return list(dict.fromkeys([*found, np.dtype(np.float64)]))


def _keep_axes(ans: Any, ndim: int, axis: Any, keepdims: bool) -> Any:
    if keepdims or axis is None and np.ndim(ans) == ndim:
        return ans
    if axis is None:
        return np.reshape(ans, (1,) * ndim)
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    return np.expand_dims(ans, tuple(a % ndim for a in axes))


def _recipes(name: str, inputs: tuple, params: dict, ans: Any) -> list[Callable]:
    """Functions of (*inputs, ans) that recompute the constants a primitive's rules make with NumPy."""
    recipes: list[Callable] = []
    if name in ("relu", "power"):
        recipes.append(lambda x, *rest: np.asarray(x) > 0)
    elif name == "abs":
        for dtype in _float_dtypes(*inputs, ans):
            recipes.append(lambda x, ans, dtype=dtype: np.asarray(np.sign(x), dtype=dtype))
    elif name in ("maximum", "minimum"):
        wins = np.greater if name == "maximum" else np.less
        for dtype in _float_dtypes(*inputs, ans):
            recipes.append(lambda x, y, ans, dtype=dtype, wins=wins:
                           np.asarray(np.where(np.equal(x, y), 0.5, wins(x, y)), dtype=dtype))
    elif name in ("max", "min"):
        axis, keepdims = params.get("axis"), params.get("keepdims", False)
        for dtype in _float_dtypes(*inputs):
            def share(x: Any, ans: Any, dtype: np.dtype = dtype) -> np.ndarray:
                hits = x == _keep_axes(ans, np.ndim(x), axis, keepdims)
                return np.asarray(hits / np.sum(hits, axis=axis, keepdims=True), dtype=dtype)

            recipes.append(share)
    elif name == "clip":
        for dtype in _float_dtypes(*inputs, ans):
            for which in range(3):
                recipes.append(lambda x, lo, hi, ans, dtype=dtype, which=which:
                               _clip_masks(x, lo, hi, dtype)[which])
    elif name == "cross_entropy" and isinstance(inputs[1], np.ndarray) and inputs[1].dtype.kind in "iub":
        for dtype in _float_dtypes(inputs[0]):
            recipes.append(lambda logits, target, ans, dtype=dtype:
                           np.eye(np.shape(logits)[-1], dtype=dtype)[target])
    return recipes


def _clip_masks(x: Any, lo: Any, hi: Any, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    raised = np.maximum(x, lo) if lo is not None else np.asarray(x)
    above = np.greater(raised, hi) if hi is not None else np.zeros(np.shape(raised), bool)
    below = (np.less(x, lo) if lo is not None else False) & ~above
    inside = ~(below | above)
    return tuple(np.asarray(m, dtype=dtype) for m in (inside, below, above))


def _same(a: Any, b: Any) -> bool:
    if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray):
        return False
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def _is_fill(a: np.ndarray) -> bool:
    flat = a.reshape(-1)
    return flat.size == 0 or bool(np.all((flat == flat[0]) | (flat != flat)))


# ---- the program ----------------------------------------------------------------------------------


def _literal(value: Any) -> str | None:
    """Source text for a plain Python value, or None when it must go to the constants table."""
    if value is None or value is Ellipsis or isinstance(value, (bool, str)):
        return repr(value)
    if type(value) in (int, float) and np.isfinite(value):
        return repr(value)
    return None


class _Builder:
    """Turns one recording (checked against a second one) into Python source."""

    def __init__(self, first: _Recording, second: _Recording | None, second_has_other_values: bool) -> None:
        self.first, self.second, self.other_values = first, second, second_has_other_values
        self.namespace: dict[str, Any] = {"np": np}
        self.constant_names: dict[int, str] = {}
        self.names: dict[int, str] = {}  # id(array of the first recording) -> its name in the program
        self.depends: dict[str, bool] = {}  # name -> whether it depends on the arguments
        self.counter = itertools.count()
        self.lines: list[_Line] = []
        self.keep: list[Any] = []  # the first recording's arrays, alive while names refer to their ids
        self.recipe_cache: dict[tuple[int, int, int], Any] = {}
        self.current = 0  # the operation being translated: masks come from the rules before it
        self.common: dict[str, str] = {}  # line text -> its name (common subexpressions)
        self.values: dict[str, Any] = {}  # name -> its value in the first recording
        # (name, its array in the first recording, in the second): what a NumPy view may come from
        self.known: list[tuple[str, np.ndarray, Any]] = []
        for i, a in enumerate(first.arrays):
            self.names.setdefault(id(a), f"a{i}")
            self.depends[f"a{i}"] = True
            self.values[f"a{i}"] = a
            self.known.append((f"a{i}", a, second.arrays[i] if second is not None else None))

    # -- constants

    def constant(self, value: Any) -> str:
        name = self.constant_names.get(id(value))
        if name is None:
            name = self.constant_names[id(value)] = f"K{len(self.constant_names)}"
            self.namespace[name] = value
            self.keep.append(value)
            # Read at every call, never folded: an array f closes over (a parameter an optimizer
            # updates in place) is used with its current value, as the eager engine would.
            self.depends[name] = True
        return name

    # -- expressions

    def expression(self, value: Any, other: Any, where: str, reads: set[str]) -> str:
        if isinstance(value, np.ndarray):
            name = self.names.get(id(value))
            if name is None:
                name = self.foreign(value, other, where)
            reads.add(name)
            return name
        if isinstance(value, tuple):
            others = other if isinstance(other, tuple) and len(other) == len(value) else (None,) * len(value)
            items = [self.expression(v, o, where, reads) for v, o in zip(value, others)]
            return f"({', '.join(items)}{',' if len(items) == 1 else ''})"
        if isinstance(value, list):
            others = other if isinstance(other, list) and len(other) == len(value) else [None] * len(value)
            return f"[{', '.join(self.expression(v, o, where, reads) for v, o in zip(value, others))}]"
        if isinstance(value, slice):
            parts = (value.start, value.stop, value.step)
            other_parts = (other.start, other.stop, other.step) if isinstance(other, slice) else (None,) * 3
            texts = [self.expression(v, o, where, reads) for v, o in zip(parts, other_parts)]
            return f"slice({', '.join(texts)})"
        self.check_number(value, other, where)
        text = _literal(value)
        return text if text is not None else self.constant(value)

    def check_number(self, value: Any, other: Any, where: str) -> None:
        if self.second is None or not self.other_values or other is None:
            return
        if isinstance(value, (int, float, complex, np.generic)) and not isinstance(value, bool):
            try:
                same = value == other or (value != value and other != other)
            except Exception:  # noqa: BLE001 - not comparable: not a number that varies
                same = True
            if not same:
                raise CompileError(
                    f"compile: {where} takes the number {value!r}, which was computed from the data "
                    f"(it was {other!r} on other values); a replay would freeze it. Keep it an array "
                    "and compute it with primitives, or pass it as an argument"
                )

    def foreign(self, value: np.ndarray, other: Any, where: str) -> str:
        """An array that is neither an argument nor an op output: a constant, or a mask to recompute."""
        if self.second is not None and other is value:
            return self.constant(value)  # the same object in both recordings: closed over by f
        name = self.view(value, other)
        if name is None:
            name = self.recipe(value, other)
        if name is not None:
            return name
        if self.second is not None and self.other_values:
            data_dependent = not _same(value, other)
        else:
            data_dependent = not _is_fill(value)
        if data_dependent:
            raise CompileError(
                f"compile: {where} uses an array of shape {value.shape} ({value.dtype}) that was computed "
                "during the call outside the recorded primitives (NumPy on the arguments, random numbers, "
                "or a primitive applied to integer arrays only) and that changes with the data; a replay "
                "would freeze it. Compute it with primitives, or pass it as an argument"
            )
        return self.constant(value)  # made during the call, but the same whatever the data: ones, eye, ...

    def recipe(self, value: np.ndarray, other: Any) -> str | None:
        """Find the rule that made `value`, and emit a line that makes it again."""
        matches = []
        for index, (primitive, inputs, params, ans, _) in enumerate(self.first.ops[: self.current]):
            candidates = _recipes(primitive.name, tuple(inputs), params, ans)
            for k, make in enumerate(candidates):
                key = (index, k, 0)
                if key not in self.recipe_cache:
                    with np.errstate(all="ignore"):
                        try:
                            self.recipe_cache[key] = make(*inputs, ans)
                        except Exception:  # noqa: BLE001 - not this rule's shape of constant
                            self.recipe_cache[key] = None
                if not _same(self.recipe_cache[key], value):
                    continue
                if self.second is not None and self.other_values:
                    p2, inputs2, params2, ans2, _ = self.second.ops[index]
                    with np.errstate(all="ignore"):
                        try:
                            again = _recipes(p2.name, tuple(inputs2), params2, ans2)[k](*inputs2, ans2)
                        except Exception:  # noqa: BLE001
                            again = None
                    if not _same(again, other):
                        continue
                matches.append((index, make))
                break
        if not matches:
            return None
        operands = {tuple(self.names.get(id(v), repr(v)) for v in self.first.ops[i][1]) for i, _ in matches}
        if len(operands) > 1 and not (self.second is not None and self.other_values):
            return None  # two rules make this array from different values: cannot tell which
        index, make = matches[-1]
        _, inputs, _, ans, _ = self.first.ops[index]
        reads: set[str] = set()
        args = [self.expression(v, None, "a mask's rule", reads) for v in (*inputs, ans)]
        target = self.emit(f"{self.constant(make)}({', '.join(args)})", reads, value, kind="call")
        self.names[id(value)] = target
        return target

    def view(self, value: np.ndarray, other: Any) -> str | None:
        """A view of an argument or an intermediate made with NumPy (`for x in X`, `W.T`, a reshape)."""
        if value.base is None:
            return None
        address = value.__array_interface__["data"][0]
        for name, source, source_other in reversed(self.known):
            if source.dtype != value.dtype or not np.may_share_memory(source, value):
                continue
            offset = address - source.__array_interface__["data"][0]
            text = None
            if (value.shape == source.shape[1:] and value.strides == source.strides[1:]
                    and source.strides[0] > 0 and offset % source.strides[0] == 0
                    and 0 <= offset // source.strides[0] < source.shape[0]):
                text = f"{name}[{offset // source.strides[0]}]"
            elif offset == 0 and value.shape == source.shape[::-1] and value.strides == source.strides[::-1]:
                text = f"{name}.T"
            elif (offset == 0 and value.size == source.size and source.flags.c_contiguous
                  and value.flags.c_contiguous):
                text = f"{name}.reshape({value.shape!r})"
            if text is None:
                continue
            if self.second is not None and self.other_values:
                again = eval(text, {name: source_other})  # noqa: S307 - our own text
                if not _same(again, other):
                    continue
            target = self.emit(text, {name}, value, kind="view")
            self.names[id(value)] = target
            self.known.append((target, value, other))
            return target
        return None

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
        else:  # everything it reads is a constant: fold it (its recorded value is its value)
            self.depends[target] = False
            self.namespace[target] = value
            self.keep.append(value)
        return target

    def call(self, primitive: Any, inputs: tuple, params: dict, args: list[str],
             param_texts: dict[str, str], output: Any) -> tuple[str, str, list[str] | None]:
        """The text of one operation: NumPy itself where the rule is plain NumPy (checked on the
        recorded values: the inline form must give the recorded output exactly), else its forward."""
        from mytorch.primitive import PRIMITIVES

        forward = primitive.forward
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
        second_ops = self.second.ops if self.second is not None else None
        for index, (primitive, inputs, params, output, _) in enumerate(self.first.ops):
            other_inputs, other_params = ((second_ops[index][1], second_ops[index][2])
                                          if second_ops is not None else ((None,) * len(inputs), {}))
            where = f"operation {index} ({primitive.name})"
            self.current = index
            reads: set[str] = set()
            if primitive.name == "fresh_copy":  # a transform's own variable: an alias in a program
                alias = self.names[id(output)] = self.expression(inputs[0], other_inputs[0], where, reads)
                self.known.append((alias, output, second_ops[index][3] if second_ops is not None else None))
                continue
            args = [self.expression(v, o, where, reads) for v, o in zip(inputs, other_inputs)]
            param_texts = {k: self.expression(v, other_params.get(k), where, reads)
                           for k, v in params.items()}
            text, kind, ufunc_args = self.call(primitive, tuple(inputs), params, args, param_texts, output)
            from mytorch.primitive import PRIMITIVES

            pure = PRIMITIVES.get(primitive.name) is primitive  # a user's primitive may draw random numbers
            target = self.emit(text, reads, output, kind=kind, pure=pure, ufunc_args=ufunc_args)
            self.names[id(output)] = target
            if isinstance(output, np.ndarray):
                self.known.append((target, output, second_ops[index][3] if second_ops is not None else None))
        self.current = len(self.first.ops)
        reads = set()
        other_result = self.second.result if self.second is not None else None
        result = self.output(self.first.result, other_result, reads)
        return self.render(result, reads), self.namespace, self.keep

    def output(self, value: Any, other: Any, reads: set[str], seen: set[str] | None = None) -> str:
        seen = set() if seen is None else seen
        if isinstance(value, np.ndarray):
            name = self.names.get(id(value))
            if name is None:
                name = self.foreign(value, other, "the result")
            reads.add(name)
            fresh = (self.depends.get(name) and name.startswith("v") and name not in seen
                     and value.base is None and value.ndim > 0)
            seen.add(name)
            return name if fresh or name.startswith("a") else f"np.array({name})"
        if isinstance(value, (tuple, list)):
            parallel = isinstance(other, (tuple, list)) and len(other) == len(value)
            others = other if parallel else [None] * len(value)
            items = [self.output(v, o, reads, seen) for v, o in zip(value, others)]
            if isinstance(value, list):
                return f"[{', '.join(items)}]"
            return f"({', '.join(items)}{',' if len(items) == 1 else ''})"
        if isinstance(value, dict):
            others = other if isinstance(other, dict) else {}
            items = [f"{k!r}: {self.output(v, others.get(k), reads, seen)}" for k, v in value.items()]
            return f"{{{', '.join(items)}}}"
        self.check_number(value, other, "the result")
        text = _literal(value)
        return text if text is not None else self.constant(value)

    def render(self, result: str, result_reads: set[str]) -> str:
        # Dead code: keep only the lines the result needs.
        needed = set(result_reads)
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
                        and value.dtype == line.value.dtype and value.base is None
                        and all(reader.kind in ("fresh", "ufunc") for reader in consumers[name])):
                    line.text = f"{line.text[:-1]}, out={name})"
                    break
        arguments = [f"a{i}" for i in range(len(self.first.arrays))]
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
    """One signature's straight-line program."""

    def __init__(self, source: str, namespace: dict[str, Any], keep: list) -> None:
        self.source = source
        self._keep = keep
        exec(builtins.compile(source, "<mytorch.compile>", "exec"), namespace)  # noqa: S102 - our own source
        self.run = namespace["program"]


def _build(f: Callable, args: tuple, kwargs: dict, arrays: list[np.ndarray]) -> _Program:
    # f runs on copies of the arguments: an array f closes over that was also passed as an argument
    # is then told apart from the argument (a constant of the program), not mistaken for it.
    arrays = [np.array(a, copy=True) for a in arrays]  # plain copies (a tracked one's .copy() records)
    first = _Recording(f, *_rebuilt(args, kwargs, arrays), arrays)
    second, other_values = None, False
    others = _other_values(arrays)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            candidate = _Recording(f, *_rebuilt(args, kwargs, others), others)
        if candidate.skeleton() == first.skeleton():
            second, other_values = candidate, True
    except CompileError:
        raise
    except Exception:  # noqa: BLE001 - f refuses other values (a domain, an assert): use these again
        pass
    if second is None:  # the same values again: tells closed-over constants from arrays made per call
        again = [np.array(a, copy=True) for a in arrays]
        candidate = _Recording(f, *_rebuilt(args, kwargs, again), again)
        if candidate.skeleton() == first.skeleton():
            second = candidate
    with recording(False):  # the builder's NumPy on recorded (tracked) arrays records nothing
        source, namespace, keep = _Builder(first, second, other_values).build()
    return _Program(source, namespace, keep)


class Compiled:
    """A compiled function: `f`'s signature, one program per argument signature.

    `programs` maps each signature seen to its program; `source(*args)` shows the generated code.
    """

    def __init__(self, f: Callable) -> None:
        self.f = f
        self.programs: dict[tuple, _Program] = {}
        functools.update_wrapper(self, f)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if inside_a_transform():  # an outer transform must see f's operations
            return self.f(*args, **kwargs)
        key, arrays = _signature(args, kwargs)
        program = self.programs.get(key)
        if program is None:
            program = self.programs[key] = _build(self.f, args, kwargs, arrays)
        with recording(False):  # NumPy on a tracked constant (a model's parameter) computes plainly
            return program.run(*plain_each(tuple(arrays)))

    def source(self, *args: Any, **kwargs: Any) -> str:
        """The generated program for these arguments' signature (recording it if needed)."""
        key, arrays = _signature(args, kwargs)
        if key not in self.programs:
            self.programs[key] = _build(self.f, args, kwargs, arrays)
        return self.programs[key].source


def compile(f: Callable) -> Compiled:  # noqa: A001 - the name users expect (jax.jit, torch.compile)
    """Record `f` once per argument signature and replay it as straight-line NumPy (see the module).

    >>> import numpy as np
    >>> import mytorch
    >>> from mytorch import functional as F
    >>> square = mytorch.compile(lambda x: F.mul(x, x))
    >>> square(np.array([1.0, 2.0]))
    array([1., 4.])
    """
    return Compiled(f)

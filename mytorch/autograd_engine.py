"""The tape and its walks.

Forward pass: every operation appends one `Operation` (inputs, output, backward rule) to the tape,
`Autograd.operation_list`. Recording order is a topological order, so

- the reverse walk (`walk_backward`) is a plain loop from the end of a list of records to its
  start, handing each record the adjoint of its output and accumulating the adjoints of its inputs;
- the forward walk (`walk_forward`) is a plain loop from a start to the end, pushing tangents.

No recursion, no graph search: a tape of a million operations walks like one of ten.

Every record has one shape: its `primitive` answers `pullback(grad_output, output, inputs, params,
needs)`. A primitive (mytorch.primitive) brings its own; a hand-written `add_operation` record is
given an adapter around its `backward_operation` when it is recorded, so the walks never branch on
the kind of record.

A backward walk consumes what it walked (PyTorch's rule): those records leave the tape, their
arrays are writable again, and walking them a second time is an error that names `retain_graph`.

This module imports nothing of mytorch but `utils`: the two files can be copied into a course
handout's own `mytorch/` package in place of its engine.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from mytorch.utils import GradientBuffer, gradient_dtype, is_float_array

# ---- the state of this thread: its current engine, and whether primitives record ----------------


class _ThreadState(threading.local):
    engine: Autograd | None = None  # the current engine of this thread
    recording: bool = True  # False inside no_grad() and inside a non-recording backward walk
    anomaly: int = 0  # how many detect_anomaly() blocks are open
    # True while a walk runs the rules: NumPy calls on tracked arrays inside a rule compute plainly
    # (a rule must be written with primitives to be differentiable again; the checkers catch one
    # that is not). User code inside a Stretch (a transform, checkpoint's recomputation) is not.
    in_rule: bool = False
    # The trace `mytorch.compile` is recording (None when it is not): then every NumPy call on a
    # tracked array is a step of the program or refused (mytorch.tracked), and operations on
    # integer arrays are recorded too (an index computed from labels is a step).
    tracing: Any = None
    # The engine primitives record on, when recording is plain (on; compile not tracing; anomaly
    # mode off); else None. One read on every primitive call instead of four; kept by
    # `_sync_recorder` wherever `engine`, `recording`, `tracing`, `anomaly` or `in_rule` change.
    recorder: Autograd | None = None
    # Whether NumPy calls on tracked arrays dispatch to the primitives: recording, and not inside a
    # rule (mytorch.tracked reads it on every call; kept by `_sync_recorder` too).
    dispatching: bool = True


# This thread's engine and recording flag. Read it (primitives check `state.recording` on every
# call); change it only through `recording(...)`, `no_grad()`, `detect_anomaly()` and `Autograd()`.
state = _state = _ThreadState()


def _sync_recorder() -> None:
    plain = _state.recording and _state.tracing is None and not _state.anomaly
    _state.recorder = _state.engine if plain else None
    _state.dispatching = _state.recording and not _state.in_rule


def engine() -> Autograd:
    """The current engine of this thread (created on first use).

    >>> import mytorch
    >>> mytorch.engine() is mytorch.engine()
    True
    """
    current = _state.engine
    return current if current is not None else Autograd()


@contextlib.contextmanager
def tracing(trace: Any) -> Iterator[Any]:
    """Make `trace` the one `mytorch.compile` records into while the block runs (see `tracing`
    on `_ThreadState`)."""
    outer, _state.tracing = _state.tracing, trace
    _sync_recorder()
    try:
        yield trace
    finally:
        _state.tracing = outer
        _sync_recorder()


def is_recording() -> bool:
    """Whether primitives called now are recorded on the tape."""
    return _state.recording


class recording:
    """Turn recording on (`recording(True)`) or off (`recording(False)`), as a context or decorator.

    A decorated generator function records (or not) while each of its steps runs, not just while
    the generator is created.

    >>> import mytorch
    >>> with mytorch.recording(False):
    ...     mytorch.is_recording()
    False
    """

    def __init__(self, flag: bool = True) -> None:
        self.flag = flag
        self._outer: list[bool] = []

    def __enter__(self) -> recording:
        self._outer.append(_state.recording)
        _state.recording = self.flag
        _sync_recorder()
        return self

    def __exit__(self, *exc_info: object) -> None:
        _state.recording = self._outer.pop()
        _sync_recorder()

    def __call__(self, function: Callable) -> Callable:
        flag = self.flag
        if inspect.isgeneratorfunction(function):
            return _generator_under(flag, function)

        @functools.wraps(function)
        def under(*args: Any, **kwargs: Any) -> Any:
            with recording(flag):  # a fresh context per call: threads may share the decorator
                return function(*args, **kwargs)

        return under


def _generator_under(flag: bool, function: Callable) -> Callable:
    @functools.wraps(function)
    def generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
        steps = function(*args, **kwargs)
        resume, value = steps.send, None
        while True:
            with recording(flag):
                try:
                    item = resume(value)
                except StopIteration as stop:
                    return stop.value
            try:
                value, resume = (yield item), steps.send
            except GeneratorExit:
                steps.close()
                raise
            except BaseException as error:  # thrown into us: throw it into the wrapped generator
                value, resume = error, steps.throw

    return generator


class no_grad(recording):
    """Turn recording off, as a context manager or a decorator (`@no_grad()` or `@no_grad`).

    >>> import mytorch
    >>> with mytorch.no_grad():
    ...     mytorch.is_recording()
    False
    """

    def __new__(cls, function: Callable[..., Any] | None = None) -> Any:
        instance = super().__new__(cls)
        if function is not None:  # used bare, as @no_grad: decorate straight away
            instance.__init__()
            return instance(function)
        return instance

    def __init__(self, function: Callable[..., Any] | None = None) -> None:
        super().__init__(False)


# Under create_graph the walk's own sums of adjoints must be recorded too. The primitive layer sits
# above this module, so it hands its recording `add` down when it loads (this module never imports
# it); without it (the engine copied alone into a handout) walks are first-order.
_recorded_add: Callable[[Any, Any], Any] | None = None


def use_recorded_add(add: Callable[[Any, Any], Any]) -> None:
    """Register the recording `add` that walks under `create_graph` sum adjoints with."""
    global _recorded_add
    _recorded_add = add


# ---- safety features, switched off only to measure what they cost ---------------------------------

# The behaviours these give are the contract; `safety_off` exists for `python -m mytorch bench`,
# which shows each one's cost beside the full engine.
_GUARD = True  # arrays a tape reads are read-only until it is walked (`_hold`)
_CONSUME = True  # a walk consumes the records it walked: their arrays are released, a second walk refused
_CHECKS = True  # record-time law checks: complex values refused, integer inputs and parameters frozen


@contextlib.contextmanager
def safety_off(feature: str) -> Iterator[None]:
    """Switch one safety feature off inside the block, to measure its cost (never for real work).

    `feature` is "guard" (read-only arrays), "consumption" (a walk drops the tape as zero_grad
    does, keeping nothing to refuse a second walk with) or "checks" (the record-time checks of
    the laws).

    >>> from mytorch import functional as F
    >>> with safety_off("guard"):
    ...     x = np.ones(2); y = F.exp(x)
    >>> x.flags.writeable
    True
    """
    name = {"guard": "_GUARD", "consumption": "_CONSUME", "checks": "_CHECKS"}.get(feature)
    if name is None:
        raise ValueError(f"safety_off: no feature {feature!r} (guard, consumption or checks)")
    outer = globals()[name]
    globals()[name] = False
    try:
        yield
    finally:
        globals()[name] = outer


# ---- read-only guard: an array a tape still needs cannot be written in place --------------------

# id(array) -> how many tapes hold it read-only (tapes of other engines and threads included).
_HOLDERS: dict[int, int] = {}
_HOLDERS_LOCK = threading.Lock()
_ENGINES: weakref.WeakSet[Autograd] = weakref.WeakSet()


def _hold(held: dict[int, np.ndarray], array: np.ndarray) -> None:
    """Make `array` read-only for the tape that owns `held`, and so what it views: `W += 1` is
    refused while `W.T` is on the tape."""
    while array is not None:
        key = id(array)
        if key in held:
            return  # held, and so is what it views
        with _HOLDERS_LOCK:
            if array.flags.writeable:
                array.setflags(False)
                _HOLDERS[key] = 1
                held[key] = array
            elif key in _HOLDERS:  # read-only because another tape holds it
                _HOLDERS[key] += 1
                held[key] = array
            # else the user made it read-only: not ours to release, but what it views may be
        base = array.base
        array = base if isinstance(base, np.ndarray) else None


def _let_go(arrays: list[np.ndarray]) -> None:
    """Undo `_hold` for `arrays`: writable again once no tape holds them. An array that nothing
    but this list reaches is left as it is: it is freed the next instant, and no one can see it."""
    views = []
    with _HOLDERS_LOCK:
        for array in arrays:
            key = id(array)
            count = _HOLDERS.get(key)
            if count is None:  # seen but never locked (safety_off("guard"))
                continue
            if count > 1:
                _HOLDERS[key] = count - 1
                continue
            del _HOLDERS[key]
            if _refcount(array) <= 3:  # the list, the loop's name and the call's argument
                continue
            if array.base is None:
                array.setflags(True)
            else:
                views.append(array)
    for array in views:  # after the owners: numpy lets a view be writable only if its base is
        try:
            array.setflags(True)
        except ValueError:  # its base is held by another tape, or read-only by the user
            pass


_refcount = sys.getrefcount


def who_holds(array: Any) -> str | None:
    """Which tapes keep `array` read-only (for an error message), or None.

    >>> from mytorch import functional as F
    >>> x = np.ones(2)
    >>> y = F.exp(x)
    >>> who_holds(x).startswith("the tape of an engine of thread")
    True
    """
    holders = [e for e in list(_ENGINES) if id(array) in e._held and e._held[id(array)] is array]
    if not holders:
        return None
    return "; ".join(
        f"the tape of an engine of thread {e._thread!r} ({len(e.operation_list)} operations recorded "
        "and not yet walked: call backward or zero_grad there, or record inside no_grad)"
        for e in holders
    )


def _param_arrays(params: dict[str, Any]) -> Iterator[np.ndarray]:
    """The arrays among a record's parameters (a shift, a bound, the arrays of an index tuple)."""
    for value in params.values():
        if isinstance(value, np.ndarray):
            yield value
        elif type(value) is tuple:
            for item in value:
                if isinstance(item, np.ndarray):
                    yield item


def _frozen_params(held: dict[int, np.ndarray], params: dict[str, Any]) -> dict[str, Any]:
    """What a record keeps of its parameters: arrays held read-only like its inputs, and lists
    (mutable, and not lockable) copied, so nothing the rules read can change after the forward."""
    for array in _param_arrays(params):
        if id(array) not in held:
            _hold(held, array)
    if any(isinstance(v, list) or type(v) is tuple and any(isinstance(i, list) for i in v)
           for v in params.values()):
        import copy

        params = {key: copy.deepcopy(value) if isinstance(value, (list, tuple)) else value
                  for key, value in params.items()}
    return params


def _complex_declared(primitive: Any, inputs: Sequence[Any], output: Any) -> bool:
    """True for a primitive whose rules differentiate complex values (`complex=` in its
    definition); any other is refused at the first complex value, never dropped from the chain."""
    if getattr(primitive, "complex", None) is None:
        refuse_complex(primitive, inputs, output)
    return True


def refuse_complex(primitive: Any, inputs: Sequence[Any], output: Any) -> None:
    """Raise the error for complex values given to a primitive that does not differentiate them."""
    shapes = ", ".join(f"{v.shape} {v.dtype}" if isinstance(v, np.ndarray) else type(v).__name__
                       for v in inputs)
    name = getattr(primitive, "name", primitive)
    reason = getattr(primitive, "complex_refusal", None)  # why (a primitive's own words), if known
    raise TypeError(
        f"{name}: complex values are not differentiable through {name}{f': {reason}' if reason else ''} "
        f"(inputs: {shapes}; output: "
        f"{np.shape(output)} {getattr(output, 'dtype', '')}); their gradient would silently drop out "
        "of the chain. Split real and imaginary parts (np.real, np.imag) before it, or run it inside "
        "mytorch.no_grad() if no gradient is needed."
    )


# ---- anomaly mode ---------------------------------------------------------------------------


class detect_anomaly:
    """Debugging mode: record where each operation was made, and raise at the first non-finite value.

    Inside, every recorded operation keeps the user's file and line and a copy of the arrays it
    saved; a forward output or a backward gradient that is not finite raises `FloatingPointError`
    naming the primitive and that line, and `backward` checks that no saved array was changed
    since it was recorded (catching writes through views taken before recording, which the
    read-only guard cannot see). Off by default, and free when off.

    >>> import mytorch
    >>> from mytorch import functional as F
    >>> with mytorch.detect_anomaly():
    ...     F.log(np.array([-1.0]))
    Traceback (most recent call last):
    ...
    FloatingPointError: log produced nan in its output (recorded at ...)
    """

    def __enter__(self) -> detect_anomaly:
        _state.anomaly += 1
        _sync_recorder()
        return self

    def __exit__(self, *exc_info: object) -> None:
        _state.anomaly -= 1
        _sync_recorder()

    def __call__(self, function: Callable) -> Callable:
        @functools.wraps(function)
        def under(*args: Any, **kwargs: Any) -> Any:
            with detect_anomaly():
                return function(*args, **kwargs)

        return under


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _user_line() -> str:
    """The first stack frame outside mytorch: where the user asked for this operation."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return "an unknown line"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _first_non_finite(values: Sequence[Any]) -> tuple[int, str] | None:
    for position, value in enumerate(values):
        if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in "fc":
            finite = np.isfinite(value)
            if not np.all(finite):
                return position, "nan" if np.isnan(value).any() else "inf"
    return None


def _watch(op: Operation) -> None:
    """Anomaly mode at record time: where, a copy of what was saved, and a finite output."""
    op.source = _user_line()
    op.saved = [
        (position, value, value.copy())
        for position, value in enumerate(op.inputs)
        if isinstance(value, np.ndarray)
    ]
    bad = _first_non_finite([op.output])
    if bad is not None:
        raise FloatingPointError(f"{op.name} produced {bad[1]} in its output (recorded at {op.source})")


def _check_saved(op: Operation) -> None:
    for position, value, copy in op.saved or ():
        if value.shape != copy.shape or not np.array_equal(value, copy, equal_nan=True):
            raise RuntimeError(
                f"backward: input {position} of {op.name} (recorded at {op.source}) was changed in "
                "place after it was recorded, so its gradient would be wrong. Write to a copy, or "
                "record the operation after the write."
            )


def _check_gradients(op: Operation, grads: Sequence[Any]) -> None:
    bad = _first_non_finite(grads)
    if bad is not None:
        where = f" (recorded at {op.source})" if op.source else ""
        raise FloatingPointError(
            f"backward: the backward rule of {op.name} gave {bad[1]} in the gradient of its input "
            f"{bad[0]}{where}"
        )


# ---- records ----------------------------------------------------------------------------------


class Operation:
    """One record on the tape.

    The homework's four attributes (`inputs`, `output`, `gradients_to_update`,
    `backward_operation`), plus the `primitive` whose `pullback` the walk calls and its non-array
    `params` (axis, index, ...). A hand-written operation's primitive is an adapter around its
    `backward_operation`.
    """

    __slots__ = (
        "inputs", "output", "gradients_to_update", "backward_operation", "primitive", "params", "needs",
        "source", "saved",
    )

    def __init__(
        self,
        inputs: Sequence[Any],
        output: Any,
        gradients_to_update: Sequence[np.ndarray | None],
        backward_operation: Callable[..., Any],
        primitive: Any = None,
        params: dict[str, Any] | None = None,
        needs: tuple[bool, ...] | None = None,
    ) -> None:
        self.inputs = inputs
        self.output = output
        self.gradients_to_update = gradients_to_update
        self.backward_operation = backward_operation
        self.primitive = primitive if primitive is not None else _HandWritten(backward_operation)
        self.params = params if params is not None else _NO_PARAMS
        # Which inputs carry a gradient (float arrays, or a hand-written target): fixed at record time.
        self.needs = needs if needs is not None else tuple(
            target is not None or is_float_array(value) for value, target in zip(inputs, gradients_to_update)
        )
        self.source = self.saved = None  # set in anomaly mode

    @property
    def name(self) -> str:
        return self.primitive.name

    def __repr__(self) -> str:
        shapes = ", ".join(str(np.shape(a)) for a in self.inputs)
        return f"<Operation {self.name}({shapes}) -> {np.shape(self.output)}>"


_NO_PARAMS: dict[str, Any] = {}
_NO_TARGETS = {n: (None,) * n for n in range(8)}
_NEEDS: dict[tuple[int, int], tuple[bool, ...]] = {}


def _no_targets(count: int) -> tuple[None, ...]:
    # Shared tuples for the usual arities; concatenate and stack may take any number of inputs.
    targets = _NO_TARGETS.get(count)
    return targets if targets is not None else (None,) * count


def _needs_of(count: int, mask: int) -> tuple[bool, ...]:
    """The shared tuple of `count` flags, flag i set where bit i of `mask` is."""
    needs = _NEEDS.get((count, mask))
    if needs is None:
        needs = _NEEDS[count, mask] = tuple(bool(mask >> i & 1) for i in range(count))
    return needs


class _HandWritten:
    """A hand-written `backward_operation(grad_output, *inputs)`, in the shape of a primitive.

    It has no forward or tangent rule (forward mode and compile refuse it) and is first-order:
    its rule computes with NumPy.
    """

    forward = jvp = None

    def __init__(self, backward_operation: Callable[..., Any]) -> None:
        self.backward_operation = backward_operation
        self.name = getattr(backward_operation, "__name__", repr(backward_operation))

    def pullback(self, grad_output: Any, output: Any, inputs: Sequence[Any], params: dict,
                 needs: Sequence[bool], plain: bool | None = None) -> Sequence[Any]:
        grads = self.backward_operation(grad_output, *inputs)
        if len(inputs) == 1 and not isinstance(grads, (tuple, list)):
            grads = (grads,)
        if isinstance(grads, (tuple, list)) and len(grads) > len(inputs) and all(
            g is None for g in grads[len(inputs):]
        ):  # the 2024 handout's rules return None for parameters that were not recorded as inputs
            grads = grads[: len(inputs)]
        if not isinstance(grads, (tuple, list)) or len(grads) != len(inputs):
            count = len(grads) if isinstance(grads, (tuple, list)) else 1
            raise ValueError(
                f"backward: {self.name} returned {count} gradient(s) for {len(inputs)} inputs; a "
                "backward rule returns one gradient per input, as a tuple"
            )
        return [
            _checked_gradient(self.name, i, value, grad) if need and grad is not None else None
            for i, (value, grad, need) in enumerate(zip(inputs, grads, needs))
        ]


# ---- the walks: plain loops over a list of records ------------------------------------------


def walk_backward(
    records: Sequence[Operation],
    start: int,
    seed: Any,
    stop: int = 0,
    *,
    create_graph: bool = False,
    wanted: set[int] | None = None,
    skipped: list[int] | None = None,
    buffer: GradientBuffer | None = None,
) -> dict[int, Any]:
    """Reverse walk over `records[stop:start + 1]`, seeding the output of record `start`.

    Returns the adjoints left at the end, keyed by `id(array)`: those of the arrays that entered
    this stretch without being produced on it. An intermediate's adjoint is dropped as soon as
    its producer has run (and marked freed in `buffer`, if given). With `wanted` (ids), only the
    gradients on paths to those arrays are computed. `skipped` collects the indices not walked
    (the records that do not lead to the start: usually none, so it is the short list to keep).
    With `create_graph` the rules record, so the gradients can be differentiated again.
    """
    adjoints: dict[int, Any] = {id(records[start].output): seed}
    anomaly = _state.anomaly
    add = _recorded_add if create_graph and _recorded_add is not None else None
    plain = not create_graph and _state.tracing is None  # the rules compute, record nothing
    with recording(create_graph), _running_rules():
        for index in range(start, stop - 1, -1):
            op = records[index]
            key = id(op.output)
            grad_output = adjoints.pop(key, None)
            if grad_output is None or wanted is not None and key not in wanted:
                if skipped is not None:  # this record does not lead to the start (or a wanted leaf)
                    skipped.append(index)
                continue
            if buffer is not None:
                buffer.mark_freed(key)
            needs = op.needs
            if wanted is not None:
                needs = _wanted(op, wanted)
                if not any(needs):
                    continue
            try:
                grads = op.primitive.pullback(grad_output, op.output, op.inputs, op.params, needs, plain)
            except (ValueError, TypeError, IndexError) as error:
                raise _named(op, "backward", error) from error
            if anomaly or op.source is not None:
                _check_gradients(op, grads)
            # Accumulate: `+=` into a hand-written record's target array, or into the adjoint map.
            for value, grad, target in zip(op.inputs, grads, op.gradients_to_update):
                if grad is None:
                    continue
                if target is not None:
                    target += grad
                    continue
                key = id(value)
                previous = adjoints.get(key)
                if previous is None:
                    adjoints[key] = grad
                elif add is not None:
                    adjoints[key] = add(previous, grad)
                else:
                    adjoints[key] = previous + grad  # out of place: grad may be shared
    return adjoints


@contextlib.contextmanager
def _running_rules(flag: bool = True) -> Iterator[None]:
    """Mark (or, with False, unmark) this thread as running rules (see `_ThreadState.in_rule`)."""
    outer, _state.in_rule = _state.in_rule, flag
    _sync_recorder()
    try:
        yield
    finally:
        _state.in_rule = outer
        _sync_recorder()


def _named(op: Operation, rule: str, error: Exception) -> Exception:
    """`error`, raised inside a rule, with the primitive and the shapes it was recorded with in front
    (a bare NumPy "shapes not aligned" says neither)."""
    if str(error).startswith(op.name):
        return error
    shapes = ", ".join(
        f"{np.shape(v)} {v.dtype}" if isinstance(v, (np.ndarray, np.generic)) else type(v).__name__
        for v in op.inputs
    )
    kind = type(error) if type(error) in (ValueError, TypeError, IndexError) else (
        IndexError if isinstance(error, IndexError)
        else TypeError if isinstance(error, TypeError) else ValueError
    )
    return kind(f"{op.name} ({rule} rule; inputs {shapes}; output {np.shape(op.output)}): {error}")


def _wanted(op: Operation, wanted: set[int]) -> tuple[bool, ...]:
    """`op.needs`, narrowed to the inputs on a path to a wanted leaf (and hand-written targets)."""
    mask, bit = 0, 1
    for value, target, need in zip(op.inputs, op.gradients_to_update, op.needs):
        if need and (target is not None or id(value) in wanted):
            mask |= bit
        bit <<= 1
    return _needs_of(len(op.inputs), mask)


def _checked_gradient(name: str, position: int, value: Any, grad: Any) -> np.ndarray:
    """A hand-written rule's gradient as an array of its input's shape and dtype, or an error."""
    grad = np.asarray(grad)
    if grad.shape != np.shape(value):
        raise ValueError(
            f"backward: {name} returned a gradient of shape {grad.shape} for input {position} "
            f"of shape {np.shape(value)}"
        )
    return grad


def walk_forward(records: Sequence[Operation], start: int, tangents: dict[int, Any]) -> dict[int, Any]:
    """Push tangents through `records[start:]` with each primitive's tangent rule.

    `tangents` maps `id(array)` to the tangent of that array; arrays not in it have a zero
    tangent. The map is extended in place with the tangent of every output reached.
    """
    with _running_rules():
        _walk_forward(records, start, tangents)
    return tangents


def _walk_forward(records: Sequence[Operation], start: int, tangents: dict[int, Any]) -> None:
    for index in range(start, len(records)):  # records that tangent rules add come after
        op = records[index]
        incoming = [tangents.get(id(value)) for value in op.inputs]
        if all(t is None for t in incoming):
            continue
        if op.primitive.jvp is None:
            raise NotImplementedError(
                f"forward mode: operation {index} ({op.name}) was recorded with add_operation and "
                "has no tangent rule; define it as a primitive instead"
            )
        incoming = [_zero_tangent(value) if t is None else t for value, t in zip(op.inputs, incoming)]
        try:
            tangent = op.primitive.jvp(incoming, op.output, *op.inputs, **op.params)
        except (ValueError, TypeError, IndexError) as error:
            raise _named(op, "tangent", error) from error
        if tangent is not None:
            tangents[id(op.output)] = tangent


def _zero_tangent(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return np.zeros(value.shape, gradient_dtype(value))
    return 0.0


# ---- the engine ---------------------------------------------------------------------------------

# A tape this long holds more than any training step needs: it is most likely a loop that never
# walks it (inference outside no_grad, or a forgotten backward).
LONG_TAPE = 5_000_000


class Autograd:
    """A tape of operations and the gradient buffer its reverse walk fills.

    Creating one makes it the current engine of this thread (`debug` is accepted for the 2024
    handouts and otherwise unused: see `detect_anomaly`).

    >>> from mytorch import functional as F
    >>> engine = Autograd()
    >>> x = np.array([1.0, 2.0])
    >>> y = F.sum(F.mul(x, x))
    >>> engine.backward(y)
    >>> engine.gradient_buffer.get_param(x)
    array([2., 4.])
    """

    def __init__(self, debug: bool = False) -> None:
        self.debug = debug
        self.gradient_buffer = GradientBuffer()
        self.operation_list: list[Operation] = []
        # Arrays this tape holds read-only (see `_hold`), in the order they were taken.
        self._held: dict[int, np.ndarray] = {}
        # Outputs of records a walk consumed that something still uses: meeting one again is a
        # second walk through it (weakly held: once the user drops them, nothing can reach them).
        self._consumed: weakref.WeakValueDictionary[int, np.ndarray] = weakref.WeakValueDictionary()
        self._constant_operations = 0  # operations that ran on constants only (nothing recorded)
        self._warned_long = False
        self._thread = threading.current_thread().name
        self._epoch = 0  # counts releases of the locks (zero_grad): a stretch from before cannot walk
        self._abandoned = False
        previous = _state.engine
        if previous is not None:
            previous._release_all()  # its tape is abandoned: give the user back their arrays
            previous._abandoned = bool(previous.operation_list)
            previous._epoch += 1
        _state.engine = self
        _sync_recorder()
        _ENGINES.add(self)

    @property
    def memory_buffer(self) -> GradientBuffer:
        """The handout's name for `gradient_buffer`."""
        return self.gradient_buffer

    # ---- recording ------------------------------------------------------------------------

    def add_operation(
        self,
        inputs: Sequence[Any],
        output: Any,
        gradients_to_update: Sequence[np.ndarray | None],
        backward_operation: Callable[..., Any],
    ) -> None:
        """Record a hand-written operation (the homework call shape).

        `gradients_to_update[i]` is None (input i's gradient is tracked in the buffer) or an
        array into which input i's gradient is accumulated with `+=` during backward. The output
        may be a NumPy scalar (what `np.sum` returns): it is known by its identity, as an array is.
        """
        if len(inputs) != len(gradients_to_update):
            raise ValueError(
                f"add_operation({getattr(backward_operation, '__name__', backward_operation)}): "
                f"{len(inputs)} inputs but {len(gradients_to_update)} gradients_to_update"
            )
        if not isinstance(output, (np.ndarray, np.generic)):
            raise TypeError(f"add_operation: the output must be a numpy array, got {type(output).__name__}")
        buffer = self.gradient_buffer
        for value, target in zip(inputs, gradients_to_update):
            if isinstance(value, np.ndarray):
                _hold(self._held, value)
                if target is None:
                    buffer.add_spot(value)
            elif isinstance(value, np.generic) and target is None:
                buffer.add_spot(value)
        if isinstance(output, np.ndarray):
            _hold(self._held, output)
        self._append(Operation(list(inputs), output, list(gradients_to_update), backward_operation))

    def _record(self, primitive: Any, inputs: tuple, output: np.ndarray, params: dict,
                watched: bool = True, fresh: bool = False) -> None:
        """Append a primitive's record, if any of its inputs is differentiable.

        This runs once per operation, so it is one flat pass. An array this tape meets for the
        first time is a leaf (every output is held here when it is recorded): it alone is held and
        given a spot in the gradient buffer, which so tracks the leaves only. `watched=False`: the
        caller knows anomaly mode is off (the thread's recorder is set only then). `fresh`: the
        output is a new array a ufunc made (or a tracked view of one), so nothing else reaches it.
        """
        mask, bit = 0, 1
        held = self._held
        constants = None  # integer and bool arrays (indices, labels, masks): read by the rules too
        for value in inputs:
            if type(value) is np.ndarray or isinstance(value, np.ndarray):
                kind = value.dtype.kind
                if kind == "f" or kind == "c" and _complex_declared(primitive, inputs, output):
                    mask |= bit
                    if id(value) not in held:
                        self._first_sight(primitive, value)
                else:
                    constants = [value] if constants is None else [*constants, value]
            bit <<= 1
        if not mask and _state.tracing is None:
            self._constant_operations += 1
            return
        if _CHECKS:
            if output.dtype.kind == "c":
                _complex_declared(primitive, inputs, output)
            if constants is not None:
                for value in constants:
                    if id(value) not in held:
                        _hold(held, value)
            if params:
                params = _frozen_params(held, params)
        if not _GUARD:
            held[id(output)] = output  # seen (so not taken for a leaf when read), not locked
        else:
            if fresh or output.flags.writeable and ((base := output.base) is None or (
                # a fresh array seen through one view (a tracked output): only the view reaches it
                type(base) is np.ndarray and base.base is None and id(base) not in _HOLDERS
            )):
                output.setflags(False)  # positionally: the keyword costs more than the call
                _HOLDERS[id(output)] = 1
                held[id(output)] = output
            else:
                _hold(held, output)
        count = len(inputs)
        op = Operation.__new__(Operation)
        op.inputs, op.output, op.primitive, op.params = inputs, output, primitive, params
        op.gradients_to_update = _NO_TARGETS.get(count) or _no_targets(count)
        op.needs = _NEEDS.get((count, mask)) or _needs_of(count, mask)
        op.source = op.saved = op.backward_operation = None
        tape = self.operation_list
        tape.append(op)
        if watched or len(tape) >= LONG_TAPE:
            self._appended(op)

    def _first_sight(self, primitive: Any, leaf: np.ndarray) -> None:
        """Hold a leaf read-only for this tape and track its gradient (or refuse one NumPy made
        past the dispatch: see `_refuse_unseen`)."""
        if type(leaf) is not np.ndarray and getattr(leaf, "tracked_leaf", False):
            base = leaf.base
            if base is None or getattr(base, "tracked_leaf", False) and leaf.shape != base.shape:
                self._refuse_unseen(primitive, leaf)  # np.r_ / np.c_ made it
        if _GUARD:
            _hold(self._held, leaf)
        else:
            self._held[id(leaf)] = leaf  # seen, not locked
        self.gradient_buffer.add_spot(leaf)

    @staticmethod
    def _refuse_unseen(primitive: Any, value: np.ndarray) -> None:
        """A tracked array NumPy made in C, past every dispatch hook, from another tracked array
        (every tracked array mytorch makes views a plain one; this one is a copy, or a view of a
        tracked array with axes added): np.r_ and np.c_ pass their items through np.array(item,
        subok=True, ndmin=..., dtype=...). Its gradient would stop there, silently: refused."""
        base = value.base
        made = "a copy" if base is None else f"a view of a tracked array ({base.shape} {base.dtype})"
        raise TypeError(
            f"{getattr(primitive, 'name', primitive)}: an input ({value.shape} {value.dtype}) is {made} "
            "that NumPy made outside mytorch's dispatch (np.r_ / np.c_ given a 0-d item, a directive "
            "such as '0,2', or items of mixed dtypes; np.array(x, subok=True, ndmin=...); "
            "ndarray.view), so its gradient would not reach the tracked array it came from. Use "
            "np.concatenate, np.stack, np.column_stack, np.reshape or x.astype(...)."
        )

    def _append(self, op: Operation) -> None:
        self.operation_list.append(op)
        self._appended(op)

    def _appended(self, op: Operation) -> None:
        if _state.anomaly:
            _watch(op)
        if len(self.operation_list) >= LONG_TAPE and not self._warned_long:
            self._warned_long = True
            warnings.warn(
                f"the tape holds {len(self.operation_list):,} operations that no backward has "
                "walked: a loop that never calls backward (inference, evaluation) should run inside "
                "mytorch.no_grad(), or call engine.zero_grad()",
                ResourceWarning,
                stacklevel=4,
            )

    # ---- the reverse walk -----------------------------------------------------------------

    def backward(
        self,
        divergence: Any = 1,
        *,
        gradient: Any = None,
        retain_graph: bool = False,
        create_graph: bool = False,
        inputs: Sequence[np.ndarray] | None = None,
    ) -> None:
        """Walk the tape in reverse and accumulate the gradients of the leaves.

        `divergence` is either the output of a recorded operation (the loss: the walk starts
        there with seed dL/dL = 1, so it must have one element unless `gradient=` gives the
        seed), or, in the homework's forms, the seed of the last recorded operation's output: the
        number 1 or an array of that output's shape (`np.ones_like(out)`). A loss computed outside
        the tape (`loss.item()`, `float(L)`, `L / 4` with NumPy) is refused.

        The walk consumes what it walked (as in PyTorch): those operations leave the tape and
        their arrays become writable; walking them again raises, unless the first walk was given
        `retain_graph=True`. With `create_graph=True` the walk is itself recorded (and the tape
        kept), so its gradients can be differentiated again. With `inputs` (as in PyTorch), only
        those leaves' gradients are computed; the others keep what they had.
        """
        if self._abandoned:
            raise RuntimeError(
                "backward: this engine's tape was abandoned when a new Autograd() was created (which "
                "makes the new one current and gives the tape's arrays back to the user, writable), so "
                "its arrays may have changed since the forward. Run the forward again on the current "
                "engine (mytorch.engine()), or create the engine once, before the forward."
            )
        start, seed = self._start_of_walk(divergence, gradient)
        tape = self.operation_list
        if _state.anomaly or tape[start].source is not None:
            for op in tape[: start + 1]:
                _check_saved(op)
        wanted = None if inputs is None else self._paths_from(inputs, start)
        buffer = self.gradient_buffer
        skipped: list[int] | None = None if retain_graph or create_graph else []
        adjoints = walk_backward(  # a walk that consumes forgets the intermediates: no need to mark them
            tape, start, seed, create_graph=create_graph, wanted=wanted, skipped=skipped,
            buffer=buffer if skipped is None else None,
        )
        self._refuse_consumed(adjoints)
        _refuse_views_of_tracked(adjoints, buffer)
        stored = {id(seed)}  # arrays the buffer must not alias: the user's seed, earlier leaves' gradients
        for key, adjoint in adjoints.items():
            if key in buffer.memory:
                buffer.accumulate(key, adjoint if create_graph else _own_copy(adjoint, stored))
        if skipped is not None:
            if not _CONSUME:  # measuring: the tape dropped as zero_grad drops it, nothing refused later
                tape.clear()
                self._release_all()
                return
            self._consume(start, skipped)

    def _start_of_walk(self, divergence: Any, gradient: Any) -> tuple[int, Any]:
        tape = self.operation_list
        if isinstance(divergence, (np.ndarray, np.generic)):
            for index in range(len(tape) - 1, -1, -1):
                if tape[index].output is divergence:
                    return index, self._seed_for(divergence, gradient)
            self._refuse_consumed({id(divergence): divergence})
        if not tape:
            raise RuntimeError(self._nothing_recorded())
        last = tape[-1].output
        if isinstance(divergence, (bool, np.bool_)) or not isinstance(
            divergence, (int, float, np.number, np.ndarray)
        ):
            kind = type(divergence).__name__
            raise TypeError(f"backward: expected the loss (an array) or a seed, got {kind}")
        seed = np.asarray(divergence)
        if isinstance(divergence, np.ndarray) and self.gradient_buffer.is_in_memory(divergence):
            raise ValueError(
                f"backward: the array given (shape {seed.shape}) was not produced by any recorded "
                "operation: it is an input of the tape (a leaf). Pass the loss."
            )
        if seed.ndim == 0 and seed == 1:
            return len(tape) - 1, np.ones_like(last)  # backward(1): the handout's seed
        if seed.ndim and seed.shape == np.shape(last):  # np.ones_like(out), or any seed of that shape
            return len(tape) - 1, seed.astype(np.asarray(last).dtype, copy=False)
        raise ValueError(
            f"backward: the value given ({_brief(seed)}) was not produced by any recorded operation. "
            "If it is a loss computed outside the tape (a number such as loss.item() or float(L), "
            "or an array computed with NumPy, such as L / 4), compute it with mytorch.functional "
            "and pass that array. A seed must be 1 or an array of the last operation's output shape "
            f"{np.shape(last)} (np.ones_like(out))."
        )

    def _seed_for(self, loss: Any, gradient: Any) -> Any:
        if gradient is not None:
            seed = np.asarray(gradient, dtype=loss.dtype)
            if seed.shape != np.shape(loss):
                raise ValueError(
                    f"backward: gradient= has shape {seed.shape}, the loss has shape {np.shape(loss)}"
                )
            return seed
        if loss.dtype.kind == "c":  # as PyTorch: a gradient is the derivative of a real number
            raise TypeError(
                f"backward: the loss is complex ({loss.dtype}); a gradient is seeded implicitly only "
                "for a real loss. Reduce it to a real number (np.abs, np.real), or pass gradient=."
            )
        if np.size(loss) != 1:
            raise ValueError(
                f"backward: the loss has shape {np.shape(loss)}; a gradient can only be seeded "
                "implicitly for a loss of one element. Reduce it (F.sum, F.mean), or pass "
                "gradient= with the loss's shape."
            )
        return np.ones_like(loss)

    def _nothing_recorded(self) -> str:
        if self._constant_operations:
            return (
                f"backward: nothing is recorded on this engine's tape: {self._constant_operations} "
                "operation(s) ran on integer, bool or Python-number inputs only, and those are "
                "constants (no gradient). Differentiate float arrays: np.array(x, dtype=float)."
            )
        return (
            "backward: nothing is recorded on this engine's tape. Recording happens on the current "
            "engine; a new Autograd() starts an empty tape and becomes current, so create the "
            "engine before the forward pass (and not inside no_grad). A backward consumes the "
            "operations it walked (pass retain_graph=True to walk them again), and engine.zero_grad() "
            "empties the tape (to clear gradients only, call the optimizer's zero_grad())."
        )

    def _refuse_consumed(self, adjoints: dict[int, Any]) -> None:
        consumed = self._consumed
        if consumed and any(key in consumed for key in adjoints):
            raise RuntimeError(
                "backward: trying to walk back through operations that an earlier backward already "
                "walked and released (their arrays may have changed since). Pass retain_graph=True "
                "to the first backward to walk them again, or run the forward again."
            )

    def _paths_from(self, leaves: Sequence[np.ndarray], start: int) -> set[int]:
        """Ids of `leaves` and of every output recorded up to `start` that depends on them."""
        reached = {id(leaf) for leaf in leaves}
        for op in self.operation_list[: start + 1]:
            for value in op.inputs:  # a loop, not any(...): this runs once per record
                if id(value) in reached:
                    reached.add(id(op.output))
                    break
        return reached

    def _consume(self, start: int, skipped: list[int]) -> None:
        """Take the records a walk from `start` visited (all up to it but `skipped`) off the tape,
        with what only they kept alive."""
        tape, buffer = self.operation_list, self.gradient_buffer
        _remember(self._consumed, tape[start].output)
        if not skipped and start == len(tape) - 1:  # the usual case: the walk used the whole tape
            tape.clear()  # first: the intermediates only the records held are freed at the release
            buffer.hold_all_weakly()  # the leaves: tracked while the user holds them
            self._release_all()
            return
        walked = set(range(start + 1)).difference(skipped)
        gone = [tape[i] for i in sorted(walked)]
        tape[:] = [op for i, op in enumerate(tape) if i not in walked]
        survivors = tape
        for op in gone:
            buffer.forget(id(op.output))
            for value in op.inputs:
                buffer.hold_weakly(id(value))
        produced = {id(op.output) for op in gone}
        needed: set[int] = set()
        for op in survivors:  # what the rest of the tape still uses stays held
            for value in (*op.inputs, op.output, *(_param_arrays(op.params) if op.params else ())):
                if id(value) in produced:
                    _remember(self._consumed, value)
                while isinstance(value, np.ndarray):
                    needed.add(id(value))
                    value = value.base
        released = [a for key, a in self._held.items() if key not in needed]
        for array in released:
            del self._held[id(array)]
        _let_go(released)

    # ---- marks: what a stretch recorded, walked, then cut back --------------------------------

    def mark(self) -> tuple[int, int, int]:
        """A position on the tape (and in the buffer and the held arrays) to `cut_back` to later."""
        return len(self.operation_list), self.gradient_buffer.size(), len(self._held)

    def cut_back(self, mark: tuple[int, int, int]) -> None:
        """Forget everything recorded since `mark`, leaving what came before untouched."""
        tape_length, buffer_size, held_size = mark
        del self.operation_list[tape_length:]
        self.gradient_buffer.truncate(buffer_size)
        released = []
        while len(self._held) > held_size:
            released.append(self._held.popitem()[1])
        _let_go(released)

    def walk_backward(self, start: int, seed: Any, stop: int = 0, **options: Any) -> dict[int, Any]:
        """`walk_backward` over this engine's tape (see the module function)."""
        return walk_backward(self.operation_list, start, seed, stop, **options)

    def walk_forward(self, start: int, tangents: dict[int, Any]) -> dict[int, Any]:
        """`walk_forward` over this engine's tape (see the module function)."""
        return walk_forward(self.operation_list, start, tangents)

    def zero_grad(self) -> None:
        """Empty the tape and the gradient buffer; held arrays are writable again (a stretch of
        the tape taken before, such as a transform's, can no longer be walked)."""
        self._release_all()
        self._epoch += 1
        self._abandoned = False
        self.operation_list = []
        self.gradient_buffer.clear()

    def _release_all(self) -> None:
        released = list(self._held.values())
        self._held = {}
        _let_go(released)


class Stretch:
    """A stretch of tape: mark, record, walk what was recorded, cut back.

    The one way transforms, layers' drop-in `backward`, the checkers, the grader and compile
    record a computation and differentiate just that. Inside `with Stretch() as s:` primitives
    record (even under no_grad); `s.backward(...)`/`s.forward(...)` walk only what was recorded
    since the mark; leaving the block cuts the tape back, unless `keep=True`.

    >>> from mytorch import functional as F
    >>> x = np.array([1.0, 2.0])
    >>> with Stretch() as s:
    ...     y = F.sum(F.mul(x, x))
    ...     adjoints = s.backward(y, np.array(1.0))
    >>> adjoints[id(x)]
    array([2., 4.])
    """

    def __init__(self, engine_: Autograd | None = None, *, keep: bool = False,
                 start: tuple[int, int, int] | None = None) -> None:
        self.engine = engine_ if engine_ is not None else engine()
        self.keep = keep
        self.mark = self.engine.mark() if start is None else start  # a mark taken earlier, if given
        self._epoch = self.engine._epoch
        self._records: list[Operation] | None = None
        self._recording = recording(True)
        self._user_code = _running_rules(False)

    def __enter__(self) -> Stretch:
        self._recording.__enter__()
        self._user_code.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._user_code.__exit__(*exc_info)
        self._recording.__exit__()
        if not self.keep:
            self.cut_back()

    def seal(self, start: int | None = None, end: int | None = None) -> Stretch:
        """Fix the records of this stretch as they are now (walks that record come after them),
        from tape position `start` (the mark, by default) to `end` (the end of the tape)."""
        self._records = self.engine.operation_list[self.mark[0] if start is None else start:end]
        return self

    @property
    def records(self) -> list[Operation]:
        """The records of this stretch (sealed at the first walk, if not before)."""
        if self._epoch != self.engine._epoch:
            raise RuntimeError(
                "the tape this computation recorded was released (engine.zero_grad() or a new "
                "Autograd() ran after the forward), so the arrays it read may have changed: its "
                "derivatives cannot be taken. Call zero_grad() outside the function being differentiated."
            )
        if self._records is None:
            self.seal()
        return self._records

    def producer(self, array: Any) -> int | None:
        """The index in `records` of the record that produced `array`, or None."""
        records = self.records
        return next((i for i in range(len(records) - 1, -1, -1) if records[i].output is array), None)

    def backward(self, output: Any, seed: Any, *, create_graph: bool = False,
                 wanted: set[int] | None = None) -> dict[int, Any]:
        """Adjoints (by id) of what entered the stretch, seeding `output` with `seed`."""
        start = self.producer(output)
        if start is None:  # not computed here: an input passed through, or a constant
            return {id(output): seed}
        return walk_backward(self.records, start, seed, create_graph=create_graph, wanted=wanted)

    def forward(self, tangents: dict[int, Any]) -> dict[int, Any]:
        """Push `tangents` (by id) through the stretch; returns the extended map."""
        return walk_forward(self.records, 0, tangents)

    def cut_back(self, keep_gradients: bool = False) -> None:
        """Forget what the stretch recorded (keeping gradients set for arrays tracked since, if asked)."""
        buffer = self.engine.gradient_buffer
        kept = buffer.tracked(since=self.mark[1]) if keep_gradients else []
        self.engine.cut_back(self.mark)
        for array, gradient in kept:
            if isinstance(gradient, np.ndarray):
                buffer.set_param(array, gradient)


# The arrays `mytorch.track` made, by the id of the array owning their data: a backward can then
# tell a plain NumPy view of a tracked array (`np.asarray(W).T`) from an unrelated array.
_TRACKED_BY_OWNER: weakref.WeakValueDictionary[int, np.ndarray] = weakref.WeakValueDictionary()


def note_tracked(array: np.ndarray) -> None:
    """Remember that `array` (made by `mytorch.track`) is tracked, under the owner of its data."""
    _TRACKED_BY_OWNER[id(array.base if array.base is not None else array)] = array


def _refuse_views_of_tracked(adjoints: dict[int, Any], buffer: GradientBuffer) -> None:
    """A leaf that is a plain NumPy view (`np.asarray(W).T`, `W.view(np.ndarray)`) of a tracked
    array: the tape read the view, so its gradient would stop there and never reach W. Say so."""
    if not _TRACKED_BY_OWNER:
        return
    for key in adjoints:
        leaf = buffer.array(key)
        if not isinstance(leaf, np.ndarray) or getattr(leaf, "tracked_leaf", False):
            continue
        tracked = _TRACKED_BY_OWNER.get(id(leaf.base if leaf.base is not None else leaf))
        if tracked is not None:
            raise RuntimeError(
                f"backward: the tape read a plain NumPy view (shape {leaf.shape}) of a tracked array "
                f"of shape {tracked.shape} (made with np.asarray, .view or a plain array sharing its "
                "data), so the gradient would stop at the view and never reach the tracked array. "
                "Compute on the tracked array itself: W.T, W[0], W.reshape(...) on it record."
            )


def _remember(consumed: weakref.WeakValueDictionary, output: Any) -> None:
    try:
        consumed[id(output)] = output
    except TypeError:  # a NumPy scalar cannot be referenced weakly
        pass


def _own_copy(adjoint: Any, stored: set[int]) -> np.ndarray:
    """`adjoint` itself when it is a fresh array no other gradient shares, else a copy.

    The walk passes arrays through (add gives both inputs the same one) and hands out views
    (reshape) and read-only broadcasts (sum); a user who scales one gradient in place must not
    change another.
    """
    if type(adjoint) is np.ndarray and adjoint.base is None and adjoint.flags.writeable and (
        id(adjoint) not in stored
    ):
        stored.add(id(adjoint))
        return adjoint
    return np.array(adjoint)


def _brief(value: np.ndarray) -> str:
    if value.size == 1:
        return f"{value.item()!r}"
    return f"an array of shape {value.shape}"


def backward(divergence: Any = 1, **options: Any) -> None:
    """Walk the current engine's tape from `divergence` (see `Autograd.backward` for the options).

    >>> import mytorch
    >>> from mytorch import functional as F
    >>> x = np.array(3.0)
    >>> y = F.mul(x, x)
    >>> mytorch.backward(y)
    >>> mytorch.engine().gradient_buffer.get_param(x)
    array(6.)
    """
    engine().backward(divergence, **options)

"""The tape and its walks.

Forward pass: every operation appends one `Operation` (inputs, output, backward rule) to the tape,
`Autograd.operation_list`. Recording order is a topological order, so

- the reverse walk (`backward`) is a plain loop from the end of the list to its start, handing each
  operation the adjoint of its output and accumulating the adjoints of its inputs;
- the forward walk (`walk_forward`) is a plain loop from a mark to the end, pushing tangents.

No recursion, no graph search: a tape of a million operations walks like one of ten.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import ContextDecorator
from typing import Any

import numpy as np

from mytorch.utils import _FREED, GradientBuffer


class _ThreadState(threading.local):
    engine: Autograd | None = None  # the current engine of this thread
    recording: bool = True  # False inside no_grad() and inside a non-recording backward walk
    wanted: set[int] | None = None  # during a walk asked for some leaves only: ids on their paths


_state = _ThreadState()


def engine() -> Autograd:
    """The current engine of this thread (created on first use).

    >>> import mytorch
    >>> mytorch.engine() is mytorch.engine()
    True
    """
    current = _state.engine
    return current if current is not None else Autograd()


def is_recording() -> bool:
    """Whether primitives called now are recorded on the tape."""
    return _state.recording


class no_grad(ContextDecorator):
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
        self._outer: list[bool] = []

    def __enter__(self) -> no_grad:
        self._outer.append(_state.recording)
        _state.recording = False
        return self

    def __exit__(self, *exc_info: object) -> None:
        _state.recording = self._outer.pop()


_NO_TARGETS = {n: (None,) * n for n in range(8)}


def _no_targets(count: int) -> tuple[None, ...]:
    # Shared tuples for the usual arities; concatenate and stack may take any number of inputs.
    targets = _NO_TARGETS.get(count)
    return targets if targets is not None else (None,) * count


class Operation:
    """One record on the tape.

    `backward_operation(grad_output, *inputs)` returns one gradient per input. A primitive's
    record also keeps the primitive (for its fast vjp and its tangent rule) and its non-array
    parameters (axis, index, ...).
    """

    __slots__ = ("inputs", "output", "gradients_to_update", "backward_operation", "primitive", "params")

    def __init__(
        self,
        inputs: Sequence[Any],
        output: np.ndarray,
        gradients_to_update: Sequence[np.ndarray | None],
        backward_operation: Callable[..., Any],
        primitive: Any = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.inputs = inputs
        self.output = output
        self.gradients_to_update = gradients_to_update
        self.backward_operation = backward_operation
        self.primitive = primitive
        self.params = params

    def __repr__(self) -> str:
        shapes = ", ".join(str(np.shape(a)) for a in self.inputs)
        return f"<Operation {_op_name(self)}({shapes}) -> {np.shape(self.output)}>"


def _op_name(op: Operation) -> str:
    if op.primitive is not None:
        return op.primitive.name
    return getattr(op.backward_operation, "__name__", repr(op.backward_operation))


class Autograd:
    """A tape of operations and the gradient buffer its reverse walk fills.

    Creating one makes it the current engine of this thread.

    >>> from mytorch import functional as F
    >>> engine = Autograd()
    >>> x = np.array([1.0, 2.0])
    >>> y = F.sum(F.mul(x, x))
    >>> engine.backward(y)
    >>> engine.gradient_buffer.get_param(x)
    array([2., 4.])
    """

    def __init__(self) -> None:
        self.gradient_buffer = GradientBuffer()
        self.operation_list: list[Operation] = []
        # Arrays made read-only while the tape needs them, in the order they were locked.
        self._locked: list[np.ndarray] = []
        previous = _state.engine
        if previous is not None:
            previous._release()  # its tape is abandoned: give the user back their arrays
        _state.engine = self

    @property
    def memory_buffer(self) -> GradientBuffer:
        """The handout's name for `gradient_buffer`."""
        return self.gradient_buffer

    # ---- recording ------------------------------------------------------------------------

    def add_operation(
        self,
        inputs: Sequence[Any],
        output: np.ndarray,
        gradients_to_update: Sequence[np.ndarray | None],
        backward_operation: Callable[..., Any],
    ) -> None:
        """Record a hand-written operation (the homework call shape).

        `gradients_to_update[i]` is None (input i's gradient is tracked in the buffer) or an
        array into which input i's gradient is accumulated with `+=` during backward.
        """
        if len(inputs) != len(gradients_to_update):
            raise ValueError(
                f"add_operation({getattr(backward_operation, '__name__', backward_operation)}): "
                f"{len(inputs)} inputs but {len(gradients_to_update)} gradients_to_update"
            )
        if not isinstance(output, np.ndarray):
            raise TypeError(f"add_operation: the output must be a numpy array, got {type(output).__name__}")
        memory = self.gradient_buffer
        for value, target in zip(inputs, gradients_to_update):
            if isinstance(value, np.ndarray):
                self._guard(value)
                if target is None:
                    memory.add_spot(value)
        self._guard(output)
        self.operation_list.append(
            Operation(list(inputs), output, list(gradients_to_update), backward_operation)
        )

    def _record(self, primitive: Any, inputs: tuple, output: np.ndarray, params: dict) -> None:
        """Append a primitive's record, if any of its inputs is differentiable.

        This runs once per operation, so it is written flat: the same work as `_guard` and
        `GradientBuffer.add_spot`, inlined.
        """
        tracked = False
        memory, arrays = self.gradient_buffer.memory, self.gradient_buffer._arrays
        for value in inputs:
            if type(value) is np.ndarray and value.dtype.kind == "f":
                tracked = True
                if value.flags.writeable:
                    self._guard(value)
                key = id(value)
                if key not in memory:
                    memory[key] = None
                    arrays[key] = value
        if tracked:
            if output.base is None and output.flags.writeable:  # a fresh array: guard it alone
                output.setflags(write=False)
                self._locked.append(output)
            else:
                self._guard(output)
            self.operation_list.append(
                Operation(inputs, output, _no_targets(len(inputs)), primitive.backward, primitive, params)
            )

    def _guard(self, array: np.ndarray) -> None:
        # Read-only while the tape needs it, and so is what it views: `W += 1` is refused
        # while `W.T` is on the tape.
        while array is not None:
            if array.flags.writeable:
                array.setflags(write=False)
                self._locked.append(array)
            array = array.base if isinstance(array.base, np.ndarray) else None

    def _release(self, since: int = 0) -> None:
        locked = self._locked[since:]
        del self._locked[since:]
        views = []
        for array in locked:
            if array.base is None:
                array.setflags(write=True)
            else:
                views.append(array)
        for array in views:  # after the owners: numpy lets a view be writeable only if its base is
            try:
                array.setflags(write=True)
            except ValueError:  # its base belongs to someone who keeps it read-only
                pass

    # ---- the reverse walk -----------------------------------------------------------------

    def backward(
        self, divergence: Any = 1.0, *, create_graph: bool = False, inputs: Sequence[np.ndarray] | None = None
    ) -> None:
        """Walk the tape in reverse and accumulate the gradients of the leaves.

        `divergence` is either the output of a recorded operation (the walk starts there with
        seed dL/dL = 1) or the seed gradient (number or array) for the last operation's output.
        With `create_graph=True` the walk is itself recorded, so its gradients can be
        differentiated again. With `inputs` (as in PyTorch), only those leaves' gradients are
        computed and accumulated, skipping work such as the gradient of a data batch; the other
        leaves keep the gradient they had.
        """
        start, seed = self._start_of_walk(divergence)
        memory = self.gradient_buffer
        wanted = None if inputs is None else self._paths_from(inputs, start)
        adjoints = self.walk_backward(start, seed, create_graph=create_graph, freed=memory, wanted=wanted)
        stored = {id(seed)}  # arrays the buffer must not alias: the user's seed, earlier leaves' gradients
        for key, adjoint in adjoints.items():
            array = memory._arrays.get(key)
            if array is not None:
                previous = memory.memory[key]
                if previous is None or previous is _FREED:
                    memory.memory[key] = adjoint if create_graph else _own_copy(adjoint, stored)
                else:
                    memory.memory[key] = previous + adjoint
        if not create_graph:
            self._release()  # the tape is consumed: parameters are writable again

    def _start_of_walk(self, divergence: Any) -> tuple[int, np.ndarray]:
        tape = self.operation_list
        if not tape:
            raise RuntimeError(
                "backward: nothing is recorded on this engine's tape. Recording happens on the "
                "current engine; a new Autograd() starts an empty tape and becomes current, so "
                "create the engine before the forward pass (and not inside no_grad)."
            )
        if isinstance(divergence, np.ndarray):
            for index in range(len(tape) - 1, -1, -1):
                if tape[index].output is divergence:
                    return index, np.ones_like(divergence)
            last = tape[-1].output
            if divergence.shape != last.shape or self.gradient_buffer.is_in_memory(divergence):
                raise ValueError(
                    f"backward: the array given (shape {divergence.shape}) was not produced by any "
                    "recorded operation. Pass the output of a recorded operation (the loss), or a "
                    f"seed gradient with the last operation's output shape {last.shape}."
                )
            return len(tape) - 1, divergence.astype(last.dtype, copy=False)
        if isinstance(divergence, (int, float, np.number)) and not isinstance(divergence, bool):
            last = tape[-1].output
            return len(tape) - 1, np.full(last.shape, divergence, dtype=last.dtype)
        raise TypeError(f"backward: expected an array or a number, got {type(divergence).__name__}")

    def _paths_from(self, leaves: Sequence[np.ndarray], start: int) -> set[int]:
        """Ids of `leaves` and of every output recorded up to `start` that depends on them."""
        reached = {id(leaf) for leaf in leaves}
        for op in self.operation_list[: start + 1]:
            if any(id(value) in reached for value in op.inputs):
                reached.add(id(op.output))
        return reached

    def walk_backward(
        self,
        start: int,
        seed: np.ndarray,
        stop: int = 0,
        *,
        create_graph: bool = False,
        freed: GradientBuffer | None = None,
        wanted: set[int] | None = None,
    ) -> dict[int, np.ndarray]:
        """Reverse walk over `operation_list[stop:start + 1]`, seeding the output of op `start`.

        Returns the adjoints left at the end, keyed by `id(array)`: those of the arrays that
        entered this stretch of tape without being produced on it. An intermediate's adjoint is
        dropped as soon as its producer has been processed (and marked in `freed`, if given).
        With `wanted` (ids), gradients are computed only for those arrays.
        """
        tape = self.operation_list
        adjoints: dict[int, np.ndarray] = {id(tape[start].output): seed}
        freed_memory = freed.memory if freed is not None else {}
        outer_recording, outer_wanted = _state.recording, _state.wanted
        _state.recording, _state.wanted = create_graph, wanted
        try:
            for index in range(start, stop - 1, -1):
                op = tape[index]
                key = id(op.output)
                grad_output = adjoints.pop(key, None)
                if grad_output is None or wanted is not None and key not in wanted:
                    continue  # this operation does not lead to the start (or to a wanted leaf)
                if key in freed_memory:
                    freed_memory[key] = _FREED
                if op.primitive is not None:
                    if op.params:
                        grads = op.primitive.vjp(grad_output, op.output, *op.inputs, **op.params)
                    else:
                        grads = op.primitive.vjp(grad_output, op.output, *op.inputs)
                else:
                    grads = op.backward_operation(grad_output, *op.inputs)
                    if len(op.inputs) == 1 and not isinstance(grads, (tuple, list)):
                        grads = (grads,)
                    _check_gradient_count(op, grads)
                for value, grad, target in zip(op.inputs, grads, op.gradients_to_update):
                    if grad is None or type(value) is not np.ndarray or value.dtype.kind != "f":
                        continue
                    if wanted is not None and target is None and id(value) not in wanted:
                        continue
                    if type(grad) is not np.ndarray or grad.shape != value.shape:
                        grad = _checked_gradient(op, value, grad)
                    if target is not None:
                        target += grad
                        continue
                    if grad.dtype is not value.dtype and grad.dtype != value.dtype:
                        grad = _cast(grad, value.dtype, create_graph)
                    key = id(value)
                    previous = adjoints.get(key)
                    if previous is None:
                        adjoints[key] = grad
                    elif create_graph:
                        adjoints[key] = _functional().add(previous, grad)
                    else:
                        adjoints[key] = previous + grad  # out of place: grad may be shared
        finally:
            _state.recording, _state.wanted = outer_recording, outer_wanted
        return adjoints

    # ---- the forward walk -----------------------------------------------------------------

    def walk_forward(self, start: int, tangents: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """Push tangents through `operation_list[start:]` with each primitive's tangent rule.

        `tangents` maps `id(array)` to the tangent of that array; arrays not in it have a zero
        tangent. The map is extended in place with the tangent of every output reached.
        """
        tape = self.operation_list
        for index in range(start, len(tape)):  # ops that the tangent rules record come after
            op = tape[index]
            incoming = [tangents.get(id(value)) for value in op.inputs]
            if all(t is None for t in incoming):
                continue
            if op.primitive is None:
                raise NotImplementedError(
                    f"forward mode: operation {index} ({_op_name(op)}) was recorded with "
                    "add_operation and has no tangent rule; define it as a primitive instead"
                )
            incoming = [
                _zero_tangent(value) if t is None else t for value, t in zip(op.inputs, incoming)
            ]
            tangent = op.primitive.jvp(incoming, op.output, *op.inputs, **op.params)
            if tangent is not None:
                tangents[id(op.output)] = tangent
        return tangents

    # ---- marks: transforms record, walk what they recorded, and cut back ------------------

    def mark(self) -> tuple[int, int, int]:
        """A position on the tape (and in the buffer and lock list) to `cut_back` to later."""
        return len(self.operation_list), len(self.gradient_buffer.memory), len(self._locked)

    def cut_back(self, mark: tuple[int, int, int]) -> None:
        """Forget everything recorded since `mark`, leaving what came before untouched."""
        tape_length, memory_length, locked_length = mark
        del self.operation_list[tape_length:]
        memory = self.gradient_buffer
        while len(memory.memory) > memory_length:
            key, _ = memory.memory.popitem()  # dicts pop the newest entry first
            memory._arrays.pop(key, None)
        self._release(since=locked_length)

    def zero_grad(self) -> None:
        """Empty the tape and the gradient buffer; tracked arrays are writable again."""
        self._release()
        self.operation_list = []
        self.gradient_buffer.clear()


def _own_copy(adjoint: np.ndarray, stored: set[int]) -> np.ndarray:
    """`adjoint` itself when it is a fresh array no other gradient shares, else a copy.

    The walk passes arrays through (add gives both inputs the same one) and hands out views
    (reshape) and read-only broadcasts (sum); a user who scales one gradient in place must not
    change another.
    """
    if adjoint.base is None and adjoint.flags.writeable and id(adjoint) not in stored:
        stored.add(id(adjoint))
        return adjoint
    return np.array(adjoint)


def _functional() -> Any:
    from mytorch import functional  # functional records on this module's engines

    return functional


def _cast(grad: np.ndarray, dtype: np.dtype, create_graph: bool) -> np.ndarray:
    return _functional().astype(grad, dtype) if create_graph else grad.astype(dtype)


def _zero_tangent(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return np.zeros(value.shape, value.dtype if value.dtype.kind == "f" else float)
    return 0.0


def _check_gradient_count(op: Operation, grads: Any) -> None:
    if not isinstance(grads, (tuple, list)) or len(grads) != len(op.inputs):
        count = len(grads) if isinstance(grads, (tuple, list)) else 1
        raise ValueError(
            f"backward: {_op_name(op)} returned {count} gradient(s) for {len(op.inputs)} inputs"
        )


def _checked_gradient(op: Operation, value: np.ndarray, grad: Any) -> np.ndarray:
    grad = np.asarray(grad)
    if grad.shape != value.shape:
        position = next(i for i, v in enumerate(op.inputs) if v is value)
        raise ValueError(
            f"backward: {_op_name(op)} returned a gradient of shape {grad.shape} for input "
            f"{position} of shape {value.shape}"
        )
    return grad


def backward(divergence: Any = 1.0, *, create_graph: bool = False) -> None:
    """Walk the current engine's tape from `divergence` (see `Autograd.backward`).

    >>> import mytorch
    >>> from mytorch import functional as F
    >>> x = np.array(3.0)
    >>> y = F.mul(x, x)
    >>> mytorch.backward(y)
    >>> mytorch.engine().gradient_buffer.get_param(x)
    array(6.)
    """
    engine().backward(divergence, create_graph=create_graph)

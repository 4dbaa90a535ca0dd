"""Adjoint memory, and the arithmetic of undoing broadcasting.

The homework engine keyed its buffer by an array's data address, which confuses `W` with `W.T`,
`x` with `x[0]`, and a freed array with the next one allocated at the same spot. Here an array is
known by its identity, and the buffer holds a reference to every array it tracks while the tape
needs it, so an identity is never reused while it is in the buffer.

This module imports nothing else of mytorch: with `autograd_engine.py` it can be copied into a
course handout's own `mytorch/` package.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

# A tracked intermediate whose adjoint was freed by the reverse walk once it had been used.
_FREED = object()


class GradientBuffer:
    """Adjoint memory keyed by array identity.

    `memory` maps `id(array)` to the array's gradient (None while none has arrived); the handout
    reads it directly. Everything else goes through the methods.

    >>> buffer = GradientBuffer()
    >>> x = np.ones(3)
    >>> buffer.add_spot(x)
    >>> buffer.update_param(x, np.full(3, 2.0))
    >>> buffer.get_param(x)
    array([2., 2., 2.])
    >>> buffer.gradient(np.ones(3)) is None        # untracked: no gradient
    True
    """

    def __init__(self) -> None:
        # id(array) -> its gradient, or None while no gradient has arrived (zero, allocated lazily).
        self.memory: dict[int, Any] = {}
        # id(array) -> the array (or, once the tape no longer needs it, a weak reference to it, so a
        # data batch the user dropped leaves the buffer): holding it keeps its identity unique.
        self._arrays: dict[int, Any] = {}

    # ---- the handout's methods ---------------------------------------------------------------

    def is_in_memory(self, array: Any) -> bool:
        """Whether `array` (this very object, not an equal or aliasing one) is tracked."""
        return id(array) in self.memory

    def add_spot(self, array: Any) -> None:
        """Start tracking `array`; its gradient is zero until one arrives."""
        key = id(array)
        if key not in self.memory:
            self.memory[key] = None
            self._arrays[key] = array

    def update_param(self, array: np.ndarray, gradient: np.ndarray) -> None:
        """Accumulate `gradient` into `array`'s gradient (tracking `array` if it is new)."""
        self.add_spot(array)
        self.accumulate(id(array), _checked(array, gradient, "update_param"))

    def set_param(self, array: np.ndarray, gradient: np.ndarray) -> None:
        """Overwrite `array`'s gradient."""
        self.add_spot(array)
        self.memory[id(array)] = _checked(array, gradient, "set_param")

    def get_param(self, array: Any) -> np.ndarray:
        """The gradient accumulated for `array`, with its shape and dtype (zeros if none arrived)."""
        key = id(array)
        if key not in self.memory:
            raise KeyError(
                f"get_param: this array (shape {np.shape(array)}) is not tracked by the gradient "
                "buffer: it was never an input of a recorded operation (arrays are told apart by "
                "identity, so a copy, view or reshape of a tracked array is a different array), or "
                "it was produced on the tape and a backward has since consumed it (gradients are "
                "kept for the leaves)"
            )
        gradient = self.memory[key]
        if gradient is _FREED:
            raise KeyError(
                f"get_param: this array (shape {np.shape(array)}) was produced on the tape; its "
                "adjoint is freed as soon as the reverse walk has used it. Gradients are kept for "
                "the leaves (arrays that entered the tape without being produced on it)"
            )
        if gradient is None:
            return np.zeros_like(array)
        return gradient

    def clear(self) -> None:
        """Forget every tracked array and gradient."""
        self.memory.clear()
        self._arrays.clear()

    # ---- what the engine and the layers use -------------------------------------------------

    def gradient(self, array: Any, default: Any = None) -> Any:
        """`array`'s gradient, or `default` when none arrived (untracked, or never reached).

        Optimizers use it to leave alone a parameter that did not take part in the loss.
        """
        gradient = self.memory.get(id(array))
        return default if gradient is None or gradient is _FREED else gradient

    def clear_gradient(self, array: Any) -> None:
        """Track `array` with no gradient (what `zero_grad(set_to_none=True)` leaves)."""
        self.add_spot(array)
        self.memory[id(array)] = None

    def accumulate(self, key: int, gradient: np.ndarray) -> None:
        """Add `gradient` to the one stored under `key` (out of place: it may be shared)."""
        previous = self.memory.get(key)
        if previous is None or previous is _FREED:
            self.memory[key] = gradient
        else:
            self.memory[key] = previous + gradient

    def mark_freed(self, key: int) -> None:
        """The array under `key` was produced on the tape and its adjoint is used up."""
        if key in self.memory:
            self.memory[key] = _FREED

    def array(self, key: int) -> Any:
        """The tracked array under `key`, or None."""
        held = self._arrays.get(key)
        return held() if isinstance(held, weakref.ref) else held

    def tracked(self, since: int = 0) -> list[tuple[Any, Any]]:
        """(array, gradient) for the arrays tracked after the first `since` that are still alive."""
        pairs = [(self.array(key), gradient) for key, gradient in list(self.memory.items())[since:]]
        return [(array, gradient) for array, gradient in pairs if array is not None]

    def size(self) -> int:
        """How many arrays are tracked (a mark for `truncate`)."""
        return len(self.memory)

    def truncate(self, size: int) -> None:
        """Forget the arrays tracked after the first `size` (dicts keep insertion order)."""
        while len(self.memory) > size:
            key, _ = self.memory.popitem()
            self._arrays.pop(key, None)

    def forget(self, key: int) -> None:
        """Stop tracking the array under `key`."""
        self.memory.pop(key, None)
        self._arrays.pop(key, None)

    def hold_all_weakly(self) -> None:
        """`hold_weakly` every tracked array (the tape that needed them is gone)."""
        for key, held in list(self._arrays.items()):
            if not isinstance(held, weakref.ref):
                self.hold_weakly(key)

    def hold_weakly(self, key: int) -> None:
        """Keep tracking the array under `key` only while the user holds it."""
        held = self._arrays.get(key)
        if held is None or isinstance(held, weakref.ref):
            return
        buffer = weakref.ref(self)
        try:
            self._arrays[key] = weakref.ref(held, lambda _: _drop(buffer, key))
        except TypeError:  # a NumPy scalar cannot be referenced weakly: keep it
            pass


def _drop(buffer_ref: weakref.ref, key: int) -> None:
    buffer = buffer_ref()
    if buffer is not None and isinstance(buffer._arrays.get(key), weakref.ref):
        buffer.forget(key)


def _checked(array: np.ndarray, gradient: object, where: str) -> np.ndarray:
    gradient = np.asarray(gradient, dtype=array.dtype)
    if gradient.shape != array.shape:
        raise ValueError(f"{where}: gradient of shape {gradient.shape} for an array of shape {array.shape}")
    return gradient


# The handout's name for the same buffer.
MemoryBuffer = GradientBuffer


def is_float_array(value: Any) -> bool:
    """Whether `value` carries a gradient: a float or complex array (integer and bool arrays are
    constants).

    >>> is_float_array(np.ones(2)), is_float_array(np.arange(2)), is_float_array(1.0)
    (True, False, False)
    """
    return isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in "fc"


def is_complex(value: Any) -> bool:
    """Whether `value` holds complex numbers, read from its dtype (never from its values, so a
    compiled trace, whose arrays are traced, reads the same answer every call).

    >>> is_complex(np.ones(2, np.complex64)), is_complex(np.ones(2)), is_complex(1j)
    (True, False, True)
    """
    dtype = getattr(value, "dtype", None)
    return dtype.kind == "c" if dtype is not None else isinstance(value, complex)


def gradient_dtype(value: Any) -> np.dtype:
    """The dtype of `value`'s gradient or tangent: its own float or complex dtype, else float64.

    >>> gradient_dtype(np.ones(2, np.float32)), gradient_dtype(np.arange(2))
    (dtype('float32'), dtype('float64'))
    """
    dtype = getattr(value, "dtype", None)
    return dtype if dtype is not None and dtype.kind in "fc" else np.dtype(np.float64)


def broadcast_axes(grad_shape: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The axes of `grad_shape` that broadcasting `shape` to it added or stretched.

    Summing a gradient over them (keeping dims) and reshaping to `shape` undoes the broadcast.

    >>> broadcast_axes((4, 3), (3,))
    (0,)
    >>> broadcast_axes((4, 3), (4, 1))
    (1,)
    """
    added = len(grad_shape) - len(shape)
    if added < 0 or any(grad_shape[added + i] != n for i, n in enumerate(shape) if n != 1):
        raise ValueError(f"unbroadcast: a gradient of shape {grad_shape} cannot come from shape {shape}")
    stretched = [added + i for i, n in enumerate(shape) if n == 1 and grad_shape[added + i] != 1]
    return tuple(range(added)) + tuple(stretched)


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` over the axes that broadcasting added or stretched, so it takes `shape`.

    The NumPy form, for hand-written backward rules; the primitives' walk does the same with
    recording primitives (`mytorch.primitive.unbroadcast`), so a recorded backward stays
    differentiable.

    >>> unbroadcast(np.ones((4, 3)), (3,))
    array([4., 4., 4.])
    >>> unbroadcast(np.ones((4, 3)), (4, 1)).ravel()
    array([3., 3., 3., 3.])
    """
    grad = np.asarray(grad)
    if grad.shape == tuple(shape):
        return grad
    if [n for n in grad.shape if n != 1] == [n for n in shape if n != 1]:
        return grad.reshape(shape)  # only size-1 axes differ
    return np.sum(grad, axis=broadcast_axes(grad.shape, tuple(shape)), keepdims=True).reshape(shape)

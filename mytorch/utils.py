"""Adjoint memory and the one helper that undoes broadcasting.

The homework engine keyed its buffer by an array's data address, which confuses `W` with `W.T`,
`x` with `x[0]`, and a freed array with the next one allocated at the same spot. Here an array is
known by its identity, and the buffer holds a reference to every array it tracks, so an identity is
never reused while it is in the buffer.
"""

from __future__ import annotations

import numpy as np

# A tracked intermediate whose adjoint was freed by the reverse walk once it had been used.
_FREED = object()


class GradientBuffer:
    """Adjoint memory keyed by array identity.

    >>> buffer = GradientBuffer()
    >>> x = np.ones(3)
    >>> buffer.add_spot(x)
    >>> buffer.update_param(x, np.full(3, 2.0))
    >>> buffer.get_param(x)
    array([2., 2., 2.])
    """

    def __init__(self) -> None:
        # id(array) -> its gradient, or None while no gradient has arrived (zero, allocated lazily).
        self.memory: dict[int, object] = {}
        # id(array) -> the array itself: holding it keeps its identity from being reused.
        self._arrays: dict[int, np.ndarray] = {}

    def is_in_memory(self, array: np.ndarray) -> bool:
        """Whether `array` (this very object, not an equal or aliasing one) is tracked."""
        return id(array) in self.memory

    def add_spot(self, array: np.ndarray) -> None:
        """Start tracking `array`; its gradient is zero until one arrives."""
        key = id(array)
        if key not in self.memory:
            self.memory[key] = None
            self._arrays[key] = array

    def update_param(self, array: np.ndarray, gradient: np.ndarray) -> None:
        """Accumulate `gradient` into `array`'s gradient (tracking `array` if it is new)."""
        gradient = self._checked(array, gradient, "update_param")
        self.add_spot(array)
        previous = self.memory[id(array)]
        # Out of place: the stored array may be shared with another adjoint, so never `+=` into it.
        if previous is None or previous is _FREED:
            self.memory[id(array)] = gradient
        else:
            self.memory[id(array)] = previous + gradient

    def set_param(self, array: np.ndarray, gradient: np.ndarray) -> None:
        """Overwrite `array`'s gradient."""
        self.add_spot(array)
        self.memory[id(array)] = self._checked(array, gradient, "set_param")

    def get_param(self, array: np.ndarray) -> np.ndarray:
        """The gradient accumulated for `array`, with its shape and dtype."""
        key = id(array)
        if key not in self.memory:
            raise KeyError(
                f"get_param: this array (shape {np.shape(array)}) is not tracked by the gradient "
                "buffer: it was never an input of a recorded operation (arrays are told apart by "
                "identity, so a copy, view or reshape of a tracked array is a different array)"
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

    def gradient(self, array: np.ndarray, default: object = None) -> object:
        """The gradient accumulated for `array`, or `default` when no gradient arrived (tracked but
        never reached by a walk, or not tracked at all)."""
        gradient = self.memory.get(id(array))
        if gradient is None or gradient is _FREED:
            return default
        return gradient

    def clear(self) -> None:
        """Forget every tracked array and gradient."""
        self.memory.clear()
        self._arrays.clear()

    def _freed(self, array: np.ndarray) -> None:
        if id(array) in self.memory:
            self.memory[id(array)] = _FREED

    @staticmethod
    def _checked(array: np.ndarray, gradient: object, where: str) -> np.ndarray:
        gradient = np.asarray(gradient, dtype=array.dtype)
        if gradient.shape != array.shape:
            raise ValueError(
                f"{where}: gradient of shape {gradient.shape} for an array of shape {array.shape}"
            )
        return gradient


# The handout's name for the same buffer.
MemoryBuffer = GradientBuffer


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` over the axes that broadcasting added or stretched, so it takes `shape`.

    The one place where backward rules undo broadcasting. It is written with the recording
    primitives, so a recorded backward (create_graph) stays differentiable.

    >>> unbroadcast(np.ones((4, 3)), (3,))
    array([4., 4., 4.])
    >>> unbroadcast(np.ones((4, 3)), (4, 1))
    array([[3.],
           [3.],
           [3.],
           [3.]])
    """
    if grad.shape == shape:
        return grad
    from mytorch import functional as F

    if grad.ndim < len(shape) and grad.size == np.prod(shape):
        return F.reshape(grad, shape)  # only size-1 axes are missing
    added = grad.ndim - len(shape)
    stretched = [added + i for i, n in enumerate(shape) if n == 1 and grad.shape[added + i] != 1]
    axes = tuple(range(added)) + tuple(stretched)
    if added < 0 or any(grad.shape[added + i] != n for i, n in enumerate(shape) if n != 1):
        raise ValueError(f"unbroadcast: a gradient of shape {grad.shape} cannot come from shape {shape}")
    return F.reshape(F.sum(grad, axis=axes, keepdims=True), shape)

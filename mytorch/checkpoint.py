"""Gradient checkpointing: trade compute for memory.

`checkpoint(f)` is `f` recorded as one operation: its forward pass runs without recording, so the
tape keeps only its inputs and its output, not its intermediates. When a walk reaches that
operation, `f` runs again on the same inputs (recorded on a scratch stretch of the tape), the
walk goes through that stretch, and the stretch is dropped. The gradients are the same as
without the checkpoint (`f` must be deterministic: same inputs, same result); the peak memory of
a deep network goes from all of its activations to one segment's plus the segment boundaries.

>>> import numpy as np
>>> import mytorch
>>> from mytorch import functional as F
>>> two_layers = lambda x, W: F.tanh(F.matmul(F.tanh(F.matmul(x, W)), W))
>>> block = mytorch.checkpoint(two_layers)
>>> x, W = np.ones((1, 2)), np.eye(2) * 0.5
>>> kept = mytorch.grad(lambda W: F.sum(two_layers(x, W)))(W)
>>> bool(np.allclose(mytorch.grad(lambda W: F.sum(block(x, W)))(W), kept))
True

Works under forward mode and nested transforms too (the rerun is recorded when the walk is).
Arguments may be arrays, numbers, or dicts/lists/tuples of them; `f` returns one array.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from mytorch.autograd_engine import engine
from mytorch.autograd_engine import state as _state
from mytorch.primitive import primitive
from mytorch.pytree import tree_flatten, tree_unflatten

__all__ = ["checkpoint"]

# x as a new array: the rerun's own variables (so an array passed twice gets each share once).
_rerun_copy = primitive(
    "checkpoint_copy", lambda x: np.array(x, copy=True),
    vjp=lambda g, ans, x: (g,),
    jvp=lambda t, ans, x: t[0],
    register=False,
)


def _is_float(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


class _recording:
    """Record (or not) primitives for the duration."""

    def __init__(self, flag: bool) -> None:
        self.flag = flag

    def __enter__(self) -> None:
        self.outer, _state.recording = _state.recording, self.flag

    def __exit__(self, *exc_info: object) -> None:
        _state.recording = self.outer


def checkpoint(f: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """`f` with its intermediates recomputed during the backward walk instead of kept on the tape.

    Same values and gradients as `f`; the tape holds only `f`'s inputs and output.
    """

    def call(*args: Any) -> np.ndarray:
        leaves, structure = tree_flatten(args)

        def run(*values: Any) -> np.ndarray:
            out = f(*tree_unflatten(structure, list(values)))
            if not isinstance(out, np.ndarray):
                if isinstance(out, (tuple, list, dict)):
                    raise TypeError("checkpoint: the function must return one array")
                out = np.asarray(out)
            return out

        def forward(*values: Any) -> np.ndarray:
            with _recording(False):  # nothing of f's inside goes on the tape
                return run(*values)

        def rerun(values: tuple) -> tuple[Any, list, list]:
            """f again, recorded from fresh copies of its float inputs: (output, copies, start)."""
            tape = engine()
            copies = [_rerun_copy(v) if _is_float(v) else v for v in values]
            start = len(tape.operation_list)
            return run(*copies), copies, start

        def vjp(g: np.ndarray, ans: np.ndarray, *values: Any) -> tuple:
            tape = engine()
            create_graph = _state.recording  # a recording walk (create_graph) keeps what it records
            mark = tape.mark()
            try:
                with _recording(True):
                    out, copies, start = rerun(values)
                producer = next(
                    (i for i in range(len(tape.operation_list) - 1, start - 1, -1)
                     if tape.operation_list[i].output is out),
                    None,
                )
                if producer is None:  # f's output does not depend on its float inputs
                    return tuple(None for _ in values)
                with _recording(create_graph):
                    adjoints = tape.walk_backward(producer, g, stop=start, create_graph=create_graph)
                return tuple(adjoints.get(id(c)) if _is_float(v) else None for v, c in zip(values, copies))
            finally:
                if not create_graph:
                    tape.cut_back(mark)

        def jvp(t: list, ans: np.ndarray, *values: Any) -> Any:
            tape = engine()
            keep = _state.recording
            mark = tape.mark()
            try:
                with _recording(True):
                    out, copies, start = rerun(values)
                seeds = {id(c): tangent for c, v, tangent in zip(copies, values, t) if _is_float(v)}
                with _recording(keep):
                    tangents = tape.walk_forward(start, seeds)
                tangent = tangents.get(id(out))
                return np.zeros(ans.shape, ans.dtype) if tangent is None else tangent
            finally:
                if not keep:
                    tape.cut_back(mark)

        name = f"checkpoint({getattr(f, '__name__', 'f')})"
        block = primitive(name, forward, vjp=vjp, jvp=jvp, arity=None, register=False)
        return block.apply(tuple(leaves), {})

    functools.update_wrapper(call, f)
    call.__name__ = f"checkpoint({getattr(f, '__name__', 'f')})"
    return call

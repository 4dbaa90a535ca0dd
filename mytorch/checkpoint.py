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

from mytorch.autograd_engine import Stretch, recording, state
from mytorch.primitive import copy, is_float_array, primitive
from mytorch.pytree import tree_flatten, tree_unflatten
from mytorch.tracked import tracked_view

__all__ = ["checkpoint"]

def _tracked_copy(value: Any) -> Any:
    """A float argument as f's own tracked copy on the tape (so NumPy code in f records on it)."""
    return copy(tracked_view(value, "checkpoint")) if is_float_array(value) else value


def checkpoint(f: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """`f` with its intermediates recomputed during the backward walk instead of kept on the tape.

    Same values and gradients as `f`, for its arguments and for the float arrays it closes over
    (a layer's parameters, say); the tape holds only those and `f`'s output. NumPy's global random
    state is replayed for the recomputation (a generator `f` owns, such as
    `np.random.default_rng`, is not: `f` must then be deterministic).
    """

    def call(*args: Any) -> np.ndarray:
        leaves, structure = tree_flatten(args)
        count = len(leaves)
        random_state = np.random.get_state()

        def run(*values: Any) -> np.ndarray:
            out = f(*tree_unflatten(structure, list(values[:count])))  # the rest: arrays f closes over
            if not isinstance(out, np.ndarray):
                if isinstance(out, (tuple, list, dict)):
                    raise TypeError("checkpoint: the function must return one array")
                out = np.asarray(out)
            return out

        if not state.recording:
            return run(*leaves)
        # A first run on a scratch stretch finds the float arrays f uses without being given them
        # (closed over): they become inputs of the checkpoint too, so they get their gradients.
        with Stretch() as scratch:
            copies = [_tracked_copy(v) for v in leaves]
            first = len(scratch.engine.operation_list)  # f's own records come after the copies
            out = run(*copies)
            records = scratch.engine.operation_list[first:]
            given = {id(v) for v in copies}
            produced = {id(op.output) for op in records}
            captured = {
                id(v): v for op in records for v in op.inputs
                if is_float_array(v) and id(v) not in given and id(v) not in produced
            }
        values = (*leaves, *captured.values())

        def rerun(values: tuple) -> tuple[np.ndarray, list, Stretch]:
            """f again, recorded from fresh copies of its float arguments: (output, inputs as used,
            the stretch it recorded, which the caller cuts back)."""
            outer_random = np.random.get_state()
            np.random.set_state(random_state)  # the same draws as the forward pass
            try:
                with Stretch(keep=True) as stretch:
                    copies = [_tracked_copy(v) for v in values[:count]]
                    start = len(stretch.engine.operation_list)  # walks stop at the copies
                    out = run(*copies, *values[count:])
                return out, [*copies, *values[count:]], stretch.seal(start)
            finally:
                np.random.set_state(outer_random)

        def vjp(g: np.ndarray, ans: np.ndarray, *values: Any) -> tuple:
            create_graph = state.recording  # a recording walk (create_graph) keeps what it records
            out, used, stretch = rerun(values)
            try:
                adjoints = stretch.backward(out, g, create_graph=create_graph)
                return tuple(adjoints.get(id(u)) if is_float_array(v) else None for v, u in zip(values, used))
            finally:
                if not create_graph:
                    stretch.cut_back()

        def jvp(t: list, ans: np.ndarray, *values: Any) -> Any:
            keep = state.recording
            out, used, stretch = rerun(values)
            try:
                seeds = {id(u): tangent for u, v, tangent in zip(used, values, t) if is_float_array(v)}
                with recording(keep):
                    tangents = stretch.forward(seeds)
                tangent = tangents.get(id(out))
                return np.zeros(ans.shape, ans.dtype) if tangent is None else tangent
            finally:
                if not keep:
                    stretch.cut_back()

        name = f"checkpoint({getattr(f, '__name__', 'f')})"
        block = primitive(name, lambda *values: out, vjp=vjp, jvp=jvp, arity=None, register=False)
        return block.apply(values, {})

    functools.update_wrapper(call, f)
    call.__name__ = f"checkpoint({getattr(f, '__name__', 'f')})"
    return call

"""Law 1: what the tape reads is frozen.

Every array a record reads at backward or tangent time (float inputs, integer indices, labels,
boolean masks, array-valued parameters, the arrays of an index tuple) is locked at record time (or,
for lists, copied); mutating it after the forward never changes a gradient or a tangent: the write is
refused, or the result is what it was. A tape whose locks were released can no longer be walked.
Property over every registered primitive, on its built-in input spec.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from _laws import examples
from hypothesis import given, settings
from hypothesis import strategies as st

import mytorch
from mytorch import functional as F
from mytorch.autograd_engine import Autograd, Stretch
from mytorch.testing.cases import Example
from mytorch.testing.registry import registry

RECORDS = registry()


def _arrays_read(example: Example) -> list[np.ndarray]:
    """Every array the record of `example` holds: inputs of any dtype, and parameter arrays."""
    found = [v for v in example.inputs if isinstance(v, np.ndarray)]
    for value in example.params.values():
        items = value if isinstance(value, (tuple, list)) else (value,)
        found += [item for item in items if isinstance(item, np.ndarray)]
    return found


def _changed(array: np.ndarray) -> np.ndarray:
    """Other values of the same shape and dtype (indices stay in range: they are reordered)."""
    if array.dtype.kind == "b":
        return ~array
    if array.dtype.kind in "iu":
        return np.flip(array.reshape(-1)).reshape(array.shape) if array.size > 1 else array + 0
    return array + 1.5


def _mutate(example: Example) -> list[str]:
    """Write new values into every array (and list) the record read; what was refused."""
    refused = []
    for array in _arrays_read(example):
        if array.size == 0:
            continue
        try:
            array[...] = _changed(array)
        except ValueError:
            refused.append(f"{array.shape} {array.dtype}")
    for value in example.params.values():
        if isinstance(value, list):
            value.reverse()
    return refused


def _derivatives(op, example: Example, seed: np.ndarray) -> tuple[dict, object] | None:
    with Stretch() as stretch:
        output = op.primitive.apply(example.inputs, example.params)
        if stretch.producer(output) is None:
            return None
        positions = example.float_positions
        adjoints = stretch.backward(output, seed.astype(output.dtype))
        tangent = stretch.forward({id(example.inputs[i]): np.ones_like(example.inputs[i]) for i in positions})
        return {i: adjoints.get(id(example.inputs[i])) for i in positions}, tangent.get(id(output))


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None or not np.any(a if b is None else b)
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


@pytest.mark.parametrize("name", sorted(RECORDS))
@settings(max_examples=examples(10))
@given(data=st.data())
def test_mutating_what_a_record_read_never_changes_its_derivatives(name, data):
    op = RECORDS[name]
    example = data.draw(op.examples(), label="example")
    with mytorch.no_grad():
        output = op.primitive.apply(copy.deepcopy(example.inputs), copy.deepcopy(example.params))
    seed = np.ones(output.shape) if output.dtype.kind == "f" else np.ones(output.shape)
    expected = _derivatives(op, copy.deepcopy(example), seed)
    if expected is None:
        return  # nothing differentiable: nothing recorded, nothing to freeze
    with Stretch() as stretch:
        output = op.primitive.apply(example.inputs, example.params)
        _mutate(example)
        positions = example.float_positions
        adjoints = stretch.backward(output, seed.astype(output.dtype))
        tangent = stretch.forward({id(example.inputs[i]): np.ones_like(example.inputs[i]) for i in positions})
    grads = {i: adjoints.get(id(example.inputs[i])) for i in positions}
    for i in positions:
        assert _same(grads[i], expected[0][i]), f"{name}: gradient of input {i} changed after a write"
    assert _same(tangent.get(id(output)), expected[1]), f"{name}: the output tangent changed after a write"


CONSTANT_READERS = ["getitem", "take", "take_along_axis", "cross_entropy", "where", "clip", "roll"]


@pytest.mark.parametrize("name", CONSTANT_READERS)
def test_the_index_label_mask_and_parameter_arrays_are_locked_not_just_the_floats(name):
    """The law's named kinds are refused at the write (a known-wrong input: each is written to)."""
    op = RECORDS[name]

    @settings(max_examples=examples(20))
    @given(op.examples())
    def run(example):
        if not any(a.dtype.kind != "f" and a.size for a in _arrays_read(example)):
            return  # no index, label or mask read: the float case is the other test's
        with Stretch() as stretch:
            output = op.primitive.apply(example.inputs, example.params)
            if stretch.producer(output) is None:
                return  # nothing differentiable: nothing recorded, nothing to freeze
            refused = _mutate(example)
        constants = [a for a in _arrays_read(example) if a.dtype.kind != "f" and a.size]
        assert len(refused) >= len(constants)

    run()


def test_an_index_list_is_copied_at_record_time():
    x = np.arange(4.0)
    index = [0, 0, 3]
    with Stretch() as stretch:
        y = F.getitem(x, index)
        index[:] = [1, 2, 2]
        adjoints = stretch.backward(y, np.ones(3))
    np.testing.assert_array_equal(adjoints[id(x)], [2.0, 0.0, 0.0, 1.0])


def test_a_tape_abandoned_by_a_new_engine_cannot_be_walked():
    old = mytorch.engine()
    x = np.array([1.0, 2.0])
    loss = F.sum(F.mul(x, x))
    Autograd()
    x[0] = 10.0  # writable again: the new engine gave it back
    with pytest.raises(RuntimeError, match="abandoned when a new Autograd"):
        old.backward(loss)


def test_zero_grad_inside_a_transform_releases_its_tape_and_the_walk_refuses():
    def f(x):
        y = F.mul(x, x)
        mytorch.engine().zero_grad()
        return F.sum(y)

    with pytest.raises(RuntimeError, match="was released"):
        mytorch.grad(f)(np.array([1.0, 2.0]))

"""Law 2: sequences carry the tape. Wherever NumPy accepts a sequence for an array argument, a list
(or nested lists) of tape arrays is differentiated through the arrays it holds: for every registered
primitive, a float input given as the list of its rows gives the gradient that the array gives."""

from __future__ import annotations

import numpy as np
import pytest
from _laws import draw_accepted, examples
from hypothesis import given, settings
from hypothesis import strategies as st

import mytorch
from mytorch import functional as F
from mytorch.autograd_engine import Stretch
from mytorch.testing.registry import registry
from mytorch.testing.strategies import float_arrays

RECORDS = registry()


def _rows(x):
    """x as a list of its rows, each a tape array (nested once more for a matrix's rows)."""
    rows = [F.getitem(x, i) for i in range(x.shape[0])]
    if x.ndim >= 2 and x.shape[1]:
        return [[F.getitem(row, j) for j in range(row.shape[0])] for row in rows]
    return rows


@pytest.mark.parametrize("name", sorted(n for n, op in RECORDS.items() if op.primitive.arity is not None))
@settings(max_examples=examples(5))
@given(data=st.data())
def test_a_list_of_rows_gives_the_arrays_gradient(name, data):
    op = RECORDS[name]
    drawn = draw_accepted(op, data)
    if drawn is None:
        return  # refused by the forward
    example, output = drawn
    positions = [i for i in example.float_positions if example.inputs[i].ndim and example.inputs[i].shape[0]]
    if not positions or output.dtype.kind != "f":
        return  # no float input with rows to list, or no derivative
    position = data.draw(st.sampled_from(positions), label="input given as a list")
    x = example.inputs[position]
    seed = data.draw(float_arrays(output.shape, output.dtype), label="seed")
    gradients = []
    for as_list in (False, True):
        with Stretch() as stretch:
            inputs = list(example.inputs)
            if as_list:
                inputs[position] = _rows(x)
            out = op.primitive.apply(tuple(inputs), example.params)
            if stretch.producer(out) is None:
                return  # no float input: nothing recorded
            gradients.append(stretch.backward(out, seed).get(id(x)))
    direct, through_list = gradients
    if direct is None:
        assert through_list is None or not np.any(through_list)
        return
    assert through_list is not None, f"{name}: a list of tape arrays became a constant"
    np.testing.assert_allclose(through_list, direct, rtol=1e-9, atol=1e-12, err_msg=name)


def test_the_issues_case_and_numpys_sequence_functions():
    x = np.array([1.0, 2.0])
    assert mytorch.grad(lambda x: F.mean([x, F.add(x, 2.0)]))(x).tolist() == [0.5, 0.5]
    assert mytorch.grad(lambda x: F.sum(F.stack([[x, x * 2], [x, x]])))(x).tolist() == [5.0, 5.0]
    assert mytorch.grad(lambda x: np.sum(np.stack([x, x * 2])))(x).tolist() == [3.0, 3.0]
    assert mytorch.grad(lambda x: np.sum(np.concatenate([x, [3.0]]) ** 2))(x).tolist() == [2.0, 4.0]
    assert mytorch.grad(lambda x: np.einsum("i,i->", *[x, x]))(x).tolist() == [2.0, 4.0]
    # NumPy's own dispatch sees the top level of a sequence only: a nested list of tracked arrays
    # reaches np.stack as plain data, and the transform refuses the output rather than return zeros
    with pytest.raises(TypeError, match="not produced by any recorded operation"):
        mytorch.grad(lambda x: np.sum(np.stack([[x, x * 2], [x, x]])))(x)
    # a bare array where a sequence is expected behaves as NumPy's
    np.testing.assert_array_equal(F.stack(np.ones((2, 3))), np.stack(np.ones((2, 3))))

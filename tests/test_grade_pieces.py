"""The grader's pieces, in process: what crosses to the child and back, and the comparison."""

from __future__ import annotations

import numpy as np
import pytest

from mytorch.course import child as grade_child
from mytorch.course.draws import draw_examples
from mytorch.course.judge import compare
from mytorch.testing import all_primitives


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            type(a) is type(b) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
        )
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, slice):
        return isinstance(b, slice) and _same((a.start, a.stop, a.step), (b.start, b.stop, b.step))
    return type(a) is type(b) and (a == b or a is b)


@pytest.mark.parametrize("op", sorted(all_primitives()))
def test_every_primitives_drawn_inputs_cross_to_the_child_unchanged(op: str) -> None:
    for example in draw_examples(op, 5, seed=1):
        arrays: dict = {}
        sent = grade_child.encode((example.inputs, example.params), arrays, "k")
        back = grade_child.decode(sent, arrays)
        assert _same(back[0], tuple(example.inputs)) and _same(back[1], dict(example.params)), op


def test_draws_depend_on_the_seed_only() -> None:
    first, again, other = (draw_examples("matmul", 4, seed) for seed in (3, 3, 4))
    assert all(_same(a.inputs, b.inputs) for a, b in zip(first, again))
    assert not all(_same(a.inputs, b.inputs) for a, b in zip(first, other))
    sizes = [sum(np.size(v) for v in e.inputs) for e in first]
    assert sizes == sorted(sizes)  # the smallest first: the first failure shown is the smallest


def test_compare_explains_the_classic_mistakes() -> None:
    expected = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert compare(expected + 1e-12, expected, (1e-9, 1e-9)) == ""
    assert "sign flipped" in compare(-expected, expected, (1e-9, 1e-9))
    assert "times 0.25" in compare(expected / 4, expected, (1e-9, 1e-9))
    assert "it is zero" in compare(np.zeros((2, 2)), expected, (1e-9, 1e-9))
    assert "broadcast shape" in compare(np.ones((3, 2, 2)), expected, (1e-9, 1e-9))
    assert compare(None, expected, (1e-9, 1e-9)) == "is missing"
    assert "at index (1, 0)" in compare(expected + np.array([[0, 0], [1, 0]]), expected, (1e-9, 1e-9))


def test_the_child_refuses_what_it_cannot_send() -> None:
    with pytest.raises(TypeError, match="cannot send"):
        grade_child.encode(object(), {}, "k")

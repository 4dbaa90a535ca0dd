"""What the law tests share: how many examples a law test draws (more under the `deep` profile),
and drawing an example of a registered primitive and running its forward, or skipping the example
where the forward refuses it (a law asks nothing of inputs the forward refuses)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

import mytorch
from mytorch.testing.cases import Example
from mytorch.testing.registry import OpInfo

REFUSALS = (ValueError, TypeError, IndexError)  # how a forward says no
DEEPER = 10  # times as many examples under the deep profile


def examples(count: int) -> int:
    """A law test's number of examples per primitive: `count`, or `DEEPER` times as many under the
    `deep` profile (a test's own max_examples would otherwise hold whatever the profile says)."""
    deep = settings.get_profile("deep").max_examples
    return count * DEEPER if settings.default.max_examples >= deep else count


def forward_or_none(op: OpInfo, example: Example) -> np.ndarray | None:
    """`op`'s forward on `example`, not recorded and with NumPy's warnings silenced; None when the
    forward refuses it."""
    with warnings.catch_warnings(), np.errstate(all="ignore"), mytorch.no_grad():
        warnings.simplefilter("ignore")
        try:
            return op.primitive.apply(example.inputs, example.params)
        except REFUSALS:
            return None


def draw_accepted(op: OpInfo, data: st.DataObject, *, edges: bool = False,
                  dtype: Any = np.float64) -> tuple[Example, np.ndarray] | None:
    """An example of `op` (from the edge grammar with `edges`, else the input spec in `dtype`) and
    the forward's output on it; None (skip the example) where the forward refuses it."""
    example = data.draw(op.edge_examples() if edges else op.examples(dtype), label="example")
    output = forward_or_none(op, example)
    return None if output is None else (example, output)

"""Drawing a rule's inputs (hypothesis, seeded) and the oracle: finite differences of the reference."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

# ---- drawing the inputs -------------------------------------------------------------------------------


_DRAWING = threading.Lock()


def draw_examples(op: str, count: int, seed: int) -> list[Any]:
    """`count` examples of `op`'s inputs drawn by hypothesis with `seed`, simplest first (`simplicity`)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    from mytorch.testing import CASES

    drawn: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @hypothesis_seed(seed)
    @given(CASES[op].examples(np.float64))
    def collect(example: Any) -> None:
        drawn.append(example)

    with _DRAWING:  # hypothesis is not made for threads
        collect()
    return sorted(drawn, key=simplicity)


def _floats(inputs: Iterable[Any]) -> list[int]:
    return [i for i, v in enumerate(inputs) if isinstance(v, np.ndarray) and v.dtype.kind == "f"]


# ---- the oracle: finite differences of the reference's forward ------------------------------------------


def _rule_oracle(
    primitive: Any, example: Any, a: np.ndarray, b: list[np.ndarray], second: bool = True
) -> dict[str, np.ndarray]:
    """aJ/p = aᵀ ∂y/∂x_p, Jb = Σ_p ∂y/∂x_p b_p, and ∇D/p = ∂/∂x_p of D(x) = d/dε ⟨a, y(x + ε b)⟩."""
    inputs, params = list(example.inputs), example.params
    positions = _floats(inputs)
    sequence = getattr(primitive, "arity", 1) is None

    def f(*floats: Any) -> tuple:
        full = list(inputs)
        for p, x in zip(positions, floats):
            full[p] = x
        return (np.asarray(primitive(full, **params) if sequence else primitive(*full, **params)),)

    primals = [inputs[p] for p in positions]
    with np.errstate(all="ignore"):
        return _differences(f, primals, positions, inputs, a, b, second)


def _differences(
    f: Callable,
    primals: list,
    positions: list[int],
    inputs: list,
    a: np.ndarray,
    b: list[np.ndarray],
    second: bool,
) -> dict[str, np.ndarray]:
    from mytorch.gradcheck import numeric_jacobian

    out = f(*primals)[0]
    expected = {"out": out}
    if out.dtype.kind != "f" or not positions:
        return expected
    jacobian = numeric_jacobian(f, primals, range(len(positions)))[0]
    jb = np.zeros(out.shape)
    for k, p in enumerate(positions):
        block = jacobian[k].reshape(out.size, inputs[p].size)
        expected[f"aJ/{p}"] = (a.reshape(-1) @ block).reshape(inputs[p].shape)
        jb += (block @ b[k].reshape(-1)).reshape(out.shape)
    expected["Jb"] = jb
    if second and out.dtype == np.float64:

        def directional(*floats: Any) -> tuple:
            line = lambda e: (np.sum(a * f(*(x + e * d for x, d in zip(floats, b)))[0]),)  # noqa: E731
            return (numeric_jacobian(line, [np.array(0.0)], [0])[0][0],)

        second = numeric_jacobian(directional, primals, range(len(positions)))[0]
        for k, p in enumerate(positions):
            expected[f"dD/{p}"] = second[k].reshape(inputs[p].shape)
    return expected


# ȳ and the tangents a rule is called with: numbers a student can multiply by hand, none zero (a zero
# would hide the term it multiplies), of both signs and several sizes (a one or a square would hide
# a missing or doubled factor on every element).
READABLE_DIRECTIONS = np.array([-2.0, -1.5, -1.0, -0.5, 0.5, 1.0, 1.5, 2.0])


def _directions(rng: np.random.Generator, out: np.ndarray, inputs: list[Any]) -> tuple:
    """The output's adjoint ȳ (`a`) and the inputs' tangents (`b`), drawn from READABLE_DIRECTIONS."""
    a = rng.choice(READABLE_DIRECTIONS, size=np.shape(out))
    b = [rng.choice(READABLE_DIRECTIONS, size=inputs[p].shape) for p in _floats(inputs)]
    return a, b


def simplicity(example: Any) -> tuple[int, int, int]:
    """How far an example is from the plain case, for ordering (simplest first): arrays away from
    2-D (a 1-D or 0-D corner, extra batch axes), then axes of length 0 or 1 (on a (1, 1) matrix a
    transpose changes nothing), then the number of elements. A failure is shown on the first failing
    example: a (2, 3) matrix shows a missing transpose, a 1-D corner hides it.

    >>> from mytorch.testing.cases import Example
    >>> simplicity(Example((np.ones(3), np.ones(3)))), simplicity(Example((np.ones((2, 3)), np.ones((3, 1)))))
    ((2, 0, 6), (0, 1, 9))
    """
    arrays = [np.asarray(v) for v in example.inputs if isinstance(v, np.ndarray)]
    return (sum(abs(x.ndim - 2) for x in arrays), sum(side <= 1 for x in arrays for side in x.shape),
            sum(x.size for x in arrays))



"""Drawing a rule's inputs (hypothesis, seeded) and the oracle: finite differences of the reference."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from mytorch.testing.reproducible import history_free

# ---- drawing the inputs -------------------------------------------------------------------------------


_DRAWING = threading.Lock()


POOL = 3  # examples drawn per example kept: the pool the corners are picked from
SHARE = 4  # one example in SHARE (at least two) is also judged in float32, and as its tied twin


def draw_examples(op: str, count: int, seed: int) -> list[Any]:
    """`count` distinct examples of `op`'s inputs drawn by hypothesis with `seed`, simplest first
    (`simplicity`). They are picked from a pool of `POOL * count` draws so that each corner a rule
    is often wrong in (`CORNERS`: negative values, an input the forward broadcasts, 0-d and empty
    arrays) is there whenever the input spec can draw it; the rest in drawn order."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    from mytorch.testing import CASES

    pool: list[Any] = []

    @settings(
        max_examples=POOL * count,
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
        pool.append(example)

    with _DRAWING, history_free():  # hypothesis is not made for threads
        collect()
        pool = _distinct(pool)
        kinds = corners(op)
        for corner in SEARCHED:  # a corner the pool missed: searched for, where it can exist
            has = kinds[corner]
            if not any(has(example) for example in pool) and _possible(corner, pool):
                found = _search(CASES[op].examples(np.float64), has, seed)
                pool += [found] if found is not None else []
    return sorted(_covering(pool, count, kinds), key=simplicity)


SEARCH = 200  # draws spent looking for a corner that the pool missed
SEARCHED = ("negative values", "a broadcast input")  # rare in small draws (the others are not)


def _possible(corner: str, pool: list[Any]) -> bool:
    """Whether `corner` can occur among examples like `pool`'s (broadcasting needs two arrays)."""
    if corner == "a broadcast input":
        return any(len([v for v in e.inputs if isinstance(v, np.ndarray)]) > 1 and _float_arrays(e)
                   for e in pool)
    return any(_float_arrays(e) for e in pool)


def _search(strategy: Any, has: Callable[[Any], bool], seed: int) -> Any:
    """An example of `strategy` for which `has` holds, found by a seeded search, or None."""
    import random

    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis.errors import NoSuchExample

    budget = settings(max_examples=SEARCH, database=None, deadline=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
    try:
        return find(strategy, has, settings=budget, random=random.Random(seed))
    except NoSuchExample:
        return None


def _signature(example: Any) -> tuple:
    def one(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return (value.shape, value.dtype.str, value.tobytes())
        if isinstance(value, (tuple, list)):
            return tuple(one(v) for v in value)
        return repr(value)

    return one(tuple(example.inputs)), repr(sorted(example.params.items(), key=lambda kv: kv[0]))


def _distinct(pool: list[Any]) -> list[Any]:
    seen: set = set()
    kept = []
    for example in pool:
        key = _signature(example)
        if key not in seen:
            seen.add(key)
            kept.append(example)
    return kept


def _float_arrays(example: Any) -> list[np.ndarray]:
    return [v for v in example.inputs if isinstance(v, np.ndarray) and v.dtype.kind == "f"]


def _broadcast(example: Any, out_shape: tuple[int, ...] | None) -> bool:
    """A float input that the op broadcasts, so its gradient must be summed: an axis of the output
    (of length > 1, aligned from the right) that it has with length 1 or lacks, where another array
    input is there to broadcast it against (a one-input reshape or transpose is not broadcasting).

    The output is what tells: matmul broadcasts only its leading (batch) axes, so an int (1, 2)
    times a float (4, 1, 2, 1) broadcasts neither (the float's length-1 axis faces the int's 2 but
    is a matrix axis), while a float (2, 3) times a (5, 3, 4) is summed over the 5. A length-1
    axis that the op contracts (matmul's (3, 1) times (1, 4)) counts too: telling it from a
    broadcast one would need the op's own rules (a gradient that keeps the output's shape there is
    wrong all the same)."""
    if out_shape is None or len([v for v in example.inputs if isinstance(v, np.ndarray)]) < 2:
        return False
    for x in _float_arrays(example):
        added = out_shape[: max(len(out_shape) - x.ndim, 0)]
        if any(m > 1 for m in added) or any(
            n == 1 and m > 1 for n, m in zip(x.shape[::-1], out_shape[::-1])
        ):
            return True
    return False


def _output_shape(primitive: Any, example: Any) -> tuple[int, ...] | None:
    """The shape of the forward's output on `example` (None: it gives no single array)."""
    from mytorch.autograd_engine import no_grad

    try:
        with no_grad(), np.errstate(all="ignore"):
            out = primitive.apply(tuple(example.inputs), dict(example.params))
    except Exception:  # noqa: BLE001 - a forward that refuses the example broadcasts nothing
        return None
    return np.shape(out) if isinstance(out, np.ndarray) or np.isscalar(out) else None


def _informative(example: Any) -> bool:
    """Every float input has a nonzero element (on zeros, a wrong factor or sum still gives 0)."""
    return all(np.any(x) for x in _float_arrays(example))


# Corners a rule is often wrong in and a few readable draws may all miss: the draws keep one of each.
CORNERS = ("negative values", "a broadcast input", "a 0-d array", "an empty array")


def corners(op: str) -> dict[str, Callable[[Any], bool]]:
    """Whether an example of `op` is in each corner of `CORNERS` (a stretched axis is one that
    `op`'s forward broadcasts, `_broadcast`)."""
    from mytorch.testing import all_primitives

    primitive = all_primitives()[op]
    return {
        "negative values": lambda e: any(np.any(x < 0) for x in _float_arrays(e)),
        "a broadcast input": lambda e: _informative(e) and _broadcast(e, _output_shape(primitive, e)),
        "a 0-d array": lambda e: any(x.ndim == 0 for x in _float_arrays(e)),
        "an empty array": lambda e: any(x.size == 0 for x in _float_arrays(e)),
    }


def _covering(pool: list[Any], count: int, kinds: dict[str, Callable[[Any], bool]]) -> list[Any]:
    """`count` examples of `pool`: spread evenly over it (hypothesis draws small examples first and
    larger ones later), with up to half of them (the last) given up for the simplest example of each
    corner they miss (`kinds`: `corners`, in `CORNERS`' order)."""
    spread = len(pool) > count
    chosen = sorted({k * len(pool) // count for k in range(count)}) if spread else list(range(len(pool)))
    swaps = 0
    for has in kinds.values():
        if swaps >= count // 2 or any(has(pool[k]) for k in chosen):
            continue
        found = [k for k in range(len(pool)) if k not in chosen and has(pool[k])]
        if found:
            chosen[len(chosen) - 1 - swaps] = min(found, key=lambda k: simplicity(pool[k]))
            swaps += 1
    return [pool[k] for k in sorted(chosen)]


def variants(op: str, examples: list[Any]) -> list[Any]:
    """More examples made from `examples` (one in `SHARE` each, at least two): float32 copies (a
    rule may be right in float64 only), and tied twins, where the forward takes one float array
    at two places (`mul(x, x)`: a rule may assume its inputs are different arrays)."""
    from mytorch.testing import all_primitives
    from mytorch.testing.checks import tied_twin

    primitive = all_primitives()[op]
    wanted = max(2, len(examples) // SHARE)
    singles, twins = [], []
    for example in examples:
        if len(singles) < wanted and any(x.size for x in _float_arrays(example)):
            single = example.astype(np.float32)
            if _forward_is_finite(primitive, single):
                singles.append(single)
        if len(twins) < wanted:
            twin = tied_twin(primitive, example, widen=True)
            if twin is not None and any(np.any(x) for x in _float_arrays(twin)):
                twins.append(twin)
    return singles + twins


def _forward_is_finite(primitive: Any, example: Any) -> bool:
    """Whether the forward takes `example` and gives finite floats (a cast can overflow)."""
    from mytorch.autograd_engine import no_grad

    try:
        with no_grad(), np.errstate(all="ignore"):
            out = np.asarray(primitive.apply(tuple(example.inputs), dict(example.params)))
    except Exception:  # noqa: BLE001 - the forward refuses this dtype: not a variant to judge
        return False
    return out.dtype.kind != "f" or bool(np.all(np.isfinite(out)))


def _floats(inputs: Iterable[Any]) -> list[int]:
    return [i for i, v in enumerate(inputs) if isinstance(v, np.ndarray) and v.dtype.kind == "f"]


# ---- the oracle: finite differences of the reference's forward ------------------------------------------


def _rule_oracle(
    primitive: Any, example: Any, a: np.ndarray, b: list[np.ndarray], second: bool = True
) -> dict[str, np.ndarray]:
    """aJ/p = aᵀ ∂y/∂x_p, Jb = Σ_p ∂y/∂x_p b_p, and ∇D/p = ∂/∂x_p of D(x) = d/dε ⟨a, y(x + ε b)⟩."""
    inputs, params = list(example.inputs), example.params
    every = _floats(inputs)
    # An array at several places moves as one (`mul(x, x)`): one column per array, at its first place.
    places = {p: [q for q in every if inputs[q] is inputs[p]] for p in every}
    positions = [p for p in every if places[p][0] == p]
    b = [d for p, d in zip(every, b) if p in positions]
    sequence = getattr(primitive, "arity", 1) is None

    def f(*floats: Any) -> tuple:
        full = list(inputs)
        for p, x in zip(positions, floats):
            for q in places[p]:
                full[q] = x
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



"""Hypothesis strategies for gradient checks: arrays, shapes, domains, indices.

Finite differences see a function through a window of width `2h` around each input. The window
must not straddle a kink (`abs` at 0, `relu` at 0, `max` where two elements tie, `clip` at its
bounds) nor leave the domain (`log` and `sqrt` of non-positive numbers), or the numerical
derivative is meaningless. These strategies draw inputs that keep a margin far wider than `h`.

>>> from hypothesis import given
>>> @given(positive_arrays((2, 3)))
... def test_log_is_defined(x):
...     assert np.all(np.isfinite(np.log(x)))
>>> test_log_is_defined()

Shapes may be given as a tuple or as a strategy of tuples. Arrays are drawn element by element
(no fill value), so small arrays do not come out as runs of one repeated number.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

Shape = tuple[int, ...]
ShapeLike = Shape | st.SearchStrategy[Shape]
T = TypeVar("T")

__all__ = [
    "arrays_away_from",
    "axes",
    "broadcast_targets",
    "broadcastable_shapes",
    "distinct_arrays",
    "float_arrays",
    "floats",
    "indices",
    "matmul_shapes",
    "non_tying_pairs",
    "positive_arrays",
    "reshape_targets",
    "shapes",
    "stretched_shapes",
    "well_conditioned_matrices",
]


def _with_shape(shape: ShapeLike, build: Callable[[Shape], st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    if isinstance(shape, st.SearchStrategy):
        return shape.flatmap(lambda drawn: build(tuple(drawn)))
    return build(tuple(shape))


# ---- shapes ----------------------------------------------------------------------------------


@functools.cache  # made once per arguments (see floats)
def shapes(
    *, min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4
) -> st.SearchStrategy[Shape]:
    """Array shapes; `min_side=0` lets empty axes in, `min_dims=0` the 0-d shape `()`.

    >>> shapes(min_dims=2, max_dims=2, max_side=1).example()
    (1, 1)
    """
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


@functools.cache  # made once per arguments (see floats)
def broadcastable_shapes(
    count: int = 2, *, min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4
) -> st.SearchStrategy[tuple[Shape, ...]]:
    """`count` shapes that broadcast together, with size-1 axes, missing leading axes and 0-d.

    >>> a, b = broadcastable_shapes(2).example()
    >>> np.broadcast_shapes(a, b) is not None
    True
    """
    return hnp.mutually_broadcastable_shapes(
        num_shapes=count, min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    ).map(lambda drawn: drawn.input_shapes)


@functools.cache  # made once per arguments (see floats)
def stretched_shapes(count: int = 2, *, max_dims: int = 3, max_side: int = 4
                     ) -> st.SearchStrategy[tuple[Shape, ...]]:
    """`count` shapes that broadcast together where broadcasting stretches: one of them has a size-1
    axis that another's longer axis widens (its gradient is a sum along that axis), which shapes
    drawn freely seldom give.

    >>> a, b = stretched_shapes(2).example()
    >>> np.broadcast_shapes(a, b) != a or np.broadcast_shapes(a, b) != b
    True
    """

    @st.composite
    def draw(draw: st.DrawFn) -> tuple[Shape, ...]:
        base = draw(hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=2, max_side=max_side))
        narrow = draw(st.integers(0, count - 1))  # the shape whose axis is stretched
        axis = draw(st.integers(0, len(base) - 1))
        drawn = []
        for k in range(count):
            shape = [1 if (k == narrow and i == axis) or (k != narrow and draw(st.integers(0, 3)) == 0)
                     else side for i, side in enumerate(base)]
            if k == narrow:
                shape[axis] = 1
            elif shape[axis] == 1:
                shape[axis] = base[axis]  # someone must widen the narrow axis
            lead = draw(st.integers(0, axis)) if k != narrow else 0  # leading axes may be missing
            drawn.append(tuple(shape[lead:]))
        return tuple(drawn)

    return draw()


@functools.cache  # made once per arguments (see floats)
def matmul_shapes(*, max_batch_dims: int = 2, max_side: int = 4) -> st.SearchStrategy[tuple[Shape, Shape]]:
    """Shape pairs `np.matmul` accepts: 1-D operands, and batch axes that broadcast.

    >>> a, b = matmul_shapes().example()
    >>> np.matmul(np.ones(a), np.ones(b)).ndim >= 0
    True
    """
    return hnp.mutually_broadcastable_shapes(
        signature=np.matmul.signature, max_dims=max_batch_dims, max_side=max_side
    ).map(lambda drawn: drawn.input_shapes)


def broadcast_targets(shape: Shape, *, max_new_dims: int = 2, max_side: int = 3) -> st.SearchStrategy[Shape]:
    """Shapes that an array of `shape` broadcasts to (`np.broadcast_to(x, target)` works).

    >>> np.broadcast_to(np.ones((1, 2)), broadcast_targets((1, 2)).example()).shape[-1]
    2
    """

    @st.composite
    def target(draw: st.DrawFn) -> Shape:
        lead = draw(st.lists(st.integers(0, max_side), max_size=max_new_dims))
        kept = tuple(draw(st.integers(0, max_side)) if side == 1 else side for side in shape)
        return tuple(lead) + kept

    return target()


def reshape_targets(shape: Shape) -> st.SearchStrategy[Shape]:
    """Shapes with as many elements as `shape`, sometimes with a `-1` to infer.

    >>> int(np.prod(reshape_targets((2, 6)).filter(lambda s: -1 not in s).example()))
    12
    """
    size = math.prod(shape)

    @st.composite
    def target(draw: st.DrawFn) -> Shape:
        if size == 0:
            return draw(st.sampled_from([(0,), tuple(reversed(shape)), (-1,), (0, 1)]))
        factors = _prime_factors(size)
        count = draw(st.integers(1, max(1, len(factors)) + 1))
        sides = [1] * count
        for factor in factors:
            sides[draw(st.integers(0, count - 1))] *= factor
        if draw(st.booleans()):
            sides[draw(st.integers(0, count - 1))] = -1
        return tuple(sides)

    return target()


def _prime_factors(n: int) -> list[int]:
    factors, divisor = [], 2
    while n > 1:
        while n % divisor == 0:
            factors.append(divisor)
            n //= divisor
        divisor += 1
    return factors


def axes(
    ndim: int, *, allow_none: bool = True, allow_tuple: bool = True, allow_negative: bool = True
) -> st.SearchStrategy[Any]:
    """An `axis=` argument for an array of `ndim` axes: None, an int, or a tuple of distinct axes.

    >>> axes(0).example() in (None, ())
    True
    """
    choices: list[st.SearchStrategy[Any]] = []
    if allow_none:
        choices.append(st.none())
    low = -ndim if allow_negative else 0
    if ndim:
        choices.append(st.integers(low, ndim - 1))
    if allow_tuple:
        chosen = st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim) if ndim else st.just([])
        choices.append(
            chosen.flatmap(
                lambda picked: st.tuples(
                    *(st.sampled_from([a, a - ndim]) if allow_negative else st.just(a) for a in picked)
                )
            )
        )
    return st.one_of(choices)


def indices(
    shape: Shape, *, kinds: Sequence[str] = ("basic", "integer", "boolean", "mixed")
) -> st.SearchStrategy[Any]:
    """Any NumPy index into an array of `shape`.

    Kinds: `basic` (ints, slices, None, Ellipsis), `integer` (integer arrays, one per axis,
    with repeats), `boolean` (a mask over the leading axes), `mixed` (slices, then one integer
    array). Kinds that cannot index `shape` (integer arrays into an empty axis) are left out.

    >>> index = indices((3, 4)).example()
    >>> np.zeros((3, 4))[index].ndim >= 0
    True
    """
    choices = []
    has_elements = len(shape) > 0 and all(side > 0 for side in shape)
    if "basic" in kinds:
        choices.append(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    if "integer" in kinds and has_elements:
        result = hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3)
        choices.append(hnp.integer_array_indices(shape, result_shape=result))
    if "boolean" in kinds and shape:
        choices.append(
            st.integers(1, len(shape)).flatmap(
                lambda lead: hnp.arrays(np.bool_, shape[:lead], fill=st.nothing())
            )
        )
    if "mixed" in kinds and has_elements:
        choices.append(st.integers(0, len(shape) - 1).flatmap(lambda axis: _one_integer_axis(shape, axis)))
    return st.one_of(choices)


def _one_integer_axis(shape: Shape, axis: int) -> st.SearchStrategy[tuple]:
    side = shape[axis]
    positions = hnp.arrays(
        np.intp, st.integers(1, 4), elements=st.integers(-side, side - 1), fill=st.nothing()
    )
    return positions.map(lambda picked: (slice(None),) * axis + (picked,))


# ---- elements and arrays ---------------------------------------------------------------------


# Shrinking goes to the first of these that is in range: a failing example reads 1, -0.5 or 2, not
# 1.1102230246251565e-16. Any other float is at least TINY from zero (hypothesis likes 1e-169, which
# reads badly and is nowhere a lesson's example), or zero itself.
READABLE = (0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 1.5, -1.5, 0.25, -0.25, 3.0, -3.0, 0.75, -0.75, 2.5, -2.5)
TINY = 2.0**-10  # about 1e-3, and exact in float16, float32 and float64


def _away_from_tiny(x: float, low: float, high: float) -> float:
    """`x`, or for 0 < |x| < TINY the nearest of 0 and ±TINY inside [low, high] (x if neither is).

    >>> [_away_from_tiny(x, low, 1.0) for x, low in ((1e-169, -1.0), (1e-169, 1e-200), (0.5, 0.0))]
    [0.0, 0.0009765625, 0.5]
    """
    if x == 0.0 or abs(x) >= TINY:
        return x
    for candidate in (0.0, float(np.copysign(TINY, x)), -float(np.copysign(TINY, x))):
        if low <= candidate <= high:
            return candidate
    return x


def floats(low: float, high: float, dtype: Any = np.float64) -> st.SearchStrategy[float]:
    """Finite floats in [low, high] that `dtype` represents exactly (bounds rounded inwards), none
    closer to zero than TINY but zero, shrinking to readable numbers (small integers, halves, quarters).

    >>> -1.0 <= floats(-1.0, 1.0, np.float32).example() <= 1.0
    True
    >>> from hypothesis import find
    >>> [find(floats(low, 4.0), lambda x: x > 0.1) in READABLE for low in (-3.0, 0.1)]
    [True, True]
    """
    # One strategy per (low, high, dtype), made once: hypothesis validates every new strategy
    # object it draws from, which cost `python -m mytorch check` more than the checks themselves.
    return _floats(float(low), float(high), np.dtype(dtype))


@functools.cache
def _floats(low: float, high: float, dtype: np.dtype) -> st.SearchStrategy[float]:
    lo, hi = dtype.type(low), dtype.type(high)
    if lo < low:
        lo = np.nextafter(lo, dtype.type(np.inf))
    if hi > high:
        hi = np.nextafter(hi, dtype.type(-np.inf))
    anything = st.floats(float(lo), float(hi), width=dtype.itemsize * 8, allow_subnormal=False)
    # A map, not a filter: a filter can make hypothesis abandon an example half-way (check_layer
    # draws dLdZ after the forward has recorded).
    anything = anything.map(lambda x: _away_from_tiny(x, float(lo), float(hi)))
    readable = [x for x in READABLE if lo <= x <= hi]
    return st.one_of(st.sampled_from(readable), anything) if readable else anything


def float_arrays(
    shape: ShapeLike | None = None, dtype: Any = np.float64, *, low: float = -3.0, high: float = 3.0
) -> st.SearchStrategy[np.ndarray]:
    """Float arrays of `dtype` and `shape` (default: any shape up to 3-D) with values in [low, high]
    (a complex `dtype`: real and imaginary parts each in [low, high]).

    >>> float_arrays((2,), np.float32).example().dtype
    dtype('float32')
    >>> float_arrays((2,), np.complex64).example().dtype
    dtype('complex64')
    """
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    if isinstance(shape, tuple):  # a fixed shape: the strategy is made once (see floats)
        return _float_arrays(tuple(int(n) for n in shape), np.dtype(dtype), float(low), float(high))
    return _float_arrays_of(shapes() if shape is None else shape, np.dtype(dtype), low, high)


@functools.lru_cache(maxsize=4096)
def _float_arrays(shape: Shape, dtype: np.dtype, low: float, high: float) -> st.SearchStrategy[np.ndarray]:
    return _float_arrays_of(shape, dtype, low, high)


def _float_arrays_of(shape: Any, dtype: np.dtype, low: float, high: float) -> st.SearchStrategy[np.ndarray]:
    if dtype.kind == "c":
        part = np.finfo(dtype).dtype
        sizes = shape if isinstance(shape, st.SearchStrategy) else st.just(shape)
        return sizes.flatmap(
            lambda fixed: st.tuples(float_arrays(fixed, part, low=low, high=high),
                                    float_arrays(fixed, part, low=low, high=high))
        ).map(lambda parts: np.asarray(parts[0] + 1j * parts[1], dtype=dtype))
    return hnp.arrays(dtype, shape, elements=floats(low, high, dtype), fill=st.nothing())


def positive_arrays(
    shape: ShapeLike, dtype: Any = np.float64, *, low: float = 0.1, high: float = 4.0
) -> st.SearchStrategy[np.ndarray]:
    """Arrays in [low, high] with low > 0: the domain of `log`, `sqrt`, `x ** p`.

    >>> bool(np.all(positive_arrays((3,)).example() > 0))
    True
    """
    if low <= 0:
        raise ValueError(f"positive_arrays: low must be > 0, got {low}")
    return float_arrays(shape, dtype, low=low, high=high)


def arrays_away_from(
    shape: ShapeLike,
    dtype: Any = np.float64,
    *,
    kinks: Sequence[float] = (0.0,),
    margin: float = 0.05,
    low: float = -3.0,
    high: float = 3.0,
) -> st.SearchStrategy[np.ndarray]:
    """Arrays in [low, high] whose every element is at least `margin` away from each kink.

    >>> x = arrays_away_from((5,), kinks=(0.0,), margin=0.1).example()
    >>> bool(np.all(np.abs(x) >= 0.1))
    True
    """
    edges = sorted(k for k in kinks if low - margin < k < high + margin)
    starts = [low] + [k + margin for k in edges]
    ends = [k - margin for k in edges] + [high]
    pieces = [floats(a, b, dtype) for a, b in zip(starts, ends) if a <= b]
    if not pieces:
        raise ValueError(f"arrays_away_from: no room in [{low}, {high}] at {margin} from {list(kinks)}")
    return hnp.arrays(np.dtype(dtype), shape, elements=st.one_of(pieces), fill=st.nothing())


def distinct_arrays(
    shape: ShapeLike, dtype: Any = np.float64, *, spacing: float = 0.05, low: float = -3.0
) -> st.SearchStrategy[np.ndarray]:
    """Arrays whose elements differ pairwise by at least `spacing`: no ties for `max`/`min`.

    Elements are distinct multiples of `spacing`, shifted by `low`'s fraction.

    >>> x = distinct_arrays((4,)).example()
    >>> len(set(x.tolist())) == 4
    True
    """

    def build(concrete: Shape) -> st.SearchStrategy[np.ndarray]:
        return SEEDS.map(lambda choice: seeded_distinct(choice, concrete, dtype, spacing=spacing, low=low))

    return _with_shape(shape, build)


def non_tying_pairs(
    shape_x: Shape, shape_y: Shape, dtype: Any = np.float64, *, spacing: float = 0.05, reach: float = 3.0
) -> st.SearchStrategy[tuple[np.ndarray, np.ndarray]]:
    """Arrays x, y with |x - y| >= spacing wherever they meet after broadcasting.

    x holds even multiples of `spacing`, y odd ones, so no element of x ties any element of y:
    safe for `maximum`, `minimum` and comparisons.

    >>> x, y = non_tying_pairs((3,), (2, 1)).example()
    >>> bool(np.all(np.abs(x - y) >= 0.05 - 1e-12))
    True
    """
    return SEEDS.map(
        lambda choice: seeded_non_tying(choice, shape_x, shape_y, dtype, spacing=spacing, reach=reach)
    )


def well_conditioned_matrices(
    n: int | st.SearchStrategy[int] | None = None,
    dtype: Any = np.float64,
    *,
    batch_shape: Shape = (),
) -> st.SearchStrategy[np.ndarray]:
    """Square matrices (n by n; by default n from 1 to 4) with condition number at most 5.

    Each row is strictly diagonally dominant with slack 1/2: |a_ii| >= 1 and the off-diagonal
    entries of a row add up to at most 1/2, so ||A⁻¹|| <= 2 and ||A|| <= 2.5.

    >>> A = well_conditioned_matrices(3).example()
    >>> bool(np.linalg.cond(A, np.inf) <= 5)
    True
    """

    def build(size: int) -> st.SearchStrategy[np.ndarray]:
        def make(choice: tuple[int, int]) -> np.ndarray:
            # off the diagonal never one number throughout (style 0): with a constant diagonal that is
            # a matrix of repeated eigenvalues, where eigenvector gradients are not defined
            off = seeded_floats((2, choice[1]), (*batch_shape, size, size), low=-1.0, high=1.0)
            diagonal = seeded_floats((choice[0], choice[1] + 1), (*batch_shape, size), kinks=(0.0,),
                                     margin=1.0, low=-2.0, high=2.0)
            return _dominant(off, diagonal, size).astype(dtype)

        return SEEDS.map(make)

    n = st.integers(1, 4) if n is None else n
    return n.flatmap(build) if isinstance(n, st.SearchStrategy) else build(n)


def _dominant(off: np.ndarray, diagonal: np.ndarray, size: int) -> np.ndarray:
    scaled = off * (0.5 / max(size - 1, 1))
    eye = np.eye(size, dtype=bool)
    return np.where(eye, diagonal[..., None] * np.ones(size), scaled)


# ---- seeded arrays: two choices per array ---------------------------------------------------------
#
# Drawn element by element, an array costs hypothesis several choices per element (one_of, floats,
# map), and that drawing was most of `python -m mytorch check`'s time. A seeded array costs two
# choices, a style and a seed, and NumPy's generator makes the values from them: the input specs
# and the checks' adjoints and tangents draw so. Shapes, dtypes, parameters and the choice between
# the styles stay hypothesis' own, and a seed reproduces its array. Shrinking still ends on readable
# arrays: style 0 fills the array with one readable number, the seed's (0, 1, -1, 0.5, ... for the
# seeds 0, 1, 2, 3, ...), which is where hypothesis shrinks a failing example to where it can.

SEEDS: st.SearchStrategy[tuple[int, int]] = st.tuples(st.integers(0, 3), st.integers(0, 2**32 - 1))
"""(style, seed) of one seeded array. Styles: 0 one readable number throughout (the seed's), 1 a
readable number at each element, 2 and 3 half readable numbers, the rest spread over the range with
an eighth at its ends (as hypothesis' own floats favour bounds)."""


@functools.lru_cache(maxsize=1024)
def _domain(dtype: np.dtype, low: float, high: float, kinks: tuple[float, ...], margin: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pieces of [low, high] at least `margin` from each kink (bounds rounded inwards to
    `dtype`), each piece's share of a spread draw, and the readable numbers in them."""
    edges = sorted(k for k in kinks if low - margin < k < high + margin)
    starts = [low] + [k + margin for k in edges]
    ends = [k - margin for k in edges] + [high]
    pieces = []
    for start, end in zip(starts, ends):
        lo, hi = dtype.type(start), dtype.type(end)
        if lo < start:
            lo = np.nextafter(lo, dtype.type(np.inf))
        if hi > end:
            hi = np.nextafter(hi, dtype.type(-np.inf))
        if lo <= hi:
            pieces.append((float(lo), float(hi)))
    if not pieces:
        raise ValueError(f"no room in [{low}, {high}] at {margin} from {list(kinks)}")
    readable = [x for x in READABLE if any(lo <= x <= hi for lo, hi in pieces)]
    bounds = np.array(pieces)
    lengths = bounds[:, 1] - bounds[:, 0]
    shares = lengths / lengths.sum() if lengths.sum() > 0 else np.full(len(pieces), 1 / len(pieces))
    return bounds, shares, np.array(readable or sorted({x for piece in pieces for x in piece}))


def seeded_floats(choice: tuple[int, int], shape: Shape, dtype: Any = np.float64, *, low: float = -3.0,
                  high: float = 3.0, kinks: Sequence[float] = (), margin: float = 0.05) -> np.ndarray:
    """The float array of `choice` (a draw of `SEEDS`): values of `dtype` in [low, high], at least
    `margin` from each kink, none closer to zero than TINY but zero; a complex `dtype` gets real and
    imaginary parts so.

    >>> x = seeded_floats((2, 7), (3, 4), np.float32, kinks=(0.0,), margin=0.1)
    >>> x.dtype, bool(np.all((np.abs(x) >= 0.1) & (np.abs(x) <= 3)))
    (dtype('float32'), True)
    >>> seeded_floats((0, 1), (2,)).tolist()  # style 0 and a small seed: what shrinking ends on
    [1.0, 1.0]
    """
    dtype, shape = np.dtype(dtype), tuple(shape)
    if dtype.kind == "c":
        parts = seeded_floats(choice, (2, *shape), np.finfo(dtype).dtype, low=low, high=high,
                              kinks=kinks, margin=margin)
        return np.asarray(parts[0] + 1j * parts[1], dtype=dtype)
    bounds, shares, readable = _domain(dtype, float(low), float(high), tuple(float(k) for k in kinks),
                                       float(margin))
    style, seed = choice
    size = math.prod(shape)
    if style == 0:
        return np.full(shape, readable[seed % len(readable)], dtype)
    rng = np.random.default_rng(seed)
    values = rng.choice(readable, size).astype(dtype)
    if style >= 2:
        kind = rng.integers(0, 8, size)  # 0-3 readable, 4 an end of a piece, 5-7 anywhere in one
        piece = bounds[rng.choice(len(bounds), size, p=shares)].astype(dtype)
        spread = piece[:, 0] + (piece[:, 1] - piece[:, 0]) * rng.random(size).astype(dtype)
        spread = np.clip(spread, piece[:, 0], piece[:, 1])  # rounding may step out
        for i in np.flatnonzero((spread != 0) & (np.abs(spread) < TINY)):
            spread[i] = _away_from_tiny(float(spread[i]), float(piece[i, 0]), float(piece[i, 1]))
        ends = np.where(rng.random(size) < 0.5, piece[:, 0], piece[:, 1])
        values = np.where(kind >= 5, spread, np.where(kind == 4, ends, values))
    return values.reshape(shape)


def seeded_picks(choice: tuple[int, int], shape: Shape, values: Sequence[Any], dtype: Any) -> np.ndarray:
    """An array of `dtype` with each element one of `values` (style 0: one of them throughout).

    >>> seeded_picks((1, 5), (2, 3), (-1, 0, 1), np.int64).dtype
    dtype('int64')
    """
    style, seed = choice
    if style == 0:
        return np.full(tuple(shape), values[seed % len(values)], dtype)
    return np.asarray(np.random.default_rng(seed).choice(np.asarray(values), tuple(shape)), dtype=dtype)


def seeded_distinct(choice: tuple[int, int], shape: Shape, dtype: Any = np.float64, *,
                    spacing: float = 0.05, low: float = -3.0) -> np.ndarray:
    """Distinct multiples of `spacing` (no two elements tie), from about `low` to `-low`; style 0
    the ones nearest zero.

    >>> x = seeded_distinct((2, 3), (4, 5))
    >>> len(set(x.ravel().tolist())) == 20
    True
    """
    style, seed = choice
    size = math.prod(shape)
    reach = max(size, int(-2 * low / spacing))
    rng = np.random.default_rng(seed)
    if style == 0:
        steps = rng.permutation(size) - size // 2
    else:
        steps = rng.choice(np.arange(-(reach // 2), reach // 2 + 1), size, replace=False)
    # np.asarray: for shape () the product is a NumPy scalar, which would pass for a constant
    return np.asarray((steps * spacing).reshape(tuple(shape)), dtype=dtype)


def seeded_non_tying(choice: tuple[int, int], shape_x: Shape, shape_y: Shape, dtype: Any = np.float64, *,
                     spacing: float = 0.05, reach: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """x of even multiples of `spacing` and y of odd ones in [-reach, reach]: no element of x ties
    one of y (see non_tying_pairs)."""
    half = max(1, int(reach / (2 * spacing)))
    steps = range(-half, half + 1)
    style, seed = choice
    x = seeded_picks((style, seed), shape_x, steps, np.int64)
    y = seeded_picks((style, seed + 1), shape_y, steps, np.int64)
    return np.asarray(2 * x * spacing, dtype=dtype), np.asarray((2 * y + 1) * spacing, dtype=dtype)

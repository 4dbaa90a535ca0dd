"""Inputs for every primitive, as a compact table, for the forward-mode and dot-product tests.

`CASES[name]` is a hypothesis strategy of `Case`s: the inputs (float arrays are differentiated;
integer arrays, Python numbers and None are constants) and the parameters of one call, kept away
from kinks, ties and domain edges by a margin far wider than the finite-difference step, so the
numerical derivative is meaningful.

(`mytorch.testing.cases` grows a richer table with PyTorch twins; this one stays small on purpose
and the two can be unified.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

MARGIN = 0.05  # distance kept from kinks and ties (the finite-difference step is 1e-3 at most)


@dataclass
class Case:
    inputs: tuple
    params: dict = field(default_factory=dict)
    rtol: float = 1e-6  # for the finite-difference comparison

    @property
    def float_positions(self) -> list[int]:
        return [i for i, v in enumerate(self.inputs) if isinstance(v, np.ndarray) and v.dtype.kind == "f"]


# ---- building blocks ------------------------------------------------------------------------


def small_shapes(min_dims: int = 0, max_dims: int = 3, max_side: int = 3) -> st.SearchStrategy:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def floats(draw: Any, shape: tuple, lo: float = -2.0, hi: float = 2.0, dtype: Any = np.float64) -> np.ndarray:
    elements = st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=64)
    return draw(hnp.arrays(np.float64, shape, elements=elements)).astype(dtype)


def away_from_zero(draw: Any, shape: tuple, lo: float = MARGIN, hi: float = 2.0) -> np.ndarray:
    magnitude = floats(draw, shape, lo, hi)
    sign = draw(hnp.arrays(np.bool_, shape))
    return np.where(sign, magnitude, -magnitude)


def distinct(draw: Any, shape: tuple) -> np.ndarray:
    """Values at least 0.1 apart: a shuffled ladder with a little noise (no ties for max/min/pool)."""
    size = int(np.prod(shape))
    order = np.array(draw(st.permutations(range(size))), dtype=np.float64)
    noise = floats(draw, (size,), -0.2, 0.2)
    return (0.5 * order + noise - 0.25 * size).reshape(shape)


def broadcast_partner(draw: Any, shape: tuple) -> tuple:
    """A shape that broadcasts with `shape`: some leading axes dropped, some axes set to 1."""
    dropped = draw(st.integers(0, len(shape)))
    return tuple(1 if draw(st.booleans()) else n for n in shape[dropped:])


def axis_of(draw: Any, ndim: int, allow_none: bool = True, allow_tuple: bool = True) -> Any:
    choices = [st.integers(-ndim, ndim - 1)] if ndim else []
    if allow_none or not ndim:
        choices.append(st.none())
    if allow_tuple and ndim:
        choices.append(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim).map(tuple))
    return draw(st.one_of(*choices))


# ---- the table --------------------------------------------------------------------------------


def elementwise(lo: float = -2.0, hi: float = 2.0, kink: bool = False) -> st.SearchStrategy:
    @st.composite
    def case(draw: Any) -> Case:
        shape = draw(small_shapes())
        x = away_from_zero(draw, shape) if kink else floats(draw, shape, lo, hi)
        return Case((x,))

    return case()


def binary(kind: str) -> st.SearchStrategy:
    @st.composite
    def case(draw: Any) -> Case:
        shape = draw(small_shapes())
        other = broadcast_partner(draw, shape)
        if draw(st.booleans()):
            shape, other = other, shape
        x, y = floats(draw, shape), floats(draw, other)
        if kind == "div":
            y = away_from_zero(draw, other, 0.3)
        elif kind == "power":
            x = floats(draw, shape, 0.3, 2.5)
            y = draw(st.sampled_from([floats(draw, other, -2.0, 2.5), 2, 3.0, np.array(2)]))
        elif kind == "select":
            assume(np.min(np.abs(x - y), initial=1.0) >= MARGIN)
        constant = draw(st.sampled_from([None, 0, 1]))  # sometimes one side is a Python number
        if constant is not None and kind in ("add", "mul", "sub"):
            return Case((x, 1.5) if constant == 0 else (-0.5, y))
        return Case((x, y))

    return case()


@st.composite
def matmul_case(draw: Any) -> Case:
    n, k, m, b = (draw(st.integers(1, 3)) for _ in range(4))
    a_shape, b_shape = draw(st.sampled_from([
        ((k,), (k,)), ((k,), (k, m)), ((n, k), (k,)), ((n, k), (k, m)),
        ((b, n, k), (k, m)), ((b, n, k), (b, k, m)), ((1, n, k), (b, k, m)), ((k,), (b, k, m)),
    ]))
    return Case((floats(draw, a_shape), floats(draw, b_shape)))


@st.composite
def clip_case(draw: Any) -> Case:
    shape = draw(small_shapes())
    x = floats(draw, shape)
    if draw(st.booleans()):
        lo = draw(st.sampled_from([None, -0.5]))
        hi = 0.5 if lo is None else draw(st.sampled_from([None, 0.5]))
    else:  # bounds as arrays: differentiable too
        lo = floats(draw, broadcast_partner(draw, shape), -1.5, -0.2)
        hi = floats(draw, broadcast_partner(draw, shape), 0.2, 1.5)
    for bound in (lo, hi):
        if bound is not None:
            assume(np.min(np.abs(x - bound), initial=1.0) >= MARGIN)
    return Case((x, lo, hi))


@st.composite
def where_case(draw: Any) -> Case:
    shape = draw(small_shapes())
    condition = draw(hnp.arrays(np.bool_, broadcast_partner(draw, shape)))
    y = floats(draw, broadcast_partner(draw, shape)) if draw(st.booleans()) else 0.0
    return Case((condition, floats(draw, shape), y))


def reduction(kind: str) -> st.SearchStrategy:
    @st.composite
    def case(draw: Any) -> Case:
        shape = draw(small_shapes())
        x = distinct(draw, shape) if kind == "extremum" else floats(draw, shape)
        if kind == "softmax":
            return Case((x,), {"axis": axis_of(draw, x.ndim, allow_none=False, allow_tuple=False)})
        keepdims = draw(st.booleans())
        if kind == "logsumexp":
            return Case((x,), {"axis": axis_of(draw, x.ndim, allow_tuple=False), "keepdims": keepdims})
        return Case((x,), {"axis": axis_of(draw, x.ndim), "keepdims": keepdims})

    return case()


@st.composite
def reshape_case(draw: Any) -> Case:
    x = floats(draw, draw(small_shapes()))
    target = draw(st.sampled_from([(x.size,), (-1,), x.shape[::-1], (1,) + x.shape, (x.size, 1)]))
    return Case((x,), {"shape": target})


@st.composite
def transpose_case(draw: Any) -> Case:
    x = floats(draw, draw(small_shapes()))
    axes = draw(st.one_of(st.none(), st.permutations(range(x.ndim)).map(tuple)))
    return Case((x,), {"axes": axes})


@st.composite
def broadcast_to_case(draw: Any) -> Case:
    target = draw(small_shapes(min_dims=1))
    x = floats(draw, broadcast_partner(draw, target))
    return Case((x,), {"shape": (draw(st.integers(1, 2)),) + target})


@st.composite
def expand_dims_case(draw: Any) -> Case:
    x = floats(draw, draw(small_shapes()))
    return Case((x,), {"axis": draw(st.integers(-x.ndim - 1, x.ndim))})


@st.composite
def squeeze_case(draw: Any) -> Case:
    shape = tuple(1 if draw(st.booleans()) else n for n in draw(small_shapes(min_dims=1)))
    ones = [i for i, n in enumerate(shape) if n == 1]
    axis = draw(st.one_of(st.none(), st.sampled_from(ones))) if ones else None
    return Case((floats(draw, shape),), {"axis": axis})


def index_into(draw: Any, shape: tuple) -> Any:
    """A basic index, an integer-array index with repeats, or a boolean mask."""
    kind = draw(st.sampled_from(["int", "slice", "tuple", "array", "mask"]))
    if kind == "int":
        return draw(st.integers(-shape[0], shape[0] - 1))
    if kind == "slice":
        return slice(draw(st.integers(0, shape[0])), None, draw(st.sampled_from([1, 2, -1])))
    if kind == "tuple":
        return (Ellipsis, draw(st.integers(0, shape[-1] - 1)))
    if kind == "array":
        return np.array(draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=4)))
    return draw(hnp.arrays(np.bool_, shape))


@st.composite
def getitem_case(draw: Any) -> Case:
    x = floats(draw, draw(small_shapes(min_dims=1)))
    return Case((x,), {"index": index_into(draw, x.shape)})


@st.composite
def scatter_add_case(draw: Any) -> Case:
    shape = draw(small_shapes(min_dims=1))
    index = index_into(draw, shape)
    return Case((floats(draw, np.zeros(shape)[index].shape),), {"index": index, "shape": shape})


def joining(kind: str) -> st.SearchStrategy:
    @st.composite
    def case(draw: Any) -> Case:
        shape = draw(small_shapes(min_dims=1 if kind == "concatenate" else 0))
        count = draw(st.integers(1, 3))
        if kind == "stack":
            axis = draw(st.integers(-len(shape) - 1, len(shape)))
            parts = [floats(draw, shape) for _ in range(count)]
        else:
            axis = draw(st.integers(-len(shape), len(shape) - 1))
            sizes = [draw(st.integers(1, 3)) for _ in range(count)]
            at = axis % len(shape)
            parts = [floats(draw, shape[:at] + (n,) + shape[at + 1:]) for n in sizes]
        if count > 1 and draw(st.booleans()):
            parts[0] = parts[0].astype(np.int64)  # a constant among the inputs
        return Case(tuple(parts), {"axis": axis})

    return case()


@st.composite
def pad_case(draw: Any) -> Case:
    x = floats(draw, draw(small_shapes(min_dims=1)))
    width = draw(st.one_of(st.integers(0, 2), st.just(tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2)))
                                                             for _ in range(x.ndim)))))
    return Case((x,), {"pad_width": width, "constant_values": draw(st.sampled_from([0, 1.5]))})


@st.composite
def linear_case(draw: Any) -> Case:
    n_in, n_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    batch = draw(st.sampled_from([(), (2,), (2, 3)]))
    bias = floats(draw, (n_out,)) if draw(st.booleans()) else None
    return Case((floats(draw, batch + (n_in,)), floats(draw, (n_out, n_in)), bias))


@st.composite
def cross_entropy_case(draw: Any) -> Case:
    rows, classes = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    logits = floats(draw, (rows, classes), -3, 3)
    if draw(st.booleans()):
        target = np.array(draw(st.lists(st.integers(0, classes - 1), min_size=rows, max_size=rows)))
    else:
        weights = floats(draw, (rows, classes), 0.1, 1.0)
        target = weights / weights.sum(axis=1, keepdims=True)
    return Case((logits, target))


@st.composite
def astype_case(draw: Any) -> Case:
    x = floats(draw, draw(small_shapes()))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    return Case((x,), {"dtype": dtype}, rtol=1e-6 if dtype is np.float64 else 1e-3)


# ---- convolution and pooling (mytorch.conv) ---------------------------------------------------


@st.composite
def window_geometry(draw: Any, dims: int) -> dict:
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    padding = tuple((draw(st.integers(0, 1)), draw(st.integers(0, 1))) for _ in range(dims))
    size = tuple(d * (k - 1) + 1 + draw(st.integers(0, 2)) for k, d in zip(kernel, dilation))
    return {"kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation, "size": size}


@st.composite
def im2col_case(draw: Any) -> Case:
    g = draw(window_geometry(draw(st.integers(1, 2))))
    x = floats(draw, (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + g.pop("size"))
    return Case((x,), {**g, "pad_value": draw(st.sampled_from([0.0, 1.0]))})


@st.composite
def col2im_case(draw: Any) -> Case:
    g = draw(window_geometry(draw(st.integers(1, 2))))
    x_shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + g.pop("size")
    from mytorch.conv import _im2col  # the shape of the windows col2im folds back

    cols_shape = _im2col(np.zeros(x_shape), g["kernel"], g["stride"], g["padding"], g["dilation"]).shape
    return Case((floats(draw, cols_shape),), {"x_shape": x_shape, **g})


def convolution(dims: int) -> st.SearchStrategy:
    @st.composite
    def case(draw: Any) -> Case:
        kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
        padding = draw(st.integers(0, 1))
        size = tuple(k + draw(st.integers(0, 2)) for k in kernel)
        channels, out_channels = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        x = floats(draw, (draw(st.integers(1, 2)), channels) + size)
        weight = floats(draw, (out_channels, channels) + kernel)
        bias = floats(draw, (out_channels,)) if draw(st.booleans()) else None
        return Case((x, weight, bias), {"stride": draw(st.integers(1, 2)), "padding": padding})

    return case()


@st.composite
def max_pool2d_case(draw: Any) -> Case:
    kernel = draw(st.integers(1, 3))
    size = (kernel + draw(st.integers(0, 2)), kernel + draw(st.integers(0, 2)))
    x = distinct(draw, (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + size)
    return Case((x,), {"kernel_size": kernel, "stride": draw(st.sampled_from([None, 1, 2])),
                       "padding": draw(st.integers(0, kernel // 2))})


CASES: dict[str, st.SearchStrategy] = {
    "add": binary("add"), "sub": binary("sub"), "mul": binary("mul"), "div": binary("div"),
    "power": binary("power"), "maximum": binary("select"), "minimum": binary("select"),
    "neg": elementwise(), "exp": elementwise(), "log": elementwise(0.2, 4.0), "sqrt": elementwise(0.2, 4.0),
    "abs": elementwise(kink=True), "relu": elementwise(kink=True), "sin": elementwise(-3, 3),
    "cos": elementwise(-3, 3), "tanh": elementwise(), "sigmoid": elementwise(-4, 4), "erf": elementwise(),
    "matmul": matmul_case(), "clip": clip_case(), "where": where_case(),
    "sum": reduction("plain"), "mean": reduction("plain"), "max": reduction("extremum"),
    "min": reduction("extremum"), "logsumexp": reduction("logsumexp"), "softmax": reduction("softmax"),
    "log_softmax": reduction("softmax"),
    "reshape": reshape_case(), "transpose": transpose_case(), "broadcast_to": broadcast_to_case(),
    "expand_dims": expand_dims_case(), "squeeze": squeeze_case(), "getitem": getitem_case(),
    "scatter_add": scatter_add_case(), "concatenate": joining("concatenate"), "stack": joining("stack"),
    "pad": pad_case(), "linear": linear_case(), "cross_entropy": cross_entropy_case(),
    "astype": astype_case(),
    "im2col": im2col_case(), "col2im": col2im_case(), "conv1d": convolution(1), "conv2d": convolution(2),
    "max_pool2d": max_pool2d_case(),
}

"""One input spec per primitive: how to draw its inputs and parameters, and its PyTorch twin.

A `Case` knows, for one primitive,

- `examples(dtype, ties=False)`: a hypothesis strategy of `Example`s (inputs + parameters) that
  covers its signature: broadcast shapes with size-1 axes, 0-d and empty arrays where legal,
  `axis`/`keepdims`, basic/advanced/boolean indices, pad widths, lists of arrays, and integer
  arrays or Python numbers as constant inputs. With `ties=False` inputs keep away from kinks and
  ties (finite differences need that); `ties=True` draws from a coarse grid so kinks and ties
  happen often (PyTorch can judge what the gradient should be there);
- `torch`: the same computation in PyTorch (the oracle), taking tensors for the inputs;
- `bad`: an input the primitive must refuse, and what its error message must name.

>>> example = CASES["add"].examples().example()
>>> len(example.inputs)
2

Every primitive in `mytorch.functional.PRIMITIVES` must have a case (`missing_cases()` lists the
ones that do not; the test suite fails on any).
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

from mytorch import functional
from mytorch.testing.strategies import (
    SEEDS,
    axes,
    broadcast_targets,
    broadcastable_shapes,
    indices,
    matmul_shapes,
    reshape_targets,
    seeded_distinct,
    seeded_floats,
    seeded_non_tying,
    seeded_picks,
    shapes,
    stretched_shapes,
)

__all__ = ["CASES", "Case", "Example", "all_primitives", "missing_cases"]

# Modules that define primitives besides mytorch.functional (imported when present).
_PRIMITIVE_MODULES = ("mytorch.conv",)


@dataclass
class Example:
    """The arguments of one call: `primitive.apply(example.inputs, example.params)`."""

    inputs: tuple
    params: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        lines = [(f"input {i}: ", value) for i, value in enumerate(self.inputs)]
        lines += [(f"{name}=", value) for name, value in self.params.items()]
        shown = [label + _show(value).replace("\n", "\n" + " " * (len(label) + 2)) for label, value in lines]
        for i, value in enumerate(self.inputs):  # an array given twice is one array (`mul(x, x)`)
            first = next(j for j, other in enumerate(self.inputs) if other is value)
            if isinstance(value, np.ndarray) and first < i:
                shown[i] = f"input {i}: the same array as input {first}"

        return "Example(\n  " + "\n  ".join(shown) + "\n)"

    @property
    def float_positions(self) -> list[int]:
        """Where the float arrays sit among the inputs: the ones differentiated (the rest are constants).

        >>> Example((np.ones(2), 3, np.arange(2), np.zeros(1))).float_positions
        [0, 3]
        """
        return [i for i, v in enumerate(self.inputs) if isinstance(v, np.ndarray) and v.dtype.kind in "fc"]

    def astype(self, dtype: Any) -> Example:
        """The same example with its float arrays cast to `dtype` (constants untouched; a complex
        array is cast to the complex dtype of `dtype`'s precision, keeping its imaginary part)."""
        dtype = np.dtype(dtype)
        complex_dtype = np.result_type(dtype, np.complex64)
        cast = tuple(
            v.astype(complex_dtype if v.dtype.kind == "c" else dtype)
            if isinstance(v, np.ndarray) and v.dtype.kind in "fc" else v for v in self.inputs
        )
        return Example(cast, dict(self.params))


def _array_text(array: np.ndarray) -> str:
    """An array's values on as few lines as will do, each number to full precision."""
    return np.array2string(array, separator=", ", precision=17, floatmode="maxprec", threshold=60)


def _show(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return _array_text(value) + f"  # shape {value.shape} {value.dtype}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


@dataclass(frozen=True)
class Case:
    """How to draw the inputs of one primitive, and its PyTorch twin."""

    name: str
    draw: Callable[[st.DrawFn, np.dtype, bool], Example]
    torch: Callable[..., Any] | None = None
    # (inputs, params, words the error must contain): a call the primitive must refuse.
    bad: tuple[tuple, dict, tuple[str, ...]] | None = None
    # Inputs that select rather than take part (where's condition, cross_entropy's labels): an
    # integer or bool array there leaves float32 math in float32.
    index_inputs: tuple[int, ...] = ()
    # For a primitive that declares complex support: the input positions that may be drawn complex
    # (None: every float input; rfft's input is real). `draws_complex`: `draw` takes a complex
    # dtype itself (angle keeps away from its branch cut) instead of the real example made complex.
    complex_inputs: tuple[int, ...] | None = None
    draws_complex: bool = False

    def examples(self, dtype: Any = np.float64, *, ties: bool = False) -> st.SearchStrategy[Example]:
        """Examples of this primitive's arguments, float arrays of `dtype`.

        A complex `dtype` draws the real example in the float dtype of its precision and gives
        its float inputs (those in `complex_inputs`, at least one of them) imaginary parts in
        [-0.5, 0.5]: small enough to stay clear of the poles and branch points that sit off the
        real axis (tanh at ±iπ/2, arctan at ±i), and on the grid {-0.5, 0, 0.5} when `ties`.
        """
        dtype = np.dtype(dtype)
        # Made once per case, dtype and ties: st.composite reads its function's source each time
        # it is called, which cost the checks as much as a drawn example.
        key = (id(self), dtype, ties)
        if key not in _EXAMPLES:
            if dtype.kind == "c" and not self.draws_complex:
                part = np.finfo(dtype).dtype
                strategy = st.composite(
                    lambda draw: _complexified(draw, self.draw(draw, part, ties), dtype, ties,
                                               self.complex_inputs)
                )()
            else:
                strategy = st.composite(lambda draw: self.draw(draw, dtype, ties))()
            _EXAMPLES[key] = (self, strategy)  # the case is kept too, so that its id is not reused
        return _EXAMPLES[key][1]


_EXAMPLES: dict[tuple[int, np.dtype, bool], tuple[Case, st.SearchStrategy[Example]]] = {}


def _complexified(draw: st.DrawFn, example: Example, dtype: np.dtype, ties: bool,
                  allowed: tuple[int, ...] | None) -> Example:
    """`example` with some of its float inputs made complex (the same array twice stays one)."""
    positions = [i for i in example.float_positions if allowed is None or i in allowed]
    if not positions:
        return example
    chosen = {positions[0]} | {i for i in positions[1:] if draw(st.integers(0, 3), label=f"complex {i}")}
    made: dict[int, np.ndarray] = {}
    inputs = list(example.inputs)
    for i in sorted(chosen):
        value = example.inputs[i]
        if id(value) not in made:
            if ties:
                imaginary = seeded_picks(draw(SEEDS), value.shape, (-0.5, 0.0, 0.5), np.float64)
            else:
                imaginary = _values(draw, value.shape, np.finfo(dtype).dtype, low=-0.5, high=0.5)
            made[id(value)] = np.asarray(value + 1j * imaginary, dtype=dtype)
        inputs[i] = made[id(value)]
    return Example(tuple(inputs), dict(example.params))


CASES: dict[str, Case] = {}


def case(
    name: str, torch: Callable[..., Any] | None = None, bad: tuple | None = None, index_inputs: tuple = (),
    complex_inputs: tuple[int, ...] | None = None, draws_complex: bool = False,
) -> Callable:
    """Register the decorated `draw(draw, dtype, ties) -> Example` as the case of `name`."""

    def register(draw: Callable[[st.DrawFn, np.dtype, bool], Example]) -> Callable:
        CASES[name] = Case(name, draw, torch, bad, index_inputs, complex_inputs, draws_complex)
        return draw

    return register


def all_primitives() -> dict[str, Any]:
    """Every registered primitive, after importing the modules that define more of them."""
    for module in _PRIMITIVE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise
    return dict(functional.PRIMITIVES)


def missing_cases() -> list[str]:
    """Registered primitives with no case here (each one is a primitive without a property test)."""
    return sorted(set(all_primitives()) - set(CASES))


# ---- drawing helpers --------------------------------------------------------------------------

# Strategies drawn from in every example, made once (see mytorch.testing.strategies.floats).
_ANY_SHAPE = st.one_of(shapes(), shapes(min_side=0))  # empty axes too
_CONSTANT_KINDS = st.sampled_from(["float", "float", "float", "int array", "number"])

# Values where kinks and ties live: drawn from when `ties=True`.
_GRID = (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)


def _values(
    draw: st.DrawFn,
    shape: tuple[int, ...],
    dtype: np.dtype,
    ties: bool = False,
    *,
    kinks: tuple[float, ...] = (),
    margin: float = 0.05,
    low: float = -3.0,
    high: float = 3.0,
) -> np.ndarray:
    """A float array in [low, high]; away from `kinks`, or on the tie grid when `ties`. Drawn seeded
    (two choices, not a few per element: see mytorch.testing.strategies.SEEDS)."""
    if ties:
        grid = tuple(sorted({v for v in _GRID + kinks if low <= v <= high}))
        return seeded_picks(draw(SEEDS), shape, grid, dtype)
    return seeded_floats(draw(SEEDS), shape, dtype, low=low, high=high, kinks=kinks, margin=margin)


def _integers(draw: st.DrawFn, shape: tuple[int, ...], low: int, high: int, dtype: Any = np.int64
              ) -> np.ndarray:
    """An integer array in [low, high] (a constant, an index), drawn seeded as `_values` is."""
    return seeded_picks(draw(SEEDS), shape, _whole(low, high), dtype)


def _booleans(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray:
    return seeded_picks(draw(SEEDS), shape, (False, True), np.bool_)


@functools.cache
def _whole(low: int, high: int, zero: bool = True) -> tuple[int, ...]:
    """The integers in [low, high] (without 0 unless `zero`), nearest zero first: what they shrink to."""
    return tuple(sorted((k for k in range(low, high + 1) if zero or k), key=lambda k: (abs(k), k < 0)))


@functools.cache  # made once (see mytorch.testing.strategies.floats)
def _one_of(values: tuple[int, ...]) -> st.SearchStrategy[int]:
    return st.sampled_from(values)


def _constant_or(
    draw: st.DrawFn, shape: tuple[int, ...], make_float: Callable[[], Any], whole: tuple[int, ...]
) -> Any:
    """Usually a float array (from `make_float`); sometimes an int array or a Python number (constants)
    of the integers `whole` (see `_whole`)."""
    kind = draw(_CONSTANT_KINDS)
    if kind == "float":
        return make_float()
    if kind == "int array":
        return seeded_picks(draw(SEEDS), shape, whole, np.int64)
    number = draw(_one_of(whole))
    return float(number) if draw(st.booleans()) else number


@functools.cache  # strategies made once (see mytorch.testing.strategies.floats)
def _elementwise_shapes(count: int) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    # Mostly non-empty; empty arrays (a side of 0) broadcast like any other; a size-1 axis that
    # another input stretches, often (free draws seldom give one, and its gradient is a sum).
    return st.one_of(
        broadcastable_shapes(count), broadcastable_shapes(count, min_side=0), stretched_shapes(count)
    )


def _reduction_args(draw: st.DrawFn, ndim: int, keepdims: bool = True, default_axis: Any = None) -> dict:
    axis = draw(axes(ndim))
    params = {} if axis is default_axis else {"axis": axis}
    if keepdims and draw(st.booleans()):
        params["keepdims"] = True
    return params


# ---- PyTorch helpers --------------------------------------------------------------------------


def _dims(axis: Any, ndim: int) -> Any:
    """A NumPy `axis` as a PyTorch `dim` (None: every axis)."""
    if axis is None:
        return tuple(range(ndim))
    return axis


def _torch_reduce(reduce: Callable, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    dim = _dims(axis, x.ndim)
    if dim == ():  # reducing over no axis is the identity (PyTorch reads dim=() as "all")
        return x * 1
    return reduce(x, dim=dim, keepdim=keepdims)


def _flat_positions(shape: tuple[int, ...], index: Any) -> np.ndarray:
    """Where each element of `zeros(shape)[index]` sits in the flattened array: any NumPy index
    as one gather, so PyTorch computes it whatever its own indexing rules."""
    return np.array(np.arange(math.prod(shape)).reshape(shape)[index])  # a copy: no negative strides


def _torch_getitem(x: Any, index: Any) -> Any:
    import torch

    positions = torch.as_tensor(_flat_positions(tuple(x.shape), index))
    return x.reshape(-1)[positions.reshape(-1)].reshape(positions.shape)


def _torch_scatter_add(upstream: Any, index: Any, shape: tuple[int, ...]) -> Any:
    import torch

    positions = torch.as_tensor(_flat_positions(tuple(shape), index)).reshape(-1)
    values = upstream.broadcast_to(tuple(positions.shape) if upstream.ndim == 0 else upstream.shape).reshape(
        -1
    )
    zeros = torch.zeros(math.prod(shape), dtype=upstream.dtype)
    return zeros.index_put((positions,), values, accumulate=True).reshape(shape)


def _torch_pad(x: Any, pad_width: Any, constant_values: float = 0) -> Any:
    import torch

    widths = np.broadcast_to(np.asarray(pad_width, dtype=int), (x.ndim, 2))
    flat = [int(w) for pair in widths[::-1] for w in pair]  # PyTorch lists the last axis first
    return torch.nn.functional.pad(x, flat, value=constant_values)


def _torch_expand_dims(x: Any, axis: Any) -> Any:
    places = (axis,) if isinstance(axis, int) else tuple(axis)
    out_ndim = x.ndim + len(places)
    for place in sorted(a % out_ndim for a in places):
        x = x.unsqueeze(place)
    return x


def _torch_squeeze(x: Any, axis: Any = None) -> Any:
    if axis is None:
        return x.squeeze()
    return x.squeeze(axis) if isinstance(axis, int) else (x.squeeze(tuple(axis)) if axis else x * 1)


def _torch_astype(x: Any, dtype: Any) -> Any:
    import torch

    to = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32,
          np.dtype(np.complex128): torch.complex128, np.dtype(np.complex64): torch.complex64}
    return x.to(to[np.dtype(dtype)])


def _same_dtype(a: Any, b: Any) -> tuple[Any, Any]:
    """Integer operands cast to the float one's dtype, and a real one to the complex one's:
    PyTorch's matmul does not mix them (the cast is on its tape, so gradients flow through it)."""
    import torch

    if a.dtype.is_complex != b.dtype.is_complex:
        common = torch.promote_types(a.dtype, b.dtype)
        return a.to(common), b.to(common)
    if not a.dtype.is_floating_point and not a.dtype.is_complex:
        a = a.to(b.dtype)
    if not b.dtype.is_floating_point and not b.dtype.is_complex:
        b = b.to(a.dtype)
    return a, b


def _torch(name: str) -> Callable[..., Any]:
    """`torch.<name>`, looked up when called (torch is imported only by the checks that use it)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        import torch

        function = torch
        for part in name.split("."):
            function = getattr(function, part)
        return function(*args, **kwargs)

    call.__name__ = name
    return call


# ---- elementwise, one input -------------------------------------------------------------------

_UNARY = {
    # name: (torch name, domain of the drawn values)
    "neg": ("neg", {}),
    "exp": ("exp", {}),
    "log": ("log", {"low": 0.1, "high": 4.0}),
    "sqrt": ("sqrt", {"low": 0.1, "high": 4.0}),
    "abs": ("abs", {"kinks": (0.0,)}),
    "sin": ("sin", {}),
    "cos": ("cos", {}),
    "tanh": ("tanh", {}),
    "sigmoid": ("sigmoid", {"low": -6.0, "high": 6.0}),
    "erf": ("erf", {}),
    "relu": ("relu", {"kinks": (0.0,)}),
}


def _unary_case(name: str, torch_name: str, domain: dict) -> None:
    def draw_unary(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
        shape = draw(_ANY_SHAPE)
        return Example((_values(draw, shape, dtype, ties, **domain),))

    strings = np.array(["a", "b"])
    case(name, torch=_torch(torch_name), bad=((strings,), {}, (name, "(2,)")))(draw_unary)


for _name, (_torch_name, _domain) in _UNARY.items():
    _unary_case(_name, _torch_name, _domain)

# ---- elementwise, two or three inputs, broadcasting --------------------------------------------

_MISMATCH = ((np.ones((2, 3)), np.ones((4, 5))), {}, ("(2, 3)", "(4, 5)"))


def _binary_case(name: str, torch_name: str, y_domain: dict, y_integers: tuple[int, ...]) -> None:
    def draw_binary(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
        x_shape, y_shape = draw(_elementwise_shapes(2))
        x = _constant_or(draw, x_shape, lambda: _values(draw, x_shape, dtype), _whole(-3, 3))
        y = _constant_or(draw, y_shape, lambda: _values(draw, y_shape, dtype, **y_domain), y_integers)
        return Example((x, y))

    inputs, params, words = _MISMATCH
    case(name, torch=_torch(torch_name), bad=(inputs, params, (name, *words)))(draw_binary)


_binary_case("add", "add", {}, _whole(-3, 3))
_binary_case("sub", "sub", {}, _whole(-3, 3))
_binary_case("mul", "mul", {}, _whole(-3, 3))
_binary_case("div", "div", {"kinks": (0.0,), "margin": 0.5}, _whole(-3, 3, zero=False))


@case("power", torch=_torch("pow"), bad=(*_MISMATCH[:2], ("power", "(2, 3)", "(4, 5)")))
def _power(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    x_shape, p_shape = draw(_elementwise_shapes(2))
    if draw(st.booleans()):  # a positive base, any real exponent
        x = _constant_or(
            draw, x_shape, lambda: _values(draw, x_shape, dtype, low=0.5, high=2.5), _whole(1, 3)
        )
        p = _constant_or(
            draw, p_shape, lambda: _values(draw, p_shape, dtype, low=-2.0, high=2.5), _whole(0, 3)
        )
    else:  # any base (away from 0), a constant whole exponent
        x = _values(draw, x_shape, dtype, kinks=(0.0,), margin=0.2)
        p = draw(st.integers(0, 3)) if draw(st.booleans()) else _integers(draw, p_shape, 0, 3)
    return Example((x, p))


def _select_case(name: str, torch_name: str) -> None:
    def draw_select(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
        x_shape, y_shape = draw(_elementwise_shapes(2))
        if ties:
            return Example((_values(draw, x_shape, dtype, True), _values(draw, y_shape, dtype, True)))
        constant = draw(st.sampled_from([None, None, None, 0, 1]))
        if constant is None:  # even and odd multiples of the spacing never tie
            return Example(seeded_non_tying(draw(SEEDS), x_shape, y_shape, dtype))
        # An integer constant (array or number) never ties an odd multiple of the spacing.
        _, odd = seeded_non_tying(draw(SEEDS), (), x_shape, dtype)
        integer = draw(st.integers(-3, 3)) if draw(st.booleans()) else _integers(draw, y_shape, -3, 3)
        return Example((odd, integer) if constant == 0 else (integer, odd))

    case(name, torch=_select_torch(torch_name), bad=(*_MISMATCH[:2], (name, "(2, 3)", "(4, 5)")))(draw_select)


def _select_torch(torch_name: str) -> Callable[..., Any]:
    def call(x: Any, y: Any) -> Any:
        import torch

        x, y = (v if isinstance(v, torch.Tensor) else torch.tensor(v) for v in (x, y))
        return getattr(torch, torch_name)(x, y)

    return call


_select_case("maximum", "maximum")
_select_case("minimum", "minimum")


def _clip_torch(x: Any, lo: Any, hi: Any) -> Any:
    import torch

    # numpy broadcasts x against the bounds; torch.clamp keeps x's shape, so broadcast first
    present = [v for v in (x, lo, hi) if v is not None]
    shaped = dict(zip([id(v) for v in present], torch.broadcast_tensors(*present)))
    pick = lambda v: None if v is None else shaped[id(v)]
    return torch.clamp(pick(x), pick(lo), pick(hi))


@case("clip", torch=_clip_torch, bad=((np.ones((2, 3)), np.zeros(4), 1.0), {}, ("clip", "(2, 3)", "(4,)")))
def _clip(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    x_shape, lo_shape, hi_shape = draw(_elementwise_shapes(3))
    # Bounds near -1 and 1; x stays 0.3 away from both (or sits on the grid when ties are wanted).
    x = _values(draw, x_shape, dtype, ties, kinks=(-1.0, 1.0), margin=0.3)

    def bound(shape: tuple[int, ...], centre: float) -> Any:
        make = lambda: (
            np.full(shape, centre, dtype)
            if ties
            else _values(draw, shape, dtype, low=centre - 0.2, high=centre + 0.2)
        )
        return _constant_or(draw, shape, make, (int(centre),))

    which = draw(st.sampled_from(["both", "both", "lo", "hi"]))
    lo = bound(lo_shape, -1.0) if which in ("both", "lo") else None
    hi = bound(hi_shape, 1.0) if which in ("both", "hi") else None
    return Example((x, lo, hi))


@case(
    "where",
    torch=_torch("where"),
    bad=((np.ones(2, bool), np.ones((3,)), 0.0), {}, ("where", "(2,)", "(3,)")),
    index_inputs=(0,),
)
def _where(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    c_shape, x_shape, y_shape = draw(_elementwise_shapes(3))
    condition = _booleans(draw, c_shape)
    x = _constant_or(draw, x_shape, lambda: _values(draw, x_shape, dtype), _whole(-3, 3))
    y = _constant_or(draw, y_shape, lambda: _values(draw, y_shape, dtype), _whole(-3, 3))
    return Example((condition, x, y))


# ---- reductions -------------------------------------------------------------------------------


def _reduction_torch(reduce_name: str, default_axis: Any = None) -> Callable[..., Any]:
    def call(x: Any, axis: Any = default_axis, keepdims: bool = False) -> Any:
        import torch

        return _torch_reduce(getattr(torch, reduce_name), x, axis, keepdims)

    return call


_AXIS_OUT_OF_RANGE = ((np.ones((2, 3)),), {"axis": 3}, ("(2, 3)", "axis 3"))


@case("sum", torch=_reduction_torch("sum"), bad=(*_AXIS_OUT_OF_RANGE[:2], ("sum", *_AXIS_OUT_OF_RANGE[2])))
def _sum(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(_ANY_SHAPE)
    return Example((_values(draw, shape, dtype),), _reduction_args(draw, len(shape)))


@case("mean", torch=_reduction_torch("mean"), bad=(*_AXIS_OUT_OF_RANGE[:2], ("mean", *_AXIS_OUT_OF_RANGE[2])))
def _mean(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(shapes())  # the mean of nothing is nan
    return Example((_values(draw, shape, dtype),), _reduction_args(draw, len(shape)))


def _extremum_case(name: str, torch_name: str) -> None:
    def draw_extremum(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
        shape = draw(shapes())
        x = _values(draw, shape, dtype, True) if ties else seeded_distinct(draw(SEEDS), shape, dtype)
        return Example((x,), _reduction_args(draw, len(shape)))

    bad = ((np.ones((0, 3)),), {}, (name, "(0, 3)"))
    case(name, torch=_reduction_torch(torch_name), bad=bad)(draw_extremum)


_extremum_case("max", "amax")
_extremum_case("min", "amin")


@case(
    "logsumexp",
    torch=_reduction_torch("logsumexp", default_axis=-1),
    bad=(*_AXIS_OUT_OF_RANGE[:2], ("logsumexp", *_AXIS_OUT_OF_RANGE[2])),
)
def _logsumexp(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(_ANY_SHAPE)  # over an empty axis: -inf
    params = _reduction_args(draw, len(shape), default_axis=-1)
    if not shape and "axis" not in params:
        params["axis"] = None  # a 0-d array has no axis -1
    return Example((_values(draw, shape, dtype, low=-5.0, high=5.0),), params)


def _softmax_case(name: str) -> None:
    def draw_softmax(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
        shape = draw(st.one_of(shapes(min_dims=1), shapes(min_dims=1, min_side=0)))
        axis = draw(st.integers(-len(shape), len(shape) - 1))
        params = {} if axis == -1 and draw(st.booleans()) else {"axis": axis}
        return Example((_values(draw, shape, dtype, low=-5.0, high=5.0),), params)

    def torch_softmax(x: Any, axis: int = -1) -> Any:
        import torch

        return getattr(torch, name)(x, dim=axis)

    bad = ((np.ones((2,)),), {"axis": 3}, (name, "(2,)"))
    case(name, torch=torch_softmax, bad=bad)(draw_softmax)


_softmax_case("softmax")
_softmax_case("log_softmax")

# ---- shape ------------------------------------------------------------------------------------


@case(
    "reshape",
    torch=lambda x, shape: x.reshape(shape),
    bad=((np.ones((2, 3)), (4,)), {}, ("reshape", "(2, 3)", "(4,)")),
)
def _reshape(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(_ANY_SHAPE)
    return Example((_values(draw, shape, dtype),), {"shape": draw(reshape_targets(shape))})


def _transpose_torch(x: Any, axes: Any = None) -> Any:
    return x.permute(tuple(reversed(range(x.ndim))) if axes is None else tuple(axes))


@case(
    "transpose", torch=_transpose_torch, bad=((np.ones((2, 3)),), {"axes": (0, 0)}, ("transpose", "(2, 3)"))
)
def _transpose(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(_ANY_SHAPE)
    x = _values(draw, shape, dtype)
    if draw(st.booleans()):
        return Example((x,))
    order = draw(st.permutations(range(len(shape))))
    order = tuple(a - len(shape) if draw(st.booleans()) else a for a in order)
    return Example((x,), {"axes": order})


@case(
    "broadcast_to",
    torch=lambda x, shape: x.broadcast_to(shape),
    bad=((np.ones((2, 3)), (4, 3)), {}, ("broadcast_to", "(2, 3)", "(4, 3)")),
)
def _broadcast_to(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(_ANY_SHAPE)
    return Example((_values(draw, shape, dtype),), {"shape": draw(broadcast_targets(shape))})


def _torch_sum_to(x: Any, shape: tuple) -> Any:
    return x.sum_to_size(shape) if shape else x.sum()


@case(
    "unbroadcast",
    torch=_torch_sum_to,
    bad=((np.ones((2, 3)), (4, 3)), {}, ("unbroadcast", "(2, 3)", "(4, 3)")),
)
def _unbroadcast(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    # broadcasting's adjoint: from a broadcast shape back to the shape that was broadcast
    target = draw(_ANY_SHAPE)
    shape = draw(broadcast_targets(target))
    return Example((_values(draw, shape, dtype),), {"shape": target})


@case(
    "expand_dims",
    torch=_torch_expand_dims,
    bad=((np.ones((2, 3)), 5), {}, ("expand_dims", "(2, 3)")),
)
def _expand_dims(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(_ANY_SHAPE)
    new = draw(st.integers(1, 2))
    out_ndim = len(shape) + new
    places = draw(st.lists(st.integers(0, out_ndim - 1), min_size=new, max_size=new, unique=True))
    places = [p - out_ndim if draw(st.booleans()) else p for p in places]
    axis = places[0] if new == 1 and draw(st.booleans()) else tuple(places)
    return Example((_values(draw, shape, dtype),), {"axis": axis})


@case("squeeze", torch=_torch_squeeze, bad=((np.ones((2, 3)),), {"axis": 0}, ("squeeze", "(2, 3)")))
def _squeeze(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(shapes(max_side=2))
    x = _values(draw, shape, dtype)
    ones = [a for a, side in enumerate(shape) if side == 1]
    if not ones or draw(st.booleans()):
        return Example((x,), {} if draw(st.booleans()) else {"axis": None})
    chosen = draw(st.lists(st.sampled_from(ones), unique=True, min_size=1))
    chosen = [a - len(shape) if draw(st.booleans()) else a for a in chosen]
    return Example((x,), {"axis": chosen[0] if len(chosen) == 1 else tuple(chosen)})


@case("getitem", torch=_torch_getitem, bad=((np.ones((2,)), 5), {}, ("getitem", "(2,)")))
def _getitem(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(_ANY_SHAPE)
    return Example((_values(draw, shape, dtype),), {"index": draw(indices(shape))})


@case(
    "scatter_add",
    torch=_torch_scatter_add,
    bad=((np.ones((1,)), 5, (2,)), {}, ("scatter_add", "(1,)")),
)
def _scatter_add(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(_ANY_SHAPE)
    index = draw(indices(shape))
    picked = np.zeros(shape)[index].shape
    return Example((_values(draw, picked, dtype),), {"index": index, "shape": shape})


def _listed(draw: st.DrawFn, shapes_: list[tuple[int, ...]], dtype: np.dtype) -> tuple:
    """Float arrays of the given shapes; now and then an integer array among them (a constant)."""
    return tuple(
        _integers(draw, s, -3, 3)
        if draw(st.integers(0, 4)) == 0
        else _values(draw, s, dtype)
        for s in shapes_
    )


@case(
    "concatenate",
    torch=lambda *xs, axis=0: __import__("torch").cat(xs, dim=axis),
    bad=(([np.ones((2, 3)), np.ones((2, 4))],), {"axis": 0}, ("concatenate", "(2, 3)", "(2, 4)")),
)
def _concatenate(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = list(draw(shapes(min_dims=1)))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    pieces = []
    for _ in range(draw(st.integers(1, 3))):
        shape[axis] = draw(st.integers(0, 3))
        pieces.append(tuple(shape))
    params = {} if axis == 0 and draw(st.booleans()) else {"axis": axis}
    return Example(_listed(draw, pieces, dtype), params)


@case(
    "stack",
    torch=lambda *xs, axis=0: __import__("torch").stack(xs, dim=axis),
    bad=(([np.ones((2,)), np.ones((3,))],), {}, ("stack", "(2,)", "(3,)")),
)
def _stack(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(_ANY_SHAPE)
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    params = {} if axis == 0 and draw(st.booleans()) else {"axis": axis}
    return Example(_listed(draw, [shape] * draw(st.integers(1, 3)), dtype), params)


@case("pad", torch=_torch_pad, bad=((np.ones((2, 3)), -1), {}, ("pad", "(2, 3)")))
def _pad(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(shapes(min_dims=1, min_side=0))
    width = st.integers(0, 2)
    pairs = st.tuples(width, width)
    form = draw(st.sampled_from(["int", "pair", "per axis"]))
    pad_width = {"int": width, "pair": pairs, "per axis": st.tuples(*[pairs] * len(shape))}[form]
    params = {"pad_width": draw(pad_width)}
    if draw(st.booleans()):
        params["constant_values"] = draw(st.sampled_from([0, 1.5]))
    return Example((_values(draw, shape, dtype),), params)


# ---- matrix products --------------------------------------------------------------------------


@case(
    "matmul",
    torch=lambda a, b: _torch("matmul")(*_same_dtype(a, b)),
    bad=((np.ones((2, 3)), np.ones((4, 5))), {}, ("matmul", "(2, 3)", "(4, 5)")),
)
def _matmul(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    a_shape, b_shape = draw(matmul_shapes())
    a, b = (_values(draw, s, dtype, low=-2.0, high=2.0) for s in (a_shape, b_shape))
    constant = draw(st.sampled_from([None, None, None, 0, 1]))  # matmul takes arrays, not numbers
    if constant is not None:
        shape = (a_shape, b_shape)[constant]
        integers = _integers(draw, shape, -2, 2)
        a, b = (integers, b) if constant == 0 else (a, integers)
    return Example((a, b))


@case(
    "linear",
    torch=lambda x, W, b: _torch("nn.functional.linear")(*_same_dtype(x, W), b),
    bad=((np.ones((2, 3)), np.ones((4, 5)), None), {}, ("linear", "(2, 3)", "(4, 5)")),
)
def _linear(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    lead = draw(shapes(min_dims=0, max_dims=2))
    n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    x_shape = (*lead, n_in)
    x = _values(draw, x_shape, dtype, low=-2.0, high=2.0)
    if draw(st.integers(0, 4)) == 0:  # integer features are constants
        x = _integers(draw, x_shape, -2, 2)
    W = _values(draw, (n_out, n_in), dtype, low=-2.0, high=2.0)
    b = _values(draw, (n_out,), dtype) if draw(st.booleans()) else None
    return Example((x, W, b))


@case("astype", torch=_torch_astype, bad=((np.ones((2, 3)), "no such dtype"), {}, ("astype", "(2, 3)")))
def _astype(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(_ANY_SHAPE)
    target = draw(st.sampled_from([np.float64, np.float32]))
    return Example((_values(draw, shape, dtype),), {"dtype": np.dtype(target)})


@case(
    "cross_entropy",
    torch=lambda z, t: _torch_cross_entropy(z, t),
    bad=((np.ones((2, 3)), np.zeros(4, np.int64)), {}, ("cross_entropy", "(2, 3)", "(4,)")),
    index_inputs=(1,),
)
def _cross_entropy(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    lead = draw(shapes(min_dims=0, max_dims=2, max_side=3))
    classes = draw(st.integers(1, 4))
    logits = _values(draw, (*lead, classes), dtype, low=-4.0, high=4.0)
    if draw(st.booleans()):  # integer labels: constants
        target = _integers(draw, lead, 0, classes - 1)
    else:  # probability rows: differentiable too
        target = _values(draw, (*lead, classes), dtype, low=0.0, high=1.0)
    return Example((logits, target))


def _torch_cross_entropy(logits: Any, target: Any) -> Any:
    import torch

    if logits.ndim > 2:  # PyTorch wants the classes on axis 1
        logits = logits.movedim(-1, 1)
        target = target.movedim(-1, 1) if target.dtype.is_floating_point else target
    return torch.nn.functional.cross_entropy(logits, target)


# ---- convolution and pooling --------------------------------------------------------------------


def _window_positions(
    x_shape: tuple, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple
) -> np.ndarray:
    """For im2col's twin: the flat position in x of every window element, written out with plain
    loops (an oracle independent of the vectorised code); padding points one past the end."""
    size = math.prod(x_shape)
    spatial = x_shape[2:]
    out = [
        (n + before + after - d * (k - 1) - 1) // s + 1
        for n, k, s, (before, after), d in zip(spatial, kernel, stride, padding, dilation)
    ]
    flat = np.arange(size).reshape(x_shape)
    positions = np.full((*x_shape[:2], *out, *kernel), size)
    for o in np.ndindex(*out):
        for k in np.ndindex(*kernel):
            spot = [oi * s + ki * d - p[0] for oi, ki, s, d, p in zip(o, k, stride, dilation, padding)]
            if all(0 <= i < n for i, n in zip(spot, spatial)):
                positions[(slice(None), slice(None), *o, *k)] = flat[(slice(None), slice(None), *spot)]
    return positions


def _torch_im2col(
    x: Any, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple, pad_value: float = 0.0
) -> Any:
    import torch

    positions = torch.as_tensor(_window_positions(tuple(x.shape), kernel, stride, padding, dilation))
    padded = torch.cat([x.reshape(-1), torch.full((1,), pad_value, dtype=x.dtype)])
    return padded[positions]


def _torch_col2im(
    cols: Any, x_shape: tuple, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple
) -> Any:
    import torch

    positions = torch.as_tensor(_window_positions(tuple(x_shape), kernel, stride, padding, dilation))
    size = math.prod(x_shape)
    sums = torch.zeros(size + 1, dtype=cols.dtype).index_put(
        (positions.reshape(-1),), cols.reshape(-1), accumulate=True
    )
    return sums[:size].reshape(x_shape)


@st.composite
def _window_geometry(draw: st.DrawFn, dims: int) -> tuple:
    """(x_shape, kernel, stride, padding pairs, dilation) that leave at least one window."""
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(dims))
    spatial = tuple(
        draw(st.integers(max(1, d * (k - 1) + 1 - b - a), max(1, d * (k - 1) + 1 - b - a) + 3))
        for k, d, (b, a) in zip(kernel, dilation, padding)
    )
    x_shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), *spatial)
    return x_shape, kernel, stride, padding, dilation


def _im2col_case(name: str) -> None:
    def draw_windows(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
        x_shape, kernel, stride, padding, dilation = draw(_window_geometry(draw(st.integers(1, 2))))
        geometry = {"kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation}
        if name == "im2col":
            params = dict(geometry)
            if draw(st.booleans()):
                params["pad_value"] = draw(st.sampled_from([1.5, -np.inf] if ties else [0.0, 1.5]))
            return Example((_values(draw, x_shape, dtype),), params)
        cols_shape = _window_positions(x_shape, kernel, stride, padding, dilation).shape
        return Example((_values(draw, cols_shape, dtype),), {"x_shape": x_shape, **geometry})

    twin = _torch_im2col if name == "im2col" else _torch_col2im
    case(name, torch=twin)(draw_windows)


_im2col_case("im2col")
_im2col_case("col2im")


def _conv_case(name: str, dims: int) -> None:
    def draw_conv(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
        kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
        params: dict[str, Any] = {}
        stride = tuple(draw(st.integers(1, 2)) for _ in range(dims))
        dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
        padding = draw(st.sampled_from(["int", "per axis", "valid", "same"]))
        if padding == "same":
            stride = (1,) * dims  # PyTorch allows 'same' only with stride 1
            params["padding"] = "same"
            pads = [d * (k - 1) // 2 for k, d in zip(kernel, dilation)]
        elif padding == "valid":
            params["padding"] = "valid"
            pads = [0] * dims
        else:
            pads = (
                [draw(st.integers(0, 2))] * dims
                if padding == "int"
                else [draw(st.integers(0, 2)) for _ in kernel]
            )
            if any(pads) or draw(st.booleans()):
                params["padding"] = pads[0] if padding == "int" else tuple(pads)
        if any(s != 1 for s in stride) or draw(st.booleans()):
            params["stride"] = stride[0] if len(set(stride)) == 1 and draw(st.booleans()) else stride
        if any(d != 1 for d in dilation) or draw(st.booleans()):
            params["dilation"] = dilation
        spatial = tuple(
            draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), max(1, d * (k - 1) + 1 - 2 * p) + 3))
            for k, d, p in zip(kernel, dilation, pads)
        )
        batch, channels, out_channels = (
            draw(st.integers(1, 2)),
            draw(st.integers(1, 3)),
            draw(st.integers(1, 3)),
        )
        x = _values(draw, (batch, channels, *spatial), dtype, low=-2.0, high=2.0)
        if draw(st.integers(0, 4)) == 0:  # an integer signal is a constant
            x = _integers(draw, x.shape, -2, 2)
        W = _values(draw, (out_channels, channels, *kernel), dtype, low=-2.0, high=2.0)
        b = _values(draw, (out_channels,), dtype) if draw(st.booleans()) else None
        return Example((x, W, b), params)

    def torch_conv(x: Any, W: Any, b: Any = None, **params: Any) -> Any:
        import torch

        return getattr(torch.nn.functional, name)(*_same_dtype(x, W), b, **params)

    x = np.ones((1, 2) + (5,) * dims)
    bad = ((x, np.ones((4, 3) + (3,) * dims), None), {}, (name, str(x.shape), str((4, 3) + (3,) * dims)))
    case(name, torch=torch_conv, bad=bad)(draw_conv)


_conv_case("conv1d", 1)
_conv_case("conv2d", 2)


@case(
    "max_pool2d",
    torch=lambda x, **params: __import__("torch").nn.functional.max_pool2d(x, **params),
    bad=((np.ones((2, 3)),), {"kernel_size": 2}, ("max_pool2d", "(2, 3)")),
)
def _max_pool2d(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    params: dict[str, Any] = {"kernel_size": kernel[0] if kernel[0] == kernel[1] else kernel}
    dilation = draw(st.integers(1, 2))
    if dilation != 1:
        params["dilation"] = dilation
    # Dilated windows with padding can lie wholly in the padding (an output of -inf), where
    # PyTorch 2.13's max_pool2d backward writes out of bounds: pad undilated windows only.
    pads = (
        (0, 0)
        if dilation != 1
        else (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    )
    if any(pads):
        params["padding"] = pads
    stride = draw(st.none() | st.integers(1, 3))
    if stride is not None:
        params["stride"] = stride
    if draw(st.booleans()):
        params["ceil_mode"] = True
    spatial = tuple(
        draw(st.integers(max(1, dilation * (k - 1) + 1 - 2 * p), max(1, dilation * (k - 1) + 1 - 2 * p) + 3))
        for k, p in zip(kernel, pads)
    )
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), *spatial)
    x = _values(draw, shape, dtype, True) if ties else seeded_distinct(draw(SEEDS), shape, dtype)
    return Example((x,), params)


# ==== issue 15: the wider NumPy / SciPy surface (mytorch/rules/) ==================================


def _cast_like(*tensors: Any) -> list:
    """Integer constants cast to the float (or complex) one's dtype, as PyTorch wants."""
    import torch

    tensors = [v if isinstance(v, torch.Tensor) else torch.tensor(v) for v in tensors]
    inexact = lambda v: v.dtype.is_floating_point or v.dtype.is_complex  # noqa: E731
    dtype = next((v.dtype for v in tensors if v.dtype.is_complex),
                 next((v.dtype for v in tensors if inexact(v)), torch.float64))
    return [v.to(dtype) if not inexact(v) or dtype.is_complex and not v.dtype.is_complex else v
            for v in tensors]


_UNARY_15 = {
    # name: (torch name, domain of the drawn values)
    "log1p": ("log1p", {"low": -0.5, "high": 3.0}),
    "expm1": ("expm1", {}),
    "tan": ("tan", {"low": -1.2, "high": 1.2}),
    "arcsin": ("asin", {"low": -0.9, "high": 0.9}),
    "arccos": ("acos", {"low": -0.9, "high": 0.9}),
    "arctan": ("atan", {}),
    "sinh": ("sinh", {}),
    "cosh": ("cosh", {}),
    "arcsinh": ("asinh", {}),
    "square": ("square", {}),
    "softplus": ("nn.functional.softplus", {}),
    "sign": ("sign", {"kinks": (0.0,)}),
    "gammaln": ("special.gammaln", {"low": 0.2, "high": 5.0}),
    "digamma": ("special.digamma", {"low": 0.2, "high": 5.0}),
    "expit": ("special.expit", {"low": -6.0, "high": 6.0}),
    "logit": ("special.logit", {"low": 0.05, "high": 0.95}),
}
for _name, (_torch_name, _domain) in _UNARY_15.items():
    _unary_case(_name, _torch_name, _domain)


def _twin_binary(torch_name: str) -> Callable[..., Any]:
    def call(x: Any, y: Any) -> Any:
        return _torch(torch_name)(*_cast_like(x, y))

    return call


@case("logaddexp", torch=_twin_binary("logaddexp"), bad=(*_MISMATCH[:2], ("logaddexp", "(2, 3)", "(4, 5)")))
def _logaddexp(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    x_shape, y_shape = draw(_elementwise_shapes(2))
    x = _constant_or(draw, x_shape, lambda: _values(draw, x_shape, dtype, ties), _whole(-3, 3))
    y = _constant_or(draw, y_shape, lambda: _values(draw, y_shape, dtype, ties), _whole(-3, 3))
    return Example((x, y))


@case("xlogy", torch=_twin_binary("special.xlogy"), bad=(*_MISMATCH[:2], ("xlogy", "(2, 3)", "(4, 5)")))
def _xlogy(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    x_shape, y_shape = draw(_elementwise_shapes(2))
    x = _constant_or(draw, x_shape, lambda: _values(draw, x_shape, dtype, ties), _whole(-3, 3))
    make_y = lambda: _values(draw, y_shape, dtype, low=0.2, high=3.0)
    y = _constant_or(draw, y_shape, make_y, _whole(1, 3))
    return Example((x, y))


@case(
    "polygamma",
    torch=lambda n, x: __import__("torch").special.polygamma(int(n), x),
    bad=((1, np.array(["a"])), {}, ("polygamma", "(1,)")),
)
def _polygamma(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(shapes())
    return Example((draw(st.integers(1, 2)), _values(draw, shape, dtype, low=0.3, high=4.0)))


def _axis_or_axes(draw: st.DrawFn, ndim: int) -> Any:
    """None, an int, or a non-empty tuple of distinct axes (PyTorch reads dim=() as every axis)."""
    axis = draw(axes(ndim))
    return None if axis == () else axis


def _with_zeros(draw: st.DrawFn, x: np.ndarray) -> np.ndarray:
    """Now and then some elements set to exactly 0 (products are smooth there, and the rules
    must not divide by them)."""
    if x.size and draw(st.integers(0, 2)) == 0:
        x = x.copy()
        x.reshape(-1)[draw(st.lists(st.integers(0, x.size - 1), min_size=1, max_size=2))] = 0
    return x


def _torch_prod(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    shape = np.prod(np.zeros(tuple(x.shape)), axis=axis, keepdims=keepdims).shape
    out = x * 1
    axes_ = (axis,) if isinstance(axis, int) else axis or range(x.ndim)
    for a in sorted({a % max(x.ndim, 1) for a in axes_}, reverse=True):
        out = out.prod(dim=a, keepdim=True)
    return out.reshape(shape)


@case("prod", torch=_torch_prod, bad=(*_AXIS_OUT_OF_RANGE[:2], ("prod", *_AXIS_OUT_OF_RANGE[2])))
def _prod(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(shapes(max_side=3))
    x = _with_zeros(draw, _values(draw, shape, dtype, ties, low=-1.5, high=1.5))
    params: dict[str, Any] = {}
    axis = _axis_or_axes(draw, len(shape))
    if axis is not None:
        params["axis"] = axis
    if draw(st.booleans()):
        params["keepdims"] = True
    return Example((x,), params)


def _spread_case(name: str) -> None:
    def draw_spread(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
        shape = draw(shapes(min_dims=1))
        axis = _axis_or_axes(draw, len(shape))
        count = math.prod(shape) if axis is None else math.prod(
            shape[a] for a in ((axis,) if isinstance(axis, int) else axis))
        # std divides by itself: no ties (a constant row has std 0); var is smooth everywhere
        x = _values(draw, shape, dtype, ties) if name == "var" else seeded_distinct(draw(SEEDS), shape, dtype)
        params: dict[str, Any] = {} if axis is None else {"axis": axis}
        if count > 1 and draw(st.booleans()):
            params["ddof"] = 1
        if draw(st.booleans()):
            params["keepdims"] = True
        return Example((x,), params)

    def twin(x: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Any:
        import torch

        return getattr(torch, name)(x, dim=axis, correction=ddof, keepdim=keepdims)

    case(name, torch=twin, bad=(*_AXIS_OUT_OF_RANGE[:2], (name, *_AXIS_OUT_OF_RANGE[2])))(draw_spread)


_spread_case("var")
_spread_case("std")


def _scan_case(name: str) -> None:
    def draw_scan(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
        shape = draw(_ANY_SHAPE)
        x = _values(draw, shape, dtype, ties, low=-1.5, high=1.5)
        if name == "cumprod":
            x = _with_zeros(draw, x)
        axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1)) if shape else None
        return Example((x,), {} if axis is None and draw(st.booleans()) else {"axis": axis})

    def twin(x: Any, axis: Any = None) -> Any:
        import torch

        return getattr(torch, name)(x.reshape(-1) if axis is None else x, dim=0 if axis is None else axis)

    case(name, torch=twin, bad=(*_AXIS_OUT_OF_RANGE[:2], (name, *_AXIS_OUT_OF_RANGE[2])))(draw_scan)


_scan_case("cumsum")
_scan_case("cumprod")


def _torch_dims(axis: Any, ndim: int) -> tuple:
    return tuple(range(ndim)) if axis is None else ((axis,) if isinstance(axis, int) else tuple(axis))


@case(
    "flip",
    torch=lambda x, axis=None: __import__("torch").flip(x, _torch_dims(axis, x.ndim)),
    bad=(*_AXIS_OUT_OF_RANGE[:2], ("flip", *_AXIS_OUT_OF_RANGE[2])),
)
def _flip(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(_ANY_SHAPE)
    axis = _axis_or_axes(draw, len(shape))
    return Example((_values(draw, shape, dtype, ties),), {} if axis is None else {"axis": axis})


@case(
    "roll",
    torch=lambda x, shift, axis=None: __import__("torch").roll(x, shift, axis),
    bad=((np.ones((2, 3)), 1), {"axis": 3}, ("roll", "(2, 3)")),
)
def _roll(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(shapes())
    x = _values(draw, shape, dtype, ties)
    if not shape or draw(st.booleans()):
        return Example((x,), {"shift": draw(st.integers(-5, 5))})  # flattened
    axis = draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True))
    if len(axis) == 1 and draw(st.booleans()):
        return Example((x,), {"shift": draw(st.integers(-5, 5)), "axis": axis[0]})
    return Example((x,), {"shift": tuple(draw(st.integers(-5, 5)) for _ in axis), "axis": tuple(axis)})


def _torch_tile(x: Any, reps: Any) -> Any:
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    return x.tile(reps) if reps else x * 1


@case("tile", torch=_torch_tile, bad=((np.ones((2, 3)), -1), {}, ("tile", "(2, 3)")))
def _tile(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(shapes(max_side=3))
    reps = draw(st.integers(0, 3) | st.lists(st.integers(0, 2), min_size=1, max_size=4).map(tuple))
    return Example((_values(draw, shape, dtype, ties),), {"reps": reps})


def _torch_repeat(x: Any, repeats: Any, axis: Any = None) -> Any:
    import torch

    counts = torch.as_tensor(repeats) if isinstance(repeats, np.ndarray) else repeats
    return torch.repeat_interleave(x, counts, dim=axis)


@case("repeat", torch=_torch_repeat, bad=((np.ones((2, 3)), [1, 2]), {"axis": 1}, ("repeat", "(2, 3)")))
def _repeat(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(shapes(max_side=3))
    x = _values(draw, shape, dtype, ties)
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1)) if shape else None
    length = math.prod(shape) if axis is None else shape[axis]
    if draw(st.booleans()):
        repeats: Any = draw(st.integers(0, 3))
    else:
        repeats = _integers(draw, (length,), 0, 3)
    return Example((x,), {"repeats": repeats} if axis is None else {"repeats": repeats, "axis": axis})


@case(
    "take",
    torch=lambda x, indices, axis=None: _torch_getitem(
        x.reshape(-1) if axis is None else x,
        indices if axis is None else (slice(None),) * (axis % x.ndim) + (indices,),
    ),
    bad=((np.ones((2, 3)), np.array([7])), {}, ("take", "(2, 3)")),
)
def _take(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(shapes())
    x = _values(draw, shape, dtype, ties)
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1)) if shape else None
    side = math.prod(shape) if axis is None else shape[axis]
    if draw(st.booleans()):
        indices = draw(st.integers(-side, side - 1))
    else:
        indices = _integers(draw, draw(shapes(max_dims=2, max_side=3)), -side, side - 1, np.intp)
    return Example((x,), {"indices": indices} if axis is None else {"indices": indices, "axis": axis})


@case(
    "take_along_axis",
    torch=lambda x, indices, axis=-1: __import__("torch").take_along_dim(
        x, __import__("torch").as_tensor(indices), dim=axis
    ),
    bad=((np.ones((2, 3)), np.zeros((2,), np.intp)), {"axis": 1}, ("take_along_axis", "(2, 3)")),
)
def _take_along_axis(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(shapes(min_dims=1))
    x = _values(draw, shape, dtype, ties)
    if draw(st.integers(0, 3)) == 0:  # axis=None: a 1-D index into the flattened array
        size = math.prod(shape)
        indices = _integers(draw, (draw(st.integers(0, 5)),), 0, size - 1, np.intp)
        return Example((x,), {"indices": indices, "axis": None})
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    index_shape = list(shape)
    index_shape[axis] = draw(st.integers(0, 4))
    index_shape = [side if draw(st.integers(0, 3)) else 1 for side in index_shape]  # broadcasting
    indices = _integers(draw, tuple(index_shape), 0, shape[axis] - 1, np.intp)
    return Example((x,), {"indices": indices} if axis == -1 else {"indices": indices, "axis": axis})


@case(
    "sort",
    torch=lambda x, axis=-1: __import__("torch").sort(
        x.reshape(-1) if axis is None else x, dim=0 if axis is None else axis, stable=True).values,
    bad=(*_AXIS_OUT_OF_RANGE[:2], ("sort", *_AXIS_OUT_OF_RANGE[2])),
)
def _sort(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(st.one_of(shapes(min_dims=1), shapes(min_dims=1, min_side=0)))
    x = _values(draw, shape, dtype, True) if ties else seeded_distinct(draw(SEEDS), shape, dtype)
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1))
    return Example((x,), {} if axis == -1 else {"axis": axis})


def _diagonal_params(draw: st.DrawFn, shape: tuple[int, ...]) -> dict:
    axis1, axis2 = draw(st.lists(st.integers(0, len(shape) - 1), min_size=2, max_size=2, unique=True))
    axis1 -= len(shape) if draw(st.booleans()) else 0
    offset = draw(st.integers(-shape[axis2], shape[axis2]))
    return {"offset": offset, "axis1": axis1, "axis2": axis2}


@case(
    "diagonal",
    torch=lambda x, offset=0, axis1=0, axis2=1: __import__("torch").diagonal(x, offset, axis1, axis2),
    bad=((np.ones((2, 3)),), {"axis1": 0, "axis2": 0}, ("diagonal", "(2, 3)")),
)
def _diagonal(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(shapes(min_dims=2))
    return Example((_values(draw, shape, dtype, ties),), _diagonal_params(draw, shape))


@case(
    "trace",
    torch=lambda x, offset=0, axis1=0, axis2=1: __import__("torch").diagonal(x, offset, axis1, axis2).sum(-1),
    bad=((np.ones((2, 3)),), {"axis1": 0, "axis2": 0}, ("trace", "(2, 3)")),
)
def _trace(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(shapes(min_dims=2))
    return Example((_values(draw, shape, dtype, ties),), _diagonal_params(draw, shape))


def _triangle_case(name: str) -> None:
    def draw_triangle(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
        shape = draw(st.one_of(shapes(min_dims=2), shapes(min_dims=2, min_side=0)))
        k = draw(st.integers(-3, 3))
        return Example((_values(draw, shape, dtype, ties),), {"k": k} if k or draw(st.booleans()) else {})

    twin = lambda x, k=0: getattr(__import__("torch"), name)(x, k)
    case(name, torch=twin, bad=((np.ones(()),), {}, (name, "()")))(draw_triangle)


_triangle_case("triu")
_triangle_case("tril")


@case(
    "outer",
    torch=lambda a, b: __import__("torch").outer(*_cast_like(a.reshape(-1), b.reshape(-1))),
    bad=((np.array(["a"]), np.ones(2)), {}, ("outer", "(1,)")),
)
def _outer(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    a_shape, b_shape = draw(shapes(max_dims=2)), draw(shapes(max_dims=2))
    a = _constant_or(draw, a_shape, lambda: _values(draw, a_shape, dtype, ties), _whole(-3, 3))
    b = _values(draw, b_shape, dtype, ties)
    if isinstance(a, (int, float)):
        a = _values(draw, a_shape, dtype, ties)
    return Example((a, b) if draw(st.booleans()) else (b, a))


# Subscripts NumPy accepts: products, implicit output, repeated letters (diagonals, traces),
# letters summed within one operand, ellipses that broadcast, three operands (a contraction path).
_EINSUM_SPECS = (
    "ij,jk->ik", "ij,jk", "i,i->", "i,j->ij", "ii->i", "ii", "ij->ji", "ij->", "ij->i", "iij->j",
    "ii,i->i", "ijk->kj", "bij,bjk->bik", "ij,jk,kl->il", "i,i,i->i", "...ij,...jk->...ik",
    "...i,...i->...", "i...->...", "...,...", "ij...,j->i...", "ii...->i...",
)


@case(
    "einsum",
    torch=lambda *xs, subscripts, optimize=None: __import__("torch").einsum(subscripts, *_cast_like(*xs)),
    bad=(([np.ones((2, 3)), np.ones((4, 5))],), {"subscripts": "ij,jk->ik"}, ("einsum", "(2, 3)", "(4, 5)")),
)
def _einsum(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    spec = draw(st.sampled_from(_EINSUM_SPECS))
    lhs = spec.split("->")[0].split(",")
    sizes = {letter: draw(st.integers(1, 3)) for letter in sorted(set("".join(lhs)) - {"."})}
    batches = list(draw(broadcastable_shapes(len(lhs), max_dims=2, max_side=3)))
    operands = []
    for term in lhs:
        # now and then a letter of size 1 in one operand, which NumPy broadcasts against the others
        # (a contracted letter too: "ij,jk" with j of size 1 in the first)
        own = {c: 1 if len(lhs) > 1 and draw(st.integers(0, 5)) == 0 else sizes[c] for c in set(term) - {"."}}
        head, _, tail = term.partition("...")
        shape = tuple(own[c] for c in head) + (batches.pop(0) if "..." in term else ()) + tuple(
            own[c] for c in tail)
        if draw(st.integers(0, 3)) == 0:  # an integer operand: a constant
            operands.append(_integers(draw, shape, -2, 2))
        else:
            operands.append(_values(draw, shape, dtype, ties, low=-2.0, high=2.0))
    params: dict[str, Any] = {"subscripts": spec}
    if len(lhs) > 2 and draw(st.booleans()):
        params["optimize"] = draw(st.sampled_from([False, "optimal"]))
    return Example(tuple(operands), params)


def _torch_tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    import torch

    dims = axes if isinstance(axes, int) else [list(np.atleast_1d(side)) for side in axes]
    return torch.tensordot(*_cast_like(a, b), dims=dims)


@case(
    "tensordot",
    torch=_torch_tensordot,
    bad=((np.ones((2, 3)), np.ones((4, 5))), {"axes": 1}, ("tensordot", "(2, 3)", "(4, 5)")),
)
def _tensordot(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    a_shape = draw(shapes(max_dims=3, max_side=3))
    count = draw(st.integers(0, len(a_shape)))
    if draw(st.booleans()):  # an int: a's last `count` axes against b's first
        b_shape = a_shape[len(a_shape) - count:] + draw(shapes(max_dims=2, max_side=3))
        params: dict[str, Any] = {"axes": count} if count != 2 or draw(st.booleans()) else {}
    else:  # a pair of axis lists, in any order
        a_axes = draw(st.permutations(range(len(a_shape))))[:count]
        b_ndim = count + draw(st.integers(0, 2))
        b_axes = draw(st.permutations(range(b_ndim)))[:count]
        b_list = [draw(st.integers(1, 3)) for _ in range(b_ndim)]
        for i, j in zip(a_axes, b_axes):
            b_list[j] = a_shape[i]
        b_shape = tuple(b_list)
        params = {"axes": (list(a_axes), list(b_axes))}
    a = _values(draw, a_shape, dtype, ties, low=-2.0, high=2.0)
    b = _constant_or(draw, b_shape, lambda: _values(draw, b_shape, dtype, ties, low=-2.0, high=2.0),
                     _whole(-2, 2))
    if not isinstance(b, np.ndarray):
        b = _values(draw, b_shape, dtype, ties, low=-2.0, high=2.0)
    return Example((a, b), params)


def _torch_setitem(x: Any, value: Any, index: Any) -> Any:
    import torch

    shape = tuple(x.shape)
    positions = _flat_positions(shape, index)
    # NumPy lets the last of repeated positions win: only those values land
    flat = positions.reshape(-1)
    last = {position: k for k, position in enumerate(flat.tolist())}
    landed = torch.zeros(flat.size, dtype=torch.bool)
    landed[list(last.values())] = True
    if not isinstance(value, torch.Tensor) or not value.dtype.is_floating_point:
        value = _cast_like(x, value)[1]
    values = value.to(x.dtype).broadcast_to(positions.shape).reshape(-1)[landed]
    where = torch.as_tensor(positions.reshape(-1))[landed]
    return x.reshape(-1).index_put((where,), values).reshape(shape)


@case(
    "setitem",
    torch=_torch_setitem,
    bad=((np.ones((2, 3)), np.ones(4)), {"index": 0}, ("setitem", "(2, 3)", "(4,)")),
)
def _setitem(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(_ANY_SHAPE)
    x = _values(draw, shape, dtype, ties)
    index = draw(indices(shape))
    picked = np.zeros(shape)[index].shape
    value_shape = picked[draw(st.integers(0, len(picked))) :]  # trailing axes: it broadcasts
    value_shape = tuple(1 if draw(st.integers(0, 3)) == 0 else side for side in value_shape)
    make_value = lambda: _values(draw, value_shape, dtype, ties)
    value = _constant_or(draw, value_shape, make_value, _whole(-3, 3))
    return Example((x, value), {"index": index})


# ---- F.linalg -----------------------------------------------------------------------------------


def _torch_norm(x: Any, ord: Any = None,  # noqa: A002
                 axis: Any = None, keepdims: bool = False) -> Any:
    import torch

    p = 2 if ord in (None, "fro") else ord
    dims = tuple(range(x.ndim)) if axis is None else ((axis,) if isinstance(axis, int) else tuple(axis))
    if not dims:  # a 0-d array: |x|
        return torch.linalg.vector_norm(x.reshape(1), ord=p).reshape(())
    return torch.linalg.vector_norm(x, ord=p, dim=dims, keepdim=keepdims)


@case("norm", torch=_torch_norm, bad=((np.ones((2, 3)),), {"axis": 3}, ("norm", "(2, 3)")))
def _norm(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(shapes(min_dims=1))
    form = draw(st.sampled_from(["flat", "vector", "matrix"] if len(shape) >= 2 else ["flat", "vector"]))
    params: dict[str, Any] = {}
    if form == "vector":
        params["axis"] = draw(st.integers(-len(shape), len(shape) - 1)) if len(shape) > 1 else None
        params["ord"] = draw(st.sampled_from([None, 1, 2, np.inf]))
        if params["axis"] is None:
            del params["axis"]
            shape = shape[:1]
    elif form == "matrix":
        pair = st.lists(st.integers(0, len(shape) - 1), min_size=2, max_size=2, unique=True)
        params["axis"] = tuple(draw(pair))
        if draw(st.booleans()):
            params["ord"] = "fro"
    if draw(st.booleans()):
        params["keepdims"] = True
    p = params.get("ord")
    if ties:
        x = _values(draw, shape, dtype, True)
        if draw(st.integers(0, 3)) == 0:
            x = np.zeros(shape, dtype)  # the norm's kink: gradient 0
    elif p == 1:
        x = _values(draw, shape, dtype, kinks=(0.0,), margin=0.1)
    elif p == np.inf:  # distinct magnitudes, random signs: one largest |x| per row
        steps = seeded_distinct(draw(SEEDS), shape, np.float64, spacing=0.05, low=-1.5)
        magnitudes = steps - steps.min(initial=0.0) + 0.1  # distinct, and 0.1 at least
        signs = _booleans(draw, shape)
        x = np.where(signs, magnitudes, -magnitudes).astype(dtype)
    else:
        x = _values(draw, shape, dtype, kinks=(0.0,), margin=0.3)
    return Example((x,), params)


def _square_matrices(draw: st.DrawFn, dtype: np.dtype, batch: bool = True) -> np.ndarray:
    from mytorch.testing.strategies import well_conditioned_matrices

    batch_shape = draw(shapes(max_dims=1, max_side=2)) if batch else ()
    return draw(well_conditioned_matrices(st.integers(1, 3), dtype, batch_shape=batch_shape))


@case("inv", torch=_torch("linalg.inv"), bad=((np.ones((2, 3)),), {}, ("inv", "(2, 3)")))
def _inv(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    return Example((_square_matrices(draw, dtype),))


@case("det", torch=_torch("linalg.det"), bad=((np.ones((2, 3)),), {}, ("det", "(2, 3)")))
def _det(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    return Example((_square_matrices(draw, dtype),))


@case(
    "slogdet",
    torch=lambda a: __import__("torch").stack(__import__("torch").linalg.slogdet(a), -1),
    bad=((np.ones((2, 3)),), {}, ("slogdet", "(2, 3)")),
)
def _slogdet(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    return Example((_square_matrices(draw, dtype),))


@case(
    "solve",
    torch=lambda a, b: __import__("torch").linalg.solve(*_cast_like(a, b)),
    bad=((np.ones((2, 2)), np.ones(3)), {}, ("solve", "(2, 2)", "(3,)")),
)
def _solve(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    a = _square_matrices(draw, dtype)
    n = a.shape[-1]
    if a.ndim == 2 and draw(st.booleans()):
        b_shape: tuple[int, ...] = (n,)  # one vector
    else:
        b_shape = (*a.shape[:-2], n, draw(st.integers(1, 3)))
    if draw(st.integers(0, 2)) == 0:  # an integer right-hand side: a constant
        b = _integers(draw, b_shape, -2, 2)
    else:
        b = _values(draw, b_shape, dtype, ties)
    return Example((a, b))


def _spd_matrices(draw: st.DrawFn, dtype: np.dtype) -> np.ndarray:
    m = _square_matrices(draw, np.dtype(np.float64))
    return (m @ np.swapaxes(m, -1, -2) + 0.5 * np.eye(m.shape[-1])).astype(dtype)


def _torch_cholesky(a: Any, symmetrize: bool = False) -> Any:
    import torch

    return torch.linalg.cholesky((a + a.mT) / 2 if symmetrize else _torch_lower(a))


@case("cholesky", torch=_torch_cholesky, bad=((np.ones((2, 3)),), {}, ("cholesky", "(2, 3)")))
def _cholesky(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    return Example((_spd_matrices(draw, dtype),))


def _torch_lower(a: Any) -> Any:
    """The symmetric matrix NumPy's eigh and cholesky read: a's lower triangle, mirrored."""
    lower = a.tril()
    return lower + lower.tril(-1).mT


def _torch_eigh(a: Any, UPLO: str = "L", symmetrize: bool = False) -> Any:  # noqa: N803
    import torch

    read = (a + a.mT) / 2 if symmetrize else _torch_lower(a if UPLO == "L" else a.mT)
    values, vectors = torch.linalg.eigh(read)
    detached = vectors.detach()
    largest = detached.gather(-2, detached.abs().argmax(dim=-2, keepdim=True))
    vectors = vectors * torch.where(largest < 0, -1.0, 1.0).to(vectors.dtype)
    return torch.cat([values.unsqueeze(-2), vectors], dim=-2)


@case("eigh", torch=_torch_eigh, bad=((np.ones((2, 3)),), {}, ("eigh", "(2, 3)")))
def _eigh(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    # Q diag(λ) Qᵀ with eigenvalues at least 0.5 apart (the eigenvector rule divides by the gaps)
    batch = draw(shapes(max_dims=1, max_side=2))
    n = draw(st.integers(1, 3))
    steps = _values(draw, (*batch, n), np.dtype(np.float64), low=0.5, high=1.5)
    values = np.cumsum(steps, axis=-1) - 2.0
    mixed = _values(draw, (*batch, n, n), np.dtype(np.float64), low=-1.0, high=1.0)
    q, _ = np.linalg.qr(mixed + 2 * np.eye(n))
    a = q @ (values[..., :, None] * np.swapaxes(q, -1, -2))
    params = draw(st.sampled_from([{}, {"UPLO": "U"}, {"symmetrize": True}]))  # NumPy's, or PyTorch's reading
    return Example((((a + np.swapaxes(a, -1, -2)) / 2).astype(dtype),), params)

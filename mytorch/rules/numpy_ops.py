"""The wider NumPy surface as primitives: elementwise functions, reductions, scans, gathers,
matrix products and indexed assignment, each with its backward and tangent rule side by side.

Rules are written with recording primitives, so second derivatives come for free. The gathers
(take, take_along_axis, repeat, diagonal, sort) are adjoint to a scatter-add, and every matrix
product here (outer, tensordot, einsum) has another einsum as its rule:

    y = einsum("ij,jk->ik", a, b):   ā = einsum("ik,jk->ij", ȳ, b),   b̄ = einsum("ij,ik->jk", a, ȳ)

>>> import numpy as np
>>> from mytorch import functional as F
>>> F.einsum("ii->", np.array([[1.0, 2.0], [3.0, 4.0]]))
array(5.)
>>> F.setitem(np.zeros(3), 1, 7.0)
array([0., 7., 0.])
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np

from mytorch.primitive import broadcast_to, constant, primitive, sum_to_shape
from mytorch.rules.core import (
    add,
    conj,
    div,
    exp,
    expand_dims,
    getitem,
    matmul,
    mean,
    mul,
    neg,
    pad,
    real,
    reshape,
    scatter_add,
    sigmoid,
    sqrt,
    sub,
    transpose,
    where,
)
from mytorch.rules.core import sum as sum_
from mytorch.tracked import computed, is_tracked
from mytorch.utils import is_complex

# ---- helpers ------------------------------------------------------------------------------------


def _is_float(value: Any) -> bool:
    """A float or complex array: one that carries a gradient (complex values reach only the rules
    of primitives that declare them)."""
    return isinstance(value, np.ndarray) and value.dtype.kind in "fc"


def _mask(array: Any, like: Any) -> np.ndarray:
    """A constant (a mask or sign), in `like`'s float dtype."""
    dtype = like.dtype if _is_float(like) else np.float64
    return constant(array, np.zeros((), dtype))


def _zeros(shape: tuple[int, ...], like: Any) -> np.ndarray:
    return np.zeros(shape, like.dtype if _is_float(like) else np.float64)


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """`axis` (None, an int or a tuple) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) or np.ndim(axis) == 0 else tuple(axis)  # (0-d too)
    return tuple(sorted(int(a) % max(ndim, 1) for a in axes))


def _keep(g: Any, ndim: int, axis: Any, keepdims: bool) -> Any:
    """Re-insert the axes a reduction dropped, so `g` broadcasts against its input."""
    if keepdims:
        return g
    if axis is None:
        return reshape(g, (1,) * ndim)
    axes = _axes(axis, ndim)
    return expand_dims(g, axes) if axes else g


def _count(shape: tuple[int, ...], axis: Any) -> int:
    return int(np.prod([shape[a] for a in _axes(axis, len(shape))], dtype=np.int64))


def _moveaxis(x: Any, source: int, destination: int) -> Any:
    order = list(range(np.ndim(x)))
    order.insert(destination % len(order), order.pop(source % len(order)))
    return transpose(x, tuple(order))



def _shift(value: Any) -> Any:
    return -value if np.ndim(value) == 0 else tuple(-v for v in value)  # a 0-d array too


# ---- elementwise, one input ---------------------------------------------------------------------

log1p = primitive(
    "log1p", np.log1p,
    vjp=lambda g, ans, x: (div(g, add(x, 1)),),
    jvp=lambda t, ans, x: div(t[0], add(x, 1)),
    complex="holomorphic",
)
expm1 = primitive(
    "expm1", np.expm1,
    vjp=lambda g, ans, x: (mul(g, add(ans, 1)),),
    jvp=lambda t, ans, x: mul(t[0], add(ans, 1)),
    complex="holomorphic",
)
tan = primitive(  # d tan x = 1 + tan² x
    "tan", np.tan,
    vjp=lambda g, ans, x: (mul(g, add(mul(ans, ans), 1)),),
    jvp=lambda t, ans, x: mul(t[0], add(mul(ans, ans), 1)),
    complex="holomorphic",
)
arcsin = primitive(
    "arcsin", np.arcsin,
    vjp=lambda g, ans, x: (div(g, sqrt(sub(1, mul(x, x)))),),
    jvp=lambda t, ans, x: div(t[0], sqrt(sub(1, mul(x, x)))),
    complex="holomorphic",
)
arccos = primitive(
    "arccos", np.arccos,
    vjp=lambda g, ans, x: (neg(div(g, sqrt(sub(1, mul(x, x))))),),
    jvp=lambda t, ans, x: neg(div(t[0], sqrt(sub(1, mul(x, x))))),
    complex="holomorphic",
)
arctan = primitive(
    "arctan", np.arctan,
    vjp=lambda g, ans, x: (div(g, add(mul(x, x), 1)),),
    jvp=lambda t, ans, x: div(t[0], add(mul(x, x), 1)),
    complex="holomorphic",
)
sinh = primitive(
    "sinh", np.sinh,
    vjp=lambda g, ans, x: (mul(g, cosh(x)),),
    jvp=lambda t, ans, x: mul(t[0], cosh(x)),
    complex="holomorphic",
)
cosh = primitive(
    "cosh", np.cosh,
    vjp=lambda g, ans, x: (mul(g, sinh(x)),),
    jvp=lambda t, ans, x: mul(t[0], sinh(x)),
    complex="holomorphic",
)
arcsinh = primitive(
    "arcsinh", np.arcsinh,
    vjp=lambda g, ans, x: (div(g, sqrt(add(mul(x, x), 1))),),
    jvp=lambda t, ans, x: div(t[0], sqrt(add(mul(x, x), 1))),
    complex="holomorphic",
)
square = primitive(
    "square", np.square,
    vjp=lambda g, ans, x: (mul(g, mul(x, 2)),),
    jvp=lambda t, ans, x: mul(t[0], mul(x, 2)),
    complex="holomorphic",
)
softplus = primitive(  # log(1 + eˣ), computed as logaddexp(0, x): no overflow
    "softplus", lambda x: np.logaddexp(0, x),
    vjp=lambda g, ans, x: (mul(g, sigmoid(x)),),
    jvp=lambda t, ans, x: mul(t[0], sigmoid(x)),
)
sign = primitive(  # piecewise constant: a zero derivative everywhere (PyTorch's choice at 0 too)
    "sign", np.sign,
    vjp=lambda g, ans, x: (_zeros(np.shape(x), g),),
    jvp=lambda t, ans, x: _zeros(ans.shape, ans),
)

# ---- elementwise, two inputs --------------------------------------------------------------------


def _logaddexp_vjp(g: np.ndarray, ans: np.ndarray, x: Any, y: Any) -> tuple:
    # ∂/∂x log(eˣ + eʸ) = eˣ⁻ᵃⁿˢ, a softmax weight (never overflows)
    return (
        sum_to_shape(mul(g, exp(sub(x, ans))), np.shape(x)) if _is_float(x) else None,
        sum_to_shape(mul(g, exp(sub(y, ans))), np.shape(y)) if _is_float(y) else None,
    )


def _logaddexp_jvp(t: list, ans: np.ndarray, x: Any, y: Any) -> np.ndarray:
    terms = [mul(t[i], exp(sub(v, ans))) for i, v in enumerate((x, y)) if _is_float(v)]
    return terms[0] if len(terms) == 1 else add(terms[0], terms[1])


logaddexp = primitive("logaddexp", np.logaddexp, arity=2, vjp=_logaddexp_vjp, jvp=_logaddexp_jvp)

# ---- reductions ---------------------------------------------------------------------------------


def _exclusive_cumprod(v: Any) -> Any:
    """Along the last axis: the product of the elements before each one (1 for the first)."""
    width = [(0, 0)] * (np.ndim(v) - 1) + [(1, 0)]
    return cumprod(pad(getitem(v, (Ellipsis, slice(None, -1))), width, constant_values=1), axis=-1)


def _others_product(x: Any, axis: Any) -> Any:
    """For each element, the product of the other elements of its reduction group: the product
    of the exclusive products from the left and from the right. Not prod / x: that divides by
    zero at a zero factor, and its derivative loses all precision at a tiny one (two terms of
    size 1/x² cancel)."""
    axes = _axes(axis, x.ndim)
    rest = [a for a in range(x.ndim) if a not in axes]
    order = tuple(rest + list(axes))
    moved = transpose(x, order)
    rows = reshape(moved, tuple(x.shape[a] for a in rest) + (-1,))
    left = _exclusive_cumprod(rows)
    right = flip(_exclusive_cumprod(flip(rows, -1)), -1)
    others = reshape(mul(left, right), moved.shape)
    return transpose(others, tuple(np.argsort(order)))


def _prod_vjp(g: np.ndarray, ans: np.ndarray, x: Any, axis: Any = None, keepdims: bool = False) -> tuple:
    others = _others_product(x, axis)
    return (mul(_keep(g, x.ndim, axis, keepdims), others),)


def _prod_jvp(t: list, ans: np.ndarray, x: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    others = _others_product(x, axis)
    return sum_(mul(t[0], others), axis=axis, keepdims=keepdims)


prod = primitive(
    "prod", lambda x, axis=None, keepdims=False: np.prod(x, axis=axis, keepdims=keepdims),
    vjp=_prod_vjp, jvp=_prod_jvp, complex="holomorphic",  # a polynomial
)


def _var_scale(x: Any, axis: Any, ddof: int) -> float:
    count = _count(np.shape(x), axis) - ddof
    return 2.0 / count if count > 0 else float("nan")


def _centred_along(t: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    """Σ Re(conj(x − x̄̄) · ẋ) over the reduced axes: half the tangent of Σ |x − x̄̄|² (for real
    values, Σ (x − x̄̄) ẋ)."""
    centred = sub(x, mean(x, axis=axis, keepdims=True))
    if is_complex(x) or is_complex(t):
        return sum_(real(mul(t, conj(centred))), axis=axis, keepdims=keepdims)
    return sum_(mul(t, centred), axis=axis, keepdims=keepdims)


# For complex x, var is the mean of |x − x̄̄|² (real, as NumPy's and PyTorch's), and PyTorch's
# convention gives the same x̄ as for real x; its tangent takes the real part of conj(x − x̄̄) ẋ.
var = primitive(  # x̄ = ȳ · 2 (x − x̄̄) / (N − ddof)
    "var",
    lambda x, axis=None, ddof=0, keepdims=False: np.var(x, axis=axis, ddof=ddof, keepdims=keepdims),
    vjp=lambda g, ans, x, axis=None, ddof=0, keepdims=False: (
        mul(_keep(g, x.ndim, axis, keepdims),
            mul(sub(x, mean(x, axis=axis, keepdims=True)), _var_scale(x, axis, ddof))),
    ),
    jvp=lambda t, ans, x, axis=None, ddof=0, keepdims=False: mul(
        _centred_along(t[0], x, axis, keepdims), _var_scale(x, axis, ddof),
    ),
    complex="explicit",
)
def _nonzero(ans: Any) -> Any:
    """`ans` with its zeros replaced by 1: where std is 0, x equals its mean, so the gradient is 0
    (as in PyTorch) instead of 0/0."""
    return where(np.greater(ans, 0), ans, 1)


std = primitive(  # x̄ = ȳ · (x − x̄̄) / ((N − ddof) · std)
    "std",
    lambda x, axis=None, ddof=0, keepdims=False: np.std(x, axis=axis, ddof=ddof, keepdims=keepdims),
    vjp=lambda g, ans, x, axis=None, ddof=0, keepdims=False: (
        mul(div(_keep(g, x.ndim, axis, keepdims), _nonzero(_keep(ans, x.ndim, axis, keepdims))),
            mul(sub(x, mean(x, axis=axis, keepdims=True)), _var_scale(x, axis, ddof) / 2)),
    ),
    jvp=lambda t, ans, x, axis=None, ddof=0, keepdims=False: div(
        mul(_centred_along(t[0], x, axis, keepdims), _var_scale(x, axis, ddof) / 2),
        _nonzero(ans),
    ),
    complex="explicit",  # sqrt of var's |x − x̄̄|² form
)

# ---- scans --------------------------------------------------------------------------------------


def _reverse_cumsum(g: Any, axis: int) -> Any:
    return flip(cumsum(flip(g, axis), axis), axis)


cumsum = primitive(  # x̄ = the sums of ȳ from each position to the end
    "cumsum", lambda x, axis=None: np.cumsum(x, axis=axis),
    vjp=lambda g, ans, x, axis=None: (
        reshape(_reverse_cumsum(g, 0), np.shape(x)) if axis is None else _reverse_cumsum(g, axis),
    ),
    jvp=lambda t, ans, x, axis=None: cumsum(t[0], axis),
    complex="explicit",
)


def _cumprod_parts(v: Any) -> tuple[Any, Any]:
    """Along the last axis (n): E[i] = Π_{j<i} v_j and T[i, k] = Π_{i<j≤k} v_j (0 for k < i),
    so that ∂y_k/∂v_i = E[i] T[i, k]. No division: right with zeros among the v."""
    n = np.shape(v)[-1]
    positions = np.arange(n)
    after = positions[None, :] > positions[:, None]
    from_diagonal = positions[None, :] >= positions[:, None]
    factors = where(after, expand_dims(v, -2), 1.0)  # [.., i, k] = v_k for k > i, else 1
    return _exclusive_cumprod(v), mul(cumprod(factors, axis=-1), _mask(from_diagonal, v))


# Up to this many elements in T, the rules use the division-free form; beyond, with no zero in x,
# the O(n) form with a division by x (whose second derivative loses precision where |x| is tiny).
_EXACT_CUMPROD_SIZE = 1 << 20


def _divide_by_x(x: Any, axis: int) -> bool:
    return np.size(x) * np.shape(x)[axis] > _EXACT_CUMPROD_SIZE and bool(np.all(np.not_equal(x, 0)))


def _cumprod_vjp(g: np.ndarray, ans: np.ndarray, x: Any, axis: Any = None) -> tuple:
    shape, flat = np.shape(x), axis is None
    if flat:
        x, axis = reshape(x, (-1,)), 0
    if _divide_by_x(x, axis):  # x̄ = (Σ from k on of ȳ_k y_k) / x
        grad = div(_reverse_cumsum(mul(g, ans), axis), x)
    else:
        before, after = _cumprod_parts(_moveaxis(x, axis, -1))
        gathered = sum_(mul(after, expand_dims(_moveaxis(g, axis, -1), -2)), axis=-1)
        grad = _moveaxis(mul(before, gathered), -1, axis)
    return (reshape(grad, shape) if flat else grad,)


def _cumprod_jvp(t: list, ans: np.ndarray, x: Any, axis: Any = None) -> np.ndarray:
    tangent = t[0]
    if axis is None:
        x, tangent, axis = reshape(x, (-1,)), reshape(tangent, (-1,)), 0
    if _divide_by_x(x, axis):  # ẏ = y · cumsum(ẋ / x)
        return mul(ans, cumsum(div(tangent, x), axis))
    before, after = _cumprod_parts(_moveaxis(x, axis, -1))
    weighted = expand_dims(mul(_moveaxis(tangent, axis, -1), before), -1)
    return _moveaxis(sum_(mul(weighted, after), axis=-2), -1, axis)


cumprod = primitive(
    "cumprod", lambda x, axis=None: np.cumprod(x, axis=axis), vjp=_cumprod_vjp, jvp=_cumprod_jvp,
    complex="holomorphic",  # polynomials
)

# ---- rearranging --------------------------------------------------------------------------------

flip = primitive(
    "flip", lambda m, axis=None: np.flip(m, axis=axis),
    vjp=lambda g, ans, m, axis=None: (flip(g, axis),),
    jvp=lambda t, ans, m, axis=None: flip(t[0], axis),
    complex="explicit",
)
roll = primitive(
    "roll", lambda a, shift, axis=None: np.roll(a, shift, axis=axis),
    vjp=lambda g, ans, a, shift, axis=None: (roll(g, _shift(shift), axis),),
    jvp=lambda t, ans, a, shift, axis=None: roll(t[0], shift, axis),
    complex="explicit",
)


def _tile_vjp(g: np.ndarray, ans: np.ndarray, A: Any, reps: Any) -> tuple:
    # Split each output axis into (copy, original) and sum over the copies.
    reps = (int(reps),) if np.ndim(reps) == 0 else tuple(int(r) for r in reps)
    shape = np.shape(A)
    depth = max(len(shape), len(reps))
    a_shape = (1,) * (depth - len(shape)) + shape
    copies = (1,) * (depth - len(reps)) + reps
    split = tuple(side for pair in zip(copies, a_shape) for side in pair)
    return (reshape(sum_(reshape(g, split), axis=tuple(range(0, 2 * depth, 2))), shape),)


tile = primitive(
    "tile", lambda A, reps: np.tile(A, reps),
    vjp=_tile_vjp,
    jvp=lambda t, ans, A, reps: tile(t[0], reps),
    complex="explicit",
)

# ---- gathers: the adjoint of each is a scatter-add of ȳ where the elements came from -----------


def _gather_adjoint(g: Any, shape: tuple[int, ...], flat_index: Any = None, index: Any = None) -> Any:
    """ȳ added into zeros of `shape` at `index`, or at `flat_index` of the flattened array."""
    if flat_index is not None:
        size = int(np.prod(shape, dtype=np.int64))
        return reshape(scatter_add(g, flat_index, (size,)), shape)
    return scatter_add(g, index, tuple(shape))


def _along_index(shape: tuple[int, ...], indices: np.ndarray, axis: int) -> tuple:
    """The fancy index equal to take_along_axis(·, indices, axis)."""
    ndim = len(shape)
    axis = int(axis) % ndim  # (a 0-d array axis is read-only on the tape)
    return tuple(
        indices if a == axis
        else np.arange(shape[a]).reshape([-1 if b == a else 1 for b in range(ndim)])
        for a in range(ndim)
    )


take_along_axis = primitive(
    "take_along_axis", lambda arr, indices, axis=-1: np.take_along_axis(arr, indices, axis=axis),
    vjp=lambda g, ans, arr, indices, axis=-1: (
        _gather_adjoint(g, np.shape(arr), flat_index=indices) if axis is None
        else _gather_adjoint(g, np.shape(arr), index=_along_index(np.shape(arr), indices, axis)),
    ),
    jvp=lambda t, ans, arr, indices, axis=-1: take_along_axis(t[0], indices, axis),
    complex="explicit",
)


def _take_index(ndim: int, indices: Any, axis: int) -> tuple:
    return (slice(None),) * (axis % ndim) + (indices,)


take = primitive(
    "take", lambda a, indices, axis=None: np.take(a, indices, axis=axis),
    vjp=lambda g, ans, a, indices, axis=None: (
        _gather_adjoint(g, np.shape(a), flat_index=indices) if axis is None
        else _gather_adjoint(g, np.shape(a), index=_take_index(np.ndim(a), indices, axis)),
    ),
    jvp=lambda t, ans, a, indices, axis=None: take(t[0], indices, axis),
    complex="explicit",
)


def _repeat_source(shape: tuple[int, ...], repeats: Any, axis: Any) -> np.ndarray:
    """Which element (along `axis`, or of the flattened array) each output element copies."""
    count = int(np.prod(shape, dtype=np.int64)) if axis is None else shape[axis]
    return np.repeat(np.arange(count), repeats)


repeat = primitive(
    "repeat", lambda a, repeats, axis=None: np.repeat(a, repeats, axis=axis),
    vjp=lambda g, ans, a, repeats, axis=None: (
        _gather_adjoint(g, np.shape(a), flat_index=_repeat_source(np.shape(a), repeats, None)) if axis is None
        else _gather_adjoint(
            g, np.shape(a), index=_take_index(np.ndim(a), _repeat_source(np.shape(a), repeats, axis), axis)
        ),
    ),
    jvp=lambda t, ans, a, repeats, axis=None: repeat(t[0], repeats, axis),
    complex="explicit",
)


def _sort_order(x: Any, axis: Any) -> np.ndarray:
    return np.argsort(x, axis=axis, kind="stable")


def _sort_vjp(g: np.ndarray, ans: np.ndarray, x: Any, axis: Any = -1) -> tuple:
    # sorting is a permutation: its adjoint gathers with the inverse permutation
    order = _sort_order(x, axis)
    inverse = np.argsort(order, axis=-1 if axis is None else axis, kind="stable")
    if axis is None:
        return (reshape(take_along_axis(g, inverse, 0), np.shape(x)),)
    return (take_along_axis(g, inverse, axis),)


sort = primitive(  # stable, as torch.sort(stable=True): ties keep their order
    "sort", lambda x, axis=-1: np.sort(x, axis=axis, kind="stable"),
    vjp=_sort_vjp,
    jvp=lambda t, ans, x, axis=-1: (
        take_along_axis(reshape(t[0], (-1,)), _sort_order(x, None), 0) if axis is None
        else take_along_axis(t[0], _sort_order(x, axis), axis)
    ),
)

# ---- diagonals and triangles ----------------------------------------------------------------------


def _diagonal_length(shape: tuple[int, ...], offset: int, axis1: int, axis2: int) -> int:
    rows, columns = shape[axis1], shape[axis2]
    return max(0, min(rows - max(-offset, 0), columns - max(offset, 0)))


def _onto_diagonal(g: Any, shape: tuple[int, ...], offset: int, axis1: int, axis2: int) -> Any:
    """g (.., k) written on the diagonal of zeros(shape): the adjoint of np.diagonal."""
    ndim = len(shape)
    first, second = axis1 % ndim, axis2 % ndim
    rest = [a for a in range(ndim) if a not in (first, second)]
    moved = tuple(shape[a] for a in rest) + (shape[first], shape[second])
    steps = np.arange(np.shape(g)[-1])
    placed = scatter_add(g, (Ellipsis, steps + max(-offset, 0), steps + max(offset, 0)), moved)
    return transpose(placed, tuple(np.argsort(rest + [first, second])))


diagonal = primitive(
    "diagonal",
    lambda a, offset=0, axis1=0, axis2=1: np.diagonal(a, offset, axis1, axis2).copy(),
    vjp=lambda g, ans, a, offset=0, axis1=0, axis2=1: (_onto_diagonal(g, np.shape(a), offset, axis1, axis2),),
    jvp=lambda t, ans, a, offset=0, axis1=0, axis2=1: diagonal(t[0], offset, axis1, axis2),
    complex="explicit",
)


def _trace_vjp(g: np.ndarray, ans: np.ndarray, a: Any, offset: int = 0, axis1: int = 0,
               axis2: int = 1) -> tuple:
    k = _diagonal_length(np.shape(a), offset, axis1 % np.ndim(a), axis2 % np.ndim(a))
    spread = mul(expand_dims(g, -1), np.ones(k, g.dtype))  # ȳ on every diagonal element
    return (_onto_diagonal(spread, np.shape(a), offset, axis1, axis2),)


trace = primitive(
    "trace", lambda a, offset=0, axis1=0, axis2=1: np.trace(a, offset, axis1, axis2),
    vjp=_trace_vjp,
    jvp=lambda t, ans, a, offset=0, axis1=0, axis2=1: trace(t[0], offset, axis1, axis2),
    complex="explicit",
)
triu = primitive(  # a fixed mask: its own adjoint
    "triu", lambda m, k=0: np.triu(m, k),
    vjp=lambda g, ans, m, k=0: (triu(g, k),),
    jvp=lambda t, ans, m, k=0: triu(t[0], k),
    complex="explicit",
)
tril = primitive(
    "tril", lambda m, k=0: np.tril(m, k),
    vjp=lambda g, ans, m, k=0: (tril(g, k),),
    jvp=lambda t, ans, m, k=0: tril(t[0], k),
    complex="explicit",
)

# ---- products -----------------------------------------------------------------------------------


def _outer_vjp(g: np.ndarray, ans: np.ndarray, a: Any, b: Any) -> tuple:
    # y = a bᵀ (both flattened):  ā = ȳ b,  b̄ = ȳᵀ a
    return (
        reshape(matmul(g, reshape(b, (-1,))), np.shape(a)) if _is_float(a) else None,
        reshape(matmul(reshape(a, (-1,)), g), np.shape(b)) if _is_float(b) else None,
    )


def _outer_jvp(t: list, ans: np.ndarray, a: Any, b: Any) -> np.ndarray:
    terms = []
    if _is_float(a):
        terms.append(outer(t[0], b))
    if _is_float(b):
        terms.append(outer(a, t[1]))
    return terms[0] if len(terms) == 1 else add(terms[0], terms[1])


outer = primitive("outer", lambda a, b: np.outer(a, b), arity=2, vjp=_outer_vjp, jvp=_outer_jvp,
                  complex="holomorphic")

_LABELS = string.ascii_uppercase + string.ascii_lowercase  # NumPy's sublist labels 0..51


def _from_sublists(args: tuple) -> tuple[str, list]:
    """einsum(op0, sublist0, op1, sublist1, ..., [sublistout]) as (subscripts, operands)."""

    def spelled(sublist: Any) -> str:
        return "".join("..." if s is Ellipsis else _LABELS[int(s)] for s in sublist)

    operands, sublists = list(args[0::2]), list(args[1::2])
    output = None
    if len(operands) > len(sublists):  # an odd count: the last one is the output's sublist
        output = operands.pop()
    subscripts = ",".join(spelled(s) for s in sublists)
    return (subscripts if output is None else subscripts + "->" + spelled(output)), operands


def _einsum_terms(subscripts: str, shapes: list) -> tuple[list[str], str, dict[str, int]]:
    """The input terms and the output term with any ellipsis spelled out in letters (implicit
    output made explicit), and each letter's size (the broadcast size)."""
    text = subscripts.replace(" ", "")
    lhs, arrow, out = text.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: {len(terms)} operand subscripts for {len(shapes)} operands")
    free = [c for c in string.ascii_letters if c not in text]
    dims = [len(shape) - len(term.replace("...", "")) for term, shape in zip(terms, shapes)]
    widest = max([d for d, term in zip(dims, terms) if "..." in term], default=0)
    spelled = "".join(free[:widest])
    terms = [term.replace("...", spelled[widest - d:] if d else "") for term, d in zip(terms, dims)]
    if arrow:
        out = out.replace("...", spelled)
    else:  # implicit: the ellipsis axes, then the letters used once, sorted
        joined = "".join(terms)
        out = spelled + "".join(sorted(c for c in set(joined) if joined.count(c) == 1 and c not in spelled))
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, shapes):
        for letter, side in zip(term, shape):
            sizes[letter] = side if sizes.get(letter, 1) == 1 else sizes[letter]
    return terms, out, sizes


def _optimize_for(count: int, optimize: Any) -> Any:
    return optimize if optimize is not None else ("greedy" if count > 2 else False)


def _einsum_operand_gradient(
    g: Any, operands: tuple, terms: list[str], out: str, sizes: dict, k: int, optimize: Any
) -> Any:
    """Operand k's adjoint, one more einsum: ȳ and the other operands, contracted to k's letters.
    A letter repeated in term k (a diagonal) gets fresh letters tied to it by identity matrices;
    a letter only term k has (summed within it) is spread by a vector of ones."""
    fresh = iter(c for c in string.ascii_letters if c not in "".join(terms) + out)
    pieces = [(out, g)] + [(terms[j], operands[j]) for j in range(len(operands)) if j != k]
    target = ""
    for letter in terms[k]:
        if letter in target:
            twin = next(fresh)
            pieces.append((letter + twin, np.eye(sizes[letter], dtype=g.dtype)))
            target += twin
        else:
            target += letter
    present = "".join(term for term, _ in pieces)
    pieces += [(c, np.ones(sizes[c], g.dtype)) for c in target if c not in present]
    spec = ",".join(term for term, _ in pieces) + "->" + target
    grad = _einsum([v for _, v in pieces], subscripts=spec, optimize=_optimize_for(len(pieces), optimize))
    shape = np.shape(operands[k])
    # A letter of size 1 elsewhere that broadcasts against this operand's (ij,jk with j of size 1 in
    # the first): the same adjoint at each of its places. One of size 1 here: summed over.
    spread = np.broadcast_shapes(np.shape(grad), shape)
    if spread != np.shape(grad):
        grad = broadcast_to(grad, spread)
    return sum_to_shape(grad, shape)


def _einsum_vjp(g: np.ndarray, ans: np.ndarray, *operands: Any, subscripts: str,
                optimize: Any = None) -> tuple:
    terms, out, sizes = _einsum_terms(subscripts, [np.shape(x) for x in operands])
    return tuple(
        _einsum_operand_gradient(g, operands, terms, out, sizes, k, optimize) if _is_float(x) else None
        for k, x in enumerate(operands)
    )


def _einsum_jvp(t: list, ans: np.ndarray, *operands: Any, subscripts: str,
                optimize: Any = None) -> np.ndarray:
    total = None
    for k, x in enumerate(operands):  # multilinear: one term per float operand
        if _is_float(x):
            swapped = list(operands)
            swapped[k] = t[k]
            term = _einsum(swapped, subscripts=subscripts, optimize=optimize)
            total = term if total is None else add(total, term)
    return total


_einsum = primitive(
    "einsum",
    lambda *operands, subscripts, optimize=None: np.einsum(
        subscripts, *operands, optimize=_optimize_for(len(operands), optimize)
    ),
    vjp=_einsum_vjp, jvp=_einsum_jvp, arity=None,
    complex="holomorphic",
)


def einsum(*args: Any, optimize: Any = None) -> np.ndarray:
    """`np.einsum(subscripts, *operands)`, differentiable: any subscripts NumPy accepts, with
    repeated letters (diagonals, traces), an ellipsis, implicit output, or the sublist form
    `einsum(a, [0, 1], b, [1, 2])`. Three or more operands take a greedy contraction order
    unless `optimize` says otherwise.

    >>> einsum("ij,j->i", np.eye(2), np.array([1.0, 2.0]))
    array([1., 2.])
    """
    if not args:
        raise TypeError("einsum() needs subscripts and operands")
    if isinstance(args[0], str):
        subscripts, operands = args[0], list(args[1:])
    else:
        subscripts, operands = _from_sublists(args)
    return _einsum(operands, subscripts=subscripts, optimize=optimize)


def _tensordot_terms(a_ndim: int, b_ndim: int, axes: Any) -> tuple[str, str, str]:
    if isinstance(axes, (int, np.integer)) or np.ndim(axes) == 0:  # a 0-d array too, as NumPy reads it
        a_axes, b_axes = list(range(a_ndim - int(axes), a_ndim)), list(range(int(axes)))
    else:
        a_axes, b_axes = ([x] if isinstance(x, (int, np.integer)) else list(x) for x in axes)
    a_axes, b_axes = [int(a) % max(a_ndim, 1) for a in a_axes], [int(b) % max(b_ndim, 1) for b in b_axes]
    letters = iter(string.ascii_letters)
    a_term = [next(letters) for _ in range(a_ndim)]
    b_term = [next(letters) for _ in range(b_ndim)]
    for i, j in zip(a_axes, b_axes):
        b_term[j] = a_term[i]
    out = [a_term[i] for i in range(a_ndim) if i not in a_axes]
    out += [b_term[j] for j in range(b_ndim) if j not in b_axes]
    return "".join(a_term), "".join(b_term), "".join(out)


def _tensordot_vjp(g: np.ndarray, ans: np.ndarray, a: Any, b: Any, axes: Any = 2) -> tuple:
    a_term, b_term, out = _tensordot_terms(np.ndim(a), np.ndim(b), axes)
    return (
        _einsum([g, b], subscripts=f"{out},{b_term}->{a_term}") if _is_float(a) else None,
        _einsum([a, g], subscripts=f"{a_term},{out}->{b_term}") if _is_float(b) else None,
    )


def _tensordot_jvp(t: list, ans: np.ndarray, a: Any, b: Any, axes: Any = 2) -> np.ndarray:
    a_term, b_term, out = _tensordot_terms(np.ndim(a), np.ndim(b), axes)
    spec = f"{a_term},{b_term}->{out}"
    terms = []
    if _is_float(a):
        terms.append(_einsum([t[0], b], subscripts=spec))
    if _is_float(b):
        terms.append(_einsum([a, t[1]], subscripts=spec))
    return terms[0] if len(terms) == 1 else add(terms[0], terms[1])


tensordot = primitive(
    "tensordot", lambda a, b, axes=2: np.tensordot(a, b, axes), arity=2,
    vjp=_tensordot_vjp, jvp=_tensordot_jvp,
    complex="holomorphic",
)

# ---- indexed assignment, out of place -------------------------------------------------------------


def _assigned(x: np.ndarray, value: Any, index: Any) -> np.ndarray:
    out = np.array(x, copy=True)
    out[index] = value
    return out


def _landed(shape: tuple[int, ...], index: Any) -> np.ndarray:
    """For each element of x[index]: whether its value is the one left in place (NumPy lets the
    last of repeated indices win; the others get no gradient)."""
    slots = np.full(shape, -1, dtype=np.intp)
    picked_shape = slots[index].shape
    count = int(np.prod(picked_shape, dtype=np.int64))
    slots[index] = np.arange(count).reshape(picked_shape)
    landed = np.zeros(count, bool)
    landed[slots[slots >= 0]] = True
    return landed.reshape(picked_shape)


def _setitem_vjp(g: np.ndarray, ans: np.ndarray, x: Any, value: Any, index: Any) -> tuple:
    # x̄ = ȳ with zeros where x was overwritten;  value̅ = ȳ[index] (the landed copies), summed to
    # value's shape over broadcasting
    grad_value = None
    if _is_float(value):
        picked = getitem(g, index)
        landed = computed(_landed, (np.shape(x), index))  # a step while compile traces: the index may be
        if is_tracked(landed) or not landed.all():  # traced (then branch-free: the mask is replayed)
            picked = mul(picked, _mask(landed, g))
        grad_value = sum_to_shape(picked, np.shape(value))
    # x̄: ȳ with the overwritten slots zeroed, itself a setitem (so a compiled program recomputes
    # which slots those are from the index, instead of freezing a mask)
    return (_setitem(g, 0.0, index) if _is_float(x) else None, grad_value)


def _setitem_jvp(t: list, ans: np.ndarray, x: Any, value: Any, index: Any) -> Any:
    if not _is_float(x):
        return None
    if _is_float(value):
        return _setitem(t[0], t[1], index)
    return _setitem(t[0], 0.0, index)


_setitem = primitive("setitem", _assigned, arity=2, vjp=_setitem_vjp, jvp=_setitem_jvp,
                     complex="explicit")


def setitem(x: Any, index: Any, value: Any) -> np.ndarray:
    """A copy of `x` with `x[index] = value` (x itself is left untouched), differentiable in both
    `x` (zero where overwritten) and `value` (JAX's `x.at[index].set(value)`). Any NumPy index.

    >>> setitem(np.zeros((2, 2)), (0, slice(None)), np.array([1.0, 2.0]))
    array([[1., 2.],
           [0., 0.]])
    """
    return _setitem(x, value, index)


__all__ = [
    "arccos", "arcsin", "arcsinh", "arctan", "cosh", "cumprod", "cumsum", "diagonal", "einsum",
    "expm1", "flip", "log1p", "logaddexp", "outer", "prod", "repeat", "roll", "setitem", "sign",
    "sinh", "softplus", "sort", "square", "std", "take", "take_along_axis", "tan", "tensordot", "tile",
    "trace", "tril", "triu", "var",
]

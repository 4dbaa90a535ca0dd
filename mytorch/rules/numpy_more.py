"""The rest of NumPy's differentiable surface (issue 23), under NumPy's names and signatures.

Elementwise functions with a derivative of their own are primitives (forward, backward and
tangent rule side by side); everything else is a composition of primitives, so its rules come
from theirs (second order included):

    log10 x: x̄ = ȳ / (x ln 10)      exp2 x: x̄ = ȳ · y ln 2      arctanh x: x̄ = ȳ / (1 − x²)
    mod(x, y): x̄ = ȳ, ȳ' = −ȳ ⌊x / y⌋    fmod(x, y): the same with trunc in place of ⌊⌋
    floor, ceil, round, trunc, rint: piecewise constant, a zero derivative (as PyTorch's)

Joins (hstack, vstack, ...) are `concatenate`s, splits are `getitem`s of slices, rot90 and
moveaxis are `flip`s and `transpose`s, dot and inner are `matmul`s or `tensordot`s, diff and
gradient are differences of slices, linspace is `start + arange · step` with `stop` set at the
end, convolve is a sum of shifted copies (`pad`) scaled by the kernel's elements.

>>> import numpy as np
>>> from mytorch import functional as F
>>> F.hstack([np.array([1.0]), np.array([2.0, 3.0])])
array([1., 2., 3.])
>>> F.log2(np.array(8.0))
array(3.)
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from mytorch.primitive import broadcast_to, constant, primitive, reduce_to
from mytorch.rules.complex import angle, conj, conjugate, imag, real, real_if_close
from mytorch.rules.core import (
    add,
    concatenate,
    div,
    getitem,
    matmul,
    mul,
    pad,
    reshape,
    sqrt,
    stack,
    sub,
    transpose,
    where,
)
from mytorch.rules.numpy_ops import diagonal, flip, setitem, take_along_axis, tensordot

__all__ = [
    "angle", "append", "arccosh", "arctanh", "array", "array_split", "asarray", "atleast_1d", "atleast_2d",
    "atleast_3d", "ceil", "column_stack", "conj", "conjugate", "convolve", "cross", "deg2rad", "degrees",
    "diag", "diff", "dot", "dsplit", "dstack", "exp2", "fix", "fliplr", "flipud", "floor", "fmax", "fmin",
    "fmod", "gradient", "hsplit", "hstack", "imag", "inner", "kron", "linspace", "log10", "log2",
    "logaddexp2", "mod", "moveaxis", "nan_to_num", "partition", "rad2deg", "radians", "ravel", "real",
    "real_if_close", "remainder", "rint", "rollaxis", "rot90", "round", "row_stack", "select", "split",
    "trunc", "vsplit", "vstack",
]

_LN2, _LN10 = math.log(2.0), math.log(10.0)


def _is_float(value: Any) -> bool:
    """A float or complex array: one that carries a gradient (complex values reach only the rules
    of primitives that declare them)."""
    return isinstance(value, np.ndarray) and value.dtype.kind in "fc"


def _float_dtype(*values: Any) -> np.dtype:
    floats = [v.dtype for v in values if _is_float(v)]
    return np.result_type(*floats) if floats else np.dtype(np.float64)


# ---- elementwise primitives ---------------------------------------------------------------------


def _smooth(name: str, forward: Any, slope: Any) -> Any:
    """A one-input elementwise primitive with derivative `slope(x, ans)` (written with primitives);
    each one here is holomorphic, so complex values take the same rules."""
    return primitive(
        name, forward,
        vjp=lambda g, ans, x: (mul(g, slope(x, ans)),),
        jvp=lambda t, ans, x: mul(t[0], slope(x, ans)),
        complex="holomorphic",
    )


log10 = _smooth("log10", np.log10, lambda x, ans: div(1.0 / _LN10, x))
log2 = _smooth("log2", np.log2, lambda x, ans: div(1.0 / _LN2, x))
exp2 = _smooth("exp2", np.exp2, lambda x, ans: mul(ans, _LN2))
arctanh = _smooth("arctanh", np.arctanh, lambda x, ans: div(1.0, sub(1.0, mul(x, x))))
arccosh = _smooth(  # 1 / √(x² − 1), as √(x − 1) √(x + 1): no cancellation near 1
    "arccosh", np.arccosh, lambda x, ans: div(1.0, mul(sqrt(sub(x, 1.0)), sqrt(add(x, 1.0)))),
)


def _flat(name: str, forward: Any) -> Any:
    """A piecewise-constant elementwise primitive: its derivative is zero wherever it exists."""

    def zeros(like: Any, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, like.dtype if _is_float(like) else np.float64)

    return primitive(
        name, forward,
        vjp=lambda g, ans, x, **params: (zeros(g, np.shape(x)),),
        jvp=lambda t, ans, x, **params: zeros(t[0], np.shape(ans)),
    )


floor = _flat("floor", np.floor)
ceil = _flat("ceil", np.ceil)
trunc = _flat("trunc", np.trunc)
rint = _flat("rint", np.rint)
round = _flat("round", lambda a, decimals=0: np.round(a, decimals))  # noqa: A001 - NumPy's name
fix = trunc  # np.fix rounds towards zero, as trunc does


def _wrap_rules(name: str, forward: Any, quotient: Any) -> Any:
    """x − q(x / y) · y with q piecewise constant: x̄ = ȳ, ȳ' = −ȳ q(x / y)."""

    def slope_y(x: Any, y: Any, like: Any) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            # NumPy on x and y themselves (no np.asarray): a compiled trace recomputes the quotient
            return constant(np.negative(quotient(np.true_divide(x, y))), like)

    def jvp(t: list, ans: np.ndarray, x: Any, y: Any) -> Any:
        terms = []
        if _is_float(x):
            terms.append(broadcast_to(t[0], ans.shape))
        if _is_float(y):
            terms.append(mul(t[1], slope_y(x, y, ans)))
        return terms[0] if len(terms) == 1 else add(terms[0], terms[1])

    return primitive(name, forward, arity=2, vjp=(
        lambda g, ans, x, y: reduce_to(g, x),
        lambda g, ans, x, y: reduce_to(mul(g, slope_y(x, y, g)), y),
    ), jvp=jvp)


mod = _wrap_rules("mod", np.mod, np.floor)
remainder = mod  # NumPy's two names for one ufunc
fmod = _wrap_rules("fmod", np.fmod, np.trunc)


def _logaddexp2_vjp(g: np.ndarray, ans: np.ndarray, x: Any, y: Any) -> tuple:
    # ∂/∂x log₂(2ˣ + 2ʸ) = 2ˣ⁻ᵃⁿˢ (never overflows)
    return (
        reduce_to(mul(g, exp2(sub(x, ans))), x) if _is_float(x) else None,
        reduce_to(mul(g, exp2(sub(y, ans))), y) if _is_float(y) else None,
    )


def _logaddexp2_jvp(t: list, ans: np.ndarray, x: Any, y: Any) -> Any:
    terms = [mul(t[i], exp2(sub(v, ans))) for i, v in enumerate((x, y)) if _is_float(v)]
    return terms[0] if len(terms) == 1 else add(terms[0], terms[1])


logaddexp2 = primitive("logaddexp2", np.logaddexp2, arity=2, vjp=_logaddexp2_vjp, jvp=_logaddexp2_jvp)

# ---- elementwise compositions -------------------------------------------------------------------


def radians(x: Any) -> np.ndarray:
    """`np.radians`: x · π/180.

    >>> radians(np.array(180.0))
    array(3.14159265)
    """
    return mul(x, np.pi / 180.0)


def degrees(x: Any) -> np.ndarray:
    """`np.degrees`: x · 180/π.

    >>> degrees(np.array(np.pi))
    array(180.)
    """
    return mul(x, 180.0 / np.pi)


deg2rad, rad2deg = radians, degrees


def _nan_mask(x: Any) -> np.ndarray:
    # np.isnan on x itself, not on np.asarray(x): a compiled trace then recomputes the mask
    return np.isnan(x) if np.asarray(x).dtype.kind == "f" else np.zeros(np.shape(x), bool)


def fmax(x1: Any, x2: Any) -> np.ndarray:
    """`np.fmax`: the larger of the two, ignoring a NaN (the other one gets the gradient).

    >>> fmax(np.array([1.0, np.nan]), np.array([2.0, 3.0]))
    array([2., 3.])
    """
    from mytorch.rules.core import maximum

    return where(_nan_mask(x2), x1, where(_nan_mask(x1), x2, maximum(x1, x2)))


def fmin(x1: Any, x2: Any) -> np.ndarray:
    """`np.fmin`: the smaller of the two, ignoring a NaN.

    >>> fmin(np.array([1.0, np.nan]), np.array([2.0, 3.0]))
    array([1., 3.])
    """
    from mytorch.rules.core import minimum

    return where(_nan_mask(x2), x1, where(_nan_mask(x1), x2, minimum(x1, x2)))


def nan_to_num(x: Any, copy: bool = True, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> np.ndarray:
    """`np.nan_to_num`: finite values pass through (gradient 1); replaced ones are constants.

    >>> nan_to_num(np.array([1.0, np.nan, np.inf]), posinf=9.0)
    array([1., 0., 9.])
    """
    dtype = np.asarray(x).dtype
    if dtype.kind != "f":
        return np.nan_to_num(np.asarray(x), copy=True, nan=nan, posinf=posinf, neginf=neginf)
    # The masks come from x itself (not np.asarray(x)), so a compiled trace recomputes them.
    largest = np.finfo(dtype).max if posinf is None else posinf
    smallest = np.finfo(dtype).min if neginf is None else neginf
    return where(np.isnan(x), nan, where(np.isposinf(x), largest, where(np.isneginf(x), smallest, x)))


# ---- constructors and joins ---------------------------------------------------------------------


def _as_array(a: Any) -> Any:
    return a if isinstance(a, np.ndarray) else np.asarray(a)


def _holds_arrays(obj: Any) -> bool:
    if isinstance(obj, np.ndarray):
        return True
    if isinstance(obj, (list, tuple)):
        return any(_holds_arrays(item) for item in obj)
    return False


def _stacked(obj: Any, dtype: Any) -> Any:
    if isinstance(obj, (list, tuple)):
        if not _holds_arrays(obj):
            return np.asarray(obj, dtype=dtype)
        return stack([_stacked(item, dtype) for item in obj], axis=0)
    value = _as_array(obj)
    return value if dtype is None or value.dtype == dtype else value.astype(dtype)


def array(object: Any, dtype: Any = None) -> np.ndarray:  # noqa: A002 - NumPy's name
    """`np.array` of a (nested) sequence holding arrays: a differentiable `stack`.

    >>> array([np.array([1.0, 2.0]), [3.0, 4.0]])
    array([[1., 2.],
           [3., 4.]])
    """
    if dtype is not None and np.dtype(dtype).kind != "f":
        return np.array(object, dtype=dtype)
    if isinstance(object, (list, tuple)) and _holds_arrays(object):
        return _stacked(object, dtype)
    value = _as_array(object)
    if isinstance(object, np.ndarray) and (dtype is None or value.dtype == dtype):
        return reshape(value, value.shape) if _is_float(value) else value.copy()
    return np.array(object, dtype=dtype)


def asarray(a: Any, dtype: Any = None) -> np.ndarray:
    """`np.asarray`: an array is returned as is; a sequence holding arrays is stacked.

    >>> asarray([np.array(1.0), np.array(2.0)])
    array([1., 2.])
    """
    if isinstance(a, np.ndarray) and (dtype is None or a.dtype == dtype):
        return a
    return array(a, dtype)


def _atleast(arys: tuple, ndim: int) -> Any:
    out = []
    for a in arys:
        a = _as_array(a)
        if a.ndim < ndim:
            shape = {0: (), 1: (1, a.size), 2: a.shape}[a.ndim]  # a vector becomes a row
            shape = shape[:ndim] if a.ndim else (1,) * ndim
            a = reshape(a, shape + (1,) * (ndim - len(shape)))
        elif _is_float(a):
            a = reshape(a, a.shape)  # a new array on the tape (NumPy hands back the input itself)
        out.append(a)
    return out[0] if len(out) == 1 else tuple(out)


def atleast_1d(*arys: Any) -> Any:
    """`np.atleast_1d`.

    >>> atleast_1d(np.array(1.0))
    array([1.])
    """
    return _atleast(arys, 1)


def atleast_2d(*arys: Any) -> Any:
    """`np.atleast_2d`: a vector becomes one row.

    >>> atleast_2d(np.array([1.0, 2.0])).shape
    (1, 2)
    """
    return _atleast(arys, 2)


def atleast_3d(*arys: Any) -> Any:
    """`np.atleast_3d`: (n,) becomes (1, n, 1), (m, n) becomes (m, n, 1).

    >>> atleast_3d(np.ones((2, 3))).shape
    (2, 3, 1)
    """
    return _atleast(arys, 3)


def _each(tup: Sequence[Any], lift: Any) -> list:
    arrays = [lift(a) for a in tup]
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    return arrays


def _cast_all(arrays: list, dtype: Any, casting: str, name: str) -> list:
    """NumPy's `dtype=`/`casting=` of the joins: each array cast (on the tape) where allowed."""
    if dtype is None:
        return arrays
    from mytorch.primitive import astype

    for a in arrays:
        if not np.can_cast(np.result_type(a), dtype, casting=casting):
            raise TypeError(f"{name}: cannot cast {np.result_type(a)} to {np.dtype(dtype)} with "
                            f"casting={casting!r}")
    return [astype(a, dtype) for a in arrays]


def hstack(tup: Sequence[Any], *, dtype: Any = None, casting: str = "same_kind") -> np.ndarray:
    """`np.hstack`: along axis 1 (axis 0 for vectors).

    >>> hstack([np.ones((2, 1)), np.zeros((2, 2))]).shape
    (2, 3)
    """
    arrays = _cast_all(_each(tup, atleast_1d), dtype, casting, "hstack")
    return concatenate(arrays, axis=0 if arrays[0].ndim == 1 else 1)


def vstack(tup: Sequence[Any], *, dtype: Any = None, casting: str = "same_kind") -> np.ndarray:
    """`np.vstack`: along axis 0, vectors as rows (`np.row_stack` calls it with dtype= and casting=).

    >>> vstack([np.ones(2), np.zeros(2)]).shape
    (2, 2)
    """
    return concatenate(_cast_all(_each(tup, atleast_2d), dtype, casting, "vstack"), axis=0)


row_stack = vstack


def dstack(tup: Sequence[Any]) -> np.ndarray:
    """`np.dstack`: along axis 2.

    >>> dstack([np.ones((2, 2)), np.zeros((2, 2))]).shape
    (2, 2, 2)
    """
    return concatenate(_each(tup, atleast_3d), axis=2)


def column_stack(tup: Sequence[Any]) -> np.ndarray:
    """`np.column_stack`: vectors as columns, then along axis 1.

    >>> column_stack([np.ones(3), np.zeros(3)]).shape
    (3, 2)
    """
    def column(a: Any) -> Any:
        a = _as_array(a)
        return reshape(a, (a.size, 1) if a.ndim == 1 else (1, 1)) if a.ndim < 2 else a

    return concatenate(_each(tup, column), axis=1)


def append(arr: Any, values: Any, axis: int | None = None) -> np.ndarray:
    """`np.append`: flattened when `axis` is None.

    >>> append(np.ones((1, 2)), np.zeros(1))
    array([1., 1., 0.])
    """
    arr, values = _as_array(arr), _as_array(values)
    if axis is None:
        arr = arr if arr.ndim == 1 else ravel(arr)
        values = ravel(values)
        axis = arr.ndim - 1
    return concatenate([arr, values], axis=axis)


# ---- splits ---------------------------------------------------------------------------------------


def _pieces(ary: Any, bounds: list[int], axis: int) -> list:
    ary = _as_array(ary)
    lead = (slice(None),) * (axis % max(ary.ndim, 1))
    return [getitem(ary, (*lead, slice(start, end))) for start, end in zip(bounds[:-1], bounds[1:])]


def array_split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list:
    """`np.array_split`: sections may be unequal.

    >>> [p.tolist() for p in array_split(np.arange(5.0), 2)]
    [[0.0, 1.0, 2.0], [3.0, 4.0]]
    """
    ary = _as_array(ary)
    n = ary.shape[axis]
    try:
        bounds = [0, *(int(i) for i in indices_or_sections), n]
    except TypeError:
        sections = operator.index(indices_or_sections)
        if sections <= 0:
            raise ValueError("array_split: number sections must be larger than 0.") from None
        each, extras = divmod(n, sections)
        sizes = [each + 1] * extras + [each] * (sections - extras)
        bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
    return _pieces(ary, bounds, axis)


def split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list:
    """`np.split`: equal sections (or at the given indices).

    >>> [p.shape for p in split(np.ones((4, 2)), 2)]
    [(2, 2), (2, 2)]
    """
    if np.ndim(indices_or_sections) == 0:
        sections = operator.index(indices_or_sections)
        if sections <= 0 or np.shape(ary)[axis] % sections:
            raise ValueError(f"split: array of shape {np.shape(ary)} along axis {axis} does not split "
                             f"into {sections} equal sections")
    return array_split(ary, indices_or_sections, axis)


def hsplit(ary: Any, indices_or_sections: Any) -> list:
    """`np.hsplit`: along axis 1 (axis 0 for vectors).

    >>> len(hsplit(np.ones((2, 4)), 2))
    2
    """
    if np.ndim(ary) == 0:
        raise ValueError("hsplit only works on arrays of 1 or more dimensions")
    return split(ary, indices_or_sections, 1 if np.ndim(ary) > 1 else 0)


def vsplit(ary: Any, indices_or_sections: Any) -> list:
    """`np.vsplit`: along axis 0 of an array of at least 2 dimensions.

    >>> len(vsplit(np.ones((4, 2)), 2))
    2
    """
    if np.ndim(ary) < 2:
        raise ValueError("vsplit only works on arrays of 2 or more dimensions")
    return split(ary, indices_or_sections, 0)


def dsplit(ary: Any, indices_or_sections: Any) -> list:
    """`np.dsplit`: along axis 2 of an array of at least 3 dimensions.

    >>> len(dsplit(np.ones((1, 1, 4)), 2))
    2
    """
    if np.ndim(ary) < 3:
        raise ValueError("dsplit only works on arrays of 3 or more dimensions")
    return split(ary, indices_or_sections, 2)


# ---- shape --------------------------------------------------------------------------------------


def ravel(a: Any, order: str = "C") -> np.ndarray:
    """`np.ravel` (orders C and F).

    >>> ravel(np.array([[1.0, 2.0], [3.0, 4.0]]), order="F")
    array([1., 3., 2., 4.])
    """
    a = _as_array(a)
    if order == "F":
        a = transpose(a)
    elif order not in ("C", "A", "K"):
        raise ValueError(f"ravel: order must be 'C' or 'F', got {order!r}")
    return reshape(a, (a.size,))


def _normalized(axes: Any, ndim: int, name: str) -> list[int]:
    given = [axes] if isinstance(axes, (int, np.integer)) else list(axes)
    for a in given:
        if not -ndim <= a < ndim:
            raise ValueError(f"{name}: axis {a} is out of bounds for an array of dimension {ndim}")
    out = [int(a) % ndim for a in given]
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: repeated axis in {axes!r}")
    return out


def moveaxis(a: Any, source: Any, destination: Any) -> np.ndarray:
    """`np.moveaxis`, as a `transpose`.

    >>> moveaxis(np.zeros((2, 3, 4)), 0, -1).shape
    (3, 4, 2)
    """
    a = _as_array(a)
    source = _normalized(source, a.ndim, "moveaxis")
    destination = _normalized(destination, a.ndim, "moveaxis")
    if len(source) != len(destination):
        raise ValueError("moveaxis: `source` and `destination` must have the same number of elements")
    order = [n for n in range(a.ndim) if n not in source]
    for dest, src in sorted(zip(destination, source)):
        order.insert(dest, src)
    return transpose(a, tuple(order))


def rollaxis(a: Any, axis: int, start: int = 0) -> np.ndarray:
    """`np.rollaxis`: `axis` moved to before `start`.

    >>> rollaxis(np.zeros((2, 3, 4)), 2).shape
    (4, 2, 3)
    """
    a = _as_array(a)
    n = a.ndim
    axis = _normalized(axis, n, "rollaxis")[0]
    if start < 0:
        start += n
    if not 0 <= start < n + 1:
        raise ValueError(f"rollaxis: start {start} is out of range for an array of dimension {n}")
    if axis < start:
        start -= 1
    order = list(range(n))
    order.remove(axis)
    order.insert(start, axis)
    return transpose(a, tuple(order))


def rot90(m: Any, k: int = 1, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """`np.rot90`: `k` quarter turns in the plane of `axes`, as flips and a transpose.

    >>> rot90(np.array([[1.0, 2.0], [3.0, 4.0]]))
    array([[2., 4.],
           [1., 3.]])
    """
    m = _as_array(m)
    axes = tuple(axes)
    if len(axes) != 2 or m.ndim < 2 or axes[0] % m.ndim == axes[1] % m.ndim:
        raise ValueError(f"rot90: axes {axes} must be two different axes of an array of at least 2 "
                         f"dimensions (got shape {m.shape})")
    k %= 4
    if k == 0:
        return reshape(m, m.shape)
    if k == 2:
        return flip(flip(m, axes[0]), axes[1])
    order = list(range(m.ndim))
    order[axes[0]], order[axes[1]] = order[axes[1]], order[axes[0]]
    if k == 1:
        return transpose(flip(m, axes[1]), tuple(order))
    return flip(transpose(m, tuple(order)), axes[1])


def flipud(m: Any) -> np.ndarray:
    """`np.flipud`: axis 0 reversed.

    >>> flipud(np.array([1.0, 2.0]))
    array([2., 1.])
    """
    if np.ndim(m) < 1:
        raise ValueError("flipud: input must be >= 1-d")
    return flip(_as_array(m), 0)


def fliplr(m: Any) -> np.ndarray:
    """`np.fliplr`: axis 1 reversed.

    >>> fliplr(np.array([[1.0, 2.0]]))
    array([[2., 1.]])
    """
    if np.ndim(m) < 2:
        raise ValueError("fliplr: input must be >= 2-d")
    return flip(_as_array(m), 1)


def diag(v: Any, k: int = 0) -> np.ndarray:
    """`np.diag`: a vector onto the k-th diagonal of a square matrix, or a matrix's k-th diagonal.

    >>> diag(np.array([1.0, 2.0]))
    array([[1., 0.],
           [0., 2.]])
    """
    v = _as_array(v)
    if v.ndim == 1:
        n = v.size + abs(k)
        rows = np.arange(v.size) + max(-k, 0)
        cols = np.arange(v.size) + max(k, 0)
        return setitem(np.zeros((n, n), v.dtype), (rows, cols), v)
    if v.ndim == 2:
        return diagonal(v, k)
    raise ValueError(f"diag: input must be 1- or 2-d, got shape {v.shape}")


def kron(a: Any, b: Any) -> np.ndarray:
    """`np.kron`: the Kronecker product, as a broadcast product reshaped.

    >>> kron(np.array([1.0, 2.0]), np.array([1.0, 10.0]))
    array([ 1., 10.,  2., 20.])
    """
    a, b = _as_array(a), _as_array(b)
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    nd = max(a.ndim, b.ndim)
    a_shape = (1,) * (nd - a.ndim) + a.shape
    b_shape = (1,) * (nd - b.ndim) + b.shape
    a_spread = reshape(a, tuple(s for side in a_shape for s in (side, 1)))
    b_spread = reshape(b, tuple(s for side in b_shape for s in (1, side)))
    return reshape(mul(a_spread, b_spread), tuple(x * y for x, y in zip(a_shape, b_shape)))


def select(condlist: Sequence[Any], choicelist: Sequence[Any], default: Any = 0) -> np.ndarray:
    """`np.select`: the first true condition's choice, else `default` (a `where` per choice).

    >>> select([np.array([True, False]), np.array([True, True])], [np.ones(2), np.zeros(2)], 5.0)
    array([1., 0.])
    """
    if len(condlist) != len(choicelist):
        raise ValueError("select: list of cases must be same length as list of conditions")
    if not condlist:
        raise ValueError("select with an empty condition list is not possible")
    result = default
    for cond, choice in zip(condlist[::-1], choicelist[::-1]):
        cond = np.asarray(cond)
        if cond.dtype != np.bool_:
            raise TypeError(f"select: invalid entry in condlist: should be boolean ndarray, got {cond.dtype}")
        result = where(cond, choice, result)
    shape = np.broadcast_shapes(*(np.shape(c) for c in condlist), *(np.shape(c) for c in choicelist))
    return result if np.shape(result) == shape else add(result, np.zeros(shape, np.asarray(result).dtype))


def partition(a: Any, kth: Any, axis: int | None = -1) -> np.ndarray:
    """`np.partition`: a gather by `np.argpartition` (the same arrangement as NumPy's).

    >>> partition(np.array([3.0, 1.0, 2.0]), 1)
    array([1., 2., 3.])
    """
    a = _as_array(a)
    if axis is None:
        a, axis = ravel(a), 0
    order = np.argpartition(np.asarray(a), kth, axis=axis)
    return take_along_axis(a, order, axis=axis)


# ---- products and differences -------------------------------------------------------------------


def dot(a: Any, b: Any) -> np.ndarray:
    """`np.dot`: a product for scalars, `matmul` for vectors and matrices, else a `tensordot` over
    a's last axis and b's second-to-last.

    >>> dot(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    array(11.)
    """
    a, b = _as_array(a), _as_array(b)
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    if a.ndim <= 2 and b.ndim <= 2:
        return matmul(a, b)
    if a.shape[-1] != b.shape[max(b.ndim - 2, 0)]:
        raise ValueError(f"dot: shapes {a.shape} and {b.shape} not aligned")
    return tensordot(a, b, axes=([a.ndim - 1], [max(b.ndim - 2, 0)]))


def inner(a: Any, b: Any) -> np.ndarray:
    """`np.inner`: the sum over the last axes of both.

    >>> inner(np.ones((2, 3)), np.ones(3))
    array([3., 3.])
    """
    a, b = _as_array(a), _as_array(b)
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"inner: shapes {a.shape} and {b.shape} not aligned (last dimensions differ)")
    return tensordot(a, b, axes=([a.ndim - 1], [b.ndim - 1]))


def cross(a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1, axis: int | None = None) -> Any:
    """`np.cross` of 3-vectors (or 2-vectors, whose z component is returned), broadcasting.

    >>> cross(np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
    array([0., 0., 1.])
    """
    a, b = _as_array(a), _as_array(b)
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = moveaxis(a, axisa, -1), moveaxis(b, axisb, -1)
    if a.shape[-1] not in (2, 3) or b.shape[-1] not in (2, 3):
        raise ValueError(f"cross: incompatible dimensions for cross product (dimension must be 2 or 3), "
                         f"got shapes {a.shape} and {b.shape}")
    part = lambda x, i: getitem(x, (Ellipsis, i))
    if a.shape[-1] == 2 and b.shape[-1] == 2:
        return sub(mul(part(a, 0), part(b, 1)), mul(part(a, 1), part(b, 0)))

    def z(x: Any) -> Any:
        return part(x, 2) if x.shape[-1] == 3 else np.zeros(x.shape[:-1], _float_dtype(x))

    a0, a1, a2 = part(a, 0), part(a, 1), z(a)
    b0, b1, b2 = part(b, 0), part(b, 1), z(b)
    c = stack([sub(mul(a1, b2), mul(a2, b1)), sub(mul(a2, b0), mul(a0, b2)), sub(mul(a0, b1), mul(a1, b0))],
              axis=-1)
    return moveaxis(c, -1, axisc)


_NOT_GIVEN = object()


def diff(a: Any, n: int = 1, axis: int = -1, prepend: Any = _NOT_GIVEN, append: Any = _NOT_GIVEN) -> Any:
    """`np.diff`: the n-th differences along `axis` (with values prepended or appended first).

    >>> diff(np.array([1.0, 4.0, 9.0]))
    array([3., 5.])
    """
    a = _as_array(a)
    if n < 0:
        raise ValueError(f"diff: order must be non-negative but got {n}")
    if n == 0:
        return reshape(a, a.shape) if _is_float(a) else a
    if a.ndim == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    axis = _normalized(axis, a.ndim, "diff")[0]
    parts = []
    for value, first in ((prepend, True), (append, False)):
        if value is _NOT_GIVEN:
            continue
        value = _as_array(value)
        if value.ndim == 0:
            shape = list(a.shape)
            shape[axis] = 1
            value = add(value, np.zeros(shape, np.result_type(value, a))) if _is_float(value) else (
                np.broadcast_to(value, shape))
        parts.append((first, value))
    if parts:
        a = concatenate([v for f, v in parts if f] + [a] + [v for f, v in parts if not f], axis=axis)
    lead = (slice(None),) * axis
    for _ in range(n):
        a = sub(getitem(a, (*lead, slice(1, None))), getitem(a, (*lead, slice(None, -1))))
    return a


def gradient(f: Any, *varargs: Any, axis: Any = None, edge_order: int = 1) -> Any:
    """`np.gradient` with uniform spacing (one number per axis): central differences inside,
    one-sided ones of order `edge_order` at the ends.

    >>> gradient(np.array([1.0, 4.0, 9.0, 16.0]))
    array([3., 4., 6., 7.])
    """
    f = _as_array(f)
    if not _is_float(f):
        f = f.astype(np.float64)
    axes = list(range(f.ndim)) if axis is None else _normalized(axis, f.ndim, "gradient")
    if len(varargs) == 0:
        spacing = [1.0] * len(axes)
    elif len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        spacing = [varargs[0]] * len(axes)
    elif len(varargs) == len(axes):
        spacing = list(varargs)
    else:
        raise TypeError("gradient: invalid number of arguments")
    if any(np.ndim(h) != 0 for h in spacing):
        raise NotImplementedError("gradient: coordinate arrays (non-uniform spacing) are not supported; "
                                  "give one number per axis")
    if edge_order not in (1, 2):
        raise ValueError("gradient: 'edge_order' greater than 2 not supported")
    out = []
    for ax, h in zip(axes, spacing):
        if f.shape[ax] < edge_order + 1:
            raise ValueError("Shape of array too small to calculate a numerical gradient, at least "
                             "(edge_order + 1) elements are required.")
        lead = (slice(None),) * ax
        at = lambda s, lead=lead: getitem(f, (*lead, s))
        # c / h: recorded when the spacing is an array (it is differentiable too)
        over_h = (lambda c, h=h: div(c, h)) if _is_float(np.asarray(h)) and not isinstance(h, float) else (
            lambda c, h=h: c / h)
        inside = div(sub(at(slice(2, None)), at(slice(None, -2))), mul(h, 2.0) if _is_float(
            np.asarray(h)) and not isinstance(h, float) else 2.0 * h)
        if edge_order == 1:
            first = div(sub(at(slice(1, 2)), at(slice(0, 1))), h)
            last = div(sub(at(slice(-1, None)), at(slice(-2, -1))), h)
        else:
            first = add(add(mul(at(slice(0, 1)), over_h(-1.5)), mul(at(slice(1, 2)), over_h(2.0))),
                        mul(at(slice(2, 3)), over_h(-0.5)))
            last = add(add(mul(at(slice(-3, -2)), over_h(0.5)), mul(at(slice(-2, -1)), over_h(-2.0))),
                       mul(at(slice(-1, None)), over_h(1.5)))
        out.append(concatenate([first, inside, last], axis=ax))
    return out[0] if len(out) == 1 else tuple(out)


def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, retstep: bool = False,
             dtype: Any = None, axis: int = 0) -> Any:
    """`np.linspace` with differentiable endpoints: start + arange · (stop − start) / div, and the
    last value set to `stop` (NumPy's arithmetic, so the values are NumPy's).

    >>> linspace(np.array(0.0), np.array(1.0), 3)
    array([0. , 0.5, 1. ])
    """
    num = operator.index(num)
    if num < 0:
        raise ValueError(f"linspace: number of samples, {num}, must be non-negative.")
    if not (_is_float(np.asarray(start)) or _is_float(np.asarray(stop))) or (
        dtype is not None and np.dtype(dtype).kind != "f"
    ):
        return np.linspace(start, stop, num, endpoint, retstep, dtype, axis)
    steps = (num - 1) if endpoint else num
    dt = np.result_type(start, stop, 0.0)
    delta = sub(stop, start)
    y = np.arange(0, num, dtype=dt).reshape(-1, *((1,) * np.ndim(delta)))
    if steps > 0:
        step = div(delta, steps)
        y = mul(y / steps, delta) if np.any(np.asarray(step) == 0) else mul(y, step)
    else:
        step = np.nan
        y = mul(y, delta)
    y = add(y, start)
    if endpoint and num > 1:
        y = setitem(y, -1, stop)
    if axis != 0:
        y = moveaxis(y, 0, axis)
    if dtype is not None and np.dtype(dtype) != y.dtype:
        from mytorch.primitive import astype

        y = astype(y, dtype)
    return (y, step) if retstep else y


def _shifted_sum(a: Any, v: Any) -> Any:
    """The full N-d convolution Σ_j v[j] · (a shifted by j), for the small kernel v."""
    total = None
    for j in np.ndindex(*v.shape):
        widths = [(k, side - 1 - k) for k, side in zip(j, v.shape)]
        term = mul(pad(a, widths), getitem(v, j))
        total = term if total is None else add(total, term)
    return total


def _full_convolution(a: Any, v: Any) -> Any:
    small, large = (v, a) if v.size <= a.size else (a, v)  # commutative: loop over the smaller one
    return _shifted_sum(large, small)


def convolve(a: Any, v: Any, mode: str = "full") -> np.ndarray:
    """`np.convolve` of two vectors ('full', 'same' or 'valid').

    >>> convolve(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5]))
    array([0. , 1. , 2.5, 4. , 1.5])
    """
    a, v = _as_array(a), _as_array(v)
    if a.ndim != 1 or v.ndim != 1:
        raise ValueError(f"convolve: object too deep for desired array (shapes {a.shape} and {v.shape}; "
                         "both must be 1-d)")
    if a.size == 0 or v.size == 0:
        raise ValueError(f"convolve: {'a' if a.size == 0 else 'v'} cannot be empty")
    full = _full_convolution(a, v)
    longer, shorter = max(a.size, v.size), min(a.size, v.size)
    if mode == "full":
        return full
    if mode == "same":
        start = (shorter - 1) // 2
        return getitem(full, slice(start, start + longer))
    if mode == "valid":
        return getitem(full, slice(shorter - 1, longer))
    raise ValueError(f"convolve: mode must be 'full', 'same' or 'valid', got {mode!r}")

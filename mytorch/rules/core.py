"""The core primitives: arithmetic, elementwise functions, reductions, shapes, the softmax family,
the layers' workhorse `linear` and the fused loss.

Each is one `primitive(...)` definition with its forward, backward (VJP) and tangent (JVP) rule side
by side (see mytorch.primitive for the rule shapes). Rules are written with the primitives
themselves, so a backward walk that records (`create_graph=True`) is more tape and can be
differentiated again; when nothing records they cost one NumPy call each. A rule for one input of
several (`vjp=(rule_x, rule_y)`) runs only when the walk needs that input's gradient; a rule undoes
broadcasting itself (`reduce_to(g, x)`: the lecture's "sum over the broadcast axes").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special

from mytorch import autograd_engine
from mytorch.primitive import (
    astype,
    broadcast_to,
    constant,
    is_float_array,
    primitive,
    reduce_to,
    unbroadcast,
)
from mytorch.tracked import computed
from mytorch.utils import is_complex

__all__ = [  # the primitives (mytorch.functional re-exports them) and the helpers rule writers use
    "abs", "add", "astype", "broadcast_to", "clip", "concatenate", "conj", "conjugate", "cos",
    "cross_entropy", "div", "erf", "exp", "expand_dims", "getitem", "imag", "keep_axes", "linear", "log",
    "log_softmax", "logsumexp", "matmul", "max", "maximum", "mean", "min", "minimum", "mul", "neg", "pad",
    "power", "real", "reduce_to", "relu", "reshape", "scatter_add", "sigmoid", "sin", "softmax", "sqrt",
    "squeeze", "stack", "sub", "sum", "swapaxes", "tanh", "transpose", "unbroadcast", "where",
]


def keep_axes(g: np.ndarray, ndim: int, axis: Any, keepdims: bool) -> np.ndarray:
    """Re-insert the axes a reduction dropped, so `g` broadcasts against its input.

    >>> keep_axes(np.ones(3), 2, 0, False).shape
    (1, 3)
    """
    if keepdims or ndim == 0 or axis is None and np.ndim(g) == ndim:
        return g
    if axis is None:
        return reshape(g, (1,) * ndim)
    axes = (int(axis),) if np.ndim(axis) == 0 else tuple(axis)  # a NumPy scalar or 0-d array too
    return expand_dims(g, tuple(a % ndim for a in axes))


def _reduced_count(shape: tuple[int, ...], axis: Any) -> int:
    if axis is None:
        return math.prod(shape)  # not np.prod: that makes an array of a few ints first
    if not shape:
        return 1
    axes = (int(axis),) if np.ndim(axis) == 0 else tuple(axis)
    return math.prod(shape[a] for a in axes)


# ---- arithmetic ---------------------------------------------------------------------------

add = primitive(
    "add", np.add, arity=2,
    vjp=(lambda g, ans, x, y: reduce_to(g, x), lambda g, ans, x, y: reduce_to(g, y)),
    jvp=lambda t, ans, x, y: add(t[0], t[1]),
    complex="holomorphic",
)
sub = primitive(
    "sub", np.subtract, arity=2,
    vjp=(lambda g, ans, x, y: reduce_to(g, x), lambda g, ans, x, y: reduce_to(neg(g), y)),
    jvp=lambda t, ans, x, y: sub(t[0], t[1]),
    complex="holomorphic",
)
mul = primitive(
    "mul", np.multiply, arity=2,
    vjp=(lambda g, ans, x, y: reduce_to(mul(g, y), x), lambda g, ans, x, y: reduce_to(mul(g, x), y)),
    jvp=lambda t, ans, x, y: add(mul(t[0], y), mul(x, t[1])),
    complex="holomorphic",
)
div = primitive(
    "div", np.divide, arity=2,
    # d(x/y)/dy = -x/y² = -ans/y
    vjp=(
        lambda g, ans, x, y: reduce_to(div(g, y), x),
        lambda g, ans, x, y: reduce_to(neg(mul(g, div(ans, y))), y),
    ),
    jvp=lambda t, ans, x, y: div(sub(t[0], mul(ans, t[1])), y),
    complex="holomorphic",
)
neg = primitive(
    "neg", np.negative,
    vjp=lambda g, ans, x: (neg(g),),
    jvp=lambda t, ans, x: neg(t[0]),
    complex="holomorphic",
)


def _log_base(x: Any, ans: np.ndarray) -> np.ndarray:
    # d(x**p)/dp = x**p log x, where the power is real (x > 0); 0 elsewhere, as x**p is constant
    # in p at x = 0 for p > 0. For a float x it is recorded (not a constant), so the mixed second
    # derivative ∂²(x**p)/∂x∂p = x**(p-1) (1 + p log x) keeps its x**(p-1) term.
    if not is_float_array(x):  # a constant base: a constant, in the output's dtype (float32 stays float32)
        return constant(np.log(np.where(np.greater(x, 0), x, 1)), ans)
    if is_complex(x):  # a complex power is exp(p log x) on log's principal branch, x = 0 aside
        return log(where(np.equal(x, 0), 1, x))
    return log(where(x > 0, x, 1))


def _less_one(p: Any) -> Any:
    # A constant exponent stays what it was (a Python number stays weakly typed): sub(2, 1) would
    # be an int64 array, and float32 ** int64 array is float64.
    return sub(p, 1) if is_float_array(p) else p - 1


def _power_slope(x: Any, p: Any) -> np.ndarray:
    """d(x**p)/dx = p x**(p-1), taken as 0 where p = 0 and x = 0: x**0 = 1 is constant, even at
    x = 0 (where p x**(p-1) would be 0 · inf). x is swapped for 1 only there, so no derivative of
    this one meets the infinity either, and elsewhere ∂/∂p of the slope keeps its x**(p-1)
    (1/x at p = 0). Branch-free on the data, so a compiled trace recomputes the choice."""
    p_is_zero = np.equal(p, 0)
    if isinstance(p, np.ndarray) or p_is_zero:  # an exponent that may be 0: chosen per element
        x = where(p_is_zero & np.equal(x, 0), 1, x)
    return mul(p, power(x, _less_one(p)))


power = primitive(
    "power", np.power, arity=2,
    vjp=(
        lambda g, ans, x, p: reduce_to(mul(g, _power_slope(x, p)), x),
        lambda g, ans, x, p: reduce_to(mul(g, mul(ans, _log_base(x, ans))), p),
    ),
    jvp=lambda t, ans, x, p: _power_jvp(t, ans, x, p),
    complex="holomorphic",
)


def _power_jvp(t: list, ans: np.ndarray, x: Any, p: Any) -> np.ndarray:
    # Only the terms of float inputs: a constant exponent's term, t[1]·ans·log x with t[1] = 0,
    # would still put 1/x into the next derivative, and 0·inf = nan at a subnormal x.
    terms = []
    if is_float_array(x):
        terms.append(mul(t[0], _power_slope(x, p)))
    if is_float_array(p):
        terms.append(mul(t[1], mul(ans, _log_base(x, ans))))
    return add(*terms) if len(terms) == 2 else terms[0]


# numpy promotes a 1-D left operand to a row (1, k) and a 1-D right one to a column (k, 1); the
# rules work on the promoted matrices and drop the added axis again.
def _as_row(a: np.ndarray) -> np.ndarray:
    return expand_dims(a, 0) if a.ndim == 1 else a


def _as_column(b: np.ndarray) -> np.ndarray:
    return expand_dims(b, -1) if b.ndim == 1 else b


def _promoted(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The output adjoint with the axes that promotion dropped from the output put back."""
    if a.ndim == 1 and b.ndim == 1:
        return reshape(g, (1, 1))
    if a.ndim == 1:
        return expand_dims(g, -2)
    return expand_dims(g, -1) if b.ndim == 1 else g


def _demoted(grad: np.ndarray, operand: np.ndarray, axis: int) -> np.ndarray:
    """`grad` back in `operand`'s shape: the promoted axis dropped, broadcast batch axes summed."""
    return reduce_to(squeeze(grad, axis) if operand.ndim == 1 else grad, operand)


def _matmul(a: Any, b: Any) -> np.ndarray:
    try:
        return np.matmul(a, b)
    except ValueError:  # numpy's gufunc message says neither shape: explained here, off the hot path
        a_shape, b_shape = np.shape(a), np.shape(b)
        if not a_shape or not b_shape:
            raise ValueError(
                f"operands must have at least one axis, got shapes {a_shape} and {b_shape}") from None
        inner_b = b_shape[-2] if len(b_shape) > 1 else b_shape[0]
        if a_shape[-1] != inner_b:
            raise ValueError(
                f"shapes {a_shape} and {b_shape} do not align: {a_shape[-1]} != {inner_b}") from None
        raise


matmul = primitive(
    "matmul", _matmul, arity=2,
    vjp=(  # ā = ḡ bᵀ,  b̄ = aᵀ ḡ
        lambda g, ans, a, b: _demoted(matmul(_promoted(g, a, b), swapaxes(_as_column(b), -1, -2)), a, -2),
        lambda g, ans, a, b: _demoted(matmul(swapaxes(_as_row(a), -1, -2), _promoted(g, a, b)), b, -1),
    ),
    jvp=lambda t, ans, a, b: add(matmul(t[0], b), matmul(a, t[1])),
    complex="holomorphic",
)

# ---- elementwise functions ----------------------------------------------------------------

exp = primitive(
    "exp", np.exp,
    vjp=lambda g, ans, x: (mul(g, ans),),
    jvp=lambda t, ans, x: mul(t[0], ans),
    complex="holomorphic",
)
log = primitive(
    "log", np.log,
    vjp=lambda g, ans, x: (div(g, x),),
    jvp=lambda t, ans, x: div(t[0], x),
    complex="holomorphic",
)
sqrt = primitive(
    "sqrt", np.sqrt,
    vjp=lambda g, ans, x: (div(g, mul(2, ans)),),
    jvp=lambda t, ans, x: div(t[0], mul(2, ans)),
    complex="holomorphic",
)
def _abs_slope(x: Any, ans: np.ndarray, like: Any) -> Any:
    """d|x|: sign(x), a constant for real x; for complex z, |z| is not holomorphic and its rules
    need z/|z| (recorded: it depends on z), taken as 0 at z = 0 (as PyTorch's sgn)."""
    if is_complex(x):
        return where(np.equal(ans, 0), 0, div(x, where(np.equal(ans, 0), 1, ans)))
    return constant(np.sign(x), like)


abs = primitive(  # noqa: A001 - the NumPy name
    "abs", np.abs,
    # complex z (w = |z| real): z̄ = ȳ z/|z|,  ẇ = Re(conj(z/|z|) ż)
    vjp=lambda g, ans, x: (mul(g, _abs_slope(x, ans, g)),),
    jvp=lambda t, ans, x: _abs_jvp(t[0], ans, x),
    complex="explicit",
)


def _abs_jvp(t: Any, ans: np.ndarray, x: Any) -> Any:
    if is_complex(x):
        return real(mul(conj(_abs_slope(x, ans, t)), t))
    return mul(t, _abs_slope(x, ans, t))
sin = primitive(
    "sin", np.sin,
    vjp=lambda g, ans, x: (mul(g, cos(x)),),
    jvp=lambda t, ans, x: mul(t[0], cos(x)),
    complex="holomorphic",
)
cos = primitive(
    "cos", np.cos,
    vjp=lambda g, ans, x: (neg(mul(g, sin(x))),),
    jvp=lambda t, ans, x: neg(mul(t[0], sin(x))),
    complex="holomorphic",
)
tanh = primitive(
    "tanh", np.tanh,
    vjp=lambda g, ans, x: (mul(g, sub(1, mul(ans, ans))),),
    jvp=lambda t, ans, x: mul(t[0], sub(1, mul(ans, ans))),
    complex="holomorphic",
)
def _sigmoid(x: Any) -> np.ndarray:
    """expit (stable: never exp of a large positive number); 1 / (1 + e^-z) for complex z, which
    SciPy's expit does not take (PyTorch's sigmoid does)."""
    if is_complex(x):
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return np.reciprocal(1 + np.exp(np.negative(x)))
    return scipy.special.expit(x)


sigmoid = primitive(
    "sigmoid", _sigmoid,
    vjp=lambda g, ans, x: (mul(g, mul(ans, sub(1, ans))),),
    jvp=lambda t, ans, x: mul(t[0], mul(ans, sub(1, ans))),
    complex="holomorphic",
)
_TWO_OVER_ROOT_PI = float(2 / np.sqrt(np.pi))  # a Python float: a numpy float64 would upcast float32
erf = primitive(
    "erf", scipy.special.erf,
    # d erf(x)/dx = 2/√π · exp(-x²)
    vjp=lambda g, ans, x: (mul(g, mul(_TWO_OVER_ROOT_PI, exp(neg(mul(x, x))))),),
    jvp=lambda t, ans, x: mul(t[0], mul(_TWO_OVER_ROOT_PI, exp(neg(mul(x, x))))),
    complex="holomorphic",  # entire: SciPy's erf takes complex values (PyTorch's does not)
)
relu = primitive(
    "relu", lambda x: np.maximum(x, 0),
    # the derivative at the kink is taken as 0, as PyTorch does
    # times a bool mask (a constant): numpy casts it on the fly, so no float mask is allocated,
    # and it runs ~20x faster than np.where on this machine
    vjp=lambda g, ans, x: (mul(g, x > 0),),
    jvp=lambda t, ans, x: mul(t[0], x > 0),
)


def _share_of_x(x: Any, y: Any, x_wins: np.ndarray, like: np.ndarray) -> np.ndarray:
    # Where x and y tie, each gets half of the gradient (PyTorch's rule for maximum/minimum).
    return constant(np.where(np.equal(x, y), 0.5, x_wins), like)


def _binary_select_rules(x_wins: Callable[[Any, Any], np.ndarray]) -> dict[str, Any]:
    def vjp(g: np.ndarray, ans: np.ndarray, x: Any, y: Any) -> tuple:
        share = _share_of_x(x, y, x_wins(x, y), g)
        return reduce_to(mul(g, share), x), reduce_to(mul(g, sub(1, share)), y)

    def jvp(t: list, ans: np.ndarray, x: Any, y: Any) -> np.ndarray:
        share = _share_of_x(x, y, x_wins(x, y), ans)
        return add(mul(t[0], share), mul(t[1], sub(1, share)))

    return {"vjp": vjp, "jvp": jvp}


maximum = primitive("maximum", np.maximum, arity=2, **_binary_select_rules(np.greater))
minimum = primitive("minimum", np.minimum, arity=2, **_binary_select_rules(np.less))


def _clip_masks(x: Any, lo: Any, hi: Any, like: np.ndarray) -> tuple[np.ndarray, ...]:
    """Where the gradient goes, as numpy computes clip: min(max(x, lo), hi).

    To x inside [lo, hi] (bounds included, as in PyTorch), else to the bound that was taken.
    """
    raised = np.maximum(x, lo) if lo is not None else x
    above = np.greater(raised, hi) if hi is not None else np.zeros(np.shape(raised), bool)
    below = (np.less(x, lo) if lo is not None else False) & ~above
    inside = ~(below | above)
    return constant(inside, like), constant(below, like), constant(above, like)




def _clip_jvp(t: list, ans: np.ndarray, x: Any, lo: Any, hi: Any) -> np.ndarray:
    inside, below, above = _clip_masks(x, lo, hi, ans)
    tangent = mul(t[0], inside)
    if t[1] is not None:
        tangent = add(tangent, mul(t[1], below))
    if t[2] is not None:
        tangent = add(tangent, mul(t[2], above))
    return tangent


clip = primitive("clip", lambda x, lo, hi: np.clip(x, lo, hi), arity=3, vjp=(
    lambda g, ans, x, lo, hi: reduce_to(mul(g, _clip_masks(x, lo, hi, g)[0]), x),
    lambda g, ans, x, lo, hi: reduce_to(mul(g, _clip_masks(x, lo, hi, g)[1]), lo),
    lambda g, ans, x, lo, hi: reduce_to(mul(g, _clip_masks(x, lo, hi, g)[2]), hi),
), jvp=_clip_jvp)

where = primitive(
    "where", lambda condition, x, y: np.where(condition, x, y), arity=3,
    vjp=(
        None,
        lambda g, ans, c, x, y: reduce_to(where(c, g, 0), x),
        lambda g, ans, c, x, y: reduce_to(where(c, 0, g), y),
    ),
    jvp=lambda t, ans, c, x, y: where(c, t[1], t[2]),
    complex="explicit",
)

# ---- the parts of a complex number (not holomorphic: their rules, in mytorch.rules.complex's
# docstring, conjugate or take parts themselves; abs's complex rules need them) -----------------

conj = primitive(
    "conj", np.conjugate,
    vjp=lambda g, ans, x: (conj(g),),
    jvp=lambda t, ans, x: conj(t[0]),
    complex="explicit",
)
conjugate = conj
def _numbers(name: str, val: Any) -> np.ndarray:
    """`val` as an array of numbers (NumPy's real and imag would hand text back unchanged)."""
    array = np.asarray(val)
    if array.dtype.kind not in "biufc":
        raise TypeError(f"{name}: needs numbers, got {array.dtype} of shape {array.shape}")
    return array


real = primitive(
    "real", lambda val: np.real(_numbers("real", val)),
    vjp=lambda g, ans, val: (g,),  # pullback casts the real ȳ to val's complex dtype
    jvp=lambda t, ans, val: real(t[0]),
    complex="explicit",
)
imag = primitive(
    "imag", lambda val: np.array(np.imag(_numbers("imag", val))),  # (NumPy's: read-only zeros if real)
    vjp=lambda g, ans, val: (mul(g, 1j),),  # of a real input: the real part, 0
    jvp=lambda t, ans, val: imag(t[0]),
    complex="explicit",
)

# ---- reductions ---------------------------------------------------------------------------

# The reductions call the ufunc's reduce, which is what np.sum / np.max call for an array, without
# their Python wrappers (~1-4 us a call: more than a bias gradient's sum at batch 32).
sum = primitive(  # noqa: A001 - the NumPy name
    "sum", lambda x, axis=None, keepdims=False: np.add.reduce(x, axis=axis, keepdims=keepdims),
    vjp=lambda g, ans, x, axis=None, keepdims=False: (
        broadcast_to(keep_axes(g, x.ndim, axis, keepdims), x.shape),
    ),
    jvp=lambda t, ans, x, axis=None, keepdims=False: sum(t[0], axis=axis, keepdims=keepdims),
    complex="explicit",
)
mean = primitive(
    "mean", lambda x, axis=None, keepdims=False: np.mean(x, axis=axis, keepdims=keepdims),
    vjp=lambda g, ans, x, axis=None, keepdims=False: (
        broadcast_to(div(keep_axes(g, x.ndim, axis, keepdims), _reduced_count(x.shape, axis) or 1), x.shape),
    ),
    jvp=lambda t, ans, x, axis=None, keepdims=False: mean(t[0], axis=axis, keepdims=keepdims),
    complex="explicit",
)


def _extremum_share(ans: np.ndarray, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    # The gradient goes to the elements that attain the extremum, split evenly among ties.
    hits = x == keep_axes(ans, x.ndim, axis, keepdims)
    return constant(hits / np.sum(hits, axis=axis, keepdims=True), x)


def _extremum(name: str, reduce: Callable) -> Any:
    return primitive(
        name, lambda x, axis=None, keepdims=False: reduce(x, axis=axis, keepdims=keepdims),
        vjp=lambda g, ans, x, axis=None, keepdims=False: (
            mul(keep_axes(g, x.ndim, axis, keepdims), _extremum_share(ans, x, axis, keepdims)),
        ),
        jvp=lambda t, ans, x, axis=None, keepdims=False: sum(
            mul(t[0], _extremum_share(ans, x, axis, keepdims)), axis=axis, keepdims=keepdims
        ),
    )


max = _extremum("max", np.max)  # noqa: A001 - the NumPy name
min = _extremum("min", np.min)  # noqa: A001 - the NumPy name

# ---- shape ------------------------------------------------------------------------------------
# (An array's own methods where NumPy's functions would only forward to them: np.reshape and
# np.transpose are Python wrappers that cost about as much as the view they make.)

reshape = primitive(
    "reshape", lambda x, shape: x.reshape(shape) if type(x) is np.ndarray else np.reshape(x, shape),
    vjp=lambda g, ans, x, shape: (reshape(g, x.shape),),
    jvp=lambda t, ans, x, shape: reshape(t[0], ans.shape),
    complex="explicit",
)
transpose = primitive(
    "transpose", lambda x, axes=None: x.transpose(axes) if type(x) is np.ndarray else np.transpose(x, axes),
    vjp=lambda g, ans, x, axes=None: (
        transpose(g, None if axes is None else tuple(np.argsort([a % x.ndim for a in axes]))),
    ),
    jvp=lambda t, ans, x, axes=None: transpose(t[0], axes),
    complex="explicit",
)


def swapaxes(x: Any, axis1: int, axis2: int) -> np.ndarray:
    """`np.swapaxes` as a `transpose`.

    >>> swapaxes(np.zeros((2, 3, 4)), -1, -2).shape
    (2, 4, 3)
    """
    axes = list(range(np.ndim(x)))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(x, tuple(axes))


expand_dims = primitive(
    "expand_dims", lambda x, axis: np.expand_dims(x, axis),
    vjp=lambda g, ans, x, axis: (reshape(g, x.shape),),
    jvp=lambda t, ans, x, axis: expand_dims(t[0], axis),
    complex="explicit",
)
squeeze = primitive(
    "squeeze", lambda x, axis=None: np.squeeze(x, axis),
    vjp=lambda g, ans, x, axis=None: (reshape(g, x.shape),),
    jvp=lambda t, ans, x, axis=None: squeeze(t[0], axis),
    complex="explicit",
)


def _is_basic_index(index: Any) -> bool:
    # Basic indexing (ints, slices, None, ...) never picks an element twice.
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice)) for p in parts)


def _scatter_add(g: Any, index: Any, shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape, dtype=np.asarray(g).dtype)
    if _is_basic_index(index):
        out[index] = g
    else:
        np.add.at(out, index, g)  # repeated indices add up
    return out


# The adjoint of getitem: `g` added into zeros of `shape` at `index`.
scatter_add = primitive(
    "scatter_add", _scatter_add,
    vjp=lambda g, ans, upstream, index, shape: (getitem(g, index),),
    jvp=lambda t, ans, upstream, index, shape: scatter_add(t[0], index, shape),
    complex="explicit",
)
getitem = primitive(
    "getitem", lambda x, index: np.asarray(x)[index],
    vjp=lambda g, ans, x, index: (scatter_add(g, index, x.shape),),
    jvp=lambda t, ans, x, index: getitem(t[0], index),
    complex="explicit",
)


def _split_along(g: np.ndarray, sizes: list[int], axis: int) -> tuple:
    ends = np.cumsum(sizes)
    lead = (slice(None),) * (axis % g.ndim)
    return tuple(getitem(g, lead + (slice(end - size, end),)) for size, end in zip(sizes, ends))


concatenate = primitive(
    "concatenate", lambda *xs, axis=0: np.concatenate(xs, axis=axis), arity=None,
    vjp=lambda g, ans, *xs, axis=0: _split_along(g, [np.shape(x)[axis] for x in xs], axis),
    jvp=lambda t, ans, *xs, axis=0: concatenate(t, axis=axis),
    complex="explicit",
)
stack = primitive(
    "stack", lambda *xs, axis=0: np.stack(xs, axis=axis), arity=None,
    vjp=lambda g, ans, *xs, axis=0: tuple(
        getitem(g, (slice(None),) * (axis % ans.ndim) + (i,)) for i in range(len(xs))
    ),
    jvp=lambda t, ans, *xs, axis=0: stack(t, axis=axis),
    complex="explicit",
)


def _unpad_index(x: np.ndarray, pad_width: Any) -> tuple[slice, ...]:
    widths = np.broadcast_to(np.asarray(pad_width, dtype=int), (x.ndim, 2))
    return tuple(slice(before, before + n) for (before, _), n in zip(widths, x.shape))


pad = primitive(
    "pad", lambda x, pad_width, constant_values=0: np.pad(x, pad_width, constant_values=constant_values),
    vjp=lambda g, ans, x, pad_width, constant_values=0: (getitem(g, _unpad_index(x, pad_width)),),
    jvp=lambda t, ans, x, pad_width, constant_values=0: pad(t[0], pad_width),
    complex="explicit",
)

# ---- softmax family: shift by the max, so large logits never overflow ---------------------


def _logsumexp(x: np.ndarray, axis: Any = -1, keepdims: bool = False) -> np.ndarray:
    # (the shift of an empty array is a zero of its dtype: a Python 0 would come back from
    # np.where as an int64 array, and float32 + int64 is float64)
    # (complex values shift by the largest real part: the log's imaginary part stays principal)
    real = np.real(x) if np.iscomplexobj(x) else x
    shift = np.maximum.reduce(real, axis=axis, keepdims=True) if np.size(x) else real.dtype.type(0)
    shift = np.where(np.isfinite(shift), shift, 0)  # all -inf rows stay -inf, not nan
    # an empty (or all -inf) row sums to 0: its log is -inf; x - shift may overflow to -inf (exp: 0)
    with np.errstate(divide="ignore", over="ignore"):
        total = np.log(np.add.reduce(np.exp(x - shift), axis=axis, keepdims=True)) + shift
    return total if keepdims else np.squeeze(total, axis=axis)


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shift = np.maximum.reduce(x, axis=axis, keepdims=True) if np.size(x) else 0  # an empty array has no max
    with np.errstate(over="ignore"):  # x - shift may overflow to -inf, whose exp is 0
        shifted = np.exp(x - shift)
    return shifted / np.add.reduce(shifted, axis=axis, keepdims=True)


def _softmax_of(x: np.ndarray, ans: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    return exp(sub(x, keep_axes(ans, x.ndim, axis, keepdims)))


logsumexp = primitive(
    "logsumexp", _logsumexp,
    # ∂/∂x logΣexp(x) = softmax(x)
    vjp=lambda g, ans, x, axis=-1, keepdims=False: (
        mul(keep_axes(g, x.ndim, axis, keepdims), _softmax_of(x, ans, axis, keepdims)),
    ),
    jvp=lambda t, ans, x, axis=-1, keepdims=False: sum(
        mul(t[0], _softmax_of(x, ans, axis, keepdims)), axis=axis, keepdims=keepdims
    ),
    complex="holomorphic",  # log Σ e^z off its branch cut (PyTorch's and SciPy's take complex values)
)
softmax = primitive(
    "softmax", _softmax,
    # x̄ = s ⊙ (ȳ − Σ ȳ ⊙ s)
    vjp=lambda g, ans, x, axis=-1: (mul(ans, sub(g, sum(mul(g, ans), axis=axis, keepdims=True))),),
    jvp=lambda t, ans, x, axis=-1: mul(ans, sub(t[0], sum(mul(t[0], ans), axis=axis, keepdims=True))),
)
log_softmax = primitive(
    "log_softmax", lambda x, axis=-1: x - _logsumexp(x, axis=axis, keepdims=True),
    # x̄ = ȳ − softmax(x) Σ ȳ
    vjp=lambda g, ans, x, axis=-1: (sub(g, mul(exp(ans), sum(g, axis=axis, keepdims=True))),),
    jvp=lambda t, ans, x, axis=-1: sub(t[0], sum(mul(exp(ans), t[0]), axis=axis, keepdims=True)),
)

# ---- layers' workhorse --------------------------------------------------------------------


def _linear(x: np.ndarray, W: np.ndarray, b: Any = None) -> np.ndarray:
    if W.ndim != 2 if type(W) is np.ndarray else np.ndim(W) != 2:
        # as torch.nn.functional.linear: one weight matrix, not a batch of them
        raise ValueError(f"linear: W must be 2-D (out_features, in_features), got shape {np.shape(W)} "
                         f"(x {np.shape(x)})")
    out = np.matmul(x, W.swapaxes(-1, -2) if type(W) is np.ndarray else np.swapaxes(W, -1, -2))
    if b is None:
        return out
    if type(b) is np.ndarray and b.dtype is out.dtype and b.shape == out.shape[out.ndim - b.ndim:]:
        # The usual bias (one per output feature, the output's dtype), told apart without
        # np.broadcast_shapes and np.can_cast: those two cost more than the add at batch 32.
        out += b
        return out
    try:
        fits = np.broadcast_shapes(out.shape, np.shape(b)) == out.shape
    except ValueError:
        fits = False
    if not fits:  # as torch.nn.functional.linear refuses it: the bias cannot widen the output
        raise ValueError(
            f"linear: a bias of shape {np.shape(b)} does not broadcast to the output's shape {out.shape} "
            f"(x {np.shape(x)}, W {np.shape(W)})"
        )
    if np.can_cast(np.result_type(out, b), out.dtype):
        out += b  # out is fresh: adding in place saves one temporary of the layer's output size
        return out
    return out + b


def _rows(x: Any) -> np.ndarray:
    """x as a matrix: one row per example (leading axes merged)."""
    if type(x) is np.ndarray and x.ndim == 2:  # the usual case, without np.ndim's wrapper
        return x
    return reshape(x, (-1, np.shape(x)[-1])) if np.ndim(x) != 2 else x


def _linear_jvp(t: list, ans: np.ndarray, x: Any, W: Any, b: Any) -> np.ndarray:
    tangent = add(linear(t[0], W), linear(x, t[1]))
    return tangent if t[2] is None else add(tangent, t[2])


def _bias_gradient(g: Any, b: Any) -> np.ndarray:
    """b̄ = Σ_batch ȳ. For the usual bias (one per output feature) one sum over the leading axes:
    the same sum as `reduce_to`'s, but a fresh array, where reduce_to hands back a reshaped view
    of a keepdims sum that `backward` then copies (a view may share its data)."""
    g_shape, b_shape = np.shape(g), np.shape(b)
    if len(b_shape) == 1 and len(g_shape) >= 2 and g_shape[-1] == b_shape[0]:
        return sum(g, axis=0 if len(g_shape) == 2 else tuple(range(len(g_shape) - 1)))
    return reduce_to(g, b)


linear = primitive(
    "linear", _linear, arity=3,
    # y = x Wᵀ + b:  x̄ = ȳ W,  W̄ = ȳᵀ x (summed over the batch),  b̄ = Σ_batch ȳ
    vjp=(
        lambda g, ans, x, W, b: reduce_to(matmul(g, W), x),
        lambda g, ans, x, W, b: reduce_to(matmul(transpose(_rows(g)), _rows(x)), W),
        lambda g, ans, x, W, b: _bias_gradient(g, b),
    ),
    jvp=_linear_jvp,
    complex="holomorphic",
)

# ---- the fused loss: mean softmax cross-entropy, one tape entry instead of five ---------------


def _target_distribution(logits: np.ndarray, target: Any) -> np.ndarray:
    """Integer labels (N,) as one-hot rows; probability rows (N, C) as they are."""
    target = np.asarray(target)
    if target.dtype.kind in "iub":
        if target.shape != logits.shape[:-1]:
            raise ValueError(f"labels of shape {target.shape} for logits of shape {logits.shape}")
        classes = logits.shape[-1]
        # (the ufuncs' reduce: what ndarray.min and .max call, without their Python wrappers)
        if target.size and (np.minimum.reduce(target, axis=None) < 0
                            or np.maximum.reduce(target, axis=None) >= classes):
            raise IndexError(f"labels must lie in [0, {classes}), got {target.min()}..{target.max()}")
        return np.eye(classes, dtype=logits.dtype)[target]
    if target.shape != logits.shape:
        raise ValueError(f"target of shape {target.shape} for logits of shape {logits.shape}")
    return target


def _cross_entropy(logits: np.ndarray, target: Any) -> np.ndarray:
    rows = _target_distribution(logits, target)
    with np.errstate(over="ignore"):  # a logit far below the largest: -inf, whose probability is 0
        log_probs = logits - _logsumexp(logits, axis=-1, keepdims=True)
    # where a class has no target mass its log-probability may be -inf (a -inf logit): 0, not 0·inf
    log_probs = np.where(rows == 0, 0, log_probs)
    if np.asarray(target).dtype.kind in "iu":  # one-hot rows: the product by them changes no element
        return -np.add.reduce(log_probs, axis=None) / math.prod(logits.shape[:-1])
    return -np.add.reduce(rows * log_probs, axis=None) / math.prod(logits.shape[:-1])  # an int keeps float32


# L = −(1/N) Σ t · log_softmax(z):  z̄ = ḡ (softmax(z) Σt − t)/N,  t̄ = −ḡ log_softmax(z)/N
def _batch_share(g: np.ndarray, logits: Any) -> np.ndarray:
    return div(g, math.prod(np.shape(logits)[:-1]) or 1)


def _one_hot(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Integer labels as one-hot rows of `logits`' dtype, unchecked: the forward checked them, and
    the tape holds them read-only since."""
    return np.eye(logits.shape[-1], dtype=logits.dtype)[labels]


def _cross_entropy_vjp(g: np.ndarray, ans: np.ndarray, logits: Any, target: Any) -> tuple:
    scale = _batch_share(g, logits)
    if not is_float_array(target):  # labels, or constant rows: no gradient for the target
        if getattr(getattr(target, "dtype", None), "kind", None) in ("i", "u"):
            # One-hot rows sum to exactly 1, so softmax · Σt is softmax itself: the same numbers
            # without a sum and a product (bit for bit, and so are their derivatives).
            rows = constant(computed(_one_hot, (logits, target)), logits)  # replayed per call
            return mul(scale, sub(softmax(logits), rows)), None
        rows = constant(computed(_target_distribution, (logits, target)), logits)  # replayed per call
        return mul(scale, sub(mul(softmax(logits), sum(rows, axis=-1, keepdims=True)), rows)), None
    grad_logits = mul(scale, sub(mul(softmax(logits), sum(target, axis=-1, keepdims=True)), target))
    return reduce_to(grad_logits, logits), reduce_to(neg(mul(scale, log_softmax(logits))), target)


def _cross_entropy_jvp(t: list, ans: np.ndarray, logits: Any, target: Any) -> np.ndarray:
    grad_logits, grad_target = _cross_entropy_vjp(np.ones_like(ans), ans, logits, target)
    tangent = sum(mul(t[0], grad_logits))
    return tangent if grad_target is None else add(tangent, sum(mul(t[1], grad_target)))


cross_entropy = primitive(
    "cross_entropy", _cross_entropy, arity=2, vjp=_cross_entropy_vjp, jvp=_cross_entropy_jvp
)

# Walks under create_graph sum adjoints with this recording add.
autograd_engine.use_recorded_add(add)

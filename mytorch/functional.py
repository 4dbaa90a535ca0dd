"""The primitives: each one's forward, backward (VJP) and tangent (JVP) rule, side by side.

A rule reads like the lecture notes: for `y = exp(x)`, the adjoint is `x̄ = ȳ · y` and the tangent
is `ẏ = ẋ · y`. Rules receive

    vjp(g, ans, *inputs, **params) -> one gradient per input (None where there is none)
    jvp(t, ans, *inputs, **params) -> the output tangent, `t` holding one tangent per input

where `g` is the adjoint of the output `ans`. Rules are written with the primitives themselves, so
a backward walk that records (`create_graph=True`) is just more tape and can be differentiated
again; when nothing records they cost one numpy call each. Broadcasting is undone in one place,
`mytorch.utils.unbroadcast`.

For every primitive `name`, `name_backward(grad_output, *inputs)` returns the input gradients,
so it plugs into `Autograd.add_operation` by hand.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.special

from mytorch.autograd_engine import _state, engine
from mytorch.utils import unbroadcast

PRIMITIVES: dict[str, Primitive] = {}
_NO_PARAMS: dict[str, Any] = {}


class Primitive:
    """A differentiable operation: forward rule, backward rule, tangent rule.

    The forward rule's signature is the primitive's signature: its first `arity` parameters are
    the inputs (arrays or numbers; `arity=None` means one sequence of inputs, as in
    `concatenate`), the rest are non-differentiable parameters (axis, index, ...).

    >>> cube = Primitive("cube", lambda x: x**3,
    ...                  vjp=lambda g, ans, x: (g * 3 * x**2,),
    ...                  jvp=lambda t, ans, x: t[0] * 3 * x**2)
    >>> cube(np.array([1.0, 2.0]))
    array([1., 8.])
    >>> cube.backward(np.ones(2), np.array([1.0, 2.0]))
    array([ 3., 12.])
    """

    def __init__(
        self,
        name: str,
        forward: Callable[..., Any],
        vjp: Callable[..., Sequence[Any]],
        jvp: Callable[..., Any],
        arity: int | None = 1,
        register: bool = False,
    ) -> None:
        self.name, self.forward, self.vjp, self.jvp, self.arity = name, forward, vjp, jvp, arity
        if isinstance(forward, np.ufunc):  # its inputs only, not its out=/dtype=/... keywords
            signature = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_ONLY) for n in "xyz"[:arity]]
        else:
            signature = list(inspect.signature(forward).parameters.values())
        self._names = [p.name for p in signature if p.kind is not p.VAR_POSITIONAL]
        self._defaults = {p.name: p.default for p in signature if p.default is not p.empty}
        self._input_count = 1 if arity is None else arity
        # Calls with exactly this many positional arguments skip binding (the hot path).
        self._plain_arity = arity if arity is not None and len(self._names) == arity else -1
        # The parameters (after the inputs): their positions, and the defaults of those that have one.
        self._param_position = {n: i for i, n in enumerate(self._names[self._input_count :])}
        self._param_defaults = {n: v for n, v in self._defaults.items() if n in self._param_position}
        self.backward = self._make_backward()
        if register:
            PRIMITIVES[name] = self

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"

    def _bind(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """Split a call's arguments into the inputs and the parameters."""
        count = self._input_count
        if not kwargs and len(args) == self._plain_arity:
            return args, _NO_PARAMS
        if self.arity is not None and count <= len(args) <= len(self._names):
            # Inputs by position, parameters by position or keyword (sum(x, axis=0)): the usual
            # call, bound without building the whole table; anything else takes the careful path.
            given = len(args) - count
            position = self._param_position
            if all(position.get(name, -1) >= given for name in kwargs):
                params = dict(self._param_defaults)
                params.update(zip(position, args[count:]))
                params.update(kwargs)
                if len(params) == len(position):
                    return args[:count], params
        names = self._names
        if self.arity is None:  # one sequence of inputs, then the parameters
            if not args:
                raise TypeError(f"{self.name}() needs a sequence of arrays")
            names = ["inputs", *names]
        bound = dict(self._defaults)
        if len(args) > len(names):
            raise TypeError(f"{self.name}() takes {len(names)} arguments, got {len(args)}")
        bound.update(zip(names, args))
        unknown = set(kwargs) - set(names)
        if unknown:
            raise TypeError(f"{self.name}() got unexpected arguments {sorted(unknown)}")
        repeated = set(names[: len(args)]) & set(kwargs)
        if repeated:  # concatenate(a, b, axis=0) would otherwise read b as the axis, then drop it
            raise TypeError(f"{self.name}() got multiple values for {sorted(repeated)}")
        bound.update(kwargs)
        missing = [n for n in names if n not in bound]
        if missing:
            raise TypeError(f"{self.name}() missing arguments {missing}")
        if self.arity is None:
            return tuple(bound.pop("inputs")), bound
        return tuple(bound.pop(n) for n in names[:count]), bound

    def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        if kwargs or len(args) != self._plain_arity:
            return self.apply(*self._bind(args, kwargs))
        return self.apply(args, _NO_PARAMS)

    def apply(self, inputs: tuple, params: dict) -> np.ndarray:
        """Compute the forward rule on `inputs` and record it on the current engine."""
        try:
            output = self.forward(*inputs, **params)
        except (ValueError, TypeError, IndexError) as error:
            raise _explained(self.name, inputs, error) from error
        if type(output) is not np.ndarray:
            output = np.asarray(output)  # numpy hands back scalars for 0-d results
        if _state.recording:
            (_state.engine or engine())._record(self, inputs, output, params)
        return output

    def _make_backward(self) -> Callable[..., Any]:
        primitive = self

        def backward(grad_output: Any, *args: Any, **kwargs: Any) -> Any:
            inputs, params = primitive._bind(args, kwargs)
            # Called by hand (or by a walk over add_operation records, which are first-order
            # only), the rule must not record: that would lock the user's arrays and put stray
            # operations at the end of the tape, where backward(seed) would start.
            with _not_recording():
                ans = np.asarray(primitive.forward(*inputs, **params))
                grads = primitive.vjp(np.asarray(grad_output), ans, *inputs, **params)
            return grads[0] if len(grads) == 1 else tuple(grads)

        backward.__name__ = backward.__qualname__ = f"{self.name}_backward"
        backward.__doc__ = (
            f"Gradients of `{self.name}`'s inputs given the adjoint of its output "
            "(one per input, each with its input's shape)."
        )
        return backward


class _not_recording:
    def __enter__(self) -> None:
        self.outer, _state.recording = _state.recording, False

    def __exit__(self, *exc_info: object) -> None:
        _state.recording = self.outer


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.shape} {value.dtype}"
    return type(value).__name__


def _explained(name: str, inputs: tuple, error: Exception) -> Exception:
    detail = ", ".join(_describe(v) for v in inputs)
    kind = IndexError if isinstance(error, IndexError) and not isinstance(error, ValueError) else None
    kind = kind or (TypeError if isinstance(error, TypeError) else ValueError)
    message = str(error) if str(error).startswith(f"{name}:") else f"{name}: {error}"  # named once
    return kind(f"{message} (inputs: {detail})")


def primitive(
    name: str, forward: Callable[..., Any], *, vjp: Callable, jvp: Callable, arity: int | None = 1,
    register: bool = True,
) -> Primitive:
    """Define a primitive: one definition holding its three rules (see `Primitive`).

    `register=True` also lists it in `PRIMITIVES`, the built-in table that `python -m mytorch
    check` and the test suite walk (each entry needs an input spec in mytorch.testing.cases);
    `register=False` keeps a user-defined primitive out of it. See mytorch.testing for a guide.
    """
    return Primitive(name, forward, vjp, jvp, arity, register=register)


# ---- helpers used by the rules ------------------------------------------------------------


def _wants(x: Any) -> bool:
    """Whether the walk needs `x`'s gradient: `x` is a float array, on the way to a requested leaf."""
    if type(x) is not np.ndarray or x.dtype.kind != "f":
        return False
    wanted = _state.wanted
    return wanted is None or id(x) in wanted


def _grad(x: Any, g: np.ndarray) -> np.ndarray | None:
    """`g` reduced to `x`'s shape, or None when `x`'s gradient is not wanted (a constant, say)."""
    if _wants(x):
        return g if g.shape == x.shape else unbroadcast(g, x.shape)
    return None


def _keep_axes(g: np.ndarray, ndim: int, axis: Any, keepdims: bool) -> np.ndarray:
    """Re-insert the axes a reduction dropped, so `g` broadcasts against its input."""
    if keepdims or axis is None and g.ndim == ndim:
        return g
    if axis is None:
        return reshape(g, (1,) * ndim)
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    return expand_dims(g, tuple(a % ndim for a in axes))


def _reduced_count(shape: tuple[int, ...], axis: Any) -> int:
    if axis is None:
        return int(np.prod(shape))
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    return int(np.prod([shape[a] for a in axes]))


def _constant(array: Any, like: Any) -> np.ndarray:
    """A mask or sign, as a constant (never on the tape) of `like`'s float dtype."""
    dtype = like.dtype if isinstance(like, np.ndarray) and like.dtype.kind == "f" else float
    return np.asarray(array, dtype=dtype)


# ---- arithmetic ---------------------------------------------------------------------------

add = primitive(
    "add", np.add, arity=2,
    vjp=lambda g, ans, x, y: (_grad(x, g), _grad(y, g)),
    jvp=lambda t, ans, x, y: add(t[0], t[1]),
)
sub = primitive(
    "sub", np.subtract, arity=2,
    vjp=lambda g, ans, x, y: (_grad(x, g), _grad(y, neg(g)) if _wants(y) else None),
    jvp=lambda t, ans, x, y: sub(t[0], t[1]),
)
mul = primitive(
    "mul", np.multiply, arity=2,
    vjp=lambda g, ans, x, y: (
        _grad(x, mul(g, y)) if _wants(x) else None,
        _grad(y, mul(g, x)) if _wants(y) else None,
    ),
    jvp=lambda t, ans, x, y: add(mul(t[0], y), mul(x, t[1])),
)
div = primitive(
    "div", np.divide, arity=2,
    # d(x/y)/dy = -x/y² = -ans/y
    vjp=lambda g, ans, x, y: (
        _grad(x, div(g, y)) if _wants(x) else None,
        _grad(y, neg(mul(g, div(ans, y)))) if _wants(y) else None,
    ),
    jvp=lambda t, ans, x, y: div(sub(t[0], mul(ans, t[1])), y),
)
neg = primitive(
    "neg", np.negative,
    vjp=lambda g, ans, x: (neg(g),),
    jvp=lambda t, ans, x: neg(t[0]),
)


def _log_base(x: Any, ans: np.ndarray) -> np.ndarray:
    # d(x**p)/dp = x**p log x, where the power is real (x > 0); 0 elsewhere, as x**p is constant
    # in p at x = 0 for p > 0. For a float x it is recorded (not a constant), so the mixed second
    # derivative ∂²(x**p)/∂x∂p = x**(p-1) (1 + p log x) keeps its x**(p-1) term.
    if not _wants(x):  # a constant base: a constant, in the output's dtype (float32 stays float32)
        return _constant(np.log(np.where(np.asarray(x) > 0, x, 1)), ans)
    return log(where(x > 0, x, 1))


def _less_one(p: Any) -> Any:
    # A constant exponent stays what it was (a Python number stays weakly typed): sub(2, 1) would
    # be an int64 array, and float32 ** int64 array is float64.
    return sub(p, 1) if _wants(p) else p - 1


power = primitive(
    "power", np.power, arity=2,
    vjp=lambda g, ans, x, p: (
        _grad(x, mul(g, mul(p, power(x, _less_one(p))))) if _wants(x) else None,
        _grad(p, mul(g, mul(ans, _log_base(x, ans)))) if _wants(p) else None,
    ),
    jvp=lambda t, ans, x, p: _power_jvp(t, ans, x, p),
)


def _power_jvp(t: list, ans: np.ndarray, x: Any, p: Any) -> np.ndarray:
    # Only the terms of float inputs: a constant exponent's term, t[1]·ans·log x with t[1] = 0,
    # would still put 1/x into the next derivative, and 0·inf = nan at a subnormal x.
    terms = []
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        terms.append(mul(t[0], mul(p, power(x, _less_one(p)))))
    if isinstance(p, np.ndarray) and p.dtype.kind == "f":
        terms.append(mul(t[1], mul(ans, _log_base(x, ans))))
    return add(*terms) if len(terms) == 2 else terms[0]


def _matmul_backward(g: np.ndarray, ans: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple:
    """Adjoints of `a @ b`, with numpy's promotion of 1-D operands undone."""
    row_a, column_b = a.ndim == 1, b.ndim == 1
    a2 = expand_dims(a, 0) if row_a else a  # (k,) acts as a row (1, k)
    b2 = expand_dims(b, -1) if column_b else b  # (k,) acts as a column (k, 1)
    g2 = g
    if row_a and column_b:
        g2 = reshape(g, (1, 1))
    elif row_a:
        g2 = expand_dims(g, -2)
    elif column_b:
        g2 = expand_dims(g, -1)
    grad_a = grad_b = None
    if _wants(a):
        grad_a = matmul(g2, swapaxes(b2, -1, -2))
        grad_a = _grad(a, squeeze(grad_a, -2) if row_a else grad_a)
    if _wants(b):
        grad_b = matmul(swapaxes(a2, -1, -2), g2)
        grad_b = _grad(b, squeeze(grad_b, -1) if column_b else grad_b)
    return grad_a, grad_b


def _matmul(a: Any, b: Any) -> np.ndarray:
    a_shape, b_shape = np.shape(a), np.shape(b)
    if not a_shape or not b_shape:
        raise ValueError(f"operands must have at least one axis, got shapes {a_shape} and {b_shape}")
    inner_b = b_shape[-2] if len(b_shape) > 1 else b_shape[0]
    if a_shape[-1] != inner_b:
        raise ValueError(f"shapes {a_shape} and {b_shape} do not align: {a_shape[-1]} != {inner_b}")
    return np.matmul(a, b)


matmul = primitive(
    "matmul", _matmul, arity=2,
    vjp=_matmul_backward,
    jvp=lambda t, ans, a, b: add(matmul(t[0], b), matmul(a, t[1])),
)

# ---- elementwise functions ----------------------------------------------------------------

exp = primitive(
    "exp", np.exp,
    vjp=lambda g, ans, x: (mul(g, ans),),
    jvp=lambda t, ans, x: mul(t[0], ans),
)
log = primitive(
    "log", np.log,
    vjp=lambda g, ans, x: (div(g, x),),
    jvp=lambda t, ans, x: div(t[0], x),
)
sqrt = primitive(
    "sqrt", np.sqrt,
    vjp=lambda g, ans, x: (div(g, mul(2, ans)),),
    jvp=lambda t, ans, x: div(t[0], mul(2, ans)),
)
abs = primitive(  # noqa: A001 - the NumPy name
    "abs", np.abs,
    vjp=lambda g, ans, x: (mul(g, _constant(np.sign(x), g)),),
    jvp=lambda t, ans, x: mul(t[0], _constant(np.sign(x), t[0])),
)
sin = primitive(
    "sin", np.sin,
    vjp=lambda g, ans, x: (mul(g, cos(x)),),
    jvp=lambda t, ans, x: mul(t[0], cos(x)),
)
cos = primitive(
    "cos", np.cos,
    vjp=lambda g, ans, x: (neg(mul(g, sin(x))),),
    jvp=lambda t, ans, x: neg(mul(t[0], sin(x))),
)
tanh = primitive(
    "tanh", np.tanh,
    vjp=lambda g, ans, x: (mul(g, sub(1, mul(ans, ans))),),
    jvp=lambda t, ans, x: mul(t[0], sub(1, mul(ans, ans))),
)
sigmoid = primitive(
    "sigmoid", scipy.special.expit,  # stable: never exp of a large positive number
    vjp=lambda g, ans, x: (mul(g, mul(ans, sub(1, ans))),),
    jvp=lambda t, ans, x: mul(t[0], mul(ans, sub(1, ans))),
)
_TWO_OVER_ROOT_PI = float(2 / np.sqrt(np.pi))  # a Python float: a numpy float64 would upcast float32
erf = primitive(
    "erf", scipy.special.erf,
    # d erf(x)/dx = 2/√π · exp(-x²)
    vjp=lambda g, ans, x: (mul(g, mul(_TWO_OVER_ROOT_PI, exp(neg(mul(x, x))))),),
    jvp=lambda t, ans, x: mul(t[0], mul(_TWO_OVER_ROOT_PI, exp(neg(mul(x, x))))),
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
    return _constant(np.where(np.equal(x, y), 0.5, x_wins), like)


def _binary_select_rules(x_wins: Callable[[Any, Any], np.ndarray]) -> dict[str, Callable]:
    def vjp(g: np.ndarray, ans: np.ndarray, x: Any, y: Any) -> tuple:
        share = _share_of_x(x, y, x_wins(x, y), g)
        return (
            _grad(x, mul(g, share)) if _wants(x) else None,
            _grad(y, mul(g, sub(1, share))) if _wants(y) else None,
        )

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
    raised = np.maximum(x, lo) if lo is not None else np.asarray(x)
    above = np.greater(raised, hi) if hi is not None else np.zeros(np.shape(raised), bool)
    below = (np.less(x, lo) if lo is not None else False) & ~above
    inside = ~(below | above)
    return _constant(inside, like), _constant(below, like), _constant(above, like)


def _clip_vjp(g: np.ndarray, ans: np.ndarray, x: Any, lo: Any, hi: Any) -> tuple:
    inside, below, above = _clip_masks(x, lo, hi, g)
    return (
        _grad(x, mul(g, inside)) if _wants(x) else None,
        _grad(lo, mul(g, below)) if _wants(lo) else None,
        _grad(hi, mul(g, above)) if _wants(hi) else None,
    )


def _clip_jvp(t: list, ans: np.ndarray, x: Any, lo: Any, hi: Any) -> np.ndarray:
    inside, below, above = _clip_masks(x, lo, hi, ans)
    tangent = mul(t[0], inside)
    if t[1] is not None:
        tangent = add(tangent, mul(t[1], below))
    if t[2] is not None:
        tangent = add(tangent, mul(t[2], above))
    return tangent


clip = primitive("clip", lambda x, lo, hi: np.clip(x, lo, hi), arity=3, vjp=_clip_vjp, jvp=_clip_jvp)

where = primitive(
    "where", lambda condition, x, y: np.where(condition, x, y), arity=3,
    vjp=lambda g, ans, c, x, y: (
        None,
        _grad(x, where(c, g, 0)) if _wants(x) else None,
        _grad(y, where(c, 0, g)) if _wants(y) else None,
    ),
    jvp=lambda t, ans, c, x, y: where(c, t[1], t[2]),
)

# ---- reductions ---------------------------------------------------------------------------

sum = primitive(  # noqa: A001 - the NumPy name
    "sum", lambda x, axis=None, keepdims=False: np.sum(x, axis=axis, keepdims=keepdims),
    vjp=lambda g, ans, x, axis=None, keepdims=False: (
        broadcast_to(_keep_axes(g, x.ndim, axis, keepdims), x.shape),
    ),
    jvp=lambda t, ans, x, axis=None, keepdims=False: sum(t[0], axis=axis, keepdims=keepdims),
)
mean = primitive(
    "mean", lambda x, axis=None, keepdims=False: np.mean(x, axis=axis, keepdims=keepdims),
    vjp=lambda g, ans, x, axis=None, keepdims=False: (
        broadcast_to(div(_keep_axes(g, x.ndim, axis, keepdims), _reduced_count(x.shape, axis) or 1), x.shape),
    ),
    jvp=lambda t, ans, x, axis=None, keepdims=False: mean(t[0], axis=axis, keepdims=keepdims),
)


def _extremum_share(ans: np.ndarray, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    # The gradient goes to the elements that attain the extremum, split evenly among ties.
    hits = x == _keep_axes(ans, x.ndim, axis, keepdims)
    return _constant(hits / np.sum(hits, axis=axis, keepdims=True), x)


def _extremum(name: str, reduce: Callable) -> Primitive:
    return primitive(
        name, lambda x, axis=None, keepdims=False: reduce(x, axis=axis, keepdims=keepdims),
        vjp=lambda g, ans, x, axis=None, keepdims=False: (
            mul(_keep_axes(g, x.ndim, axis, keepdims), _extremum_share(ans, x, axis, keepdims)),
        ),
        jvp=lambda t, ans, x, axis=None, keepdims=False: sum(
            mul(t[0], _extremum_share(ans, x, axis, keepdims)), axis=axis, keepdims=keepdims
        ),
    )


max = _extremum("max", np.max)  # noqa: A001 - the NumPy name
min = _extremum("min", np.min)  # noqa: A001 - the NumPy name

# ---- shape ------------------------------------------------------------------------------------

reshape = primitive(
    "reshape", lambda x, shape: np.reshape(x, shape),
    vjp=lambda g, ans, x, shape: (reshape(g, x.shape),),
    jvp=lambda t, ans, x, shape: reshape(t[0], ans.shape),
)
transpose = primitive(
    "transpose", lambda x, axes=None: np.transpose(x, axes),
    vjp=lambda g, ans, x, axes=None: (
        transpose(g, None if axes is None else tuple(np.argsort([a % x.ndim for a in axes]))),
    ),
    jvp=lambda t, ans, x, axes=None: transpose(t[0], axes),
)


def swapaxes(x: Any, axis1: int, axis2: int) -> np.ndarray:
    """`np.swapaxes` as a `transpose`.

    >>> swapaxes(np.zeros((2, 3, 4)), -1, -2).shape
    (2, 4, 3)
    """
    axes = list(range(np.ndim(x)))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(x, tuple(axes))


broadcast_to = primitive(
    "broadcast_to", lambda x, shape: np.broadcast_to(x, shape),
    vjp=lambda g, ans, x, shape: (unbroadcast(g, np.shape(x)),),
    jvp=lambda t, ans, x, shape: broadcast_to(t[0], shape),
)
expand_dims = primitive(
    "expand_dims", lambda x, axis: np.expand_dims(x, axis),
    vjp=lambda g, ans, x, axis: (reshape(g, x.shape),),
    jvp=lambda t, ans, x, axis: expand_dims(t[0], axis),
)
squeeze = primitive(
    "squeeze", lambda x, axis=None: np.squeeze(x, axis),
    vjp=lambda g, ans, x, axis=None: (reshape(g, x.shape),),
    jvp=lambda t, ans, x, axis=None: squeeze(t[0], axis),
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
)
getitem = primitive(
    "getitem", lambda x, index: np.asarray(x)[index],
    vjp=lambda g, ans, x, index: (scatter_add(g, index, x.shape),),
    jvp=lambda t, ans, x, index: getitem(t[0], index),
)


def _split_along(g: np.ndarray, sizes: list[int], axis: int) -> tuple:
    ends = np.cumsum(sizes)
    lead = (slice(None),) * (axis % g.ndim)
    return tuple(getitem(g, lead + (slice(end - size, end),)) for size, end in zip(sizes, ends))


concatenate = primitive(
    "concatenate", lambda *xs, axis=0: np.concatenate(xs, axis=axis), arity=None,
    vjp=lambda g, ans, *xs, axis=0: tuple(
        grad if _wants(x) else None
        for x, grad in zip(xs, _split_along(g, [np.shape(x)[axis] for x in xs], axis))
    ),
    jvp=lambda t, ans, *xs, axis=0: concatenate(t, axis=axis),
)
stack = primitive(
    "stack", lambda *xs, axis=0: np.stack(xs, axis=axis), arity=None,
    vjp=lambda g, ans, *xs, axis=0: tuple(
        getitem(g, (slice(None),) * (axis % ans.ndim) + (i,)) if _wants(x) else None
        for i, x in enumerate(xs)
    ),
    jvp=lambda t, ans, *xs, axis=0: stack(t, axis=axis),
)


def _unpad_index(x: np.ndarray, pad_width: Any) -> tuple[slice, ...]:
    widths = np.broadcast_to(np.asarray(pad_width, dtype=int), (x.ndim, 2))
    return tuple(slice(before, before + n) for (before, _), n in zip(widths, x.shape))


pad = primitive(
    "pad", lambda x, pad_width, constant_values=0: np.pad(x, pad_width, constant_values=constant_values),
    vjp=lambda g, ans, x, pad_width, constant_values=0: (getitem(g, _unpad_index(x, pad_width)),),
    jvp=lambda t, ans, x, pad_width, constant_values=0: pad(t[0], pad_width),
)

# ---- softmax family: shift by the max, so large logits never overflow ---------------------


def _logsumexp(x: np.ndarray, axis: Any = -1, keepdims: bool = False) -> np.ndarray:
    # (the shift of an empty array is a zero of its dtype: a Python 0 would come back from
    # np.where as an int64 array, and float32 + int64 is float64)
    shift = np.max(x, axis=axis, keepdims=True) if np.size(x) else np.asarray(x).dtype.type(0)
    shift = np.where(np.isfinite(shift), shift, 0)  # all -inf rows stay -inf, not nan
    with np.errstate(divide="ignore"):  # an empty (or all -inf) row sums to 0: its log is -inf
        total = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift
    return total if keepdims else np.squeeze(total, axis=axis)


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shift = np.max(x, axis=axis, keepdims=True) if np.size(x) else 0  # an empty array has no max
    shifted = np.exp(x - shift)
    return shifted / np.sum(shifted, axis=axis, keepdims=True)


def _softmax_of(x: np.ndarray, ans: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    return exp(sub(x, _keep_axes(ans, x.ndim, axis, keepdims)))


logsumexp = primitive(
    "logsumexp", _logsumexp,
    # ∂/∂x logΣexp(x) = softmax(x)
    vjp=lambda g, ans, x, axis=-1, keepdims=False: (
        mul(_keep_axes(g, x.ndim, axis, keepdims), _softmax_of(x, ans, axis, keepdims)),
    ),
    jvp=lambda t, ans, x, axis=-1, keepdims=False: sum(
        mul(t[0], _softmax_of(x, ans, axis, keepdims)), axis=axis, keepdims=keepdims
    ),
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
    out = np.matmul(x, np.swapaxes(W, -1, -2))
    if b is None:
        return out
    fits = np.broadcast_shapes(out.shape, np.shape(b)) == out.shape
    if fits and np.can_cast(np.result_type(out, b), out.dtype):
        out += b  # out is fresh: adding in place saves one temporary of the layer's output size
        return out
    return out + b


def _linear_vjp(g: np.ndarray, ans: np.ndarray, x: Any, W: Any, b: Any) -> tuple:
    # y = x Wᵀ + b:  x̄ = ȳ W,  W̄ = ȳᵀ x (summed over the batch),  b̄ = Σ_batch ȳ
    rows_g = reshape(g, (-1, g.shape[-1])) if g.ndim != 2 else g
    rows_x = reshape(x, (-1, np.shape(x)[-1])) if np.ndim(x) != 2 else x
    return (
        _grad(x, matmul(g, W)) if _wants(x) else None,
        _grad(W, matmul(transpose(rows_g), rows_x)) if _wants(W) else None,
        _grad(b, g) if _wants(b) else None,
    )


def _linear_jvp(t: list, ans: np.ndarray, x: Any, W: Any, b: Any) -> np.ndarray:
    tangent = add(linear(t[0], W), linear(x, t[1]))
    return tangent if t[2] is None else add(tangent, t[2])


linear = primitive("linear", _linear, arity=3, vjp=_linear_vjp, jvp=_linear_jvp)

# ---- the fused loss: mean softmax cross-entropy, one tape entry instead of five ---------------


def _target_distribution(logits: np.ndarray, target: Any) -> np.ndarray:
    """Integer labels (N,) as one-hot rows; probability rows (N, C) as they are."""
    target = np.asarray(target)
    if target.dtype.kind in "iub":
        if target.shape != logits.shape[:-1]:
            raise ValueError(f"labels of shape {target.shape} for logits of shape {logits.shape}")
        classes = logits.shape[-1]
        if target.size and (target.min() < 0 or target.max() >= classes):
            raise IndexError(f"labels must lie in [0, {classes}), got {target.min()}..{target.max()}")
        return np.eye(classes, dtype=logits.dtype)[target]
    if target.shape != logits.shape:
        raise ValueError(f"target of shape {target.shape} for logits of shape {logits.shape}")
    return target


def _cross_entropy(logits: np.ndarray, target: Any) -> np.ndarray:
    rows = _target_distribution(logits, target)
    log_probs = logits - _logsumexp(logits, axis=-1, keepdims=True)
    return -np.sum(rows * log_probs) / int(np.prod(logits.shape[:-1]))  # an int keeps float32


def _cross_entropy_vjp(g: np.ndarray, ans: np.ndarray, logits: Any, target: Any) -> tuple:
    # L = −(1/N) Σ t · log_softmax(z):  z̄ = ḡ (softmax(z) Σt − t)/N,  t̄ = −ḡ log_softmax(z)/N
    count = int(np.prod(np.shape(logits)[:-1])) or 1
    rows = target if _wants(target) else _constant(_target_distribution(logits, target), logits)
    scale = div(g, count)
    grad_logits = grad_target = None
    if _wants(logits):
        mass = sum(rows, axis=-1, keepdims=True)
        grad_logits = mul(scale, sub(mul(softmax(logits), mass), rows))
    if _wants(target):
        grad_target = neg(mul(scale, log_softmax(logits)))
    return grad_logits, grad_target


def _cross_entropy_jvp(t: list, ans: np.ndarray, logits: Any, target: Any) -> np.ndarray:
    grad_logits, grad_target = _cross_entropy_vjp(np.ones_like(ans), ans, logits, target)
    tangent = sum(mul(t[0], grad_logits)) if grad_logits is not None else 0.0
    if grad_target is not None:
        tangent = add(tangent, sum(mul(t[1], grad_target)))
    return tangent


cross_entropy = primitive(
    "cross_entropy", _cross_entropy, arity=2, vjp=_cross_entropy_vjp, jvp=_cross_entropy_jvp
)

# A cast that keeps the chain (used where dtypes meet).
astype = primitive(
    "astype", lambda x, dtype: np.asarray(x).astype(dtype),
    vjp=lambda g, ans, x, dtype: (astype(g, x.dtype) if _wants(x) else None,),
    jvp=lambda t, ans, x, dtype: astype(t[0], dtype),
)

# Convolution and pooling live in their own module; imported here, once the rules' helpers exist.
from mytorch.conv import conv1d, conv2d, max_pool2d  # noqa: E402, F401

# The wider NumPy/SciPy surface (issue 15), rules in mytorch/rules/: F.log1p, F.linalg.norm, F.special.gammaln
from mytorch.rules import linalg, special  # noqa: E402, F401
from mytorch.rules.numpy_ops import (  # noqa: E402, F401
    arccos,
    arcsin,
    arcsinh,
    arctan,
    cosh,
    cumprod,
    cumsum,
    diagonal,
    einsum,
    expm1,
    flip,
    log1p,
    logaddexp,
    outer,
    prod,
    repeat,
    roll,
    setitem,
    sign,
    sinh,
    softplus,
    sort,
    square,
    std,
    take,
    take_along_axis,
    tan,
    tensordot,
    tile,
    trace,
    tril,
    triu,
    var,
)

# ---- `name_backward` for every primitive, for hand-written `add_operation` calls ----------

for _primitive in list(PRIMITIVES.values()):
    globals()[f"{_primitive.name}_backward"] = _primitive.backward
del _primitive

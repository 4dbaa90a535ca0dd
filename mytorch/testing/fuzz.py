"""Differential fuzzing: random programs of primitives, run by mytorch and by a reference.

`programs()` is a hypothesis strategy of `Program`s: a few float inputs of broadcastable shapes,
then a sequence of primitive calls, each on earlier values (or on a new input leaf, a weight for
a matmul say), and a scalar loss, the weighted sum of every value no later step used. Each call
is drawn only where it is smooth: `log` of positive values, `relu` away from 0, `max` without
near-ties, `maximum` of values that do not meet, so finite differences are meaningful too.

`mytorch.testing.fuzz_complex.complex_programs()` draws complex programs: complex leaves through
the primitives that declare complex values, to a real loss (compared by the same functions).

`compare_with_torch(program)` runs it in mytorch and in PyTorch (through each primitive's twin in
`mytorch.testing.cases`) and compares every value, the gradient of the loss with respect to each
input, and a Hessian-vector product (the backward rules differentiated again);
`compare_with_finite_differences(program)` compares the gradients with central differences.

>>> program = programs(max_steps=3).example()
>>> len(program.leaves) >= 1
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mytorch import functional as F
from mytorch.autograd_engine import Stretch, no_grad
from mytorch.gradcheck import numeric_jacobian
from mytorch.testing.cases import CASES, _show
from mytorch.testing.strategies import (
    axes,
    broadcast_targets,
    broadcastable_shapes,
    float_arrays,
    indices,
    reshape_targets,
)
from mytorch.transforms import grad, jvp

__all__ = ["Program", "Step", "compare_with_finite_differences", "compare_with_torch", "programs"]

MAX_SIZE = 48  # values stay small: the finite differences take one pair of runs per input element
MARGIN = 0.02  # distance from kinks and ties, far above the finite-difference step


@dataclass
class Step:
    """`values[k] = op(*operands, **params)`; an operand is a value's position or a constant.
    `op="leaf"` brings in a new input (`params["value"]`)."""

    op: str
    operands: tuple = ()
    params: dict = field(default_factory=dict)


@dataclass
class Const:
    """A constant operand (an integer or bool array, or a Python number)."""

    value: Any

    def __repr__(self) -> str:
        return _show(self.value)


@dataclass
class Program:
    steps: list[Step]
    weights: dict[int, np.ndarray]  # loss = Σ_k sum(weights[k] * values[k])

    @property
    def leaves(self) -> list[int]:
        return [k for k, step in enumerate(self.steps) if step.op == "leaf"]

    def __repr__(self) -> str:
        lines = []
        for k, step in enumerate(self.steps):
            if step.op == "leaf":
                lines.append(f"v{k} = {_show(step.params['value'])}")
                continue
            args = [f"v{a}" if isinstance(a, int) else repr(a) for a in step.operands]
            args += [f"{name}={_show(value)}" for name, value in step.params.items()]
            lines.append(f"v{k} = {step.op}({', '.join(args)})")
        lines.append("loss = " + " + ".join(f"sum(w{k} * v{k})" for k in self.weights))
        return "Program(\n  " + "\n  ".join(lines) + "\n)"

    def evaluate(self, leaves: list[Any], call: Callable[[str, tuple, dict], Any]) -> list[Any]:
        """Every value, with the leaves given; `call(op, inputs, params)` runs one step."""
        values: list[Any] = []
        given = iter(leaves)
        for step in self.steps:
            if step.op == "leaf":
                values.append(next(given))
            else:
                inputs = tuple(values[a] if isinstance(a, int) else a.value for a in step.operands)
                values.append(call(step.op, inputs, step.params))
        return values

    def run_mytorch(self, leaves: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        """(values, loss) computed (and recorded) by mytorch's primitives."""
        values = self.evaluate(leaves, _call)
        loss = None
        for k, weight in self.weights.items():
            product = F.mul(values[k], weight)
            term = F.sum(F.real(product) if product.dtype.kind == "c" else product)  # a real loss
            loss = term if loss is None else F.add(loss, term)
        return values, loss


def _call(op: str, inputs: tuple, params: dict) -> np.ndarray:
    """One step, called as a user would (so defaults such as conv's bias=None fill in)."""
    primitive = F.PRIMITIVES[op]
    return primitive(list(inputs), **params) if primitive.arity is None else primitive(*inputs, **params)


# ---- drawing programs --------------------------------------------------------------------------


def _size_ok(shape: tuple[int, ...]) -> bool:
    return math.prod(shape) <= MAX_SIZE


def _pick(
    draw: st.DrawFn, values: list[np.ndarray], ok: Callable[[np.ndarray], bool] = lambda v: True
) -> int | None:
    """The position of a value satisfying `ok`, the newest first (so shrinking keeps chains)."""
    candidates = [k for k in range(len(values) - 1, -1, -1) if ok(values[k])]
    return draw(st.sampled_from(candidates)) if candidates else None


def _broadcasts(a: np.ndarray, b: np.ndarray) -> bool:
    try:
        return _size_ok(np.broadcast_shapes(a.shape, b.shape))
    except ValueError:
        return False


def _apart(a: np.ndarray, b: np.ndarray, gap: float = MARGIN) -> bool:
    difference = np.abs(a - b)
    return difference.size == 0 or float(difference.min()) > gap


def _unary(op: str, ok: Callable[[np.ndarray], bool] = lambda v: True) -> Callable:
    def propose(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
        k = _pick(draw, values, ok)
        return None if k is None else Step(op, (k,))

    return propose


def _binary(op: str, ok: Callable[[np.ndarray, np.ndarray], bool] = lambda a, b: True) -> Callable:
    def propose(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
        x = _pick(draw, values)
        y = _pick(draw, values, lambda v: _broadcasts(values[x], v) and ok(values[x], v))
        if y is None:
            return None
        if draw(st.integers(0, 5)) == 0 and ok(values[x], np.asarray(2.0)):  # a Python number
            return Step(op, (x, Const(2.0)))
        return Step(op, (x, y))

    return propose


def _positive(v: np.ndarray) -> bool:
    return v.size == 0 or float(v.min()) > 0.1


def _off_zero(v: np.ndarray) -> bool:
    return v.size == 0 or float(np.abs(v).min()) > MARGIN


def _power(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    base = _pick(draw, values, _positive)
    if base is None:
        return None
    if draw(st.booleans()):
        return Step("power", (base, Const(draw(st.sampled_from([2, 3, 0.5, -1.0])))))
    # A float exponent stays off 0: there PyTorch's pow backward special-cases the base's gradient
    # (exponent == 0 gives 0), so its mixed second derivative is 0 one way and sech²-like the
    # other; mytorch's symmetric Hessian is the right one, but the oracle cannot judge it.
    exponent = _pick(
        draw,
        values,
        lambda v: _broadcasts(values[base], v) and (v.size == 0 or np.abs(v).max() < 3) and _off_zero(v),
    )
    return None if exponent is None else Step("power", (base, exponent))


def _reduction(op: str) -> Callable:
    def propose(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
        k = _pick(draw, values, lambda v: v.size > 0)
        if k is None:
            return None
        x = values[k]
        axis = draw(axes(x.ndim))
        params = {"axis": axis, "keepdims": draw(st.booleans())}
        if op in ("max", "min") and not _no_ties(x, axis):
            return None
        return Step(op, (k,), params)

    return propose


def _no_ties(x: np.ndarray, axis: Any) -> bool:
    if axis is None:
        flat = np.sort(x.reshape(-1))
        return flat.size < 2 or float(np.diff(flat).min()) > MARGIN
    reduced = (axis,) if isinstance(axis, int) else tuple(axis)
    if not reduced:
        return True
    moved = np.moveaxis(x, [a % x.ndim for a in reduced], range(-len(reduced), 0))
    rows = np.sort(moved.reshape(*moved.shape[: x.ndim - len(reduced)], -1), axis=-1)
    return rows.shape[-1] < 2 or float(np.diff(rows, axis=-1).min()) > MARGIN


def _along_axis(op: str) -> Callable:
    def propose(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
        k = _pick(draw, values, lambda v: v.ndim >= 1)
        if k is None:
            return None
        axis = draw(st.integers(-values[k].ndim, values[k].ndim - 1))
        return Step(op, (k,), {"axis": axis})

    return propose


def _matmul(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    a = _pick(draw, values, lambda v: v.ndim >= 1)
    if a is None:
        return None
    inner = values[a].shape[-1]

    def fits(v: np.ndarray) -> bool:
        if v.ndim == 0 or (v.shape[-2] if v.ndim > 1 else v.shape[0]) != inner:
            return False
        try:
            return _size_ok(np.matmul(np.zeros(values[a].shape), np.zeros(v.shape)).shape)
        except ValueError:
            return False

    b = _pick(draw, values, fits)
    return None if b is None else Step("matmul", (a, b))


def _reshape(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values)
    return Step("reshape", (k,), {"shape": draw(reshape_targets(values[k].shape))})


def _transpose(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values)
    return Step("transpose", (k,), {"axes": tuple(draw(st.permutations(range(values[k].ndim))))})


def _expand_dims(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values, lambda v: v.ndim < 4)
    return None if k is None else Step("expand_dims", (k,), {"axis": draw(st.integers(0, values[k].ndim))})


def _squeeze(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values, lambda v: 1 in v.shape)
    return None if k is None else Step("squeeze", (k,), {"axis": values[k].shape.index(1)})


def _getitem(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values)
    return Step("getitem", (k,), {"index": draw(indices(values[k].shape))})


def _broadcast_to(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values)
    target = draw(broadcast_targets(values[k].shape, max_new_dims=1, max_side=3))
    return Step("broadcast_to", (k,), {"shape": target}) if _size_ok(target) else None


def _concatenate(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values, lambda v: v.ndim >= 1)
    if k is None:
        return None
    x = values[k]
    axis = draw(st.integers(0, x.ndim - 1))
    same_but_axis = lambda v: (
        v.ndim == x.ndim and all(a == b for i, (a, b) in enumerate(zip(v.shape, x.shape)) if i != axis)
    )
    other = _pick(draw, values, lambda v: same_but_axis(v) and _size_ok((x.size + v.size,)))
    return None if other is None else Step("concatenate", (k, other), {"axis": axis})


def _stack(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values, lambda v: 2 * v.size <= MAX_SIZE)
    if k is None:
        return None
    other = _pick(draw, values, lambda v: v.shape == values[k].shape)
    return Step("stack", (k, other), {"axis": draw(st.integers(0, values[k].ndim))})


def _pad(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values, lambda v: v.ndim >= 1 and _size_ok(tuple(s + 2 for s in v.shape)))
    return None if k is None else Step("pad", (k,), {"pad_width": draw(st.integers(0, 1))})


def _where(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    x = _pick(draw, values)
    y = _pick(draw, values, lambda v: _broadcasts(values[x], v))
    mask = draw(
        hnp.arrays(np.bool_, np.broadcast_shapes(values[x].shape, values[y].shape), fill=st.nothing())
    )
    return Step("where", (Const(mask), x, y))


def _clip(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values)
    x = values[k]
    bounds = [b for b in (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5) if _apart(x, np.asarray(b))]
    if len(bounds) < 2:
        return None
    lo = draw(st.sampled_from(bounds[:-1]))
    hi = draw(st.sampled_from([b for b in bounds if b > lo]))
    return Step("clip", (k, Const(lo), Const(hi)))


def _weight_leaf(draw: st.DrawFn, values: list[np.ndarray], k: int, shape: tuple[int, ...]) -> np.ndarray:
    """A new weight leaf for value `k`'s layer: of its dtype, in [-1, 1]."""
    return draw(float_arrays(shape, values[k].dtype, low=-1.0, high=1.0))


def _leaf_matmul(draw: st.DrawFn, values: list[np.ndarray],
                 leaf: Callable = _weight_leaf) -> list[Step] | None:
    """A new weight leaf W (in, out) and x @ W: the shape of a layer. `leaf(draw, values, k, shape)`
    draws W (the complex fuzzer's draws a complex one)."""
    k = _pick(draw, values, lambda v: v.ndim >= 1)
    if k is None:
        return None
    inner, out = values[k].shape[-1], draw(st.integers(1, 3))
    if not _size_ok(values[k].shape[:-1] + (out,)) or not _size_ok((inner, out)):
        return None
    weight = leaf(draw, values, k, (inner, out))
    return [Step("leaf", params={"value": weight}), Step("matmul", (k, len(values)))]


def _leaf_linear(draw: st.DrawFn, values: list[np.ndarray],
                 leaf: Callable = _weight_leaf) -> list[Step] | None:
    """New leaves W (out, in) and b (out,), and linear(x, W, b): a layer as one primitive."""
    k = _pick(draw, values, lambda v: v.ndim >= 1)
    if k is None:
        return None
    inner, out = values[k].shape[-1], draw(st.integers(1, 3))
    if not _size_ok(values[k].shape[:-1] + (out,)) or not _size_ok((out, inner)):
        return None
    weight, bias = leaf(draw, values, k, (out, inner)), leaf(draw, values, k, (out,))
    return [Step("leaf", params={"value": weight}), Step("leaf", params={"value": bias}),
            Step("linear", (k, len(values), len(values) + 1))]


def _astype(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values)  # to its own dtype: a float32 program stays float32
    return None if k is None else Step("astype", (k,), {"dtype": values[k].dtype})


def _unbroadcast(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    """Sum a value back to a shape that broadcasts to it (leading axes dropped, some axes to 1)."""
    k = _pick(draw, values)
    if k is None:
        return None
    shape = values[k].shape
    kept = shape[draw(st.integers(0, len(shape))):]
    return Step("unbroadcast", (k,), {"shape": tuple(1 if draw(st.booleans()) else n for n in kept)})


def _scatter_add(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    """A value added into zeros of a larger shape, at one position of a new leading axis."""
    k = _pick(draw, values)
    if k is None:
        return None
    rows = draw(st.integers(1, 3))
    shape = (rows, *values[k].shape)
    if not _size_ok(shape):
        return None
    return Step("scatter_add", (k,), {"index": draw(st.integers(0, rows - 1)), "shape": shape})


def _as_image(draw: st.DrawFn, values: list[np.ndarray], dims: int) -> list[Step] | None:
    """A value reshaped to one channel of a batch of one: (1, 1, W) or (1, 1, H, W)."""
    k = _pick(draw, values, lambda v: v.size > 0)
    if k is None:
        return None
    size = values[k].size
    height = draw(st.sampled_from([d for d in range(1, size + 1) if size % d == 0])) if dims == 2 else 1
    spatial = (height, size // height) if dims == 2 else (size,)
    return [Step("reshape", (k,), {"shape": (1, 1, *spatial)})]


def _leaf_conv(dims: int) -> Callable:
    """A value as an image, a new kernel leaf, and a convolution (with stride and padding)."""

    def propose(draw: st.DrawFn, values: list[np.ndarray]) -> list[Step] | None:
        steps = _as_image(draw, values, dims)
        if steps is None:
            return None
        spatial = steps[0].params["shape"][2:]
        kernel = tuple(draw(st.integers(1, min(3, n))) for n in spatial)
        out_channels = draw(st.integers(1, 2))
        dtype = values[steps[0].operands[0]].dtype
        weight = draw(float_arrays((out_channels, 1, *kernel), dtype, low=-1.0, high=1.0))
        params = {"stride": draw(st.integers(1, 2)), "padding": draw(st.integers(0, 1))}
        image, leaf = len(values), len(values) + 1
        return [*steps, Step("leaf", params={"value": weight}), Step(f"conv{dims}d", (image, leaf), params)]

    return propose


def _max_pool2d(draw: st.DrawFn, values: list[np.ndarray]) -> list[Step] | None:
    steps = _as_image(draw, values, 2)
    if steps is None or not _no_ties(values[steps[0].operands[0]], None):
        return None
    spatial = steps[0].params["shape"][2:]
    kernel = tuple(draw(st.integers(1, min(2, n))) for n in spatial)
    return [*steps, Step("max_pool2d", (len(values),), {"kernel_size": kernel})]


def _cross_entropy(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values, lambda v: v.ndim >= 1 and v.shape[-1] >= 1 and v.size > 0)
    if k is None:
        return None
    logits = values[k]
    labels = draw(hnp.arrays(np.int64, logits.shape[:-1], elements=st.integers(0, logits.shape[-1] - 1)))
    return Step("cross_entropy", (k, Const(labels)))


MENU: dict[str, Callable] = {
    "tanh": _unary("tanh"),
    "add": _binary("add"),
    "mul": _binary("mul"),
    "sub": _binary("sub"),
    "sin": _unary("sin"),
    "cos": _unary("cos"),
    "sigmoid": _unary("sigmoid"),
    "erf": _unary("erf"),
    "neg": _unary("neg"),
    "exp": _unary("exp", lambda v: v.size == 0 or float(v.max()) < 2.5),
    "log": _unary("log", _positive),
    "sqrt": _unary("sqrt", _positive),
    "abs": _unary("abs", _off_zero),
    "relu": _unary("relu", _off_zero),
    "div": _binary("div", lambda a, b: _off_zero(b) and (b.size == 0 or float(np.abs(b).min()) > 0.2)),
    "maximum": _binary("maximum", _apart),
    "minimum": _binary("minimum", _apart),
    "power": _power,
    "sum": _reduction("sum"),
    "mean": _reduction("mean"),
    "max": _reduction("max"),
    "min": _reduction("min"),
    "logsumexp": _reduction("logsumexp"),
    "softmax": _along_axis("softmax"),
    "log_softmax": _along_axis("log_softmax"),
    "matmul": _matmul,
    "leaf+matmul": _leaf_matmul,
    "leaf+linear": _leaf_linear,
    "astype": _astype,
    "unbroadcast": _unbroadcast,
    "scatter_add": _scatter_add,
    "reshape": _reshape,
    "transpose": _transpose,
    "expand_dims": _expand_dims,
    "squeeze": _squeeze,
    "getitem": _getitem,
    "broadcast_to": _broadcast_to,
    "concatenate": _concatenate,
    "stack": _stack,
    "pad": _pad,
    "where": _where,
    "clip": _clip,
    "cross_entropy": _cross_entropy,
    "conv1d": _leaf_conv(1),
    "conv2d": _leaf_conv(2),
    "max_pool2d": _max_pool2d,
}


# Primitives with no step of their own, and where the fuzzer reaches them instead.
NOT_DRAWN = {
    "im2col": "inside every conv1d, conv2d and max_pool2d step (their rules are written with it)",
    "col2im": "inside the backward walk of every conv1d, conv2d and max_pool2d step",
}


def _evaluate(step: Step, values: list[np.ndarray]) -> np.ndarray:
    inputs = tuple(values[a] if isinstance(a, int) else a.value for a in step.operands)
    with no_grad():
        return _call(step.op, inputs, step.params)


@st.composite
def programs(
    draw: st.DrawFn,
    *,
    max_inputs: int = 3,
    max_steps: int = 8,
    ops: tuple[str, ...] | None = None,
    dtype: Any = np.float64,
    menu: dict[str, Callable] | None = None,
    leaf: Callable[[st.DrawFn, tuple[int, ...], int], np.ndarray] | None = None,
    fallback: str = "tanh",
) -> Program:
    """Random programs: 1..max_inputs inputs (float arrays of `dtype`) of broadcastable shapes,
    then 1..max_steps calls, drawn from `menu` (MENU by default). `leaf(draw, shape, position)`
    draws an input instead, and `fallback` is the unary step taken where a drawn step does not
    apply (mytorch.testing.fuzz_complex.complex_programs passes all three: complex programs)."""
    if np.dtype(dtype).kind == "c" and menu is None:
        raise ValueError("programs: complex programs come from mytorch.testing.fuzz_complex.complex_programs")
    table = MENU if menu is None else menu
    if leaf is None:
        leaf = lambda draw, shape, position: draw(float_arrays(shape, dtype, low=-2.0, high=2.0))  # noqa: E731
    chosen = list(table) if ops is None else list(ops)
    shapes = draw(broadcastable_shapes(draw(st.integers(1, max_inputs)), max_dims=3, max_side=3))
    steps = [Step("leaf", params={"value": leaf(draw, s, i)}) for i, s in enumerate(shapes)]
    values = [step.params["value"] for step in steps]
    for _ in range(draw(st.integers(1, max_steps))):
        proposal = table[draw(st.sampled_from(chosen))](draw, values)
        if proposal is None:  # not applicable to the values at hand: a smooth step instead
            proposal = Step(fallback, (len(values) - 1,))
        for step in proposal if isinstance(proposal, list) else [proposal]:
            values.append(step.params["value"] if step.op == "leaf" else _evaluate(step, values))
            steps.append(step)
    used = {a for step in steps for a in step.operands if isinstance(a, int)}
    sinks = [k for k in range(len(steps)) if k not in used and steps[k].op != "leaf"]
    weights = {k: draw(float_arrays(values[k].shape, values[k].dtype, low=-1.0, high=1.0)) for k in sinks}
    return Program(steps, weights)


# ---- running and comparing ---------------------------------------------------------------------


def _leaves(program: Program) -> list[np.ndarray]:
    return [program.steps[k].params["value"].copy() for k in program.leaves]


def mytorch_run(program: Program, leaves: list[np.ndarray]) -> tuple:
    """Values, loss, and the gradient of the loss with respect to each leaf, by the engine."""
    with Stretch() as stretch:
        values, loss = program.run_mytorch(leaves)
        adjoints = stretch.backward(loss, np.ones_like(loss))
        grads = [adjoints.get(id(leaf), np.zeros_like(leaf)) for leaf in leaves]
        return [np.array(v) for v in values], np.array(loss), grads


def _tangent_mytorch(program: Program, leaves: list[np.ndarray], directions: list[np.ndarray]) -> np.ndarray:
    """The loss's derivative along `directions`, by forward mode (tangent rules)."""
    _, tangent = jvp(lambda *xs: program.run_mytorch(list(xs))[1], leaves, directions)
    return np.asarray(tangent)


def _hvp_mytorch(
    program: Program, leaves: list[np.ndarray], directions: list[np.ndarray]
) -> list[np.ndarray]:
    count = len(leaves)

    def loss(*xs: np.ndarray) -> np.ndarray:
        return program.run_mytorch(list(xs))[1]

    def directional(*xs: np.ndarray) -> np.ndarray:
        grads = grad(loss, argnums=tuple(range(count)))(*xs)
        total = None
        for g, v in zip(grads, directions):  # Re Σ conj(g) v: the derivative along v
            term = F.sum(F.real(F.mul(g, np.conj(v))) if np.iscomplexobj(v) else F.mul(g, v))
            total = term if total is None else F.add(total, term)
        return total

    return list(grad(directional, argnums=tuple(range(count)))(*leaves))


def _torch_run(program: Program, leaves: list[np.ndarray], directions: list[np.ndarray]) -> tuple:
    import torch

    from mytorch.testing.checks import _complex_promoted, _to_torch

    tensors = [torch.from_numpy(leaf.copy()).requires_grad_(True) for leaf in leaves]

    def call(op: str, inputs: tuple, params: dict) -> Any:
        tensors = [v if isinstance(v, torch.Tensor) else _to_torch(v) for v in inputs]
        return CASES[op].torch(*_complex_promoted(tensors, CASES[op].index_inputs), **params)

    values = program.evaluate(tensors, call)
    loss = None
    for k, weight in program.weights.items():
        product = values[k] * torch.from_numpy(weight)
        term = torch.sum(torch.real(product) if product.is_complex() else product)
        loss = term if loss is None else loss + term
    if loss is None or not loss.requires_grad:
        zeros = [np.zeros_like(leaf) for leaf in leaves]
        return (
            [v.detach().numpy(force=True) for v in values],
            float(loss if loss is not None else 0),
            zeros,
            zeros,
        )
    grads = torch.autograd.grad(loss, tensors, create_graph=True, allow_unused=True)
    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, tensors)]
    directional = sum(torch.sum(torch.real(g * torch.from_numpy(np.asarray(np.conj(v)))))
                      for g, v in zip(grads, directions))
    hvp = [torch.zeros_like(t) for t in tensors]
    if directional.requires_grad:
        hvp = torch.autograd.grad(directional, tensors, allow_unused=True)
        hvp = [torch.zeros_like(t) if h is None else h for h, t in zip(hvp, tensors)]
    return (
        [v.detach().numpy(force=True) for v in values],
        float(loss.detach()),
        [g.detach().numpy(force=True) for g in grads],
        [h.detach().numpy(force=True) for h in hvp],
    )


def _assert_close(
    what: str, got: Any, expected: Any, program: Program, rtol: float, atol: float, dtype: Any = None
) -> None:
    if dtype is not None and np.asarray(got).dtype != dtype:
        kind = np.asarray(got).dtype
        raise AssertionError(f"fuzz: {what} has dtype {kind}, not {np.dtype(dtype)}\n{program!r}")
    wide = np.complex128 if np.iscomplexobj(got) or np.iscomplexobj(expected) else np.float64
    got, expected = np.asarray(got, dtype=wide), np.asarray(expected, dtype=wide)
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True):
        raise AssertionError(
            f"fuzz: {what} differs\n  mytorch:   {_show(got)}\n  reference: {_show(expected)}\n{program!r}"
        )


# (rtol, atol) for values and first derivatives, then for the Hessian-vector product, by dtype.
TORCH_TOLERANCES = {
    np.dtype(np.float64): ((1e-6, 1e-8), (1e-5, 1e-7)),
    np.dtype(np.float32): ((2e-3, 2e-4), (1e-2, 1e-3)),
    np.dtype(np.complex128): ((1e-6, 1e-8), (1e-5, 1e-7)),
    np.dtype(np.complex64): ((2e-3, 2e-4), (1e-2, 1e-3)),
}


def _directions(leaves: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """A random direction per leaf, of its dtype (complex leaves: complex directions)."""
    rng = np.random.default_rng(seed)
    made = []
    for leaf in leaves:
        direction = rng.uniform(-1, 1, leaf.shape)
        if leaf.dtype.kind == "c":
            direction = direction + 1j * rng.uniform(-1, 1, leaf.shape)
        made.append(np.asarray(direction, dtype=leaf.dtype))
    return made


def _program_dtype(leaves: list[np.ndarray]) -> np.dtype:
    """The dtype the program computes in: its complex leaves' where it has any (a real leaf of a
    complex program is of the same precision)."""
    return next((leaf.dtype for leaf in leaves if leaf.dtype.kind == "c"), leaves[0].dtype)


def _along(grads: list[np.ndarray], directions: list[np.ndarray]) -> float:
    """Re Σ conj(g) · v: a real loss's derivative along `directions`, from its gradients."""
    return sum(float(np.sum(np.real(np.conj(g.astype(np.complex128)) * v)))
               for g, v in zip(grads, directions))


def compare_with_torch(program: Program, *, second_order: bool = True) -> None:
    """Values, gradients, a forward-mode derivative and a Hessian-vector product against PyTorch,
    in the program's dtype (which every one of them must keep; in a complex program, each value
    has PyTorch's dtype and each gradient its leaf's). Raises AssertionError."""
    leaves = _leaves(program)
    dtype = _program_dtype(leaves)
    complex_program = dtype.kind == "c"
    real_dtype = np.finfo(dtype).dtype
    (rtol, atol), (second_rtol, second_atol) = TORCH_TOLERANCES[dtype]
    directions = _directions(leaves, len(program.steps))
    values, loss, grads = mytorch_run(program, leaves)
    twin_values, twin_loss, twin_grads, twin_hvp = _torch_run(program, leaves, directions)
    for k, (mine, theirs) in enumerate(zip(values, twin_values)):
        _assert_close(f"value v{k}", mine, theirs, program, rtol, atol,
                      theirs.dtype if complex_program else dtype)
    _assert_close("loss", loss, twin_loss, program, rtol, atol, real_dtype)
    for k, leaf, mine, theirs in zip(program.leaves, leaves, grads, twin_grads):
        what = f"gradient of the loss with respect to v{k}"
        _assert_close(what, mine, theirs, program, rtol, atol, leaf.dtype)
    tangent = _tangent_mytorch(program, leaves, directions)
    what = "forward-mode derivative of the loss along a random direction"
    _assert_close(what, tangent, _along(twin_grads, directions), program, rtol, atol, real_dtype)
    if second_order:
        hvp = _hvp_mytorch(program, leaves, directions)
        for k, leaf, mine, theirs in zip(program.leaves, leaves, hvp, twin_hvp):
            what = f"Hessian-vector product, component v{k}"
            _assert_close(what, mine, theirs, program, second_rtol, second_atol, leaf.dtype)


def compare_with_finite_differences(
    program: Program, *, step: float = 1e-4, rtol: float = 1e-5, atol: float = 1e-6
) -> None:
    """Gradients of the loss against central differences (float64, gradcheck's finite-difference
    core; a complex leaf z = x + iy takes them along x and along y, its gradient being
    ∂L/∂x + i ∂L/∂y). Raises AssertionError."""
    leaves = _leaves(program)
    _, _, grads = mytorch_run(program, leaves)

    def loss_at(*points: np.ndarray) -> tuple[np.ndarray]:
        return (program.run_mytorch(list(points))[1],)

    if any(leaf.dtype.kind == "c" for leaf in leaves):
        directions = _directions(leaves, len(program.steps))
    else:
        rng = np.random.default_rng(len(program.steps))
        directions = [rng.uniform(-1, 1, leaf.shape) for leaf in leaves]
    along = lambda t: loss_at(*(leaf + t * v for leaf, v in zip(leaves, directions)))  # noqa: E731
    _assert_close(
        "forward-mode derivative of the loss along a random direction (finite differences)",
        _tangent_mytorch(program, leaves, directions),
        numeric_jacobian(along, [np.array(0.0)], [0], eps=step)[0][0],
        program,
        rtol,
        atol,
    )
    complex_positions = [i for i, leaf in enumerate(leaves) if leaf.dtype.kind == "c"]

    def loss_of_parts(*parts: np.ndarray) -> tuple[np.ndarray]:
        """The loss of the leaves' real parts, then the imaginary parts of the complex leaves."""
        points = list(parts[: len(leaves)])
        for j, i in enumerate(complex_positions):
            points[i] = points[i] + 1j * parts[len(leaves) + j]
        return loss_at(*points)

    parts = [np.real(leaf) for leaf in leaves] + [np.imag(leaves[i]) for i in complex_positions]
    numeric = numeric_jacobian(loss_of_parts, parts, range(len(parts)), eps=step)[0]
    for j, i in enumerate(complex_positions):
        numeric[i] = numeric[i] + 1j * numeric[len(leaves) + j]
    for position, (k, gradient) in enumerate(zip(program.leaves, grads)):
        _assert_close(
            f"gradient of the loss with respect to v{k} (finite differences)",
            gradient,
            numeric[position],
            program,
            rtol,
            atol,
        )


# ==== issue 15: the wider NumPy / SciPy surface ===================================================


def _within(bound: float) -> Callable[[np.ndarray], bool]:
    return lambda v: v.size == 0 or float(np.abs(v).max()) < bound


def _inside(low: float, high: float) -> Callable[[np.ndarray], bool]:
    return lambda v: v.size == 0 or (float(v.min()) > low and float(v.max()) < high)


def _no_tiny_factors(v: np.ndarray) -> bool:
    """No factor near 0 but not 0: there PyTorch's prod and cumprod double backward (which divide
    by x) lose the second derivative, so the oracle could not judge mytorch's (exact) one."""
    return bool(np.all((np.abs(v) > 1e-3) | (v == 0)))


def _small_reduction(op: str, extra: Callable | None = None) -> Callable:
    """A reduction over an axis (or all), of a small value (prod and var stay well scaled)."""

    def propose(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
        ok = _no_tiny_factors if op == "prod" else lambda v: True
        k = _pick(draw, values, lambda v: 0 < v.size <= 12 and v.ndim >= 1 and ok(v))
        if k is None:
            return None
        x = values[k]
        axis = draw(st.none() | st.integers(-x.ndim, x.ndim - 1))
        params = {"axis": axis, "keepdims": draw(st.booleans())}
        more = extra(draw, x, axis) if extra is not None else {}
        return None if more is None else Step(op, (k,), {**params, **more})

    return propose


def _spread(draw: st.DrawFn, x: np.ndarray, axis: Any) -> dict | None:
    count = x.size if axis is None else x.shape[axis]
    if count < 2 or not _no_ties(x, axis):  # std's slope divides by the spread
        return None
    return {"ddof": draw(st.sampled_from([0, 1]))}


def _scan(op: str, ok: Callable[[np.ndarray], bool] = lambda v: True) -> Callable:
    def propose(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
        k = _pick(draw, values, lambda v: v.ndim >= 1 and ok(v))
        if k is None:
            return None
        return Step(op, (k,), {"axis": draw(st.integers(-values[k].ndim, values[k].ndim - 1))})

    return propose


def _sort(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values, lambda v: v.ndim >= 1)
    if k is None:
        return None
    axis = draw(st.integers(-values[k].ndim, values[k].ndim - 1))
    return Step("sort", (k,), {"axis": axis}) if _no_ties(values[k], axis) else None


def _roll(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values, lambda v: v.ndim >= 1)
    if k is None:
        return None
    axis = draw(st.integers(0, values[k].ndim - 1))
    return Step("roll", (k,), {"shift": draw(st.integers(-3, 3)), "axis": axis})


def _tile(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values, lambda v: 2 * v.size <= MAX_SIZE)
    if k is None:
        return None
    reps = tuple(draw(st.integers(1, 2)) for _ in range(draw(st.integers(1, 2))))
    return Step("tile", (k,), {"reps": reps}) if _size_ok((values[k].size * math.prod(reps),)) else None


def _repeat(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values, lambda v: v.ndim >= 1 and 3 * v.size <= MAX_SIZE)
    if k is None:
        return None
    axis = draw(st.integers(0, values[k].ndim - 1))
    repeats = draw(hnp.arrays(np.int64, (values[k].shape[axis],), elements=st.integers(0, 3)))
    return Step("repeat", (k,), {"repeats": repeats, "axis": axis})


def _take(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values, lambda v: v.size > 0)
    if k is None:
        return None
    size = values[k].size
    picked = draw(hnp.arrays(np.intp, st.integers(1, 6), elements=st.integers(-size, size - 1)))
    return Step("take", (k,), {"indices": picked})


def _take_along_axis(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values, lambda v: v.ndim >= 1 and v.size > 0)
    if k is None:
        return None
    x = values[k]
    axis = draw(st.integers(0, x.ndim - 1))
    shape = list(x.shape)
    shape[axis] = draw(st.integers(1, 3))
    if not _size_ok(tuple(shape)):
        return None
    indices = draw(hnp.arrays(np.intp, tuple(shape), elements=st.integers(0, x.shape[axis] - 1)))
    return Step("take_along_axis", (k,), {"indices": indices, "axis": axis})


def _matrix_op(op: str) -> Callable:
    def propose(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
        k = _pick(draw, values, lambda v: v.ndim >= 2)
        if k is None:
            return None
        x = values[k]
        axis1, axis2 = draw(st.permutations(range(x.ndim)))[:2]
        if op in ("triu", "tril"):
            return Step(op, (k,), {"k": draw(st.integers(-1, 1))})
        return Step(op, (k,), {"offset": draw(st.integers(-1, 1)), "axis1": axis1, "axis2": axis2})

    return propose


def _outer(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    a = _pick(draw, values, lambda v: v.size <= 8)
    if a is None:
        return None
    b = _pick(draw, values, lambda v: _size_ok((values[a].size * v.size,)))
    return Step("outer", (a, b))


def _einsum(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values, lambda v: v.ndim >= 1)
    if k is None:
        return None
    x = values[k]
    if x.ndim >= 2 and x.shape[-1] == x.shape[-2] and draw(st.booleans()):
        return Step("einsum", (k,), {"subscripts": "...ii->...i"})
    other = _pick(draw, values, lambda v: v.ndim >= 1 and v.shape[-1] == x.shape[-1] and _broadcasts(x, v))
    if other is not None and draw(st.booleans()):
        return Step("einsum", (k, other), {"subscripts": "...i,...i->..."})
    return Step("einsum", (k,), {"subscripts": "...ij->...ji" if x.ndim >= 2 else "i->"})


def _tensordot(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    a = _pick(draw, values, lambda v: v.ndim >= 1)
    if a is None:
        return None
    inner = values[a].shape[-1]
    fits = lambda v: v.ndim >= 1 and v.shape[0] == inner and _size_ok(values[a].shape[:-1] + v.shape[1:])
    b = _pick(draw, values, fits)
    return None if b is None else Step("tensordot", (a, b), {"axes": 1})


def _setitem(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values, lambda v: v.size > 0)
    if k is None:
        return None
    index = draw(indices(values[k].shape))
    target = np.zeros(values[k].shape)[index].shape
    def fits(v: np.ndarray) -> bool:  # a value that broadcasts to the selection
        try:
            return v.ndim <= len(target) and np.broadcast_shapes(target, v.shape) == target
        except ValueError:
            return False

    value = _pick(draw, values, fits)
    return Step("setitem", (k, Const(0.5) if value is None else value), {"index": index})


def _norm(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    k = _pick(draw, values, lambda v: v.ndim >= 1 and v.size > 0)
    if k is None:
        return None
    x = values[k]
    axis = draw(st.integers(0, x.ndim - 1))
    order = draw(st.sampled_from([2, 1, np.inf]))
    if order == 2 and float(np.min(np.linalg.norm(x, axis=axis))) < 0.1:
        return None
    if order == 1 and not _off_zero(x):
        return None
    if order == np.inf and not (_no_ties(np.abs(x), axis) and _off_zero(x)):
        return None
    return Step("norm", (k,), {"ord": order, "axis": axis, "keepdims": draw(st.booleans())})


def _real_matrix(op: str, draw: st.DrawFn, values: list[np.ndarray], n: int) -> np.ndarray:
    """A well-conditioned n x n matrix of the program's dtype (symmetric positive definite for
    cholesky, with well-separated eigenvalues for eigh)."""
    from mytorch.testing.strategies import well_conditioned_matrices

    a = draw(well_conditioned_matrices(n, np.float64))
    if op == "cholesky":
        a = a @ a.T + 0.5 * np.eye(n)
    if op == "eigh":
        q, _ = np.linalg.qr(a)
        a = q @ np.diag(np.arange(n) * 0.7 - 0.5) @ q.T
        a = (a + a.T) / 2
    return a.astype(values[-1].dtype)


def _leaf_matrix(op: str, matrix: Callable = _real_matrix) -> Callable:
    """A new matrix leaf, `matrix(op, draw, values, n)` (the complex fuzzer gives its own), and
    `op` of it; solve takes a value as its right side."""

    def propose(draw: st.DrawFn, values: list[np.ndarray]) -> list[Step] | None:
        right = None
        if op == "solve":
            right = _pick(draw, values, lambda v: 1 <= v.ndim <= 2 and 0 < v.shape[0] <= 4)
            if right is None:
                return None
            n = values[right].shape[0]
        else:
            n = draw(st.integers(1, 3))
        leaf = Step("leaf", params={"value": matrix(op, draw, values, n)})
        return [leaf, Step(op, (len(values), right) if op == "solve" else (len(values),))]

    return propose


MENU.update({
    "log1p": _unary("log1p", lambda v: v.size == 0 or float(v.min()) > -0.8),
    "expm1": _unary("expm1", lambda v: v.size == 0 or float(v.max()) < 2.5),
    "tan": _unary("tan", _within(1.2)),
    "arcsin": _unary("arcsin", _within(0.9)),
    "arccos": _unary("arccos", _within(0.9)),
    "arctan": _unary("arctan"),
    "sinh": _unary("sinh", _within(3.0)),
    "cosh": _unary("cosh", _within(3.0)),
    "arcsinh": _unary("arcsinh"),
    "square": _unary("square"),
    "softplus": _unary("softplus"),
    "sign": _unary("sign", _off_zero),
    "logaddexp": _binary("logaddexp"),
    "prod": _small_reduction("prod"),
    "var": _small_reduction("var", lambda draw, x, axis: {"ddof": 0}),
    "std": _small_reduction("std", _spread),
    "cumsum": _scan("cumsum"),
    "cumprod": _scan("cumprod", lambda v: v.size <= 12 and _no_tiny_factors(v)),
    "flip": _scan("flip"),
    "roll": _roll,
    "tile": _tile,
    "repeat": _repeat,
    "take": _take,
    "take_along_axis": _take_along_axis,
    "sort": _sort,
    "diagonal": _matrix_op("diagonal"),
    "trace": _matrix_op("trace"),
    "triu": _matrix_op("triu"),
    "tril": _matrix_op("tril"),
    "outer": _outer,
    "einsum": _einsum,
    "tensordot": _tensordot,
    "setitem": _setitem,
    "norm": _norm,
    "inv": _leaf_matrix("inv"),
    "solve": _leaf_matrix("solve"),
    "det": _leaf_matrix("det"),
    "slogdet": _leaf_matrix("slogdet"),
    "cholesky": _leaf_matrix("cholesky"),
    "eigh": _leaf_matrix("eigh"),
    "gammaln": _unary("gammaln", _positive),
    "digamma": _unary("digamma", lambda v: v.size == 0 or float(v.min()) > 0.3),
    "expit": _unary("expit"),
    "logit": _unary("logit", _inside(0.05, 0.95)),
    "xlogy": _binary("xlogy", lambda a, b: _positive(b)),
    "polygamma": lambda draw, values: (
        None if (k := _pick(draw, values, _positive)) is None else Step("polygamma", (Const(1), k))
    ),
})


# ---- issue 23: the rest of NumPy -------------------------------------------------------------------


def _off_steps(v: np.ndarray) -> bool:
    """Away from the half-integers, where floor, ceil, trunc and rint jump."""
    return v.size == 0 or float(np.min(np.abs(2 * v - np.round(2 * v)))) > 4 * MARGIN


def _quotient_off_whole(a: np.ndarray, b: np.ndarray) -> bool:
    if b.size and float(np.min(np.abs(b))) < 0.3:
        return False
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.asarray(a / b)
    return q.size == 0 or bool(np.all(np.isfinite(q))) and float(np.min(np.abs(q - np.round(q)))) > 0.05


MENU.update({
    "log10": _unary("log10", _positive),
    "log2": _unary("log2", _positive),
    "exp2": _unary("exp2", lambda v: v.size == 0 or float(v.max()) < 3.0),
    "arctanh": _unary("arctanh", _within(0.9)),
    "arccosh": _unary("arccosh", lambda v: v.size == 0 or float(v.min()) > 1.1),
    "floor": _unary("floor", _off_steps),
    "ceil": _unary("ceil", _off_steps),
    "trunc": _unary("trunc", _off_steps),
    "rint": _unary("rint", _off_steps),
    "round": _unary("round", _off_steps),
    "mod": _binary("mod", _quotient_off_whole),
    "fmod": _binary("fmod", _quotient_off_whole),
    "logaddexp2": _binary("logaddexp2"),
})


def _leaf_spectral(op: str) -> Callable:
    """A new matrix leaf with well-separated singular values (svd, qr) or eigenvalues (eigh,
    eigvalsh), and `op` of it."""

    def propose(draw: st.DrawFn, values: list[np.ndarray]) -> list[Step]:
        n = draw(st.integers(1, 3))
        q, _ = np.linalg.qr(draw(float_arrays((n, n), np.float64, low=-1.0, high=1.0)) + 2 * np.eye(n))
        # a fixed dense rotation: never diagonal, where LAPACK's vector signs jump under perturbation
        q = q @ np.linalg.qr(np.cos(np.arange(1.0, n * n + 1).reshape(n, n)) + 0.1 * np.eye(n))[0]
        symmetric = op in ("eigh", "eigvalsh")
        spectrum = np.arange(n, 0, -1) * 0.7 + (-1.5 if symmetric else 0.3)
        a = (q * spectrum) @ (q.T if symmetric else np.linalg.qr(q + np.eye(n))[0].T)
        return [Step("leaf", params={"value": a.astype(values[-1].dtype)}), Step(op, (len(values),))]

    return propose


MENU.update({
    "svd": _leaf_spectral("svd"),
    "svdvals": _leaf_spectral("svdvals"),
    "pinv": _leaf_matrix("pinv"),
    "qr": _leaf_spectral("qr"),
    "eigvalsh": _leaf_spectral("eigvalsh"),
    "eigh": _leaf_spectral("eigh"),  # NumPy's eigenvector signs: a dense matrix, never a diagonal one
})


def _with_shape_parameter(op: str, ok: Callable[[np.ndarray], bool], **params: Any) -> Callable:
    """`op(Const(1.5), value)`: a constant shape parameter (or order), then a drawn value."""

    def propose(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
        k = _pick(draw, values, ok)
        return None if k is None else Step(op, (Const(1.5), k), params)

    return propose


MENU.update({
    "gamma": _unary("gamma", _positive),
    "rgamma": _unary("rgamma", _positive),
    "gammasgn": _unary("gammasgn", _positive),
    "beta": _binary("beta", lambda a, b: _positive(a) and _positive(b)),
    "betaln": _binary("betaln", lambda a, b: _positive(a) and _positive(b)),
    "gammainc": _with_shape_parameter("gammainc", _positive),
    "gammaincc": _with_shape_parameter("gammaincc", _positive),
    "multigammaln": lambda draw, values: (
        None if (k := _pick(draw, values, lambda v: v.size == 0 or float(v.min()) > 0.8)) is None
        else Step("multigammaln", (k,), {"d": 2})
    ),
    "erfc": _unary("erfc"),
    "erfinv": _unary("erfinv", _within(0.9)),
    "erfcinv": _unary("erfcinv", _inside(0.1, 1.9)),
    "ndtr": _unary("ndtr"),
    "log_ndtr": _unary("log_ndtr"),
    "i0": _unary("i0"),
    "i1": _unary("i1"),
})
_NO_TWIN = "no PyTorch twin with a derivative: `python -m mytorch check` compares it with finite differences"
NOT_DRAWN.update({name: _NO_TWIN for name in ("betainc", "j0", "j1", "y0", "y1", "jn", "yn", "iv", "ive")})


def _shifted_leaf(draw: st.DrawFn, n: int, dtype: Any, shift: float) -> Step:
    noise = draw(float_arrays((n, n), np.float64, low=-0.5, high=0.5))
    return Step("leaf", params={"value": (noise + shift * np.eye(n)).astype(dtype)})


def _leaf_scipy_linalg(op: str) -> Callable:
    """New matrix leaves made for `op` (spectra kept apart), and `op` of them and of a drawn value."""

    def propose(draw: st.DrawFn, values: list[np.ndarray]) -> list[Step] | None:
        dtype = values[-1].dtype
        if op == "expm":
            n = draw(st.integers(1, 3))
            return [_shifted_leaf(draw, n, dtype, 0.0), Step(op, (len(values),))]
        right = _pick(draw, values, lambda v: v.ndim == 2 and 0 < v.shape[0] <= 3 and v.shape[1] <= 3)
        if right is None:
            return None
        n, m = values[right].shape
        if op == "solve_triangular":
            return [_shifted_leaf(draw, n, dtype, 2.0), Step(op, (len(values), right), {"lower": True})]
        return [_shifted_leaf(draw, n, dtype, 2.0), _shifted_leaf(draw, m, dtype, 1.0),
                Step(op, (len(values), len(values) + 1, right))]

    return propose


MENU.update({name: _leaf_scipy_linalg(name) for name in ("expm", "solve_triangular", "solve_sylvester")})
NOT_DRAWN["sqrtm"] = _NO_TWIN

# Complex programs (`programs(dtype=np.complex128)`) draw from mytorch.testing.fuzz_complex's menu.
NOT_DRAWN["eig"] = ("checked by `check` in real and complex dtypes and by tests/test_complex.py: a loss "
                    "of its eigenvectors depends on the phases NumPy picks, so a random program would "
                    "compare gauges, not rules")

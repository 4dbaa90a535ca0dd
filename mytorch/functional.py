"""The primitives, in one namespace: `from mytorch import functional as F`, then `F.matmul(x, W)`.

Each primitive is defined once, with its forward, backward (VJP) and tangent (JVP) rule side by
side, in the module of its family:

    mytorch.primitive     the machinery (Primitive, primitive) and the plumbing: broadcast_to,
                          unbroadcast (its adjoint), astype
    mytorch.rules.core    arithmetic, elementwise functions, reductions, shapes, softmax family,
                          linear, cross_entropy
    mytorch.conv          conv1d, conv2d, max_pool2d and their im2col / col2im

This module only gathers them. For every primitive `name`, `name_backward(grad_output, *inputs)`
returns the input gradients (each with its input's shape), so it plugs into
`Autograd.add_operation` by hand.

>>> import numpy as np
>>> mul_backward(np.ones(2), np.array([1.0, 2.0]), np.array([3.0, 4.0]))
(array([3., 4.]), array([1., 2.]))
"""

from __future__ import annotations

import sys
from typing import Any

from mytorch.conv import col2im, conv1d, conv2d, im2col, max_pool2d
from mytorch.primitive import (
    PRIMITIVES,
    Primitive,
    astype,
    broadcast_to,
    constant,
    is_float_array,
    primitive,
    reduce_to,
    unbroadcast,
)
from mytorch.rules.core import (
    abs,
    add,
    clip,
    concatenate,
    cos,
    cross_entropy,
    div,
    erf,
    exp,
    expand_dims,
    getitem,
    keep_axes,
    linear,
    log,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    pad,
    power,
    relu,
    reshape,
    scatter_add,
    sigmoid,
    sin,
    softmax,
    sqrt,
    squeeze,
    stack,
    sub,
    sum,
    swapaxes,
    tanh,
    transpose,
    where,
)

# ---- `name_backward` for every primitive, for hand-written `add_operation` calls ----------------

broadcast_to_backward = broadcast_to.backward
unbroadcast_backward = unbroadcast.backward
astype_backward = astype.backward
add_backward = add.backward
sub_backward = sub.backward
mul_backward = mul.backward
div_backward = div.backward
neg_backward = neg.backward
power_backward = power.backward
matmul_backward = matmul.backward
exp_backward = exp.backward
log_backward = log.backward
sqrt_backward = sqrt.backward
abs_backward = abs.backward
sin_backward = sin.backward
cos_backward = cos.backward
tanh_backward = tanh.backward
sigmoid_backward = sigmoid.backward
relu_backward = relu.backward
erf_backward = erf.backward
maximum_backward = maximum.backward
minimum_backward = minimum.backward
clip_backward = clip.backward
where_backward = where.backward
sum_backward = sum.backward
mean_backward = mean.backward
max_backward = max.backward
min_backward = min.backward
reshape_backward = reshape.backward
transpose_backward = transpose.backward
expand_dims_backward = expand_dims.backward
squeeze_backward = squeeze.backward
getitem_backward = getitem.backward
scatter_add_backward = scatter_add.backward
concatenate_backward = concatenate.backward
stack_backward = stack.backward
pad_backward = pad.backward
logsumexp_backward = logsumexp.backward
softmax_backward = softmax.backward
log_softmax_backward = log_softmax.backward
linear_backward = linear.backward
cross_entropy_backward = cross_entropy.backward
conv1d_backward = conv1d.backward
conv2d_backward = conv2d.backward
max_pool2d_backward = max_pool2d.backward
im2col_backward = im2col.backward
col2im_backward = col2im.backward

__all__ = [
    "PRIMITIVES",
    "Primitive",
    "abs",
    "abs_backward",
    "add",
    "add_backward",
    "astype",
    "astype_backward",
    "broadcast_to",
    "broadcast_to_backward",
    "clip",
    "clip_backward",
    "col2im",
    "col2im_backward",
    "concatenate",
    "concatenate_backward",
    "constant",
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
    "cos",
    "cos_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "div",
    "div_backward",
    "erf",
    "erf_backward",
    "exp",
    "exp_backward",
    "expand_dims",
    "expand_dims_backward",
    "getitem",
    "getitem_backward",
    "im2col",
    "im2col_backward",
    "is_float_array",
    "keep_axes",
    "linear",
    "linear_backward",
    "log",
    "log_backward",
    "log_softmax",
    "log_softmax_backward",
    "logsumexp",
    "logsumexp_backward",
    "matmul",
    "matmul_backward",
    "max",
    "max_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "maximum",
    "maximum_backward",
    "mean",
    "mean_backward",
    "min",
    "min_backward",
    "minimum",
    "minimum_backward",
    "mul",
    "mul_backward",
    "neg",
    "neg_backward",
    "pad",
    "pad_backward",
    "power",
    "power_backward",
    "primitive",
    "reduce_to",
    "relu",
    "relu_backward",
    "reshape",
    "reshape_backward",
    "scatter_add",
    "scatter_add_backward",
    "sigmoid",
    "sigmoid_backward",
    "sin",
    "sin_backward",
    "softmax",
    "softmax_backward",
    "sqrt",
    "sqrt_backward",
    "squeeze",
    "squeeze_backward",
    "stack",
    "stack_backward",
    "sub",
    "sub_backward",
    "sum",
    "sum_backward",
    "swapaxes",
    "tanh",
    "tanh_backward",
    "transpose",
    "transpose_backward",
    "unbroadcast",
    "unbroadcast_backward",
    "where",
    "where_backward",
]

# ---- issue 15: the wider NumPy/SciPy surface, rules in mytorch/rules/ (F.log1p, F.linalg.norm, ...) --

from mytorch.rules import linalg, special  # noqa: E402
from mytorch.rules.numpy_ops import (  # noqa: E402
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

_WIDER = [name for name, rule in PRIMITIVES.items() if rule.defined_in.startswith("mytorch.rules.") and
          rule.defined_in != "mytorch.rules.core"]
globals().update({f"{name}_backward": PRIMITIVES[name].backward for name in _WIDER})
__all__ += [  # noqa: PLE0605
    "arccos", "arcsin", "arcsinh", "arctan", "cosh", "cumprod", "cumsum", "diagonal", "einsum", "expm1",
    "flip", "linalg", "log1p", "logaddexp", "outer", "prod", "repeat", "roll", "setitem", "sign", "sinh",
    "softplus", "sort", "special", "square", "std", "take", "take_along_axis", "tan", "tensordot", "tile",
    "trace", "tril", "triu", "var", *(f"{name}_backward" for name in _WIDER),
]

# ---- issue 23: the rest of NumPy (mytorch/rules/numpy_more.py), SciPy's linalg and signal ---------

from mytorch.rules import numpy_more as _numpy_more  # noqa: E402
from mytorch.rules.numpy_more import *  # noqa: E402, F403

_BREADTH = [name for name in PRIMITIVES if f"{name}_backward" not in globals()]
globals().update({f"{name}_backward": PRIMITIVES[name].backward for name in _BREADTH})
__all__ += [*_numpy_more.__all__, *(f"{name}_backward" for name in _BREADTH)]  # noqa: PLE0605

from mytorch.rules import (  # noqa: E402  (F.scipy_linalg.expm, F.signal.convolve)
    fft,  # noqa: E402  (F.fft.fft, F.fft.rfft, ...: complex results)
    scipy_linalg,
    signal,
)

_BREADTH = [name for name in PRIMITIVES if f"{name}_backward" not in globals()]
globals().update({f"{name}_backward": PRIMITIVES[name].backward for name in _BREADTH})
__all__ += ["fft", "scipy_linalg", "signal", *(f"{name}_backward" for name in _BREADTH)]  # noqa: PLE0605

# ---- NumPy's names for tracked arrays (mytorch.tracked): np.X runs the X here -------------------

from mytorch import tracked as _tracked  # noqa: E402
from mytorch.primitive import copy  # noqa: E402


def positive(x: Any) -> Any:
    """+x (np.positive): x itself, as a new array on the tape."""
    return copy(x)


def reciprocal(x: Any) -> Any:
    """1 / x (np.reciprocal, and what `x ** -1` calls)."""
    return div(1.0, x)


_tracked.NAMESPACES.update({
    "numpy": sys.modules[__name__], "numpy.linalg": linalg, "scipy.special": special,
    "scipy.linalg": scipy_linalg, "scipy.signal": signal, "numpy.fft": fft,
})
__all__ += ["copy", "positive", "reciprocal"]

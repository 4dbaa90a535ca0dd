"""`mytorch.nn.functional`: the primitives and their `*_backward` rules under the handout's module name.

Homework code does `from mytorch.nn.functional import *` and passes `add_backward`,
`matmul_backward`, ... to `Autograd.add_operation`; every primitive of `mytorch.functional`
(conv1d, conv2d and max_pool2d included) is here with its rule. The later handouts' forms are here
too (`identity_backward`, `slice_backward`, `tanh_backward(g, a, state)`, an axis passed as
`np.array([axis])`, `max_backward(g, a)` as the ReLU rule): see the HW3 section below.

>>> import numpy as np
>>> from mytorch.nn.functional import add_backward
>>> add_backward(np.ones((2, 3)), np.zeros((2, 3)), np.zeros(3))[1]
array([2., 2., 2.])
"""

from itertools import combinations as _combinations

import numpy as _np

from mytorch import functional as _primitives
from mytorch.autograd_engine import no_grad as _no_grad

_exported = {name: rule for name, rule in _primitives.PRIMITIVES.items()}
_exported.update({f"{name}_backward": rule.backward for name, rule in _primitives.PRIMITIVES.items()})
_exported.update(
    swapaxes=_primitives.swapaxes, Primitive=_primitives.Primitive, primitive=_primitives.primitive
)


# Rules under the names some years' handouts gave them, for code that imports them by name.


def outer_backward(grad_output, a, b):  # the handout's signature
    """Gradients of `np.outer(a, b)`: ḡ b for a and ḡᵀ a for b, in the inputs' shapes.

    >>> import numpy as np
    >>> outer_backward(np.ones((2, 3)), np.array([1.0, 2.0]), np.array([1.0, 1.0, 1.0]))[0]
    array([3., 3.])
    """
    import numpy as np

    grad_a = np.asarray(grad_output) @ np.ravel(b)
    grad_b = np.asarray(grad_output).T @ np.ravel(a)
    return grad_a.reshape(np.shape(a)), grad_b.reshape(np.shape(b))


def SoftmaxCrossEntropy_backward(grad_output, pred, ground_truth):
    """The handout's fused rule: (softmax(pred) − ground_truth)/N · ḡ for pred, None for the target.

    >>> import numpy as np
    >>> SoftmaxCrossEntropy_backward(1.0, np.zeros((1, 2)), np.array([[0.0, 1.0]]))[0]
    array([[ 0.5, -0.5]])
    """
    grads = _primitives.cross_entropy_backward(grad_output, pred, ground_truth)
    return grads[0], None


_exported.update(SoftmaxCrossEntropy_backward=SoftmaxCrossEntropy_backward)
_exported.setdefault("outer_backward", outer_backward)  # `outer` is a primitive now: its own rule wins


# ---- the 2024 HW3 handout's rules ------------------------------------------------------------
#
# The handout records a non-array argument as one more input of the operation, encoded as a NumPy
# array (an axis as `np.array([axis])`, an index as `np.array(np.index_exp[...], dtype=object)`, the
# forward output of tanh as `state`), so its rule returns one gradient per input: `(grad, None)`.
# Each rule below serves both call shapes: given such an array it answers as the handout does;
# given plain parameters (`sum_backward(g, x, axis=0)`) it is the primitive's own rule.


def _decoded_axis(axis):
    """An axis as the handout encodes it, `np.array([axis])` (or several), as NumPy takes it."""
    if not isinstance(axis, _np.ndarray):
        return axis
    return int(axis.ravel()[0]) if axis.size == 1 else tuple(int(a) for a in axis.ravel())


def _decoded_index(index):
    """An index as the handout encodes it, `np.array(np.index_exp[...], dtype=object)`."""
    if not isinstance(index, _np.ndarray) or index.dtype != object:
        return index  # an index as NumPy takes it (an integer array picks elements)
    return tuple(index.tolist()) if index.ndim else index.item()


def _answer(grad, parameter):
    # A parameter passed as an array was an input of the recorded operation: it gets None.
    return (grad, None) if isinstance(parameter, _np.ndarray) else grad


def identity_backward(grad_output, a):
    """The adjoint passes through unchanged.

    >>> import numpy as np
    >>> identity_backward(np.ones(2), np.zeros(2))
    array([1., 1.])
    """
    return _np.asarray(grad_output)


def tanh_backward(grad_output, a, state=None):
    """ḡ (1 − tanh²(a)). With `state` (the forward output, as the HW3 handout records it), that
    output is used and `(grad, None)` comes back, one gradient per recorded input.

    >>> import numpy as np
    >>> tanh_backward(np.ones(1), np.zeros(1))
    array([1.])
    >>> tanh_backward(np.ones(1), np.zeros(1), np.zeros(1))
    (array([1.]), None)
    """
    if state is None:
        return _primitives.tanh.backward(grad_output, a)
    with _no_grad():
        (grad,) = _primitives.tanh.vjp(_np.asarray(grad_output), _np.asarray(state), a)
    return _answer(grad, state)


def expand_dims_backward(grad_output, a, axis):
    """The adjoint of `np.expand_dims(a, axis)`; `axis` may come as the handout's `np.array([axis])`.

    >>> import numpy as np
    >>> expand_dims_backward(np.ones((1, 2)), np.zeros(2), np.array([0]))
    (array([1., 1.]), None)
    """
    return _answer(_primitives.expand_dims.backward(grad_output, a, _decoded_axis(axis)), axis)


def squeeze_backward(grad_output, a, axis=None):
    """The adjoint of `np.squeeze(a, axis)`; `axis` may come as the handout's `np.array([axis])`.

    >>> import numpy as np
    >>> squeeze_backward(np.ones(2), np.zeros((1, 2)), np.array([0]))
    (array([[1., 1.]]), None)
    """
    return _answer(_primitives.squeeze.backward(grad_output, a, _decoded_axis(axis)), axis)


def slice_backward(grad_output, a, index):
    """The adjoint of `a[index]`: ḡ added into zeros of `a`'s shape at `index` (repeated picks add
    up). `index` may come as the handout's `np.array(np.index_exp[...], dtype=object)`.

    >>> import numpy as np
    >>> slice_backward(np.ones(2), np.zeros(3), np.array(np.index_exp[1:], dtype=object))
    (array([0., 1., 1.]), None)
    """
    return _answer(_primitives.getitem.backward(grad_output, a, _decoded_index(index)), index)


def _summed_axes(grad_shape, shape):
    """The axes a sum dropped to go from `shape` to `grad_shape`; leading axes first (the
    handout's sum is over axis 0), so ambiguous shapes such as (3, 3) -> (3,) mean axis 0."""
    dropped = len(shape) - len(grad_shape)
    for axes in _combinations(range(len(shape)), dropped):
        if tuple(n for i, n in enumerate(shape) if i not in axes) == tuple(grad_shape):
            return axes
    raise ValueError(f"sum_backward: an adjoint of shape {grad_shape} cannot come from summing shape {shape}")


def sum_backward(grad_output, a, axis=None, keepdims=False):
    """ḡ spread over the summed axes. `axis` may be given (an int, a tuple, or the handout's
    `np.array([axis])`); without it, it is read off the adjoint's shape (the handout's call
    `sum_backward(g, a)` for `np.sum(a, axis=0)`).

    >>> import numpy as np
    >>> sum_backward(np.array([1.0, 2.0]), np.zeros((3, 2)))
    array([[1., 2.],
           [1., 2.],
           [1., 2.]])
    """
    decoded = _decoded_axis(axis) if axis is not None else None
    grad_shape, shape = _np.shape(grad_output), _np.shape(a)
    if axis is None and not keepdims and 0 < len(grad_shape) < len(shape):
        decoded = _summed_axes(grad_shape, shape)
    return _answer(_primitives.sum.backward(grad_output, a, decoded, keepdims), axis)


def max_backward(grad_output, a, *args, **kwargs):
    """The adjoint of `np.max(a, axis, keepdims)` (to the maxima, ties split evenly); called as
    `max_backward(g, a)` with `g` of `a`'s shape, the handouts' ReLU rule: the adjoint of
    `np.maximum(a, 0)`, ḡ where a > 0 (0 at the kink, as PyTorch).

    >>> import numpy as np
    >>> max_backward(np.ones(3), np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 1.])
    >>> max_backward(np.ones(()), np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 1.])
    """
    if not args and not kwargs and _np.ndim(a) > 0 and _np.shape(grad_output) == _np.shape(a):
        return _primitives.relu.backward(grad_output, a)
    return _primitives.max.backward(grad_output, a, *args, **kwargs)


_exported.update(
    identity_backward=identity_backward, tanh_backward=tanh_backward,
    expand_dims_backward=expand_dims_backward, squeeze_backward=squeeze_backward,
    slice_backward=slice_backward, sum_backward=sum_backward, max_backward=max_backward,
)
# The rules above that take the place of a primitive's own `name_backward` (same name, both forms).
HANDOUT_FORMS = ("tanh_backward", "expand_dims_backward", "squeeze_backward", "sum_backward", "max_backward")
globals().update(_exported)
__all__ = sorted(_exported)

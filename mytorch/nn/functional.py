"""`mytorch.nn.functional`: the primitives and their `*_backward` rules under the handout's module name.

Homework code does `from mytorch.nn.functional import *` and passes `add_backward`,
`matmul_backward`, ... to `Autograd.add_operation`; every primitive of `mytorch.functional`
(conv1d, conv2d and max_pool2d included) is here with its rule.

>>> import numpy as np
>>> from mytorch.nn.functional import add_backward
>>> add_backward(np.ones((2, 3)), np.zeros((2, 3)), np.zeros(3))[1]
array([2., 2., 2.])
"""

from mytorch import functional as _primitives

_exported = {name: rule for name, rule in _primitives.PRIMITIVES.items()}
_exported.update({f"{name}_backward": rule.backward for name, rule in _primitives.PRIMITIVES.items()})
_exported.update(
    swapaxes=_primitives.swapaxes, Primitive=_primitives.Primitive, primitive=_primitives.primitive
)
globals().update(_exported)
__all__ = sorted(_exported)

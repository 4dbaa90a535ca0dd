"""mytorch: a tape-based reverse-mode automatic-differentiation engine for NumPy.

>>> import numpy as np
>>> import mytorch
>>> from mytorch import functional as F
>>> x = np.array([1.0, 2.0, 3.0])
>>> loss = F.sum(F.mul(x, x))
>>> mytorch.backward(loss)
>>> mytorch.engine().gradient_buffer.get_param(x)
array([2., 4., 6.])
"""

from mytorch import functional, nn, optim, pytree  # functional first: layers are built on it
from mytorch.autograd_engine import (
    Autograd,
    Operation,
    Stretch,
    backward,
    detect_anomaly,
    engine,
    is_recording,
    no_grad,
    recording,
)
from mytorch.checkpoint import checkpoint
from mytorch.compile import compile as compile  # noqa: A004 - record once, replay
from mytorch.gradcheck import check_grads
from mytorch.nn.module import functional_call
from mytorch.serialization import load, save
from mytorch.tracked import Tracked, is_tracked, track
from mytorch.transforms import grad, hessian, hvp, jacobian, jvp, value_and_grad, vjp
from mytorch.utils import GradientBuffer, MemoryBuffer

__all__ = [
    "Autograd",
    "GradientBuffer",
    "MemoryBuffer",
    "Operation",
    "Stretch",
    "Tracked",
    "backward",
    "checkpoint",
    "check_grads",
    "compile",
    "detect_anomaly",
    "engine",
    "functional",
    "functional_call",
    "grad",
    "hessian",
    "hvp",
    "is_recording",
    "is_tracked",
    "jacobian",
    "jvp",
    "load",
    "nn",
    "no_grad",
    "optim",
    "pytree",
    "recording",
    "save",
    "track",
    "value_and_grad",
    "vjp",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # mytorch.testing imports hypothesis (about 0.1 s, half the package's own import time),
    # so it loads on first use: `mytorch.testing.check_primitive(...)` works without an import.
    if name == "testing":
        import importlib

        return importlib.import_module("mytorch.testing")
    raise AttributeError(f"module 'mytorch' has no attribute {name!r}")

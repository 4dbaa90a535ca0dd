"""Linear, Identity, Flatten, Dropout: each a primitive or two, no gradient code."""

from __future__ import annotations

from typing import Any

import numpy as np

from mytorch import functional as F
from mytorch.autograd_engine import Autograd
from mytorch.nn.module import Module
from mytorch.tracked import drawn


def uniform(bound: float, shape: tuple[int, ...]) -> np.ndarray:
    """PyTorch's default initialisation of layer weights: U(-bound, bound), from np.random."""
    return np.random.uniform(-bound, bound, size=shape)


class Linear(Module):
    """Z = A Wᵀ + b, with W of shape (out, in) and b of shape (out,), as torch.nn.Linear.

    Initialised as PyTorch does, from U(-1/√in, 1/√in). After any backward, `dLdW` and `dLdb`
    (also `dW`, `db`) hold the gradients.

    >>> layer = Linear(3, 2)
    >>> layer.W.shape, layer.b.shape, layer(np.ones((5, 3))).shape
    ((2, 3), (2,), (5, 2))
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 autograd_engine: Autograd | None = None) -> None:
        super().__init__(autograd_engine)
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / np.sqrt(in_features)
        self.register_parameter("weight", uniform(bound, (out_features, in_features)), attribute="W")
        self.register_parameter("bias", uniform(bound, (out_features,)) if bias else None, attribute="b")

    def forward(self, A: np.ndarray) -> np.ndarray:
        _check_width(self, A)
        return F.linear(A, self.W, self.b)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.b is not None}"


def _check_width(layer: Linear, A: Any) -> None:
    """A width mismatch names the layer, not only matmul's operands."""
    shape, weight = np.shape(A), np.shape(layer.W)
    if len(weight) == 2 and (not shape or shape[-1] != weight[1]):
        raise ValueError(
            f"Linear(in_features={layer.in_features}, out_features={layer.out_features}): the input "
            f"has shape {shape}, whose last axis should hold {weight[1]} features; W has shape {weight}"
        )


class Identity(Module):
    """Returns its input (records nothing)."""

    def __init__(self, *args: Any, autograd_engine: Autograd | None = None, **kwargs: Any) -> None:
        super().__init__(autograd_engine)

    def forward(self, A: Any) -> Any:
        return A


class Flatten(Module):
    """Flattens the axes start_dim..end_dim into one, as torch.nn.Flatten."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1,
                 autograd_engine: Autograd | None = None) -> None:
        super().__init__(autograd_engine)
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, A: np.ndarray) -> np.ndarray:
        shape = np.shape(A)
        start, end = self.start_dim % len(shape), self.end_dim % len(shape)
        return F.reshape(A, shape[:start] + (-1,) + shape[end + 1:])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


def _keep_mask(shape: tuple, p: float) -> np.ndarray:
    return np.random.random_sample(shape) >= p


class Dropout(Module):
    """In training, zero each element with probability p and scale the rest by 1/(1-p); in eval, pass.

    The mask of the last training forward is kept in `mask` (drawn from np.random).
    """

    def __init__(self, p: float = 0.5, inplace: bool = False,
                 autograd_engine: Autograd | None = None) -> None:
        super().__init__(autograd_engine)
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must lie in [0, 1], got {p}")
        self.p = p
        self.mask: np.ndarray | None = None

    def forward(self, A: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0:
            return A
        keep = drawn(_keep_mask, (np.shape(A), self.p))  # a compiled step draws again at every call
        self.mask = keep
        scale = 0.0 if self.p == 1 else 1 / (1 - self.p)
        return F.mul(F.where(keep, A, 0.0), scale)  # the mask is a constant: no gradient of its own

    def extra_repr(self) -> str:
        return f"p={self.p}"

"""Activations: Sigmoid, Tanh, ReLU, GELU, Softmax. Each takes the engine as its one positional
argument in homework code (`nn.Tanh(engine)`)."""

from __future__ import annotations

import math

import numpy as np

from mytorch import functional as F
from mytorch.autograd_engine import Autograd
from mytorch.nn.module import Module


class Sigmoid(Module):
    """σ(z) = 1 / (1 + e^-z)."""

    def __init__(self, autograd_engine: Autograd | None = None) -> None:
        super().__init__(autograd_engine)

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return F.sigmoid(Z)


class Tanh(Module):
    """tanh(z)."""

    def __init__(self, autograd_engine: Autograd | None = None) -> None:
        super().__init__(autograd_engine)

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return F.tanh(Z)


class ReLU(Module):
    """max(z, 0); its derivative at 0 is taken as 0, as in PyTorch. (`inplace` changes nothing here.)"""

    def __init__(self, inplace: bool = False, autograd_engine: Autograd | None = None) -> None:
        super().__init__(autograd_engine)

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return F.relu(Z)


class GELU(Module):
    """z Φ(z) = ½ z (1 + erf(z/√2)), the exact form; approximate="tanh" gives PyTorch's tanh form."""

    def __init__(self, approximate: str = "none", autograd_engine: Autograd | None = None) -> None:
        super().__init__(autograd_engine)
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, Z: np.ndarray) -> np.ndarray:
        if self.approximate == "tanh":  # ½ z (1 + tanh(√(2/π) (z + 0.044715 z³)))
            inner = F.mul(math.sqrt(2 / math.pi), F.add(Z, F.mul(0.044715, F.mul(Z, F.mul(Z, Z)))))
            return F.mul(F.mul(0.5, Z), F.add(1.0, F.tanh(inner)))
        return F.mul(F.mul(0.5, Z), F.add(1.0, F.erf(F.div(Z, math.sqrt(2.0)))))

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    """exp(z_i) / Σ_j exp(z_j) along `dim` (dim=None picks PyTorch's legacy axis: 0 for 0-, 1- and
    3-D inputs, else 1)."""

    def __init__(self, dim: int | None = None, autograd_engine: Autograd | None = None) -> None:
        super().__init__(autograd_engine)
        self.dim = dim

    def forward(self, Z: np.ndarray) -> np.ndarray:
        dim = self.dim
        if dim is None:
            dim = 0 if np.ndim(Z) in (0, 1, 3) else 1
        return F.softmax(Z, axis=dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

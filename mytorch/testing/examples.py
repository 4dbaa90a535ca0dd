"""Worked examples for mytorch.testing: hand-written layers (one right, two with classic bugs)
and a user-defined primitive.

The layers follow the homework protocol: `Z = layer.forward(A)`, then `dLdA = layer.backward(dLdZ)`
sets `dLdW` and `dLdb`. With `Z = A Wᵀ + b` (W of shape (out, in), A of shape (batch, in)):

    dLdA = dLdZ W          dLdW = dLdZᵀ A          dLdb = Σ_batch dLdZ

>>> from mytorch.testing import check_layer
>>> check_layer(HandwrittenLinear(3, 2)).examples > 0
True
"""

from __future__ import annotations

import numpy as np

from mytorch import functional as F

__all__ = ["HandwrittenLinear", "LinearBiasNotSummed", "LinearMissingTranspose", "softplus"]


class HandwrittenLinear:
    """A linear layer with its backward written by hand, correctly."""

    def __init__(self, in_features: int, out_features: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.W = rng.uniform(-1, 1, (out_features, in_features))
        self.b = rng.uniform(-1, 1, out_features)

    def forward(self, A: np.ndarray) -> np.ndarray:
        self.A = A
        return A @ self.W.T + self.b

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        self.dLdW = dLdZ.T @ self.A
        self.dLdb = dLdZ.sum(axis=0)
        return dLdZ @ self.W


class LinearMissingTranspose(HandwrittenLinear):
    """Bug: dLdW = Aᵀ dLdZ, the transpose of the right answer (shape (in, out), not (out, in))."""

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        dLdA = super().backward(dLdZ)
        self.dLdW = self.A.T @ dLdZ
        return dLdA


class LinearBiasNotSummed(HandwrittenLinear):
    """Bug: the bias gradient is averaged over the batch instead of summed (right only for batch 1)."""

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        dLdA = super().backward(dLdZ)
        self.dLdb = dLdZ.mean(axis=0)
        return dLdA


# A user-defined primitive: softplus(x) = log(1 + eˣ), whose derivative is sigmoid(x). One
# definition holds the three rules; the rules use primitives, so higher derivatives work too.
# `register=False` leaves it out of the built-in table; `register=True` would register it.
softplus = F.primitive(
    "softplus",
    lambda x: np.logaddexp(0.0, x),
    vjp=lambda g, ans, x: (F.mul(g, F.sigmoid(x)),),
    jvp=lambda t, ans, x: F.mul(t[0], F.sigmoid(x)),
    register=False,
)

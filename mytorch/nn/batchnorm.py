"""BatchNorm1d: normalise each feature over the batch, then scale and shift.

    x̂ = (x - μ_B) / √(σ²_B + ε),   y = γ x̂ + β

In training, μ_B and σ²_B are the batch's mean and (biased) variance, and the running statistics
move towards them: running ← (1 - momentum) running + momentum · batch, with the unbiased variance,
as PyTorch does. In eval, the running statistics take their place.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mytorch import functional as F
from mytorch.autograd_engine import Autograd, no_grad
from mytorch.nn.module import Module
from mytorch.tracked import assign, computed


def _copy_as(array: np.ndarray, dtype: np.dtype, shape: tuple) -> np.ndarray:
    return np.array(array, dtype=dtype).reshape(shape)


def _moved(running: np.ndarray, batch: np.ndarray, momentum: Any) -> np.ndarray:
    """running ← (1 - momentum) running + momentum · batch; a momentum of None is given as the count
    of batches seen (an integer array): a cumulative average."""
    if isinstance(momentum, np.ndarray) and momentum.dtype.kind in "iu":
        momentum = 1 / momentum
    return running * (1 - momentum) + momentum * batch


class BatchNorm1d(Module):
    """Batch normalisation over (N, C) or (N, C, L) inputs, as torch.nn.BatchNorm1d.

    >>> bn = BatchNorm1d(3)
    >>> print(np.round(bn(np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])), 3))  # tracked: its parameters are
    [[-1.  0.  1.]
     [ 1.  0. -1.]]
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 autograd_engine: Autograd | None = None) -> None:
        super().__init__(autograd_engine)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.register_parameter("weight", np.ones(num_features) if affine else None)
        self.register_parameter("bias", np.zeros(num_features) if affine else None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features))
            self.register_buffer("running_var", np.ones(num_features))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def forward(self, x: np.ndarray) -> np.ndarray:
        shape = np.shape(x)
        if len(shape) not in (2, 3) or shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm1d({self.num_features}): expected input (N, {self.num_features}) or "
                f"(N, {self.num_features}, L), got shape {shape}"
            )
        axes = (0,) if len(shape) == 2 else (0, 2)
        per_feature = (1, self.num_features) + (1,) * (len(shape) - 2)
        if self.training or not self.track_running_stats:
            count = int(np.prod([shape[a] for a in axes]))
            if self.training and count < 2:
                raise ValueError(
                    f"BatchNorm1d: expected more than 1 value per feature when training, got input {shape}"
                )
            mean = F.mean(x, axis=axes, keepdims=True)
            centered = F.sub(x, mean)
            variance = F.mean(F.mul(centered, centered), axis=axes, keepdims=True)
            if self.training and self.track_running_stats:
                self._update_running_stats(mean, variance, count)
        else:
            # Copies (the running statistics must stay writable for the next training step), made
            # by `computed` so that a compiled evaluation reads them again at every call.
            centered = F.sub(x, computed(_copy_as, (self.running_mean, x.dtype, per_feature)))
            variance = computed(_copy_as, (self.running_var, x.dtype, per_feature))
        x_hat = F.div(centered, F.sqrt(F.add(variance, self.eps)))
        if not self.affine:
            return x_hat
        return F.add(F.mul(x_hat, F.reshape(self.weight, per_feature)), F.reshape(self.bias, per_feature))

    @no_grad()  # the statistics are state, not part of the gradient (PyTorch updates them detached)
    def _update_running_stats(self, mean: np.ndarray, variance: np.ndarray, count: int) -> None:
        # Written in place with `assign` and computed with `computed`: a compiled training step
        # reads and moves the statistics at every call, as the eager one does.
        assign(self.num_batches_tracked, computed(np.add, (self.num_batches_tracked, 1)))
        momentum = self.num_batches_tracked if self.momentum is None else self.momentum
        unbiased = variance.reshape(-1) * count / (count - 1)
        assign(self.running_mean, computed(_moved, (self.running_mean, mean.reshape(-1), momentum)))
        assign(self.running_var, computed(_moved, (self.running_var, unbiased, momentum)))

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

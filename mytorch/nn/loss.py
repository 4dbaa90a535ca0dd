"""Losses: MSELoss, CrossEntropyLoss, BCEWithLogitsLoss, and the handout's SoftmaxCrossEntropy.

Each is a composition of primitives, averaged over the batch by default (reduction="mean").
Two ways to get gradients out of a loss:

- PyTorch's: `L = loss_fn(A, Y)`, then `engine.backward(L)` walks the whole tape;
- the drop-in protocol of hand-written layers: `L = loss.forward(A, Y)`, then `dLdA = loss.backward()`
  walks only the loss's own stretch of tape and hands dL/dA to the layer below.

A loss built with an engine (the handout's `nn.SoftmaxCrossEntropy(engine)`, `nn.MSELoss(engine)`)
keeps its value in `loss_val`, and its `backward()` walks the engine from it, filling the gradients
of every layer at once (it still returns dL/dA).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mytorch import functional as F
from mytorch.autograd_engine import Autograd
from mytorch.nn.module import Module, _walk_last_forward, adjoint_of


def _reduce(losses: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "mean":
        return F.mean(losses)
    if reduction == "sum":
        return F.sum(losses)
    return losses  # "none"


class _Loss(Module):
    def __init__(self, reduction: str = "mean", autograd_engine: Autograd | None = None) -> None:
        super().__init__(autograd_engine)
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(
                f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}"
            )
        self.reduction = reduction
        self.loss_val: np.ndarray | None = None
        self._prediction: np.ndarray | None = None

    def backward(self, dLdL: Any = 1.0) -> np.ndarray:
        """dL/dA for the prediction A of the last forward (seeded with dL/dL = 1)."""
        homework = self.__dict__.get("autograd_engine") is not None
        adjoints = _walk_last_forward(self, dLdL, consume=not homework)
        if homework:  # the handout's loss.backward(): walk the whole engine from the loss
            self._last.engine.backward(self.loss_val)
        return adjoint_of(adjoints, self._prediction)

    def _keep(self, prediction: np.ndarray, loss: np.ndarray) -> np.ndarray:
        self._prediction, self.loss_val = prediction, loss
        return loss

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """mean((A - Y)²) over every element, as torch.nn.MSELoss (symmetric in its two arguments).

    >>> MSELoss()(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    array(2.)
    """

    def __init__(self, autograd_engine: Autograd | None = None, reduction: str = "mean") -> None:
        if isinstance(autograd_engine, str):  # MSELoss("sum")
            autograd_engine, reduction = None, autograd_engine
        super().__init__(reduction, autograd_engine)

    def forward(self, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
        if np.shape(A) != np.shape(Y):
            raise ValueError(f"MSELoss: prediction of shape {np.shape(A)}, target of shape {np.shape(Y)}")
        error = F.sub(A, Y)
        return self._keep(A, _reduce(F.mul(error, error), self.reduction))


def _class_rows(logits: np.ndarray, target: Any, name: str) -> tuple[np.ndarray, Any, tuple]:
    """Logits (N, C), (C,) or (N, C, d...) as rows (M, C) with the class axis last; target to match."""
    shape, target = np.shape(logits), np.asarray(target)
    labels = target.dtype.kind in "iub"
    if len(shape) == 1:
        return F.reshape(logits, (1, -1)), (target.reshape(1) if labels else target.reshape(1, -1)), ()
    if len(shape) == 2:
        return logits, target, (shape[0],)
    moved = (0, *range(2, len(shape)), 1)  # (N, C, d...) -> (N, d..., C)
    rows = F.reshape(F.transpose(logits, moved), (-1, shape[1]))
    if labels:
        return rows, target.reshape(-1), (shape[0], *shape[2:])
    if np.shape(target) != shape:
        raise ValueError(f"{name}: target of shape {np.shape(target)} for logits of shape {shape}")
    return rows, F.reshape(F.transpose(target, moved), (-1, shape[1])), (shape[0], *shape[2:])


class CrossEntropyLoss(_Loss):
    """-log softmax(A)[y], averaged over the batch, as torch.nn.CrossEntropyLoss.

    Y is integer class labels (N,) or rows of class probabilities (N, C) such as one-hot rows.
    Computed through log-sum-exp, so logits of ±1e4 give a finite loss and finite gradients.

    >>> float(np.round(CrossEntropyLoss()(np.array([[2.0, 0.0, -1.0]]), np.array([0])), 4))
    0.1698
    """

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0, autograd_engine: Autograd | None = None) -> None:
        super().__init__(reduction, autograd_engine)
        if weight is not None:
            raise NotImplementedError("CrossEntropyLoss: class weights are not supported")
        if ignore_index != -100:
            raise NotImplementedError("CrossEntropyLoss: ignore_index is not supported")
        if not 0 <= label_smoothing <= 1:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must lie in [0, 1], got {label_smoothing}")
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, A: np.ndarray, Y: Any) -> np.ndarray:
        rows, target, batch_shape = _class_rows(A, Y, "CrossEntropyLoss")
        classes = np.shape(rows)[-1]
        if np.asarray(target).dtype.kind in "iub" and self.label_smoothing:
            target = np.eye(classes, dtype=rows.dtype)[np.asarray(target)]
        if self.label_smoothing:  # (1 - ε) y + ε / C
            target = F.add(F.mul(1 - self.label_smoothing, target), self.label_smoothing / classes)
        if self.reduction == "mean":
            return self._keep(A, F.cross_entropy(rows, target))  # fused: one tape entry
        log_probs = F.log_softmax(rows, axis=-1)
        if np.asarray(target).dtype.kind in "iub":
            labels = np.asarray(target)
            picked = F.getitem(log_probs, (np.arange(len(labels)), labels))
        else:
            picked = F.sum(F.mul(target, log_probs), axis=-1)
        losses = F.reshape(F.neg(picked), batch_shape)
        return self._keep(A, _reduce(losses, self.reduction))


def _softplus(x: np.ndarray) -> np.ndarray:
    # log(1 + e^x) = logsumexp(0, x): never overflows, and its derivative is exactly σ(x)
    return F.logsumexp(F.stack([np.zeros_like(x), x], axis=-1), axis=-1)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of σ(A) against targets Y in [0, 1], computed from the logits A.

        loss = p·Y·softplus(-A) + (1 - Y)·softplus(A)     (p = pos_weight, 1 by default)

    which is -[p Y log σ(A) + (1 - Y) log(1 - σ(A))] without ever taking the log of 0.

    >>> float(np.round(BCEWithLogitsLoss()(np.array([0.0]), np.array([1.0])), 4))
    0.6931
    """

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None,
                 autograd_engine: Autograd | None = None) -> None:
        super().__init__(reduction, autograd_engine)
        self.weight, self.pos_weight = weight, pos_weight

    def forward(self, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
        if np.shape(A) != np.shape(Y):
            raise ValueError(
                f"BCEWithLogitsLoss: logits of shape {np.shape(A)}, target of shape {np.shape(Y)}"
            )
        positive = F.mul(Y, _softplus(F.neg(A)))
        if self.pos_weight is not None:
            positive = F.mul(self.pos_weight, positive)
        losses = F.add(positive, F.mul(F.sub(1.0, Y), _softplus(A)))
        if self.weight is not None:
            losses = F.mul(self.weight, losses)
        return self._keep(A, _reduce(losses, self.reduction))


def _is_target(value: Any) -> bool:
    """Integer labels, or rows of probabilities (what a target looks like and logits do not)."""
    array = np.asarray(value)
    if array.dtype.kind in "iub":
        return True
    if array.dtype.kind != "f" or array.size == 0:
        return False
    return bool(np.all((array >= 0) & (array <= 1)) and np.allclose(array.sum(axis=-1), 1))


class SoftmaxCrossEntropy(_Loss):
    """The handout's loss: `loss(y, y_hat)`, target first, a (1,)-shaped mean cross-entropy.

    Keeps the value in `loss_val`; with an engine, `backward()` walks the engine from it.
    (If the first argument cannot be a target and the second can, they are taken the other way round.)

    >>> loss = SoftmaxCrossEntropy()
    >>> loss(np.array([[0.0, 1.0]]), np.array([[0.0, 0.0]])).round(4)
    array([0.6931])
    """

    def __init__(self, autograd_engine: Autograd | None = None) -> None:
        super().__init__("mean", autograd_engine)

    def forward(self, y: Any, y_hat: np.ndarray) -> np.ndarray:
        if not _is_target(y) and _is_target(y_hat):
            y, y_hat = y_hat, y
        rows, target, _ = _class_rows(y_hat, y, "SoftmaxCrossEntropy")
        return self._keep(y_hat, F.reshape(F.cross_entropy(rows, target), (1,)))

"""Losses: MSELoss, CrossEntropyLoss, BCEWithLogitsLoss, and the handout's SoftmaxCrossEntropy.

Each is a composition of primitives, averaged over the batch by default (reduction="mean").
Two ways to get gradients out of a loss:

- PyTorch's: `L = loss_fn(A, Y)`, then `engine.backward(L)` walks the whole tape;
- the drop-in protocol of hand-written layers: `L = loss.forward(A, Y)`, then `dLdA = loss.backward()`
  walks only the loss's own stretch of tape and hands dL/dA to the layer below.

A loss built with an engine (the handout's `nn.SoftmaxCrossEntropy(engine)`, `nn.MSELoss(engine)`)
keeps its value in `loss_val`, and its `backward()` walks the engine from it, filling the gradients
of every layer at once; it still returns dL/dA, and the layer-by-layer walk that follows in the
handouts (`l2.backward(dLdZ)`, ...) works too: each layer walks its own records, which the loss kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mytorch import functional as F
from mytorch.autograd_engine import Autograd
from mytorch.nn.module import Module, _walk_last_forward, adjoint_of, remember_loss_walk


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
        """dL/dA for the prediction A of the last forward (seeded with dL/dL = 1).

        Built with an engine (the handouts' `SoftmaxCrossEntropy(engine)`), it walks the whole
        engine from the loss, filling every layer's gradients and consuming the tape (so the
        parameters are writable for the step); the layer-by-layer walk the handouts also teach,
        `l2.backward(dLdZ)` with the dL/dA returned here, still works: each layer walks its own
        records, which the loss kept, and sets the same gradients.
        """
        homework = self.__dict__.get("autograd_engine") is not None
        adjoints = _walk_last_forward(self, dLdL, consume=not homework)
        if homework:  # the handout's loss.backward(): walk the whole engine from the loss
            walked = self._last.engine
            remember_loss_walk(walked, list(walked.operation_list))
            walked.backward(self.loss_val)
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
    """The handout's loss: `loss(y, y_hat)`, target first (one-hot rows), a (1,)-shaped mean
    cross-entropy.

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
        if np.shape(y) != np.shape(y_hat):  # the handout's target is one-hot rows, not labels
            raise ValueError(
                f"SoftmaxCrossEntropy: the target must be one-hot rows of the prediction's shape "
                f"{np.shape(y_hat)}, got shape {np.shape(y)} (for class labels, use CrossEntropyLoss)"
            )
        rows, target, _ = _class_rows(y_hat, y, "SoftmaxCrossEntropy")
        return self._keep(y_hat, F.reshape(F.cross_entropy(rows, target), (1,)))


# A log-probability that stands for log 0 in the CTC recursion: finite, so that a logsumexp over
# unreachable states only has finite inputs (-inf there would give 0 · nan = nan in its gradient),
# and so far below any real value that exp(_LOG_ZERO - x) is exactly 0 next to a reachable state.
_LOG_ZERO = -1e30


def _ctc_labels(targets: Any, target_lengths: np.ndarray, batch: int) -> list[np.ndarray]:
    """Each sequence's labels, from padded rows (N, S) or one concatenated 1-D array, as PyTorch."""
    targets = np.asarray(targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"CTCLoss: targets must be integer labels, got dtype {targets.dtype}")
    if targets.ndim == 2:
        if targets.shape[0] != batch or np.any(target_lengths > targets.shape[1]):
            raise ValueError(
                f"CTCLoss: targets of shape {targets.shape} for a batch of {batch} with target "
                f"lengths {target_lengths.tolist()}"
            )
        return [targets[n, :length] for n, length in enumerate(target_lengths)]
    if targets.ndim != 1 or targets.size != target_lengths.sum():
        raise ValueError(
            f"CTCLoss: 1-D targets must hold the {target_lengths.sum()} labels of all sequences "
            f"one after the other, got shape {targets.shape}"
        )
    return np.split(targets, np.cumsum(target_lengths)[:-1])


def _shifted(alpha: np.ndarray, by: int) -> np.ndarray:
    """alpha moved `by` states up along the last axis, log 0 coming in at the bottom."""
    states = np.shape(alpha)[-1]
    padded = F.pad(alpha, ((0, 0), (by, 0)), constant_values=_LOG_ZERO)
    return F.getitem(padded, (slice(None), slice(0, states)))


class CTCLoss(_Loss):
    """Connectionist temporal classification, as torch.nn.CTCLoss: the negative log-likelihood of
    each target sequence, summed over every alignment of it to the input frames.

    `loss(log_probs, targets, input_lengths, target_lengths)` with log_probs (T, N, C) (or (T, C)),
    targets (N, S) padded or 1-D concatenated. Built from primitives: the forward recursion over
    the target extended with blanks (b, l1, b, l2, ..., b) runs in log space,

        α_t(s) = logsumexp(α_{t-1}(s), α_{t-1}(s-1), α_{t-1}(s-2) if l_s ≠ b and l_s ≠ l_{s-2}) + log y_t(l_s)

    and loss = -logsumexp(α_T(S-1), α_T(S-2)); the engine differentiates it, so there is no
    hand-written backward. reduction="mean" divides each loss by its target length, then averages
    over the batch. A target too long for its input has an infinite loss (0 with zero_infinity=True)
and no gradient (PyTorch's is nan there without zero_infinity).

    The gradient is the derivative with respect to log_probs. PyTorch's own ctc_loss returns that
    plus exp(log_probs) times the loss's scale, a term which cancels when log_probs come from a
    log_softmax (the usual case); through the log_softmax both give the same gradient.

    >>> log_probs = np.log(np.full((2, 1, 2), 0.5))      # two frames, blank and one label
    >>> float(CTCLoss(reduction="sum")(log_probs, np.array([[1]]), [2], [1]))  # 3 paths of 1/4
    0.2876820724517809
    """

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False,
                 autograd_engine: Autograd | None = None) -> None:
        super().__init__(reduction, autograd_engine)
        self.blank, self.zero_infinity = blank, zero_infinity

    def forward(self, log_probs: np.ndarray, targets: Any, input_lengths: Any,
                target_lengths: Any) -> np.ndarray:
        unbatched = np.ndim(log_probs) == 2
        lp = F.expand_dims(log_probs, 1) if unbatched else log_probs
        if np.ndim(lp) != 3:
            raise ValueError(f"CTCLoss: log_probs must be (T, N, C) or (T, C), not {np.shape(log_probs)}")
        frames, batch, classes = np.shape(lp)
        dtype = lp.dtype if lp.dtype.kind == "f" else np.dtype(float)
        input_lengths = np.asarray(input_lengths, dtype=int).reshape(-1)
        target_lengths = np.asarray(target_lengths, dtype=int).reshape(-1)
        if unbatched:
            targets = np.asarray(targets).reshape(1, -1)
        if input_lengths.shape != (batch,) or target_lengths.shape != (batch,):
            raise ValueError(
                f"CTCLoss: {batch} sequences, but {input_lengths.size} input lengths and "
                f"{target_lengths.size} target lengths"
            )
        if np.any(input_lengths < 1) or np.any(input_lengths > frames) or np.any(target_lengths < 0):
            raise ValueError(
                f"CTCLoss: input lengths must lie in [1, {frames}] and target lengths be non-negative, "
                f"got {input_lengths.tolist()} and {target_lengths.tolist()}"
            )
        labels = _ctc_labels(targets, target_lengths, batch)
        if any(np.any((seq < 0) | (seq >= classes) | (seq == self.blank)) for seq in labels):
            raise ValueError(f"CTCLoss: labels must lie in [0, {classes}) and not be the blank {self.blank}")

        # The extended targets (b, l1, b, ..., lL, b), padded with blanks to the longest; padding
        # states are never read at the end and feed only higher states, so they take no gradient.
        states = 2 * int(target_lengths.max(initial=0)) + 1
        extended = np.full((batch, states), self.blank)
        for n, seq in enumerate(labels):
            extended[n, 1:2 * len(seq):2] = seq
        skip = np.zeros((batch, states), dtype=bool)
        skip[:, 2:] = (extended[:, 2:] != self.blank) & (extended[:, 2:] != extended[:, :-2])

        emissions = F.getitem(lp, (np.arange(frames)[:, None, None], np.arange(batch)[None, :, None],
                                   extended[None]))  # (T, N, states): log y_t(l_s)
        start = np.full((batch, states), _LOG_ZERO, dtype=dtype)
        start[:, :2] = 0  # a path starts at the first blank or the first label
        alpha = F.add(F.getitem(emissions, 0), start)
        for t in range(1, frames):
            before = F.stack([alpha, _shifted(alpha, 1), F.where(skip, _shifted(alpha, 2), _LOG_ZERO)])
            step = F.add(F.logsumexp(before, axis=0), F.getitem(emissions, t))
            alpha = F.where((t < input_lengths)[:, None], step, alpha)  # a finished sequence holds

        rows, last = np.arange(batch), 2 * target_lengths  # the final blank; the last label before it
        ends = F.stack([F.getitem(alpha, (rows, last)),
                        F.where(last >= 1, F.getitem(alpha, (rows, np.maximum(last - 1, 0))), _LOG_ZERO)])
        losses = F.neg(F.logsumexp(ends, axis=0))
        repeats = np.array([int(np.sum(seq[1:] == seq[:-1])) for seq in labels], dtype=int)
        feasible = input_lengths >= target_lengths + repeats  # each repeat needs a blank between
        if not feasible.all():  # no alignment: an infinite loss (0 with zero_infinity), no gradient
            losses = F.where(feasible, losses, dtype.type(0 if self.zero_infinity else np.inf))
        if self.reduction == "mean":
            losses = F.div(losses, np.maximum(target_lengths, 1).astype(dtype))
        if unbatched:
            losses = F.reshape(losses, ())
        return self._keep(log_probs, _reduce(losses, self.reduction))

    def extra_repr(self) -> str:
        return f"blank={self.blank}, reduction={self.reduction!r}, zero_infinity={self.zero_infinity}"

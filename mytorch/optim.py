"""Optimizers: SGD (with momentum and weight decay) and Adam, updating parameters in place.

Gradients are read from the current engine's gradient buffer, where the reverse walk leaves them
for every parameter it reached (parameters enter the tape without being produced on it: they are
leaves). A parameter that no walk reached has no gradient (not a zero one), whether it was not used
at all or used in the forward but off the loss's path; a step leaves it alone (no weight decay, no
momentum, no Adam update), as PyTorch skips a `.grad` of None. `zero_grad()` sets the gradients to
none, as PyTorch's `zero_grad(set_to_none=True)` (its default) does.

>>> import mytorch
>>> from mytorch import functional as F
>>> w = np.array([1.0, -2.0])
>>> opt = SGD([w], lr=0.1)
>>> mytorch.backward(F.sum(F.mul(w, w)))     # gradient 2w
>>> opt.step()
>>> w
array([ 0.8, -1.6])
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np

from mytorch.autograd_engine import engine, no_grad, who_holds


class Optimizer:
    """Holds the parameters; reads their gradients from the current engine; zeroes them."""

    weight_decay: float = 0.0  # L2 regularisation; the optimizers that take it set it

    def __init__(self, params: Iterable[np.ndarray], lr: float) -> None:
        params = list(params)
        name = type(self).__name__
        # Each parameter once: a duplicate would be stepped twice per step (PyTorch warns, and
        # steps it twice).
        self.params = list({id(p): p for p in params}.values())
        if len(self.params) < len(params):
            warnings.warn(
                f"{name}: the parameter list holds the same array more than once; each is stepped once "
                "(Module.parameters() lists a shared parameter once)",
                UserWarning,
                stacklevel=3,
            )
        if not self.params:
            raise ValueError(f"{name}: got an empty parameter list")
        for position, p in enumerate(self.params):
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                raise TypeError(
                    f"{name}: parameter {position} must be a float numpy array, got "
                    f"{getattr(p, 'dtype', type(p).__name__)}"
                )
        if lr < 0:
            raise ValueError(f"{name}: learning rate must be non-negative, got {lr}")
        self.lr = lr
        self.state: list[dict[str, np.ndarray]] = [{} for _ in self.params]

    def gradient(self, p: np.ndarray) -> np.ndarray | None:
        """The gradient of `p` in the current engine's buffer, or None if no walk reached it."""
        return engine().gradient_buffer.gradient(p)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the parameters' gradients in the current engine's buffer (PyTorch's default), or,
        with `set_to_none=False`, set them to zero (then a step still decays them)."""
        buffer = engine().gradient_buffer
        for p in self.params:
            if buffer.is_in_memory(p):
                if set_to_none:
                    buffer.clear_gradient(p)
                else:
                    buffer.set_param(p, np.zeros_like(p))

    def _apply(self, p: np.ndarray, step: np.ndarray) -> None:
        try:
            p -= step
        except ValueError as error:
            if p.flags.writeable:
                raise
            holder = who_holds(p) or "a tape"
            raise RuntimeError(
                f"{type(self).__name__}.step: a parameter of shape {p.shape} is still held read-only by "
                f"{holder}. Run engine.backward(loss) (or engine.zero_grad()) before step(); an "
                "operation on it that the loss does not use stays on the tape until zero_grad()."
            ) from error

    def _decayed_gradient(self, p: np.ndarray) -> np.ndarray | None:
        """p's gradient plus weight_decay · p (L2 regularisation, as torch.optim), or None."""
        g = self.gradient(p)
        if g is not None and self.weight_decay:
            g = g + self.weight_decay * p
        return g

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, as torch.optim.SGD:

        g ← ∇ + weight_decay · p
        v ← momentum · v + (1 - dampening) · g      (v = g on the first step)
        p ← p - lr · (g + momentum · v if nesterov else v)
    """

    def __init__(self, params: Iterable[np.ndarray], lr: float = 1e-3, momentum: float = 0.0,
                 weight_decay: float = 0.0, dampening: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params, lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: momentum ({momentum}) and weight_decay ({weight_decay}) must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
        self.momentum, self.weight_decay = momentum, weight_decay
        self.dampening, self.nesterov = dampening, nesterov

    @no_grad()  # an update is not part of any gradient (as torch.optim steps are)
    def step(self) -> None:
        for p, state in zip(self.params, self.state):
            g = self._decayed_gradient(p)
            if g is None:
                continue
            if self.momentum:
                velocity = state.get("momentum_buffer")
                if velocity is None:
                    velocity = state["momentum_buffer"] = np.array(g, dtype=p.dtype)
                else:
                    velocity *= self.momentum
                    velocity += (1 - self.dampening) * g
                g = g + self.momentum * velocity if self.nesterov else velocity
            self._apply(p, self.lr * g)


class Adam(Optimizer):
    """Adam, as torch.optim.Adam:

        m ← β1 m + (1 - β1) g,   v ← β2 v + (1 - β2) g²
        p ← p - lr · (m / (1 - β1ᵗ)) / (√(v / (1 - β2ᵗ)) + eps)
    """

    def __init__(self, params: Iterable[np.ndarray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, lr)
        if not all(0 <= beta < 1 for beta in betas):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}")
        self.betas, self.eps, self.weight_decay, self.amsgrad = tuple(betas), eps, weight_decay, amsgrad

    @no_grad()  # an update is not part of any gradient (as torch.optim steps are)
    def step(self) -> None:
        beta1, beta2 = self.betas
        for p, state in zip(self.params, self.state):
            g = self._decayed_gradient(p)
            if g is None:
                continue
            if not state:
                state["step"] = np.array(0)
                state["exp_avg"], state["exp_avg_sq"] = np.zeros_like(p), np.zeros_like(p)
                if self.amsgrad:
                    state["max_exp_avg_sq"] = np.zeros_like(p)
            state["step"] += 1
            t = int(state["step"])
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            if self.amsgrad:
                np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
                v = state["max_exp_avg_sq"]
            denominator = np.sqrt(v) / np.sqrt(1 - beta2**t) + self.eps
            self._apply(p, (self.lr / (1 - beta1**t)) * m / denominator)

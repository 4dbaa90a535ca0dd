"""The benchmark's workloads, each as hand-written NumPy (the baseline) and as mytorch.

A workload's implementations all take the same data and return the same gradients, so the runner
can check they agree before it compares their speed. Peers (PyTorch, HIPS autograd, MyGrad) live
in `peers.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mytorch import functional as F
from mytorch.autograd_engine import Autograd

Gradients = list[np.ndarray]


@dataclass
class Workload:
    """One row of the benchmark table."""

    name: str
    kind: str  # "chain" or "mlp": which peer implementation applies
    description: str
    target: str  # what mytorch should reach, as the issue states it
    make_data: Callable[[], dict[str, Any]]
    baseline: Callable[[dict[str, Any]], Gradients]  # hand-written NumPy, forward and backward
    floor: Callable[[dict[str, Any]], Any] | None = None  # NumPy forward only, where that is the yardstick
    per: int = 1  # time is reported per this many operations (1: per step)
    unit: str = "step"
    implementations: dict[str, Callable[[dict[str, Any]], Gradients]] = field(default_factory=dict)


# ---- B1 / B3: a chain of elementwise operations ---------------------------------------------
# Each link is y = tanh(sin(y * w + b)): four operations; w and b are the parameters.


def chain_data(links: int, size: int) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        rng = np.random.default_rng(0)
        return {
            "x": rng.normal(size=size),
            "w": rng.uniform(0.5, 1.5, size=size),
            "b": rng.normal(scale=0.1, size=size),
            "links": links,
        }

    return make


def chain_forward_numpy(d: dict[str, Any]) -> np.ndarray:
    y, w, b = d["x"], d["w"], d["b"]
    for _ in range(d["links"]):
        y = np.tanh(np.sin(y * w + b))
    return y


def chain_numpy(d: dict[str, Any]) -> Gradients:
    y, w, b = d["x"], d["w"], d["b"]
    saved = []
    for _ in range(d["links"]):
        pre = y * w + b
        out = np.tanh(np.sin(pre))
        saved.append((y, pre, out))
        y = out
    grad_w, grad_b, g = np.zeros_like(w), np.zeros_like(b), np.ones_like(y)
    for y_in, pre, out in reversed(saved):
        g = g * (1 - out * out) * np.cos(pre)
        grad_w += g * y_in
        grad_b += g
        g = g * w
    return [grad_w, grad_b]


def chain_mytorch(d: dict[str, Any]) -> Gradients:
    engine = Autograd()
    y, w, b = d["x"], d["w"], d["b"]
    for _ in range(d["links"]):
        y = F.tanh(F.sin(F.add(F.mul(y, w), b)))
    engine.backward(F.sum(y))
    return [engine.gradient_buffer.get_param(w), engine.gradient_buffer.get_param(b)]


# ---- B2: one SGD step of an MLP 784-512-256-10, ReLU, mean softmax cross-entropy, float32 ----

MLP_SIZES = (784, 512, 256, 10)
LEARNING_RATE = 0.01


def mlp_data(batch: int) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        rng = np.random.default_rng(0)
        params = []
        for fan_in, fan_out in zip(MLP_SIZES[:-1], MLP_SIZES[1:]):
            bound = 1 / np.sqrt(fan_in)
            params.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
            params.append(rng.uniform(-bound, bound, fan_out).astype(np.float32))
        return {
            "X": rng.normal(size=(batch, MLP_SIZES[0])).astype(np.float32),
            "y": rng.integers(0, MLP_SIZES[-1], batch),
            "params": params,
        }

    return make


def _sgd(params: list[np.ndarray], grads: Gradients) -> None:
    for p, g in zip(params, grads):
        p -= LEARNING_RATE * g


def mlp_numpy(d: dict[str, Any]) -> Gradients:
    X, labels, params = d["X"], d["y"], d["params"]
    W1, b1, W2, b2, W3, b3 = params
    n = len(labels)
    h1 = X @ W1.T + b1
    a1 = np.maximum(h1, 0)
    h2 = a1 @ W2.T + b2
    a2 = np.maximum(h2, 0)
    logits = a2 @ W3.T + b3
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    g = probs
    g[np.arange(n), labels] -= 1
    g /= n
    grads = [None] * 6
    grads[4], grads[5] = g.T @ a2, g.sum(axis=0)
    g = g @ W3
    g *= h2 > 0
    grads[2], grads[3] = g.T @ a1, g.sum(axis=0)
    g = g @ W2
    g *= h1 > 0
    grads[0], grads[1] = g.T @ X, g.sum(axis=0)
    _sgd(params, grads)
    return grads


def mlp_mytorch(d: dict[str, Any]) -> Gradients:
    X, labels, params = d["X"], d["y"], d["params"]
    W1, b1, W2, b2, W3, b3 = params
    engine = Autograd()
    hidden = F.relu(F.linear(X, W1, b1))
    hidden = F.relu(F.linear(hidden, W2, b2))
    loss = F.cross_entropy(F.linear(hidden, W3, b3), labels)
    engine.backward(loss, inputs=params)  # as the hand-written step, skip the gradient of X
    grads = [engine.gradient_buffer.get_param(p) for p in params]
    _sgd(params, grads)
    return grads


def workloads() -> list[Workload]:
    """The benchmark's rows."""
    chain_links = 500  # 2000 operations
    long_links = 25_000  # 100,000 operations
    rows = [
        Workload(
            "B1 elementwise", "chain", "2000 elementwise ops on (8,), forward+backward, per op",
            "<= 5x the NumPy forward floor",
            chain_data(chain_links, 8), chain_numpy, chain_forward_numpy,
            per=4 * chain_links, unit="op",
            implementations={"mytorch": chain_mytorch},
        ),
        Workload(
            "B2 MLP N=256", "mlp", "MLP 784-512-256-10, ReLU, mean softmax CE, float32, SGD step",
            "<= 1.10x hand-written",
            mlp_data(256), mlp_numpy, implementations={"mytorch": mlp_mytorch},
        ),
        Workload(
            "B2 MLP N=32", "mlp", "the same MLP step at batch 32", "<= 1.3x hand-written",
            mlp_data(32), mlp_numpy, implementations={"mytorch": mlp_mytorch},
        ),
        Workload(
            "B3 chain 1e5", "chain", "100,000-op chain on (1,), forward+backward", "< 1.5 s",
            chain_data(long_links, 1), chain_numpy,
            implementations={"mytorch": chain_mytorch},
        ),
    ]
    return rows

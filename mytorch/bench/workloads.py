"""The benchmark's workloads, each as hand-written NumPy (the baseline) and as mytorch.

A workload's implementations all take the same data and return the same gradients, so the runner
can check they agree before it compares their speed. Peers (PyTorch, HIPS autograd, MyGrad) live
in `peers.py`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mytorch import autograd_engine
from mytorch import functional as F
from mytorch.autograd_engine import Autograd
from mytorch.compile import compile as compile_step
from mytorch.tracked import track
from mytorch.transforms import value_and_grad

Gradients = list[np.ndarray]


@dataclass
class Workload:
    """One row of the benchmark table."""

    name: str
    kind: str  # "chain", "mlp", "conv" or "rnn": which peer implementation applies
    description: str
    target: str  # what mytorch should reach, as the issue states it
    make_data: Callable[[], dict[str, Any]]
    baseline: Callable[[dict[str, Any]], Gradients]  # hand-written NumPy, forward and backward
    floor: Callable[[dict[str, Any]], Any] | None = None  # NumPy forward only, where that is the yardstick
    per: int = 1  # time is reported per this many operations (1: per step)
    unit: str = "step"
    implementations: dict[str, Callable[[dict[str, Any]], Gradients]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # printed under the row (a row skipped, and why)


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


def chain_operators(d: dict[str, Any]) -> Gradients:
    """B1 as a newcomer writes it: NumPy operators and functions on tracked arrays."""
    engine = Autograd()
    w, b = track(d["w"]), track(d["b"])
    y = d["x"]
    for _ in range(d["links"]):
        y = np.tanh(np.sin(y * w + b))
    engine.backward(np.sum(y))
    return [engine.gradient_buffer.get_param(w), engine.gradient_buffer.get_param(b)]


def _chain_loss(w: np.ndarray, b: np.ndarray, x: np.ndarray, links: int) -> np.ndarray:
    y = x
    for _ in range(links):
        y = F.tanh(F.sin(F.add(F.mul(y, w), b)))
    return F.sum(y)


_chain_step = compile_step(value_and_grad(_chain_loss, argnums=(0, 1)))


def chain_compiled(d: dict[str, Any]) -> Gradients:
    _, grads = _chain_step(d["w"], d["b"], d["x"], d["links"])
    return list(grads)


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


def _mlp_loss(W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray, W3: np.ndarray, b3: np.ndarray,
              X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    hidden = F.relu(F.linear(X, W1, b1))
    hidden = F.relu(F.linear(hidden, W2, b2))
    return F.cross_entropy(F.linear(hidden, W3, b3), labels)


_mlp_step = compile_step(value_and_grad(_mlp_loss, argnums=tuple(range(6))))


def mlp_compiled(d: dict[str, Any]) -> Gradients:
    params = d["params"]
    _, grads = _mlp_step(*params, d["X"], d["y"])
    _sgd(params, grads)
    return list(grads)


# ---- a conv step: conv2d 3->8 (3x3, padding 1), ReLU, 2x2 max-pool, linear to 10, mean CE ------

CONV_SHAPE = (32, 3, 16, 16)  # N, C, H, W


def conv_data() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    n, channels, height, width = CONV_SHAPE
    features = 8 * (height // 2) * (width // 2)
    return {
        "X": rng.normal(size=CONV_SHAPE),
        "y": rng.integers(0, 10, n),
        "params": [
            rng.normal(scale=0.2, size=(8, channels, 3, 3)), rng.normal(scale=0.1, size=8),
            rng.normal(scale=0.02, size=(10, features)), rng.normal(scale=0.1, size=10),
        ],
    }


def _softmax_ce_grad(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    probs[np.arange(len(labels)), labels] -= 1
    return probs / len(labels)


def conv_numpy(d: dict[str, Any]) -> Gradients:
    X, labels, (K, c, V, v) = d["X"], d["y"], d["params"]
    n, _, height, width = X.shape
    padded = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))  # n,C,H,W,3,3
    conv = np.einsum("nchwij,fcij->nfhw", windows, K, optimize=True) + c[:, None, None]
    active = np.maximum(conv, 0)
    blocks = active.reshape(n, 8, height // 2, 2, width // 2, 2)
    pooled = blocks.max(axis=(3, 5))
    logits = pooled.reshape(n, -1) @ V.T + v
    g = _softmax_ce_grad(logits, labels)
    grad_V, grad_v = g.T @ pooled.reshape(n, -1), g.sum(axis=0)
    g = (g @ V).reshape(pooled.shape)
    winners = blocks == pooled[:, :, :, None, :, None]  # ties are measure-zero on this data
    g = (winners * g[:, :, :, None, :, None]).reshape(active.shape) * (conv > 0)
    grad_K = np.einsum("nchwij,nfhw->fcij", windows, g, optimize=True)
    return [grad_K, g.sum(axis=(0, 2, 3)), grad_V, grad_v]


def conv_mytorch(d: dict[str, Any]) -> Gradients:
    X, labels, params = d["X"], d["y"], d["params"]
    K, c, V, v = params
    engine = Autograd()
    hidden = F.max_pool2d(F.relu(F.conv2d(X, K, c, padding=1)), 2)
    loss = F.cross_entropy(F.linear(F.reshape(hidden, (len(labels), -1)), V, v), labels)
    engine.backward(loss, inputs=params)
    return [engine.gradient_buffer.get_param(p) for p in params]


def _conv_loss(K: np.ndarray, c: np.ndarray, V: np.ndarray, v: np.ndarray, X: np.ndarray,
               labels: np.ndarray) -> np.ndarray:
    hidden = F.max_pool2d(F.relu(F.conv2d(X, K, c, padding=1)), 2)
    return F.cross_entropy(F.linear(F.reshape(hidden, (len(labels), -1)), V, v), labels)


_conv_step = compile_step(value_and_grad(_conv_loss, argnums=(0, 1, 2, 3)))


def conv_compiled(d: dict[str, Any]) -> Gradients:
    _, grads = _conv_step(*d["params"], d["X"], d["y"])
    return list(grads)


# ---- B4: conv2d 16->32 (3x3, padding 1) on (32, 16, 32, 32), ReLU, mean-pool, linear to 10, CE, f32 --

B4_SHAPE = (32, 16, 32, 32)  # N, C, H, W
B4_FILTERS = 32


def b4_data() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    n, channels, _, _ = B4_SHAPE
    return {
        "X": rng.normal(size=B4_SHAPE).astype(np.float32),
        "y": rng.integers(0, 10, n),
        "params": [p.astype(np.float32) for p in (
            rng.normal(scale=0.1, size=(B4_FILTERS, channels, 3, 3)), rng.normal(scale=0.1, size=B4_FILTERS),
            rng.normal(scale=0.3, size=(10, B4_FILTERS)), rng.normal(scale=0.1, size=10),
        )],
    }


def b4_numpy(d: dict[str, Any]) -> Gradients:
    """Hand-written im2col: one windows buffer (rows = output positions, NHWC), reused for the
    weight gradient; the network kept channels-last throughout."""
    X, labels, (K, c, V, v) = d["X"], d["y"], d["params"]
    n, channels, height, width = X.shape
    filters = K.shape[0]
    padded = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))  # n,C,H,W,3,3
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * height * width, channels * 9)  # a copy
    conv = cols @ K.reshape(filters, -1).T + c  # (n*H*W, F)
    active = np.maximum(conv, 0)
    pooled = active.reshape(n, height * width, filters).mean(axis=1)
    logits = pooled @ V.T + v
    g = _softmax_ce_grad(logits, labels)
    grad_V, grad_v = g.T @ pooled, g.sum(axis=0)
    g = (g @ V) / (height * width)  # (n, F): the mean's adjoint, spread over the positions
    g_conv = (conv > 0).reshape(n, height * width, filters) * g[:, None, :]
    g_conv = g_conv.reshape(n * height * width, filters)
    grad_K = (g_conv.T @ cols).reshape(K.shape)
    return [grad_K, g_conv.sum(axis=0), grad_V, grad_v]


def b4_mytorch(d: dict[str, Any]) -> Gradients:
    X, labels, params = d["X"], d["y"], d["params"]
    K, c, V, v = params
    engine = Autograd()
    pooled = F.mean(F.relu(F.conv2d(X, K, c, padding=1)), axis=(2, 3))
    engine.backward(F.cross_entropy(F.linear(pooled, V, v), labels), inputs=params)
    return [engine.gradient_buffer.get_param(p) for p in params]


def _b4_loss(K: np.ndarray, c: np.ndarray, V: np.ndarray, v: np.ndarray, X: np.ndarray,
             labels: np.ndarray) -> np.ndarray:
    pooled = F.mean(F.relu(F.conv2d(X, K, c, padding=1)), axis=(2, 3))
    return F.cross_entropy(F.linear(pooled, V, v), labels)


_b4_step = compile_step(value_and_grad(_b4_loss, argnums=(0, 1, 2, 3)))


def b4_compiled(d: dict[str, Any]) -> Gradients:
    _, grads = _b4_step(*d["params"], d["X"], d["y"])
    return list(grads)


# ---- an RNN step: 10 steps of h = tanh(x Wihᵀ + bih + h Whhᵀ + bhh), linear to 10, mean CE -----

RNN_STEPS, RNN_BATCH, RNN_INPUT, RNN_HIDDEN = 10, 32, 16, 64


def rnn_data() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    scale = 1 / np.sqrt(RNN_HIDDEN)
    return {
        "X": rng.normal(size=(RNN_STEPS, RNN_BATCH, RNN_INPUT)),
        "y": rng.integers(0, 10, RNN_BATCH),
        "params": [  # W_ih, W_hh, b_ih, b_hh, V, v
            rng.uniform(-scale, scale, shape)
            for shape in [(RNN_HIDDEN, RNN_INPUT), (RNN_HIDDEN, RNN_HIDDEN), RNN_HIDDEN, RNN_HIDDEN,
                          (10, RNN_HIDDEN), 10]
        ],
    }


def rnn_numpy(d: dict[str, Any]) -> Gradients:
    X, labels, (W_ih, W_hh, b_ih, b_hh, V, v) = d["X"], d["y"], d["params"]
    states = [np.zeros((RNN_BATCH, RNN_HIDDEN))]
    for x in X:
        states.append(np.tanh(x @ W_ih.T + b_ih + states[-1] @ W_hh.T + b_hh))
    g = _softmax_ce_grad(states[-1] @ V.T + v, labels)
    grads = [np.zeros_like(W_ih), np.zeros_like(W_hh), np.zeros_like(b_ih), None, g.T @ states[-1], g.sum(0)]
    g = g @ V
    for t in range(RNN_STEPS - 1, -1, -1):  # backpropagation through time
        g = g * (1 - states[t + 1] ** 2)
        grads[0] += g.T @ X[t]
        grads[1] += g.T @ states[t]
        grads[2] += g.sum(axis=0)
        g = g @ W_hh
    grads[3] = grads[2].copy()
    return grads


def rnn_mytorch(d: dict[str, Any]) -> Gradients:
    X, labels, params = d["X"], d["y"], d["params"]
    W_ih, W_hh, b_ih, b_hh, V, v = params
    engine = Autograd()
    h = np.zeros((RNN_BATCH, RNN_HIDDEN))
    for x in X:
        h = F.tanh(F.add(F.linear(x, W_ih, b_ih), F.linear(h, W_hh, b_hh)))
    engine.backward(F.cross_entropy(F.linear(h, V, v), labels), inputs=params)
    return [engine.gradient_buffer.get_param(p) for p in params]


def _rnn_loss(W_ih: np.ndarray, W_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray, V: np.ndarray,
              v: np.ndarray, X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    h = np.zeros((X.shape[1], W_hh.shape[0]))
    for x in X:
        h = F.tanh(F.add(F.linear(x, W_ih, b_ih), F.linear(h, W_hh, b_hh)))
    return F.cross_entropy(F.linear(h, V, v), labels)


_rnn_step = compile_step(value_and_grad(_rnn_loss, argnums=tuple(range(6))))


def rnn_compiled(d: dict[str, Any]) -> Gradients:
    _, grads = _rnn_step(*d["params"], d["X"], d["y"])
    return list(grads)


# ---- the cost of each safety feature: the same eager step with one feature switched off ---------
# The engine's interface (issue 24): `mytorch.autograd_engine.safety_off(feature)`, a context manager
# under which that one feature is off; "guard" (arrays the tape reads are not locked read-only),
# "consumption" (a walk does not consume the tape: no release, no refusal of a second walk),
# "checks" (record-time law checks skipped). Results are the same with a feature off; only the cost
# shows. An engine without the switch (or refusing a feature) has no such row, and a note says so.

SAFETY_FEATURES = ("guard", "consumption", "checks")


def safety_row(feature: str) -> str:
    """The name of the row that times the eager step with `feature` switched off."""
    return f"mytorch {feature} off"


def safety_rows(eager: Callable[[dict[str, Any]], Gradients]) -> tuple[dict[str, Callable], list[str]]:
    """`eager` once per safety feature, run with that feature off; and notes for rows left out."""
    switch = getattr(autograd_engine, "safety_off", None)
    if switch is None:
        return {}, ["no safety-off rows: mytorch.autograd_engine.safety_off(feature) is not defined"]
    rows, notes = {}, []
    for feature in SAFETY_FEATURES:
        try:  # probe: an engine may know some features only
            with switch(feature):
                pass
        except (ValueError, KeyError, TypeError, NotImplementedError) as error:
            notes.append(f"no {safety_row(feature)!r} row: safety_off({feature!r}) refused ({error})")
            continue
        rows[safety_row(feature)] = _with_safety_off(switch, feature, eager)
    return rows, notes


def _with_safety_off(switch: Callable[[str], contextlib.AbstractContextManager], feature: str,
                     eager: Callable[[dict[str, Any]], Gradients]) -> Callable[[dict[str, Any]], Gradients]:
    def run(d: dict[str, Any]) -> Gradients:
        with switch(feature):
            return eager(d)

    run.__name__ = f"{eager.__name__}_{feature}_off"
    return run


def workloads() -> list[Workload]:
    """The benchmark's rows."""
    chain_links = 500  # 2000 operations
    long_links = 25_000  # 100,000 operations
    mlp_implementations = {"mytorch": mlp_mytorch, "mytorch compiled": mlp_compiled}
    # The safety rows where the per-op cost shows most (B1) and where a training step is small (B2
    # at N=32, the RNN).
    chain_off, chain_notes = safety_rows(chain_mytorch)
    mlp_off, mlp_notes = safety_rows(mlp_mytorch)
    rnn_off, rnn_notes = safety_rows(rnn_mytorch)
    rows = [
        Workload(
            "B1 elementwise", "chain", "2000 elementwise ops on (8,), forward+backward, per op",
            "eager <= 0.7x PyTorch per op; compiled <= 0.8x hand-written; operators <= 1.3x F.*",
            chain_data(chain_links, 8), chain_numpy, chain_forward_numpy,
            per=4 * chain_links, unit="op",
            implementations={"mytorch": chain_mytorch, "mytorch operators": chain_operators,
                             "mytorch compiled": chain_compiled, **chain_off},
            notes=chain_notes,
        ),
        Workload(
            "B2 MLP N=256", "mlp", "MLP 784-512-256-10, ReLU, mean softmax CE, float32, SGD step",
            "eager <= 1.03x hand-written",
            mlp_data(256), mlp_numpy, implementations=dict(mlp_implementations),
        ),
        Workload(
            "B2 MLP N=32", "mlp", "the same MLP step at batch 32",
            "eager <= 1.10x, compiled <= 1.03x hand-written",
            mlp_data(32), mlp_numpy, implementations={**mlp_implementations, **mlp_off}, notes=mlp_notes,
        ),
        Workload(
            "conv step", "conv", "conv2d 3->8 3x3 pad 1, ReLU, max-pool 2, linear, CE on (32, 3, 16, 16)",
            "(no target set)", conv_data, conv_numpy,
            implementations={"mytorch": conv_mytorch, "mytorch compiled": conv_compiled},
        ),
        Workload(
            "B4 conv step", "b4",
            "conv2d 16->32 3x3 pad 1 on (32, 16, 32, 32), ReLU, mean-pool, linear, CE, f32",
            "eager <= 1.4x PyTorch, compiled <= 1.2x PyTorch; peak memory <= 1.2x hand-written",
            b4_data, b4_numpy, implementations={"mytorch": b4_mytorch, "mytorch compiled": b4_compiled},
        ),
        Workload(
            "RNN step", "rnn", "10-step tanh RNN, batch 32, 16 -> 64 hidden, linear, CE (BPTT)",
            "eager <= 1.8x hand-written, compiled <= 1.05x",
            rnn_data, rnn_numpy, notes=rnn_notes,
            implementations={"mytorch": rnn_mytorch, "mytorch compiled": rnn_compiled, **rnn_off},
        ),
        Workload(
            "B3 chain 1e5", "chain", "100,000-op chain on (1,), forward+backward", "<= 0.8 s",
            chain_data(long_links, 1), chain_numpy,
            implementations={"mytorch": chain_mytorch},
        ),
    ]
    return rows

"""The same workloads in PyTorch, HIPS autograd and MyGrad, each joining only when installed."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

from mytorch.bench.workloads import LEARNING_RATE, Gradients


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _torch() -> Any:
    """PyTorch on one thread, as NumPy's BLAS in the benchmark (OPENBLAS_NUM_THREADS=1): on a
    shared machine its thread pool would otherwise spin against the other processes."""
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    return torch


# ---- PyTorch ---------------------------------------------------------------------------------


def torch_chain(d: dict[str, Any]) -> Gradients:
    torch = _torch()
    y = torch.from_numpy(d["x"])
    w = torch.from_numpy(d["w"].copy()).requires_grad_()
    b = torch.from_numpy(d["b"].copy()).requires_grad_()
    for _ in range(d["links"]):
        y = torch.tanh(torch.sin(y * w + b))
    y.sum().backward()
    return [w.grad.numpy(), b.grad.numpy()]


def torch_mlp(d: dict[str, Any]) -> Gradients:
    torch = _torch()
    params = d.setdefault("torch_params", [torch.from_numpy(p).requires_grad_() for p in d["params"]])
    W1, b1, W2, b2, W3, b3 = params
    X, labels = torch.from_numpy(d["X"]), torch.from_numpy(d["y"])
    hidden = torch.relu(torch.nn.functional.linear(X, W1, b1))
    hidden = torch.relu(torch.nn.functional.linear(hidden, W2, b2))
    loss = torch.nn.functional.cross_entropy(torch.nn.functional.linear(hidden, W3, b3), labels)
    for p in params:
        p.grad = None
    loss.backward()
    grads = [p.grad.numpy().copy() for p in params]
    with torch.no_grad():
        for p in params:
            p -= LEARNING_RATE * p.grad
    return grads


def _torch_leaves(d: dict[str, Any]) -> list[Any]:
    torch = _torch()
    return [torch.from_numpy(p.copy()).requires_grad_() for p in d["params"]]


def torch_conv(d: dict[str, Any]) -> Gradients:
    import torch
    import torch.nn.functional as TF

    K, c, V, v = params = _torch_leaves(d)
    X, labels = torch.from_numpy(d["X"]), torch.from_numpy(d["y"])
    hidden = TF.max_pool2d(torch.relu(TF.conv2d(X, K, c, padding=1)), 2)
    TF.cross_entropy(TF.linear(hidden.reshape(len(labels), -1), V, v), labels).backward()
    return [p.grad.numpy() for p in params]


def torch_b4(d: dict[str, Any]) -> Gradients:
    import torch
    import torch.nn.functional as TF

    K, c, V, v = params = _torch_leaves(d)
    X, labels = torch.from_numpy(d["X"]), torch.from_numpy(d["y"])
    pooled = torch.relu(TF.conv2d(X, K, c, padding=1)).mean(dim=(2, 3))
    TF.cross_entropy(TF.linear(pooled, V, v), labels).backward()
    return [p.grad.numpy() for p in params]


def torch_rnn(d: dict[str, Any]) -> Gradients:
    import torch
    import torch.nn.functional as TF

    W_ih, W_hh, b_ih, b_hh, V, v = params = _torch_leaves(d)
    X, labels = torch.from_numpy(d["X"]), torch.from_numpy(d["y"])
    h = torch.zeros(X.shape[1], W_hh.shape[0], dtype=X.dtype)
    for x in X:
        h = torch.tanh(TF.linear(x, W_ih, b_ih) + TF.linear(h, W_hh, b_hh))
    TF.cross_entropy(TF.linear(h, V, v), labels).backward()
    return [p.grad.numpy() for p in params]


# ---- HIPS autograd ---------------------------------------------------------------------------


def autograd_chain(d: dict[str, Any]) -> Gradients:
    import autograd
    import autograd.numpy as anp

    def loss(w: Any, b: Any) -> Any:
        y = d["x"]
        for _ in range(d["links"]):
            y = anp.tanh(anp.sin(y * w + b))
        return anp.sum(y)

    return list(autograd.grad(loss, argnum=(0, 1))(d["w"], d["b"]))


def autograd_mlp(d: dict[str, Any]) -> Gradients:
    import autograd
    import autograd.numpy as anp

    X, labels, n = d["X"], d["y"], len(d["y"])

    def loss(params: list[Any]) -> Any:
        W1, b1, W2, b2, W3, b3 = params
        hidden = anp.maximum(anp.dot(X, W1.T) + b1, 0)
        hidden = anp.maximum(anp.dot(hidden, W2.T) + b2, 0)
        logits = anp.dot(hidden, W3.T) + b3
        shifted = logits - anp.max(logits, axis=1, keepdims=True)
        log_probs = shifted - anp.log(anp.sum(anp.exp(shifted), axis=1, keepdims=True))
        return -anp.sum(log_probs[np.arange(n), labels]) / n

    grads = autograd.grad(loss)(d["params"])
    for p, g in zip(d["params"], grads):
        p -= LEARNING_RATE * g
    return list(grads)


def _rnn_loss(xp: Any, params: list[Any], d: dict[str, Any]) -> Any:
    """The RNN step's loss written against a NumPy-like module `xp` (autograd.numpy or mygrad)."""
    W_ih, W_hh, b_ih, b_hh, V, v = params
    X, labels = d["X"], d["y"]
    h = np.zeros((X.shape[1], d["params"][1].shape[0]))
    for x in X:
        h = xp.tanh(xp.matmul(x, W_ih.T) + b_ih + xp.matmul(h, W_hh.T) + b_hh)
    logits = xp.matmul(h, V.T) + v
    shifted = logits - xp.max(logits, axis=1, keepdims=True)
    log_probs = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
    return -xp.sum(log_probs[np.arange(len(labels)), labels]) / len(labels)


def autograd_rnn(d: dict[str, Any]) -> Gradients:
    import autograd
    import autograd.numpy as anp

    return list(autograd.grad(lambda params: _rnn_loss(anp, params, d))(d["params"]))


# ---- MyGrad ----------------------------------------------------------------------------------


def mygrad_chain(d: dict[str, Any]) -> Gradients:
    import mygrad as mg

    w, b = mg.tensor(d["w"]), mg.tensor(d["b"])
    y = d["x"]
    for _ in range(d["links"]):
        y = mg.tanh(mg.sin(y * w + b))
    mg.sum(y).backward()
    return [w.grad, b.grad]


def mygrad_mlp(d: dict[str, Any]) -> Gradients:
    import mygrad as mg

    params = [mg.tensor(p) for p in d["params"]]
    W1, b1, W2, b2, W3, b3 = params
    X, labels, n = d["X"], d["y"], len(d["y"])
    hidden = mg.maximum(mg.matmul(X, W1.T) + b1, 0)
    hidden = mg.maximum(mg.matmul(hidden, W2.T) + b2, 0)
    logits = mg.matmul(hidden, W3.T) + b3
    shifted = logits - mg.max(logits, axis=1, keepdims=True)
    log_probs = shifted - mg.log(mg.sum(mg.exp(shifted), axis=1, keepdims=True))
    loss = -mg.sum(log_probs[np.arange(n), labels]) / n
    loss.backward()
    grads = [p.grad for p in params]
    for p, g in zip(d["params"], grads):
        p -= LEARNING_RATE * g
    return grads


def mygrad_rnn(d: dict[str, Any]) -> Gradients:
    import mygrad as mg

    params = [mg.tensor(p) for p in d["params"]]
    _rnn_loss(mg, params, d).backward()
    return [p.grad for p in params]


# peer -> (module, {workload kind: implementation}); HIPS autograd and MyGrad have no conv2d
PEERS: dict[str, tuple[str, dict[str, Callable[[dict[str, Any]], Gradients]]]] = {
    "PyTorch": ("torch", {"chain": torch_chain, "mlp": torch_mlp, "conv": torch_conv, "b4": torch_b4,
                          "rnn": torch_rnn}),
    "HIPS autograd": ("autograd", {"chain": autograd_chain, "mlp": autograd_mlp, "rnn": autograd_rnn}),
    "MyGrad": ("mygrad", {"chain": mygrad_chain, "mlp": mygrad_mlp, "rnn": mygrad_rnn}),
}

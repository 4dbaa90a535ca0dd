"""SGD and Adam against torch.optim step by step, and training a nonlinear problem to > 95%."""

import numpy as np
import pytest
from oracle import torch

import mytorch
from mytorch import functional as F
from mytorch import nn, optim
from mytorch.autograd_engine import Autograd


def _models(seed):
    np.random.seed(seed)
    ours = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).double()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    return ours, theirs


def _run_side_by_side(make_ours, make_theirs, steps=6):
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(8, 3)), rng.integers(0, 2, size=8)
    ours, theirs = _models(1)
    our_opt, their_opt = make_ours(ours.parameters()), make_theirs(theirs.parameters())
    engine = Autograd()
    for _ in range(steps):
        engine.zero_grad()
        engine.backward(nn.CrossEntropyLoss()(ours(X), labels))
        our_opt.step()
        their_opt.zero_grad()
        torch.nn.CrossEntropyLoss()(theirs(torch.tensor(X)), torch.tensor(labels)).backward()
        their_opt.step()
        for (name, ours_p), their_p in zip(ours.named_parameters(), theirs.parameters()):
            np.testing.assert_allclose(ours_p, their_p.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("settings", [
    {"lr": 0.1},
    {"lr": 0.1, "momentum": 0.9},
    {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01},
    {"lr": 0.05, "momentum": 0.8, "dampening": 0.3},
    {"lr": 0.05, "momentum": 0.9, "nesterov": True},
])
def test_sgd_matches_torch(settings):
    _run_side_by_side(lambda p: optim.SGD(p, **settings), lambda p: torch.optim.SGD(p, **settings))


@pytest.mark.parametrize("settings", [
    {},
    {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6},
    {"lr": 0.01, "weight_decay": 0.1},
    {"lr": 0.01, "amsgrad": True},
])
def test_adam_matches_torch(settings):
    _run_side_by_side(lambda p: optim.Adam(p, **settings), lambda p: torch.optim.Adam(p, **settings))


def _two_moons(rng, n=200):
    """Two interleaved half circles with noise: not linearly separable."""
    angle = rng.uniform(0, np.pi, size=n)
    upper = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    lower = np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], axis=1)
    labels = rng.integers(0, 2, size=n)
    X = np.where(labels[:, None] == 0, upper, lower) + rng.normal(scale=0.1, size=(n, 2))
    return X, labels


@pytest.mark.parametrize("make_optimizer", [
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
    lambda p: optim.Adam(p, lr=0.01),
], ids=["sgd-momentum", "adam"])
def test_training_a_nonlinear_problem_reaches_95_percent(make_optimizer):
    rng = np.random.default_rng(2)
    X, labels = _two_moons(rng)
    X_test, labels_test = _two_moons(rng)
    np.random.seed(2)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2))
    loss_fn = nn.CrossEntropyLoss()
    opt = make_optimizer(model.parameters())
    engine = Autograd()
    for _ in range(60):
        for start in range(0, len(X), 20):
            batch = slice(start, start + 20)
            engine.zero_grad()
            engine.backward(loss_fn(model(X[batch]), labels[batch]))
            opt.step()
    with mytorch.no_grad():
        accuracy = np.mean(np.argmax(model(X_test), axis=1) == labels_test)
    assert accuracy > 0.95


def test_zero_grad_step_without_gradients_and_generators():
    engine = Autograd()
    w, unused = np.array([1.0, -2.0]), np.array([5.0])
    opt = optim.SGD((p for p in [w, unused]), lr=0.5)  # any iterable of arrays
    engine.backward(F.sum(F.mul(w, w)))
    opt.step()
    np.testing.assert_allclose(w, [0.0, 0.0])
    np.testing.assert_array_equal(unused, [5.0])  # no gradient: left alone, as PyTorch skips grad None
    opt.zero_grad()
    np.testing.assert_array_equal(engine.gradient_buffer.get_param(w), [0.0, 0.0])
    opt.step()
    np.testing.assert_allclose(w, [0.0, 0.0])


def test_step_before_backward_explains_the_read_only_parameter():
    Autograd()
    w = np.array([1.0, 2.0])
    opt = optim.Adam([w])
    F.sum(F.mul(w, w))  # recorded: w is held by the tape
    mytorch.engine().gradient_buffer.set_param(w, np.ones(2))
    with pytest.raises(RuntimeError, match="read-only by the tape"):
        opt.step()


def test_optimizer_arguments_are_checked():
    with pytest.raises(TypeError, match="float numpy array"):
        optim.SGD([np.array([1, 2])], lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam([np.ones(2)], lr=-1)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([np.ones(2)], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([np.ones(2)], lr=0.1, nesterov=True)

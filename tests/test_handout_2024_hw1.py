"""The course's 2024 HW1 autograd handout, checked the way its autograder checks it.

That year's tests build a fresh `Autograd()` in every test, hand it positionally to the layers
(`nn.Linear(5, 5, autograd)`, `nn.SoftmaxCrossEntropy(autograd)`), take the rules for hand-recorded
operations from `mytorch.functional_hw1`, seed backward with `1` or `np.ones_like(out)`, and read
`l1.dW`, `l1.db` and `autograd.gradient_buffer.get_param(x)`. Every value and gradient here must
equal PyTorch's (float64) to 1e-9.
"""

import numpy as np
import pytest
from oracle import torch  # imported on first use: tests that never touch it run without it

import mytorch.nn as nn
from mytorch import autograd_engine
from mytorch.functional_hw1 import *  # noqa: F403 - the handout's import


def same_as_torch(array, tensor):
    expected = tensor.detach().numpy()
    assert np.shape(array) == expected.shape, f"shape {np.shape(array)} vs torch's {expected.shape}"
    np.testing.assert_allclose(array, expected, rtol=1e-9, atol=1e-9)


def torch_copy_of(layer):
    twin = torch.nn.Linear(layer.W.shape[1], layer.W.shape[0]).double()
    twin.weight = torch.nn.Parameter(torch.tensor(np.array(layer.W)))
    twin.bias = torch.nn.Parameter(torch.tensor(np.array(layer.b).reshape(-1)))
    return twin


def leaf(x):
    return torch.tensor(np.array(x), requires_grad=True)


def test_functional_hw1_is_nn_functional_under_another_name():
    import mytorch.functional_hw1 as hw1
    import mytorch.nn.functional as nnf

    assert hw1.__all__ == nnf.__all__
    for name in nnf.__all__:
        assert getattr(hw1, name) is getattr(nnf, name), name  # one definition, re-exported
    for name in ("add_backward", "sub_backward", "mul_backward", "div_backward", "matmul_backward",
                 "exp_backward", "log_backward", "max_backward", "SoftmaxCrossEntropy_backward"):
        assert callable(globals()[name])


@pytest.mark.parametrize("rows, inputs, outputs", [(1, 5, 5), (2, 10, 7), (3, 8, 4), (4, 6, 5)])
def test_linear_forward_and_backward(rows, inputs, outputs):
    np.random.seed(0)
    x = np.random.random((rows, inputs))
    autograd = autograd_engine.Autograd()
    l1 = nn.Linear(inputs, outputs, autograd)
    out = l1(x)
    autograd.backward(np.ones_like(out))

    twin, tx = torch_copy_of(l1), leaf(x)
    t_out = twin(tx)
    t_out.sum().backward()
    same_as_torch(out, t_out)
    same_as_torch(l1.dW, twin.weight.grad)
    same_as_torch(l1.db.squeeze(), twin.bias.grad)
    same_as_torch(autograd.gradient_buffer.get_param(x), tx.grad)


def test_linear_backward_seeded_with_one():
    np.random.seed(0)
    x = np.random.random((1, 5))
    autograd = autograd_engine.Autograd()
    l1 = nn.Linear(5, 5, autograd)
    l1(x)
    autograd.backward(1)

    twin = torch_copy_of(l1)
    twin(torch.tensor(x)).sum().backward()
    same_as_torch(l1.dW, twin.weight.grad)
    same_as_torch(l1.db, twin.bias.grad)


def test_skip_connection_recorded_by_hand():
    np.random.seed(0)
    autograd = autograd_engine.Autograd()
    autograd.zero_grad()
    l1 = nn.Linear(5, 5, autograd)
    x = np.random.random((1, 5))
    l1_out = l1(x)
    output = l1_out + x
    autograd.add_operation(inputs=[l1_out, x], output=output, gradients_to_update=[None, None],
                           backward_operation=add_backward)  # noqa: F405
    autograd.backward(1)

    twin, tx = torch_copy_of(l1), leaf(x)
    t_output = twin(tx) + tx
    t_output.sum().backward()
    same_as_torch(output, t_output)
    same_as_torch(l1.dW, twin.weight.grad)
    same_as_torch(l1.db, twin.bias.grad)
    same_as_torch(autograd.gradient_buffer.get_param(x), tx.grad)  # both paths add up


def test_relu_recorded_by_hand_with_max_backward():
    np.random.seed(0)
    autograd = autograd_engine.Autograd()
    l1, l2 = nn.Linear(5, 3, autograd), nn.Linear(3, 2, autograd)
    x = np.random.random((2, 5)) - 0.5
    hidden = l1(x)
    relu_out = np.maximum(0, hidden)
    autograd.add_operation(inputs=[hidden], output=relu_out, gradients_to_update=[None],
                           backward_operation=max_backward)  # noqa: F405 - the handouts' ReLU rule
    out = l2(relu_out)
    autograd.backward(np.ones_like(out))

    t1, t2, tx = torch_copy_of(l1), torch_copy_of(l2), leaf(x)
    t_out = t2(torch.relu(t1(tx)))
    t_out.sum().backward()
    same_as_torch(out, t_out)
    for mine, theirs in ((l1.dW, t1.weight.grad), (l1.db, t1.bias.grad), (l2.dW, t2.weight.grad),
                         (autograd.gradient_buffer.get_param(x), tx.grad)):
        same_as_torch(mine, theirs)


def test_linear_edge_cases():
    autograd = autograd_engine.Autograd()
    l1 = nn.Linear(5, 5, autograd)
    assert l1(np.empty((0, 5))).shape == (0, 5)
    assert not np.isnan(l1(np.random.random((1, 5)) * 1e6)).any()
    assert not np.isnan(l1(np.random.random((1, 5)) * 1e-6)).any()


@pytest.mark.parametrize("name", ["Sigmoid", "Tanh", "ReLU"])
def test_activation_after_linear(name):
    np.random.seed(0)
    autograd = autograd_engine.Autograd()
    l1 = nn.Linear(5, 5, autograd)
    x = np.random.random((3, 5)) - 0.5
    out = getattr(nn, name)(autograd)(l1(x))
    autograd.backward(1)

    twin, tx = torch_copy_of(l1), leaf(x)
    t_out = getattr(torch.nn, name)()(twin(tx))
    t_out.sum().backward()
    same_as_torch(out, t_out)
    same_as_torch(l1.dW, twin.weight.grad)
    same_as_torch(l1.db, twin.bias.grad)
    same_as_torch(autograd.gradient_buffer.get_param(x), tx.grad)


ONE_HOT = {
    "one": ([[0.0, 0.0, 1.0, 0.0, 0.0]], [2]),
    "batch": ([[0.0, 0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]], [2, 1, 0]),
}


@pytest.mark.parametrize("inputs, case", [
    (np.random.default_rng(0).random((1, 5)), "one"),
    (np.random.default_rng(1).random((3, 5)), "batch"),
    (np.array([[1e10, -1e10, 0, 1e5, -1e5]]), "one"),  # extreme logits: log-sum-exp keeps it finite
    (np.array([[100.0, 200, -300, 400, -500]]), "one"),
])
def test_softmax_cross_entropy_forward_and_backward(inputs, case):
    np.random.seed(0)
    one_hot, labels = ONE_HOT[case]
    autograd = autograd_engine.Autograd()
    l1 = nn.Linear(5, 5, autograd)
    x = np.array(inputs, dtype=float)
    test_loss = nn.SoftmaxCrossEntropy(autograd)
    value = test_loss(np.array(one_hot), l1(x))
    test_loss.backward()

    twin = torch_copy_of(l1)
    t_value = torch.nn.CrossEntropyLoss()(twin(torch.tensor(x)), torch.tensor(labels)).reshape(1)
    t_value.backward()
    same_as_torch(value, t_value)
    assert np.isfinite(value).all()
    same_as_torch(l1.dW, twin.weight.grad)
    same_as_torch(l1.db.squeeze(), twin.bias.grad)


def test_softmax_cross_entropy_refuses_labels_for_one_hot_rows():
    autograd = autograd_engine.Autograd()
    l1 = nn.Linear(5, 5, autograd)
    test_loss = nn.SoftmaxCrossEntropy(autograd)
    with pytest.raises(ValueError, match="one-hot"):
        test_loss(np.array([2]), l1(np.random.random((1, 5))))


def test_mlp_by_hand_rules_and_layers_together():
    # A two-layer network whose hidden nonlinearity and loss are recorded by hand with the
    # functional_hw1 rules (as a student's solution does), beside the engine's own layers.
    np.random.seed(3)
    autograd = autograd_engine.Autograd()
    l1, l2 = nn.Linear(4, 6, autograd), nn.Linear(6, 3, autograd)
    x = np.random.randn(5, 4)
    hidden = l1(x)
    squashed = np.exp(hidden)
    autograd.add_operation([hidden], squashed, [None], exp_backward)  # noqa: F405
    logits = l2(squashed)
    scaled = logits * 0.5
    half = np.full_like(logits, 0.5)
    autograd.add_operation([logits, half], scaled, [None, None], mul_backward)  # noqa: F405
    autograd.backward(np.ones_like(scaled))

    t1, t2, tx = torch_copy_of(l1), torch_copy_of(l2), leaf(x)
    (t2(torch.exp(t1(tx))) * 0.5).sum().backward()
    same_as_torch(l1.dW, t1.weight.grad)
    same_as_torch(l2.db, t2.bias.grad)
    same_as_torch(autograd.gradient_buffer.get_param(x), tx.grad)

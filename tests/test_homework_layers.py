"""Tests in the style of the course's 2021-22 autograder for the autograd handout.

The handout's code builds one `Autograd()` per program, passes it positionally to every layer
(`nn.Linear(5, 5, autograd)`, `nn.Tanh(autograd)`, `nn.SoftmaxCrossEntropy(autograd)`), calls the loss
target first, and reads `l1.dW` / `l1.db` after `autograd.backward(1)` or `loss.backward()`; it
records its own operations with `add_operation` and the `*_backward` rules of `mytorch.nn.functional`.
These tests are written that way, and compare with PyTorch as the autograder's helper does (both
close and summed absolute difference below 1e-10). Weights are (out, in), as in PyTorch. (The
autograder's functions also `return True`; pytest wants None, so these do not.)
"""

import numpy as np
import pytest
from oracle import torch

import mytorch.nn as nn
from mytorch import autograd_engine
from mytorch.nn.functional import *  # noqa: F403 - the handout's import


def compare_np_torch(np_array, tensor):
    expected = tensor.detach().numpy()
    assert np.allclose(np_array, expected, rtol=1e-05, atol=1e-10), f"NOT ALL CLOSE:\n{np_array}\n{tensor}"
    assert np.abs(np_array - expected).sum() < 1e-10, f"{np_array} vs {tensor}"
    assert np_array.shape == tensor.shape


def torch_linear(layer):
    # Copies: torch.DoubleTensor(array) would share the array's memory with PyTorch.
    linear = torch.nn.Linear(layer.W.shape[1], layer.W.shape[0])
    linear.weight = torch.nn.Parameter(torch.DoubleTensor(layer.W.copy()))
    linear.bias = torch.nn.Parameter(torch.DoubleTensor(layer.b.squeeze().copy()))
    return linear


def test_nn_functional_reexports_every_primitive_and_its_backward():
    import mytorch.functional as core
    from mytorch.nn.functional import HANDOUT_FORMS  # rules that also take a later handout's call shape

    for name in core.PRIMITIVES:
        assert globals()[name] is core.PRIMITIVES[name]
        if f"{name}_backward" not in HANDOUT_FORMS:
            assert globals()[f"{name}_backward"] is core.PRIMITIVES[name].backward
    for name in ("add_backward", "sub_backward", "mul_backward", "div_backward", "matmul_backward",
                 "log_backward", "exp_backward", "max_backward", "sum_backward", "conv2d_backward"):
        assert callable(globals()[name])


def test_linear_layer():
    np.random.seed(0)
    autograd = autograd_engine.Autograd()

    l1 = nn.Linear(5, 5, autograd)
    x = np.random.random((1, 5))

    l1_out = l1(x)
    autograd.backward(1)

    torch_l1 = torch_linear(l1)
    torch_x = torch.DoubleTensor(x)
    torch_l1_out = torch_l1(torch_x)
    torch_l1_out.sum().backward()
    compare_np_torch(l1_out, torch_l1_out)
    compare_np_torch(l1.dW, torch_l1.weight.grad)
    compare_np_torch(l1.db, torch_l1.bias.grad)


def test_linear_layer_batch():
    np.random.seed(1)
    autograd = autograd_engine.Autograd()

    l1 = nn.Linear(7, 3, autograd)
    x = np.random.random((6, 7))  # mytorch unbroadcasts: batches of any size
    l1(x)
    autograd.backward(1)

    torch_l1 = torch_linear(l1)
    torch_x = torch.DoubleTensor(x)
    torch_x.requires_grad = True
    torch_l1(torch_x).sum().backward()
    compare_np_torch(l1.dW, torch_l1.weight.grad)
    compare_np_torch(l1.db, torch_l1.bias.grad)
    compare_np_torch(autograd.memory_buffer.get_param(x), torch_x.grad)


def test_linear_skip():
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

    torch_l1 = torch_linear(l1)
    torch_x = torch.DoubleTensor(x)
    torch_x.requires_grad = True
    torch_l1_out = torch_l1(torch_x)
    torch_output = torch_l1_out + torch_x
    torch_output.sum().backward()

    compare_np_torch(l1_out, torch_l1_out)
    compare_np_torch(l1.dW, torch_l1.weight.grad)
    compare_np_torch(l1.db, torch_l1.bias.grad)
    compare_np_torch(autograd.memory_buffer.get_param(x), torch_x.grad)


@pytest.mark.parametrize("name", ["Identity", "Sigmoid", "Tanh", "ReLU"])
def test_activation(name):
    np.random.seed(0)
    autograd = autograd_engine.Autograd()

    l1 = nn.Linear(5, 5, autograd)
    x = np.random.random((1, 5))
    l1_out = l1(x)
    torch_l1 = torch_linear(l1)
    torch_l1_out = torch_l1(torch.DoubleTensor(x.copy()))

    test_act = getattr(nn, name)(autograd)
    torch_act = getattr(torch.nn, name)()
    a1_out = test_act(l1_out)
    autograd.backward(1)
    torch_a1_out = torch_act(torch_l1_out)
    torch_a1_out.sum().backward()
    compare_np_torch(a1_out, torch_a1_out)
    compare_np_torch(l1.dW, torch_l1.weight.grad)
    compare_np_torch(l1.db, torch_l1.bias.grad)


def test_softmaxXentropy_forward():
    np.random.seed(0)
    autograd = autograd_engine.Autograd()

    l1 = nn.Linear(5, 5, autograd)
    x = np.random.random((1, 5))
    y = np.array([[0.0, 0.0, 1.0, 0.0, 0.0]])
    l1_out = l1(x)

    test_loss = nn.SoftmaxCrossEntropy(autograd)
    a1_out = test_loss(y, l1_out)

    torch_l1 = torch_linear(l1)
    torch_loss = torch.nn.CrossEntropyLoss()
    torch_input = torch.DoubleTensor(np.array(x))  # a copy: x is on the tape, so read-only
    torch_a1_out = torch_loss(torch_l1(torch_input), torch.LongTensor(np.array([2]))).reshape(1)

    compare_np_torch(a1_out, torch_a1_out)
    assert test_loss.loss_val is a1_out


def test_softmaxXentropy_backward():
    np.random.seed(0)
    autograd = autograd_engine.Autograd()

    l1 = nn.Linear(5, 5, autograd)
    x = np.random.random((1, 5))
    y = np.array([[0.0, 0.0, 1.0, 0.0, 0.0]])
    l1_out = l1(x)

    torch_l1 = torch_linear(l1)
    torch_l1_out = torch_l1(torch.DoubleTensor(x.copy()))

    test_loss = nn.SoftmaxCrossEntropy(autograd)
    a1_out = test_loss(y, l1_out)
    test_loss.backward()

    torch_a1_out = torch.nn.CrossEntropyLoss()(torch_l1_out, torch.LongTensor(np.array([2]))).reshape(1)
    torch_a1_out.backward()

    compare_np_torch(a1_out, torch_a1_out)
    compare_np_torch(l1.dW, torch_l1.weight.grad)
    compare_np_torch(l1.db.squeeze(), torch_l1.bias.grad)


def test_softmaxXentropy_batch_and_either_argument_order():
    np.random.seed(2)
    autograd = autograd_engine.Autograd()
    l1 = nn.Linear(4, 3, autograd)
    x = np.random.random((8, 4))
    labels = np.random.randint(0, 3, size=8)
    y = np.eye(3)[labels]
    out = l1(x)
    loss = nn.SoftmaxCrossEntropy(autograd)
    swapped = loss(out, y)  # the prediction first: recognised, since logits are no probability rows
    value = loss(y, out)
    loss.backward()

    torch_l1 = torch_linear(l1)
    torch_out = torch_l1(torch.DoubleTensor(x.copy()))
    torch_value = torch.nn.CrossEntropyLoss()(torch_out, torch.LongTensor(labels)).reshape(1)
    torch_value.backward()
    compare_np_torch(value, torch_value)
    compare_np_torch(swapped, torch_value)
    compare_np_torch(l1.dW, torch_l1.weight.grad)
    compare_np_torch(l1.db, torch_l1.bias.grad)


def test_mseloss():
    np.random.seed(0)
    autograd = autograd_engine.Autograd()

    l1 = nn.Linear(5, 5, autograd)
    x = np.random.random((3, 5))
    y = np.random.random((3, 5))
    l1_out = l1(x)

    mse_loss = nn.MSELoss(autograd)
    mse_loss(y, l1_out)  # the handout's order: target first; MSE is symmetric
    mse_loss.backward()

    torch_l1 = torch_linear(l1)
    torch_loss = torch.nn.MSELoss()(torch_l1(torch.DoubleTensor(np.array(x))), torch.DoubleTensor(y))
    torch_loss.backward()
    compare_np_torch(mse_loss.loss_val, torch_loss)
    compare_np_torch(l1.dW, torch_l1.weight.grad)
    compare_np_torch(l1.db, torch_l1.bias.grad)


def test_hand_recorded_operations_beside_layers():
    """The handout's functional style: numpy forward, add_operation with the *_backward rules."""
    np.random.seed(3)
    autograd = autograd_engine.Autograd()
    l1 = nn.Linear(4, 4, autograd)
    x = np.random.random((2, 4))
    scale = np.random.random((1, 4))

    h = l1(x)
    scaled = h * scale
    autograd.add_operation(inputs=[h, scale], output=scaled, gradients_to_update=[None, None],
                           backward_operation=mul_backward)  # noqa: F405
    total = np.sum(scaled)
    autograd.add_operation(inputs=[scaled], output=np.array(total), gradients_to_update=[None],
                           backward_operation=sum_backward)  # noqa: F405
    autograd.backward(1)

    torch_l1 = torch_linear(l1)
    torch_scale = torch.DoubleTensor(scale)
    torch_scale.requires_grad = True
    (torch_l1(torch.DoubleTensor(np.array(x))) * torch_scale).sum().backward()
    compare_np_torch(l1.dW, torch_l1.weight.grad)
    compare_np_torch(autograd.memory_buffer.get_param(scale), torch_scale.grad)
    assert len(autograd.memory_buffer.memory) >= 4  # x, W, b, scale tracked (and the intermediates)


class MLP:
    """The handout's MLP: layers and activations given the engine, SGD with momentum by hand."""

    def __init__(self, sizes, autograd, lr, momentum):
        self.autograd, self.lr, self.momentum = autograd, lr, momentum
        self.linear_layers = [nn.Linear(a, b, autograd) for a, b in zip(sizes[:-1], sizes[1:])]
        self.activations = [nn.Sigmoid(autograd) for _ in sizes[1:-1]] + [nn.Identity(autograd)]
        self.criterion = nn.SoftmaxCrossEntropy(autograd)
        self.velocity = [(np.zeros_like(layer.W), np.zeros_like(layer.b)) for layer in self.linear_layers]

    def forward(self, x):
        for layer, activation in zip(self.linear_layers, self.activations):
            x = activation(layer(x))
        self.output = x
        return x

    def zero_grads(self):
        self.autograd.zero_grad()

    def step(self):
        for layer, (vW, vb) in zip(self.linear_layers, self.velocity):
            vW[...] = self.momentum * vW - self.lr * layer.dW
            vb[...] = self.momentum * vb - self.lr * layer.db
            layer.W += vW
            layer.b += vb


def test_handout_mlp_trains_like_torch_sgd():
    np.random.seed(4)
    autograd = autograd_engine.Autograd()
    mlp = MLP([6, 8, 3], autograd, lr=0.1, momentum=0.5)
    torch_layers = [torch_linear(layer) for layer in mlp.linear_layers]
    torch_model = torch.nn.Sequential(torch_layers[0], torch.nn.Sigmoid(), torch_layers[1])
    torch_opt = torch.optim.SGD(torch_model.parameters(), lr=0.1, momentum=0.5)

    data = np.random.random((12, 6))
    labels = np.random.randint(0, 3, size=12)
    for step in range(12):  # batch size 1, as in the handout
        x, y = data[step:step + 1], np.eye(3)[labels[step:step + 1]]
        mlp.zero_grads()
        mlp.forward(x)
        mlp.criterion(y, mlp.output)
        mlp.criterion.backward()
        mlp.step()

        torch_opt.zero_grad()
        torch_target = torch.LongTensor(labels[step:step + 1])
        torch.nn.CrossEntropyLoss()(torch_model(torch.DoubleTensor(x)), torch_target).backward()
        torch_opt.step()
    for layer, torch_layer in zip(mlp.linear_layers, torch_layers):
        compare_np_torch(layer.W, torch_layer.weight)
        compare_np_torch(layer.b, torch_layer.bias)


def test_handout_rule_names_outer_and_softmax_cross_entropy():
    from mytorch.nn.functional import SoftmaxCrossEntropy_backward, outer_backward

    a, b = np.random.randn(3), np.random.randn(4)
    autograd = autograd_engine.Autograd()
    out = np.outer(a, b)
    autograd.add_operation([a, b], out, [None, None], outer_backward)
    autograd.backward(1)
    np.testing.assert_allclose(autograd.memory_buffer.get_param(a), np.full(3, b.sum()))
    np.testing.assert_allclose(autograd.memory_buffer.get_param(b), np.full(4, a.sum()))

    pred, target = np.random.randn(5, 3), np.eye(3)[[0, 1, 2, 1, 0]]
    grad_pred, grad_target = SoftmaxCrossEntropy_backward(np.array(1.0), pred, target)
    softmax = np.exp(pred) / np.exp(pred).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(grad_pred, (softmax - target) / 5)
    assert grad_target is None


def test_loss_backward_with_an_engine_then_layer_by_layer_gives_the_same_gradients():
    # The handouts teach both: loss.backward() fills every layer (2021-22), and the layer-by-layer
    # walk with the dL/dA it returns (l2.backward(dLdZ), ...). One after the other, both work.
    rng = np.random.default_rng(4)
    autograd = autograd_engine.Autograd()
    l1, act, l2 = nn.Linear(3, 4, autograd), nn.Tanh(autograd), nn.Linear(4, 2, autograd)
    loss = nn.SoftmaxCrossEntropy(autograd)
    x, y = rng.normal(size=(5, 3)), np.eye(2)[[0, 1, 0, 1, 1]]
    loss(y, l2(act(l1(x))))
    dLdZ = loss.backward()
    whole = [np.array(layer.dW) for layer in (l1, l2)]
    l1.backward(act.backward(l2.backward(dLdZ)))
    assert all(np.allclose(np.array(layer.dW), dW) for layer, dW in zip((l1, l2), whole))
    assert autograd.operation_list == []  # the walk from the loss consumed the tape

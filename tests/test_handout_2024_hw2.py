"""The course's 2024 HW2 autograd handout (convolution and resampling), checked as its autograder does.

Its tests take `conv1d_stride1_backward`, `downsampling1d_backward`, ... from
`mytorch.functional_hw2` and compare them with PyTorch's gradients; they build
`Conv1d(in_channel=..., out_channel=..., kernel_size=..., downsampling_factor=...,
autograd_engine=...)` from `mytorch.nn.conv`, seed backward with `np.ones_like(out)`, copy
`cnn.conv1d_stride1.W` / `.b` into a PyTorch layer of stride `downsampling_factor`, and compare
`.dW`, `.db` and the input's gradient from `gradient_buffer`. Everything must equal PyTorch's
(float64) to 1e-9.
"""

import numpy as np
import pytest
from oracle import torch  # imported on first use: tests that never touch it run without it

import mytorch.nn as nn
from mytorch import autograd_engine
from mytorch import functional as F
from mytorch.functional_hw1 import *  # noqa: F403 - the handout's imports
from mytorch.functional_hw2 import *  # noqa: F403
from mytorch.nn.conv import Conv1d, Conv2d


def same_as_torch(array, tensor):
    expected = tensor.detach().numpy()
    assert np.shape(array) == expected.shape, f"shape {np.shape(array)} vs torch's {expected.shape}"
    np.testing.assert_allclose(array, expected, rtol=1e-9, atol=1e-9)


def leaf(x):
    return torch.tensor(np.array(x), requires_grad=True)


# ---- the rules of functional_hw2 ------------------------------------------------------------


@pytest.mark.parametrize("dims, batch, channels, size, kernel", [
    (1, 3, (2, 10), 5, 3), (1, 1, (1, 1), 4, 4), (1, 2, (3, 4), 9, 2),
    (2, 3, (5, 10), 5, 3), (2, 2, (2, 3), (6, 4), 2), (2, 1, (1, 2), 3, 1),
])
def test_conv_stride1_backward(dims, batch, channels, size, kernel):
    rng = np.random.default_rng(dims * 100 + size if isinstance(size, int) else 7)
    spatial = (size,) * dims if isinstance(size, int) else size
    c_in, c_out = channels
    A = rng.random((batch, c_in, *spatial))
    W = rng.random((c_out, c_in, *(kernel,) * dims))
    b = rng.random(c_out)
    out_spatial = tuple(n - kernel + 1 for n in spatial)
    dLdZ = rng.standard_normal((batch, c_out, *out_spatial))  # not only ones: a real adjoint

    rule = conv1d_stride1_backward if dims == 1 else conv2d_stride1_backward  # noqa: F405
    dLdA, dLdW, dLdb = rule(dLdZ, A, W, b)

    tA, tW, tb = leaf(A), leaf(W), leaf(b)
    conv = torch.nn.functional.conv1d if dims == 1 else torch.nn.functional.conv2d
    (conv(tA, tW, tb, stride=1, padding=0) * torch.tensor(dLdZ)).sum().backward()
    same_as_torch(dLdA, tA.grad)
    same_as_torch(dLdW, tW.grad)
    same_as_torch(dLdb, tb.grad)


def test_conv_stride1_backward_with_the_autograders_ones_and_zero_bias():
    np.random.seed(0)
    A, W, b = np.random.rand(3, 2, 5), np.random.rand(10, 2, 3), np.zeros(10)
    dLdA, dLdW, dLdb = conv1d_stride1_backward(np.ones((3, 10, 3)), A, W, b)  # noqa: F405
    tA, tW, tb = leaf(A), leaf(W), leaf(b)
    torch.nn.functional.conv1d(tA, tW, tb).sum().backward()
    for mine, theirs in ((dLdA, tA.grad), (dLdW, tW.grad), (dLdb, tb.grad)):
        same_as_torch(mine, theirs)


@pytest.mark.parametrize("dims, shape, factor", [
    (1, (2, 3, 9), 2), (1, (1, 2, 8), 3), (1, (2, 1, 5), 1),
    (2, (2, 3, 7, 5), 2), (2, (1, 2, 9, 9), 3),
])
def test_downsampling_backward_takes_the_factor_as_an_array(dims, shape, factor):
    rng = np.random.default_rng(factor)
    A = rng.random(shape)
    index = (Ellipsis,) + (slice(None, None, factor),) * dims
    dLdZ = rng.standard_normal(A[index].shape)
    rule = downsampling1d_backward if dims == 1 else downsampling2d_backward  # noqa: F405
    grads = rule(dLdZ, A, np.array([factor]))
    assert len(grads) == 3 and grads[1] is None and grads[2] is None

    tA = leaf(A)
    (tA[index] * torch.tensor(dLdZ)).sum().backward()
    same_as_torch(grads[0], tA.grad)


def test_flatten_backward():
    rng = np.random.default_rng(0)
    A = rng.random((4, 3, 5))
    dLdZ = rng.standard_normal((4, 15))
    tA = leaf(A)
    (torch.nn.Flatten()(tA) * torch.tensor(dLdZ)).sum().backward()
    same_as_torch(flatten_backward(dLdZ, A), tA.grad)  # noqa: F405


# ---- the layers: the handout's Conv1d / Conv2d --------------------------------------------------


def handout_conv(dims, **kwargs):
    layer = (Conv1d if dims == 1 else Conv2d)(**kwargs)
    inner = layer.conv1d_stride1 if dims == 1 else layer.conv2d_stride1
    return layer, inner


def torch_twin(dims, inner, stride):
    twin = (torch.nn.Conv1d if dims == 1 else torch.nn.Conv2d)(
        inner.W.shape[1], inner.W.shape[0], inner.W.shape[2], stride).double()
    twin.weight = torch.nn.Parameter(torch.tensor(np.array(inner.W)))
    twin.bias = torch.nn.Parameter(torch.tensor(np.array(inner.b)))
    return twin


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("factor, size", [(2, 5), (1, 6), (3, 10)])
def test_handout_conv_layer_forward_and_backward(dims, factor, size):
    np.random.seed(0)
    x = np.random.random((2, 3) + (size,) * dims)
    autograd = autograd_engine.Autograd()
    cnn, inner = handout_conv(dims, in_channel=3, out_channel=5, kernel_size=3,
                              downsampling_factor=factor, autograd_engine=autograd)
    out = cnn(x)
    autograd.backward(np.ones_like(out))

    twin, tx = torch_twin(dims, inner, factor), leaf(x)
    t_out = twin(tx)
    t_out.sum().backward()
    same_as_torch(out, t_out)
    same_as_torch(cnn.autograd_engine.gradient_buffer.get_param(x), tx.grad)
    same_as_torch(inner.dW, twin.weight.grad)
    same_as_torch(inner.db, twin.bias.grad)
    assert inner.W is cnn.W and inner.b is cnn.b  # one set of parameters


def test_handout_conv_positional_form_and_init_functions():
    autograd = autograd_engine.Autograd()
    cnn = Conv1d(3, 4, 2, 2, autograd)  # (in_channel, out_channel, kernel_size, downsampling_factor, engine)
    assert cnn.stride == cnn.downsampling_factor == 2 and cnn.autograd_engine is autograd

    def weights(*shape):
        return np.arange(np.prod(shape), dtype=float).reshape(shape) / 10

    def biases(out):
        return np.ones((out, 1))  # some handouts' init gives a column

    by_keyword = Conv2d(in_channel=2, out_channel=3, kernel_size=2, downsampling_factor=1,
                        autograd_engine=autograd, weight_init_fn=weights, bias_init_fn=biases)
    positional = Conv2d(2, 3, 2, 1, autograd, weights, biases)
    for layer in (by_keyword, positional):
        np.testing.assert_array_equal(layer.conv2d_stride1.W, weights(3, 2, 2, 2))
        np.testing.assert_array_equal(layer.conv2d_stride1.b, np.ones(3))
    np.random.seed(5)
    plain = Conv1d(in_channel=2, out_channel=3, kernel_size=2, downsampling_factor=1,
                   autograd_engine=autograd)
    np.random.seed(5)
    np.testing.assert_array_equal(plain.W, np.random.normal(0, 1.0, (3, 2, 2)))  # the handout's N(0, 1)
    np.testing.assert_array_equal(plain.b, np.zeros(3))


def test_stride1_sub_object_convolves_at_stride_one_and_sets_the_layers_weights():
    autograd = autograd_engine.Autograd()
    cnn = Conv1d(in_channel=2, out_channel=3, kernel_size=2, downsampling_factor=2, autograd_engine=autograd)
    new_W = np.full((3, 2, 2), 0.5)
    cnn.conv1d_stride1.W = new_W
    assert cnn.W is new_W
    x = np.random.random((1, 2, 7))
    full = cnn.conv1d_stride1(x)
    np.testing.assert_allclose(cnn(x), full[..., ::2], rtol=0, atol=1e-12)  # downsampled stride-1 output
    with pytest.raises(AttributeError):
        cnn.conv1d_stride1.dW = np.zeros((3, 2, 2))


def test_pytorch_form_keeps_working():
    np.random.seed(1)
    autograd = autograd_engine.Autograd()
    layer = nn.Conv1d(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding=1)
    x = np.random.random((2, 3, 9))
    out = layer(x)
    autograd.backward(np.ones_like(out))
    twin = torch.nn.Conv1d(3, 4, 3, stride=2, padding=1).double()
    twin.weight = torch.nn.Parameter(torch.tensor(np.array(layer.weight)))
    twin.bias = torch.nn.Parameter(torch.tensor(np.array(layer.bias)))
    t_out = twin(torch.tensor(x))
    t_out.sum().backward()
    same_as_torch(out, t_out)
    same_as_torch(layer.dW, twin.weight.grad)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    bound = 1 / np.sqrt(3 * 3)  # PyTorch's initialisation, not the handout's
    assert np.all(np.abs(nn.Conv2d(3, 4, 3).W) <= bound)


# ---- resampling and flatten layers, with the engine argument ------------------------------------


@pytest.mark.parametrize("name, shape, factor", [
    ("Downsample1d", (2, 3, 9), 2), ("Downsample1d", (1, 2, 8), 3),
    ("Downsample2d", (2, 3, 7, 5), 2), ("Downsample2d", (1, 1, 4, 4), 4),
    ("Upsample1d", (2, 3, 4), 3), ("Upsample2d", (2, 2, 3, 4), 2),
])
def test_resampling_layers(name, shape, factor):
    rng = np.random.default_rng(factor)
    A = rng.random(shape)
    autograd = autograd_engine.Autograd()
    layer = getattr(nn, name)(factor, autograd)
    Z = layer(A)
    dLdZ = rng.standard_normal(Z.shape)
    autograd.backward(dLdZ)

    dims = len(shape) - 2
    every = (Ellipsis,) + (slice(None, None, factor),) * dims
    tA = leaf(A)
    if name.startswith("Down"):
        tZ = tA[every]
    else:
        tZ = torch.zeros(shape[:2] + tuple(factor * (n - 1) + 1 for n in shape[2:]), dtype=torch.float64)
        tZ[every] = tA
    (tZ * torch.tensor(dLdZ)).sum().backward()
    same_as_torch(Z, tZ)
    same_as_torch(autograd.gradient_buffer.get_param(A), tA.grad)


def test_resampling_drop_in_backward_and_the_downsample_rule_agree():
    A = np.random.default_rng(0).random((2, 3, 9))
    layer = nn.Downsample1d(2, autograd_engine.Autograd())
    dLdZ = np.ones_like(layer(A))
    np.testing.assert_array_equal(layer.backward(dLdZ), downsampling1d_backward(dLdZ, A, np.array([2]))[0])  # noqa: F405


def test_a_small_cnn_trains_like_torch():
    # Conv1d (handout form) -> ReLU -> Flatten(engine) -> Linear, against the same network in PyTorch.
    np.random.seed(4)
    autograd = autograd_engine.Autograd()
    cnn = Conv1d(in_channel=2, out_channel=4, kernel_size=3, downsampling_factor=2, autograd_engine=autograd)
    flatten = nn.Flatten(autograd)
    linear = nn.Linear(4 * 4, 3, autograd)
    x = np.random.randn(5, 2, 10)
    out = linear(flatten(nn.ReLU(autograd)(cnn(x))))
    autograd.backward(np.ones_like(out))

    t_cnn = torch_twin(1, cnn.conv1d_stride1, 2)
    t_lin = torch.nn.Linear(16, 3).double()
    t_lin.weight = torch.nn.Parameter(torch.tensor(np.array(linear.W)))
    t_lin.bias = torch.nn.Parameter(torch.tensor(np.array(linear.b)))
    tx = leaf(x)
    t_out = t_lin(torch.flatten(torch.relu(t_cnn(tx)), 1))
    t_out.sum().backward()
    same_as_torch(out, t_out)
    same_as_torch(cnn.conv1d_stride1.dW, t_cnn.weight.grad)
    same_as_torch(cnn.conv1d_stride1.db, t_cnn.bias.grad)
    same_as_torch(linear.dW, t_lin.weight.grad)
    same_as_torch(autograd.gradient_buffer.get_param(x), tx.grad)


def test_handout_style_resampling_recorded_by_hand():
    rng = np.random.default_rng(2)
    autograd = autograd_engine.Autograd()
    A = rng.random((2, 3, 7, 7))
    cnn_out = F.mul(A, 2.0)
    Z = cnn_out[:, :, ::3, ::3]
    autograd.add_operation([cnn_out, np.array([3])], Z, [None, None], downsampling2d_backward)  # noqa: F405
    dLdZ = rng.standard_normal(Z.shape)
    autograd.backward(dLdZ)

    tA = leaf(A)
    ((tA * 2)[:, :, ::3, ::3] * torch.tensor(dLdZ)).sum().backward()
    same_as_torch(autograd.gradient_buffer.get_param(A), tA.grad)


@pytest.mark.parametrize("dims", [1, 2])
def test_the_handouts_stride1_layers_of_their_own(dims):
    from mytorch.nn.conv import Conv1D_stride1, Conv1d_stride1, Conv2D_stride1, Conv2d_stride1

    rng = np.random.default_rng(dims)
    x = rng.standard_normal((2, 3) + (6,) * dims)
    autograd = autograd_engine.Autograd()
    layer = (Conv1D_stride1 if dims == 1 else Conv2D_stride1)(3, 4, 3, autograd)  # engine 4th, as the handout
    out = layer(x)
    dLdZ = rng.standard_normal(out.shape)
    dLdA = layer.backward(dLdZ)  # the drop-in protocol of the handout without autograd

    twin, tx = torch_twin(dims, layer, 1), leaf(x)
    (twin(tx) * torch.tensor(dLdZ)).sum().backward()
    same_as_torch(dLdA, tx.grad)
    same_as_torch(layer.dW, twin.weight.grad)
    same_as_torch(layer.db, twin.bias.grad)
    assert (Conv1d_stride1, Conv2d_stride1) == (Conv1D_stride1, Conv2D_stride1)
    np.testing.assert_array_equal(layer.b, np.zeros(4))


def test_resampling_and_flatten_without_an_engine_as_the_handout_without_autograd():
    from mytorch.nn.conv import Downsample1d, Flatten, Upsample2d

    x = np.random.default_rng(9).standard_normal((2, 3, 20))
    down = Downsample1d(3)
    Z = down.forward(x)
    np.testing.assert_array_equal(Z, x[..., ::3])
    dLdA = down.backward(Z)
    np.testing.assert_array_equal(dLdA[..., ::3], Z)
    assert not dLdA[..., 1::3].any() and not dLdA[..., 2::3].any()

    up = Upsample2d(2)
    images = x.reshape(2, 3, 4, 5)
    np.testing.assert_array_equal(up.backward(up.forward(images)), images)
    flat = Flatten()
    np.testing.assert_array_equal(flat.backward(flat.forward(x)), x)

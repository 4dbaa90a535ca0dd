"""conv1d, conv2d, max_pool2d (and im2col/col2im) against PyTorch, on hypothesis-drawn geometries.

Forward values, the input gradient and the weight and bias gradients, in float64, for bounded
shapes with every combination of stride, padding and dilation that PyTorch accepts; then the
rules' own properties: tangent rules, second derivatives, im2col and col2im being adjoints.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracle import TF, torch

import mytorch
from mytorch import functional as F
from mytorch.autograd_engine import Autograd

TOLERANCE = {"rtol": 1e-9, "atol": 1e-11}


@st.composite
def conv_geometry(draw, dims):
    """Shapes and settings of a valid convolution with `dims` spatial axes (small, bounded)."""
    batch, channels, out_channels = (draw(st.integers(1, 3)) for _ in range(3))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(dims))
    size = tuple(
        draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 9)) for k, d, p in zip(kernel, dilation, padding)
    )
    bias = draw(st.booleans())
    return {
        "x": (batch, channels, *size), "w": (out_channels, channels, *kernel), "bias": bias,
        "stride": stride, "padding": padding, "dilation": dilation,
    }


def _ours(op, x, w, b, g, **settings_):
    engine = Autograd()
    out = op(x, w, b, **settings_)
    engine.backward(F.sum(F.mul(out, g)))
    buffer = engine.gradient_buffer
    return out, buffer.get_param(x), buffer.get_param(w), None if b is None else buffer.get_param(b)


def _theirs(op, x, w, b, g, **settings_):
    tensors = [None if a is None else torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    out = op(*tensors, **settings_)
    out.backward(torch.tensor(g))
    return (out.detach().numpy(), *[None if t is None else t.grad.numpy() for t in tensors])


def _compare_conv(ours_op, their_op, geometry, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.normal(size=geometry["x"]), rng.normal(size=geometry["w"])
    b = rng.normal(size=geometry["w"][0]) if geometry["bias"] else None
    settings_ = {k: geometry[k] for k in ("stride", "padding", "dilation")}
    with mytorch.no_grad():
        g = rng.normal(size=ours_op(x, w, b, **settings_).shape)
    ours = _ours(ours_op, x, w, b, g, **settings_)
    theirs = _theirs(their_op, x, w, b, g, **settings_)
    assert ours[0].shape == theirs[0].shape
    for got, want in zip(ours, theirs):
        if want is not None:
            np.testing.assert_allclose(got, want, **TOLERANCE)


@given(conv_geometry(2), st.integers(0, 2**16))
def test_conv2d_matches_torch(geometry, seed):
    _compare_conv(F.conv2d, TF.conv2d, geometry, seed)


@given(conv_geometry(1), st.integers(0, 2**16))
def test_conv1d_matches_torch(geometry, seed):
    _compare_conv(F.conv1d, TF.conv1d, geometry, seed)


@st.composite
def pool_geometry(draw):
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(2))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(2))
    size = tuple(
        draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 9)) for k, d, p in zip(kernel, dilation, padding)
    )
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size)
    return {"shape": shape, "kernel_size": kernel, "stride": stride, "padding": padding, "dilation": dilation,
            "ceil_mode": draw(st.booleans())}


@given(pool_geometry(), st.integers(0, 2**16))
def test_max_pool2d_matches_torch(geometry, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=geometry.pop("shape"))
    # PyTorch's forward pads with -inf: a window wholly in the padding comes out -inf (its backward
    # then hands a gradient to some input element, or aborts). mytorch refuses such windows.
    if torch.isinf(TF.max_pool2d(torch.ones(x.shape, dtype=torch.float64), **geometry)).any():
        with pytest.raises(ValueError, match="wholly in the padding"):
            F.max_pool2d(x, **geometry)
        return
    engine = Autograd()
    out = F.max_pool2d(x, **geometry)
    g = rng.normal(size=out.shape)
    engine.backward(F.sum(F.mul(out, g)))
    tx = torch.tensor(x, requires_grad=True)
    expected = TF.max_pool2d(tx, **geometry)
    expected.backward(torch.tensor(g))
    assert out.shape == tuple(expected.shape)
    np.testing.assert_array_equal(out, expected.detach().numpy())
    np.testing.assert_allclose(engine.gradient_buffer.get_param(x), tx.grad.numpy(), **TOLERANCE)


def test_max_pool2d_gives_a_tie_to_the_first_maximum_as_torch_does():
    x = np.array([[[[1.0, 3.0, 3.0], [3.0, 0.0, 2.0], [1.0, 1.0, 1.0]]]])
    engine = Autograd()
    engine.backward(F.sum(F.max_pool2d(x, 2, stride=1)))
    tx = torch.tensor(x, requires_grad=True)
    TF.max_pool2d(tx, 2, stride=1).sum().backward()
    np.testing.assert_array_equal(engine.gradient_buffer.get_param(x), tx.grad.numpy())


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # PyTorch notes its own padded copy
@pytest.mark.parametrize("padding", ["same", "valid", (2, 0), 1])
def test_padding_forms_match_torch(padding):
    geometry = {"x": (2, 2, 6, 5), "w": (3, 2, 4, 3), "bias": True, "stride": 1, "padding": padding,
                "dilation": (1, 2)}
    _compare_conv(F.conv2d, TF.conv2d, geometry, seed=1)
    geometry_1d = {"x": (2, 2, 7), "w": (3, 2, 4), "bias": False, "stride": 1,
                   "padding": padding if isinstance(padding, (str, int)) else padding[0], "dilation": 1}
    _compare_conv(F.conv1d, TF.conv1d, geometry_1d, seed=2)


def test_backward_rules_by_name_plug_into_add_operation():
    rng = np.random.default_rng(3)
    x, w, b = rng.normal(size=(2, 3, 5, 5)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    g = rng.normal(size=(2, 4, 3, 3))
    dx, dw, db = F.conv2d_backward(g, x, w, b, stride=(2, 2), padding=1)
    _, *expected = _theirs(TF.conv2d, x, w, b, g, stride=2, padding=1)
    for got, want in zip((dx, dw, db), expected):
        np.testing.assert_allclose(got, want, **TOLERANCE)
    pooled_grad = F.max_pool2d_backward(np.ones((2, 3, 2, 2)), x, 2)
    assert pooled_grad.shape == x.shape and pooled_grad.sum() == 2 * 3 * 2 * 2


def test_im2col_and_col2im_are_adjoint():
    """⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ for every geometry: the pair the rules are built on."""
    rng = np.random.default_rng(4)
    im2col, col2im = F.PRIMITIVES["im2col"], F.PRIMITIVES["col2im"]
    for kernel, stride, padding, dilation in [((3, 2), (1, 1), ((0, 0), (0, 0)), (1, 1)),
                                              ((2, 3), (2, 3), ((1, 2), (0, 1)), (2, 1)),
                                              ((3,), (2,), ((1, 1),), (1,))]:
        x = rng.normal(size=(2, 3) + (9,) * len(kernel))
        with mytorch.no_grad():
            cols = im2col(x, kernel, stride, padding, dilation)
            c = rng.normal(size=cols.shape)
            back = col2im(c, x.shape, kernel, stride, padding, dilation)
        np.testing.assert_allclose(np.sum(cols * c), np.sum(x * back), rtol=1e-12)


def test_tangent_and_second_order_rules_check_against_finite_differences():
    rng = np.random.default_rng(5)
    x, w, b = rng.normal(size=(1, 2, 5, 4)), rng.normal(size=(2, 2, 2, 3)), rng.normal(size=2)
    mytorch.check_grads(lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 1)), (x, w, b))
    mytorch.check_grads(lambda x, w: F.conv1d(x, w, stride=2, padding=1, dilation=2),
                        (rng.normal(size=(2, 2, 7)), rng.normal(size=(3, 2, 2))))
    mytorch.check_grads(lambda x: F.max_pool2d(x, 2, stride=1, padding=1), (x,))
    # second order (reverse over reverse, forward over reverse, ...) on a tiny geometry
    mytorch.check_grads(lambda x, w: F.conv2d(x, w, stride=2, padding=1),
                        (rng.normal(size=(1, 1, 3, 3)), rng.normal(size=(1, 1, 2, 2))), order=2)
    mytorch.check_grads(lambda x: F.max_pool2d(x, 2, stride=1), (rng.normal(size=(1, 1, 3, 3)),), order=2)


def test_second_derivatives_match_torch():
    """d/dW ⟨∂L/∂x, H⟩ with L = Σ conv2d(x, W)² ⊙ G: the recorded backward walk, differentiated."""
    rng = np.random.default_rng(6)
    x, w = rng.normal(size=(2, 2, 5, 5)), rng.normal(size=(3, 2, 3, 3))
    g, h = rng.normal(size=(2, 3, 4, 4)), rng.normal(size=x.shape)

    def loss(x, w):
        out = F.max_pool2d(F.conv2d(x, w, stride=1, padding=1), 2, stride=1)
        return F.sum(F.mul(F.mul(out, out), g))

    def probe(w):
        return F.sum(F.mul(mytorch.grad(loss, argnums=0)(x, w), h))

    ours = mytorch.grad(probe)(w)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    out = TF.max_pool2d(TF.conv2d(tx, tw, padding=1), 2, stride=1)
    (dx,) = torch.autograd.grad((out * out * torch.tensor(g)).sum(), tx, create_graph=True)
    (expected,) = torch.autograd.grad((dx * torch.tensor(h)).sum(), tw)
    np.testing.assert_allclose(ours, expected.numpy(), rtol=1e-9, atol=1e-10)


def test_bad_geometry_is_refused_with_the_shapes():
    x, w = np.ones((2, 3, 5, 5)), np.ones((4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d.*3 channels.*\(4, 2, 3, 3\)"):
        F.conv2d(x, w)
    with pytest.raises(ValueError, match=r"conv2d.*does not fit"):
        F.conv2d(x, np.ones((4, 3, 7, 7)))
    with pytest.raises(ValueError, match=r"conv1d.*3-D input"):
        F.conv1d(np.ones((3, 5)), np.ones((2, 3, 2)))
    with pytest.raises(ValueError, match="stride 1"):
        F.conv2d(x, np.ones((4, 3, 3, 3)), padding="same", stride=2)
    with pytest.raises(ValueError, match="bias"):
        F.conv2d(x, np.ones((4, 3, 3, 3)), np.ones(3))
    with pytest.raises(NotImplementedError, match="groups"):
        F.conv2d(x, np.ones((4, 3, 3, 3)), groups=3)
    with pytest.raises(ValueError, match="at most half"):
        F.max_pool2d(x, 2, padding=2)


def test_a_larger_convolution_runs_vectorised():
    """A LeNet-sized batch, forward and backward: im2col makes this one matrix product per pass."""
    rng = np.random.default_rng(7)
    x, w, b = rng.normal(size=(16, 3, 32, 32)), rng.normal(size=(8, 3, 5, 5)), rng.normal(size=8)
    engine = Autograd()
    out = F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=2)), 2)
    loss = F.sum(out)
    assert len(engine.operation_list) == 4  # conv2d, relu, max_pool2d, sum: one record each
    engine.backward(loss)
    assert out.shape == (16, 8, 16, 16)


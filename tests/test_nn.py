"""Layers and losses against PyTorch, and the drop-in backward protocol against hand-derived formulas.

Every layer: forward values, the input gradient and every parameter gradient, in float64 with a batch
larger than one, for a random upstream gradient G (L = Σ Z ⊙ G). Parameters are copied into the
PyTorch module through our state_dict, which also checks that the names match PyTorch's.
"""

import warnings

import numpy as np
import pytest
from oracle import torch

import mytorch
from mytorch import functional as F
from mytorch import nn
from mytorch.autograd_engine import Autograd

TOLERANCE = {"rtol": 1e-9, "atol": 1e-11}


def to_torch_module(ours, theirs):
    theirs = theirs.double()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    theirs.train(ours.training)
    return theirs


def ours_forward_backward(layer, inputs, grad_out):
    engine = Autograd()
    out = layer(*inputs)
    engine.backward(F.sum(F.mul(out, grad_out)))
    buffer = engine.gradient_buffer
    return out, [buffer.get_param(x) for x in inputs], [buffer.get_param(p) for p in layer.parameters()]


def torch_forward_backward(module, inputs, grad_out):
    """`grad_out`: the upstream gradient, or a function of the output's shape that makes it."""
    tensors = [torch.tensor(x, requires_grad=True) for x in inputs]
    out = module(*tensors)
    if callable(grad_out):
        grad_out = grad_out(tuple(out.shape))
    out.backward(torch.tensor(grad_out))
    return (
        out.detach().numpy(),
        [t.grad.numpy() for t in tensors],
        [p.grad.numpy() for p in module.parameters()],
    )


def compare_with_torch(ours, theirs, input_shapes, seed=0):
    """Forward values, input gradients and parameter gradients of `ours` and `theirs` (float64)."""
    rng = np.random.default_rng(seed)
    inputs = [rng.normal(size=shape) for shape in input_shapes]
    theirs = to_torch_module(ours, theirs)
    assert [name for name, _ in ours.named_parameters()] == [name for name, _ in theirs.named_parameters()]
    assert [p.shape for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    upstream = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's legacy Softmax(dim=None) warns
        expected, expected_inputs, expected_params = torch_forward_backward(
            theirs, inputs, lambda shape: upstream.append(rng.normal(size=shape)) or upstream[0]
        )
    grad_out = upstream[0]
    out, grads_inputs, grads_params = ours_forward_backward(ours, inputs, grad_out)
    differences = [np.abs(out - expected).max()]
    np.testing.assert_allclose(out, expected, **TOLERANCE)
    assert len(grads_params) == len(expected_params)
    for got, want in zip(grads_inputs + grads_params, expected_inputs + expected_params):
        np.testing.assert_allclose(got, want, **TOLERANCE)
        differences.append(np.abs(got - want).max())
    return max(differences)


LAYERS = {
    "Linear": (lambda: nn.Linear(5, 3), lambda: torch.nn.Linear(5, 3), [(4, 5)]),
    "Linear without bias": (lambda: nn.Linear(5, 3, bias=False), lambda: torch.nn.Linear(5, 3, bias=False),
                            [(4, 5)]),
    "Linear on (N, T, in)": (lambda: nn.Linear(5, 3), lambda: torch.nn.Linear(5, 3), [(2, 4, 5)]),
    "Identity": (nn.Identity, lambda: torch.nn.Identity(), [(4, 5)]),
    "Sigmoid": (nn.Sigmoid, lambda: torch.nn.Sigmoid(), [(4, 5)]),
    "Tanh": (nn.Tanh, lambda: torch.nn.Tanh(), [(4, 5)]),
    "ReLU": (nn.ReLU, lambda: torch.nn.ReLU(), [(4, 5)]),
    "GELU": (nn.GELU, lambda: torch.nn.GELU(), [(4, 5)]),
    "GELU tanh": (lambda: nn.GELU("tanh"), lambda: torch.nn.GELU("tanh"), [(4, 5)]),
    "Softmax dim=1": (lambda: nn.Softmax(dim=1), lambda: torch.nn.Softmax(dim=1), [(4, 5)]),
    "Softmax dim=0": (lambda: nn.Softmax(dim=0), lambda: torch.nn.Softmax(dim=0), [(4, 5)]),
    "Softmax dim=None": (nn.Softmax, lambda: torch.nn.Softmax(), [(4, 5)]),
    "Dropout in eval": (lambda: nn.Dropout().eval(), lambda: torch.nn.Dropout(), [(4, 5)]),
    "Flatten": (nn.Flatten, lambda: torch.nn.Flatten(), [(2, 3, 4, 5)]),
    "BatchNorm1d (N, C)": (lambda: nn.BatchNorm1d(5), lambda: torch.nn.BatchNorm1d(5), [(6, 5)]),
    "BatchNorm1d (N, C, L)": (lambda: nn.BatchNorm1d(3), lambda: torch.nn.BatchNorm1d(3), [(4, 3, 7)]),
    "BatchNorm1d no affine": (lambda: nn.BatchNorm1d(5, affine=False),
                              lambda: torch.nn.BatchNorm1d(5, affine=False), [(6, 5)]),
    "Conv1d": (lambda: nn.Conv1d(3, 4, 3, stride=2, padding=1), lambda: torch.nn.Conv1d(3, 4, 3, 2, 1),
               [(2, 3, 11)]),
    "Conv1d dilated, no bias": (lambda: nn.Conv1d(2, 3, 2, dilation=3, bias=False),
                                lambda: torch.nn.Conv1d(2, 3, 2, dilation=3, bias=False), [(3, 2, 10)]),
    "Conv2d": (lambda: nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0)),
               lambda: torch.nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0)), [(2, 2, 7, 6)]),
    "Conv2d same": (lambda: nn.Conv2d(2, 2, 3, padding="same", dilation=2),
                    lambda: torch.nn.Conv2d(2, 2, 3, padding="same", dilation=2), [(2, 2, 6, 5)]),
    "Conv2d unbatched": (lambda: nn.Conv2d(2, 3, 3), lambda: torch.nn.Conv2d(2, 3, 3), [(2, 5, 6)]),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), [(2, 3, 6, 7)]),
    "MaxPool2d stride 2 pad 1": (lambda: nn.MaxPool2d(3, stride=2, padding=1),
                                 lambda: torch.nn.MaxPool2d(3, stride=2, padding=1), [(2, 2, 7, 8)]),
    "MaxPool2d ceil_mode": (lambda: nn.MaxPool2d(2, ceil_mode=True),
                            lambda: torch.nn.MaxPool2d(2, ceil_mode=True), [(2, 2, 5, 7)]),
    "RNNCell": (lambda: nn.RNNCell(4, 5), lambda: torch.nn.RNNCell(4, 5), [(3, 4), (3, 5)]),
    "RNNCell h=None": (lambda: nn.RNNCell(4, 5), lambda: torch.nn.RNNCell(4, 5), [(3, 4)]),
    "RNNCell relu": (lambda: nn.RNNCell(4, 5, nonlinearity="relu"),
                     lambda: torch.nn.RNNCell(4, 5, nonlinearity="relu"), [(3, 4), (3, 5)]),
    "GRUCell": (lambda: nn.GRUCell(4, 5), lambda: torch.nn.GRUCell(4, 5), [(3, 4), (3, 5)]),
    "GRUCell h=None": (lambda: nn.GRUCell(4, 5), lambda: torch.nn.GRUCell(4, 5), [(3, 4)]),
    "GRUCell unbatched": (lambda: nn.GRUCell(4, 5), lambda: torch.nn.GRUCell(4, 5), [(4,), (5,)]),
    "Sequential": (lambda: nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.Linear(6, 2)),
                   lambda: torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.GELU(), torch.nn.Linear(6, 2)),
                   [(5, 4)]),
    "Sequential conv net": (
        lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(2 * 3 * 3, 4), nn.Tanh()),
        lambda: torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(),
                                    torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(2 * 3 * 3, 4),
                                    torch.nn.Tanh()),
        [(3, 1, 6, 6)]),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_matches_torch(name):
    make_ours, make_theirs, shapes = LAYERS[name]
    compare_with_torch(make_ours(), make_theirs(), shapes)


def test_default_initialisation_follows_torch():
    np.random.seed(0)
    layer = nn.Linear(400, 30)
    bound = 1 / np.sqrt(400)
    assert np.abs(layer.W).max() <= bound and np.abs(layer.b).max() <= bound
    assert np.abs(layer.W).max() > 0.95 * bound  # uniform over the whole range, not a narrower one
    conv = nn.Conv2d(3, 8, 5)
    assert np.abs(conv.W).max() <= 1 / np.sqrt(3 * 25)
    gru = nn.GRUCell(6, 10)
    assert all(np.abs(p).max() <= 1 / np.sqrt(10) for p in gru.parameters())
    bn = nn.BatchNorm1d(4)
    np.testing.assert_array_equal(bn.weight, np.ones(4))
    np.testing.assert_array_equal(bn.bias, np.zeros(4))


# ---- BatchNorm running statistics, Dropout ------------------------------------------------------


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_batchnorm_running_stats_and_eval_match_torch(momentum):
    rng = np.random.default_rng(1)
    ours = nn.BatchNorm1d(3, momentum=momentum)
    ours.weight[...] = rng.normal(size=3)
    ours.bias[...] = rng.normal(size=3)
    theirs = to_torch_module(ours, torch.nn.BatchNorm1d(3, momentum=momentum))
    for step in range(4):
        x = rng.normal(loc=step, scale=1 + step, size=(8, 3, 2))
        ours(x)
        theirs(torch.tensor(x))
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), **TOLERANCE)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), **TOLERANCE)  # unbiased
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 4
    ours.eval()
    theirs.eval()
    x = rng.normal(size=(5, 3, 2))
    grad_out = rng.normal(size=(5, 3, 2))
    out, (dx,), (dweight, dbias) = ours_forward_backward(ours, [x], grad_out)
    expected, (expected_dx,), (expected_dweight, expected_dbias) = torch_forward_backward(
        theirs, [x], grad_out
    )
    np.testing.assert_allclose(out, expected, **TOLERANCE)
    np.testing.assert_allclose(dx, expected_dx, **TOLERANCE)
    np.testing.assert_allclose(dweight, expected_dweight, **TOLERANCE)
    np.testing.assert_allclose(dbias, expected_dbias, **TOLERANCE)
    # eval leaves the running statistics alone, and they stay writable for the next training step
    before = ours.running_mean.copy()
    ours(x)
    np.testing.assert_array_equal(ours.running_mean, before)
    ours.train()
    ours(x)


def test_batchnorm_refuses_one_value_per_feature_in_training():
    with pytest.raises(ValueError, match="more than 1 value"):
        nn.BatchNorm1d(3)(np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        nn.BatchNorm1d(3)(np.ones((4, 2)))


def test_dropout_scales_the_kept_elements_and_routes_the_gradient_through_them():
    np.random.seed(3)
    layer = nn.Dropout(p=0.3)
    x = np.random.normal(size=(50, 40))
    out, (dx,), _ = ours_forward_backward(layer, [x], np.ones_like(x))
    keep = layer.mask
    assert 0.6 < keep.mean() < 0.8
    np.testing.assert_allclose(out, np.where(keep, x / 0.7, 0.0))
    np.testing.assert_allclose(dx, np.where(keep, 1 / 0.7, 0.0))
    # the same mask in PyTorch's formula gives the same numbers
    theirs = torch.tensor(x, requires_grad=True)
    (theirs * torch.tensor(keep) / 0.7).sum().backward()
    np.testing.assert_allclose(dx, theirs.grad.numpy())
    np.testing.assert_array_equal(nn.Dropout(1.0)(x), np.zeros_like(x))
    assert nn.Dropout(0.5).eval()(x) is x
    with pytest.raises(ValueError, match="p must lie"):
        nn.Dropout(1.5)


# ---- losses --------------------------------------------------------------------------------------


def _loss_case(ours, theirs, prediction, target):
    engine = Autograd()
    loss = ours(prediction, target)
    engine.backward(F.sum(loss) if loss.ndim else loss)
    dprediction = engine.gradient_buffer.get_param(prediction)
    p = torch.tensor(prediction, requires_grad=True)
    t = torch.tensor(target)
    expected = theirs(p, t)
    (expected.sum() if expected.ndim else expected).backward()
    np.testing.assert_allclose(loss, expected.detach().numpy(), **TOLERANCE)
    np.testing.assert_allclose(dprediction, p.grad.numpy(), **TOLERANCE)
    return loss, dprediction


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_torch(reduction):
    rng = np.random.default_rng(2)
    _loss_case(nn.MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction),
               rng.normal(size=(6, 3)), rng.normal(size=(6, 3)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("target_kind", ["labels", "one-hot", "probabilities"])
def test_cross_entropy_matches_torch(reduction, target_kind):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(7, 4))
    labels = rng.integers(0, 4, size=7)
    target = {
        "labels": labels,
        "one-hot": np.eye(4)[labels],
        "probabilities": rng.dirichlet(np.ones(4), size=7),
    }[target_kind]
    _loss_case(nn.CrossEntropyLoss(reduction=reduction), torch.nn.CrossEntropyLoss(reduction=reduction),
               logits, target)


def test_cross_entropy_on_extra_axes_and_with_label_smoothing_matches_torch():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(3, 4, 5))  # (N, C, d)
    labels = rng.integers(0, 4, size=(3, 5))
    for reduction in ("mean", "none"):
        _loss_case(nn.CrossEntropyLoss(reduction=reduction), torch.nn.CrossEntropyLoss(reduction=reduction),
                   logits, labels)
    _loss_case(nn.CrossEntropyLoss(label_smoothing=0.2), torch.nn.CrossEntropyLoss(label_smoothing=0.2),
               logits[:, :, 0], labels[:, 0])


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4]])
    labels = np.array([1, 2, 0])
    loss, grad = _loss_case(nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), logits, labels)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(loss, (2e4 + 0 + np.log(2)) / 3)
    loss, grad = _loss_case(nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), logits, np.eye(3)[labels])
    assert np.isfinite(loss) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_matches_torch(reduction):
    rng = np.random.default_rng(5)
    logits = np.concatenate([rng.normal(size=(5, 3)), [[0.0, 1e4, -1e4]]])  # x = 0 and huge logits too
    target = np.concatenate([rng.uniform(size=(5, 3)), [[1.0, 0.0, 1.0]]])
    _loss_case(nn.BCEWithLogitsLoss(reduction=reduction), torch.nn.BCEWithLogitsLoss(reduction=reduction),
               logits, target)
    weight, pos_weight = rng.uniform(size=3), rng.uniform(0.5, 3, size=3)
    _loss_case(nn.BCEWithLogitsLoss(weight=weight, pos_weight=pos_weight, reduction=reduction),
               torch.nn.BCEWithLogitsLoss(weight=torch.tensor(weight), pos_weight=torch.tensor(pos_weight),
                                          reduction=reduction),
               logits, target)


def test_loss_errors_name_the_loss_and_the_shapes():
    with pytest.raises(ValueError, match=r"MSELoss.*\(2, 3\).*\(3, 2\)"):
        nn.MSELoss()(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="avg")
    with pytest.raises(ValueError, match="labels"):
        nn.CrossEntropyLoss()(np.ones((2, 3)), np.array([0, 1, 2]))


# ---- Module: parameters, state, modes, Sequential -----------------------------------------------


def test_parameters_and_state_dict_follow_torch_names_and_order():
    ours = nn.Sequential(nn.Conv1d(2, 3, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4, 2))
    theirs = torch.nn.Sequential(torch.nn.Conv1d(2, 3, 3), torch.nn.BatchNorm1d(3), torch.nn.ReLU(),
                                 torch.nn.Flatten(), torch.nn.Linear(3 * 4, 2))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    theirs = to_torch_module(ours, theirs)  # loads without missing or unexpected keys
    state = ours.state_dict()
    state["0.weight"] += 1  # a copy: the model is untouched
    assert not np.allclose(ours[0].W, state["0.weight"])
    fresh = nn.Sequential(nn.Conv1d(2, 3, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4, 2))
    kept = fresh[0].W
    fresh.load_state_dict(ours.state_dict())
    assert fresh[0].W is kept  # loaded in place: an optimizer's references stay valid
    x = np.random.default_rng(0).normal(size=(4, 2, 6))
    with mytorch.no_grad():
        np.testing.assert_allclose(fresh(x), ours(x))
    with pytest.raises(KeyError, match="missing keys"):
        fresh.load_state_dict({"0.weight": ours[0].W})
    with pytest.raises(ValueError, match="shape"):
        fresh.load_state_dict({**ours.state_dict(), "4.bias": np.zeros(3)})


def test_torch_names_are_aliases_of_the_homework_names():
    layer = nn.Linear(3, 2)
    assert layer.weight is layer.W and layer.bias is layer.b
    new = np.zeros((2, 3))
    layer.weight = new
    assert layer.W is new and layer.parameters()[0] is new


def test_train_and_eval_reach_every_child_and_sequential_indexes():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(), nn.Sequential(nn.BatchNorm1d(3), nn.Tanh()))
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    assert isinstance(model[1], nn.Dropout) and isinstance(model[-1], nn.Sequential)
    assert [type(m).__name__ for m in model] == ["Linear", "Dropout", "Sequential"]
    assert len(model[:2]) == 2 and len(model) == 3
    assert "Linear(in_features=3, out_features=3, bias=True)" in repr(model)
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.Linear(2, 2), np.tanh)


def test_a_layer_given_another_engine_refuses_to_record():
    first = Autograd()
    layer = nn.Linear(3, 2, first)
    activation = nn.Sigmoid(autograd_engine=first)
    x = np.ones((1, 3))
    activation(layer(x))  # fine while it is the current engine
    Autograd()
    with pytest.raises(RuntimeError, match="not the current one"):
        layer(x)
    with pytest.raises(TypeError, match="must be an Autograd"):
        nn.Tanh(autograd_engine="engine")


def test_layers_record_only_primitives_no_hand_written_gradients():
    engine = Autograd()
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 3), nn.GELU(),
                          nn.BatchNorm1d(3))
    model(np.random.default_rng(0).normal(size=(4, 1, 4, 4)))
    assert engine.operation_list
    assert all(op.primitive is not None and op.primitive.name in F.PRIMITIVES for op in engine.operation_list)


# ---- the drop-in protocol -----------------------------------------------------------------------


def _lecture_data(rng, n=12, d=3, m=5, c=4):
    X = rng.normal(size=(n, d))
    Y = np.eye(c)[rng.integers(0, c, size=n)]
    return X, Y


def test_protocol_matches_the_lectures_hand_derived_mlp_gradients():
    """softmax(W σ(V x)): dW = Zᵀ(Ŷ - Y)/N and dV = Xᵀ((Ŷ - Y)Wᵀ ⊙ Z(1 - Z))/N (rows are examples)."""
    rng = np.random.default_rng(6)
    X, Y = _lecture_data(rng)
    hidden, output = nn.Linear(3, 5, bias=False), nn.Linear(5, 4, bias=False)
    model = nn.Sequential(hidden, nn.Sigmoid(), output)
    loss = nn.CrossEntropyLoss()

    L = loss.forward(model.forward(X), Y)
    dLdA = loss.backward()
    dLdX = model.backward(dLdA)

    V, W = hidden.W.T, output.W.T  # the lecture's V (D×M) and W (M×C)
    Z = 1 / (1 + np.exp(-X @ V))
    U = Z @ W
    Yh = np.exp(U - U.max(1, keepdims=True))
    Yh /= Yh.sum(1, keepdims=True)
    N = len(X)
    dW = Z.T @ (Yh - Y) / N
    dV = X.T @ ((Yh - Y) @ W.T * Z * (1 - Z)) / N
    np.testing.assert_allclose(L, -np.mean(np.sum(Y * np.log(Yh), 1)), rtol=1e-12)
    np.testing.assert_allclose(dLdA, (Yh - Y) / N, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(output.dLdW, dW.T, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(hidden.dLdW, dV.T, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dLdX, ((Yh - Y) @ W.T * Z * (1 - Z)) @ V.T / N, rtol=1e-12, atol=1e-15)
    assert hidden.dW is hidden.dLdW  # the handout's names are the same arrays


def test_protocol_layer_by_layer_equals_sequential_and_engine_backward():
    rng = np.random.default_rng(7)
    X, Y = _lecture_data(rng)
    layers = [nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 4)]
    loss = nn.CrossEntropyLoss()

    A = X
    for layer in layers:
        A = layer.forward(A)
    loss.forward(A, Y)
    dLdA = loss.backward()
    for layer in reversed(layers):
        dLdA = layer.backward(dLdA)
    by_layer = [layers[0].dLdW, layers[0].dLdb, layers[2].dLdW, layers[2].dLdb, dLdA]

    engine = Autograd()
    model = nn.Sequential(*layers)
    L = loss(model(X), Y)
    engine.backward(L)
    by_engine = [engine.gradient_buffer.get_param(p) for p in model.parameters()]
    for got, want in zip(by_layer, by_engine):
        np.testing.assert_allclose(got, want, rtol=1e-12)


class HandWrittenLinear:
    """A homework layer: forward and backward written by hand, no engine."""

    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, A):
        self.A = A
        return A @ self.W.T + self.b

    def backward(self, dLdZ):
        self.dLdW = dLdZ.T @ self.A
        self.dLdb = dLdZ.sum(axis=0)
        return dLdZ @ self.W


class HandWrittenSigmoid:
    def forward(self, Z):
        self.A = 1 / (1 + np.exp(-Z))
        return self.A

    def backward(self, dLdA):
        return dLdA * self.A * (1 - self.A)


def test_hand_written_and_engine_layers_side_by_side_in_one_network():
    rng = np.random.default_rng(8)
    X, Y = _lecture_data(rng, n=10, d=4, c=3)
    engine_first = nn.Linear(4, 6)
    hand_second = HandWrittenLinear(rng.normal(size=(5, 6)), rng.normal(size=5))
    network = [engine_first, HandWrittenSigmoid(), hand_second, nn.ReLU(), nn.Linear(5, 3)]
    loss = nn.CrossEntropyLoss()

    A = X
    for layer in network:
        A = layer.forward(A)
    L = loss.forward(A, Y)
    dLdA = loss.backward()
    for layer in reversed(network):
        dLdA = layer.backward(dLdA)

    # the same network in PyTorch
    t_first = torch.nn.Linear(4, 6).double()
    t_first.load_state_dict({k: torch.tensor(v) for k, v in engine_first.state_dict().items()})
    t_second = torch.nn.Linear(6, 5).double()
    t_second.load_state_dict({"weight": torch.tensor(hand_second.W), "bias": torch.tensor(hand_second.b)})
    t_last = torch.nn.Linear(5, 3).double()
    t_last.load_state_dict({k: torch.tensor(v) for k, v in network[-1].state_dict().items()})
    tx = torch.tensor(X, requires_grad=True)
    t_loss = torch.nn.CrossEntropyLoss()(t_last(torch.relu(t_second(torch.sigmoid(t_first(tx))))),
                                         torch.tensor(Y))
    t_loss.backward()
    np.testing.assert_allclose(L, t_loss.item(), rtol=1e-12)
    np.testing.assert_allclose(dLdA, tx.grad.numpy(), rtol=1e-10, atol=1e-14)
    for ours, theirs in [(engine_first.dLdW, t_first.weight), (engine_first.dLdb, t_first.bias),
                         (hand_second.dLdW, t_second.weight), (hand_second.dLdb, t_second.bias),
                         (network[-1].dLdW, t_last.weight), (network[-1].dLdb, t_last.bias)]:
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_protocol_consumes_the_tape_so_a_training_loop_never_grows_it():
    rng = np.random.default_rng(9)
    X, Y = _lecture_data(rng)
    engine = Autograd()
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 4))
    loss = nn.CrossEntropyLoss()
    opt = mytorch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(30):
        losses.append(float(loss.forward(model.forward(X), Y)))
        model.backward(loss.backward())
        assert engine.operation_list == []
        opt.step()  # the parameters are writable again, and their gradients are in the buffer
    assert len(engine.gradient_buffer.memory) <= len(model.parameters()) + 1
    assert losses[-1] < 0.5 * losses[0]


def test_protocol_errors_are_clear():
    layer = nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match="no recorded forward"):
        layer.backward(np.ones((1, 2)))
    layer(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"dLdZ has shape \(4, 3\).*\(4, 2\)"):
        layer.backward(np.ones((4, 3)))
    layer.backward(np.ones((4, 2)))
    with pytest.raises(RuntimeError, match="no longer holds"):
        layer.backward(np.ones((4, 2)))
    layer(np.ones((4, 3)))
    mytorch.engine().zero_grad()
    with pytest.raises(RuntimeError, match="no longer holds"):
        layer.backward(np.ones((4, 2)))
    with mytorch.no_grad():
        layer(np.ones((4, 3)))
    with pytest.raises(RuntimeError, match="no recorded forward"):
        layer.backward(np.ones((4, 2)))


def test_protocol_with_two_inputs_returns_both_adjoints_and_passes_through_identity():
    rng = np.random.default_rng(10)
    cell = nn.GRUCell(3, 4)
    x, h = rng.normal(size=(2, 3)), rng.normal(size=(2, 4))
    g = rng.normal(size=(2, 4))
    cell(x, h)
    dx, dh = cell.backward(g)
    theirs = to_torch_module(cell, torch.nn.GRUCell(3, 4))
    tx, th = torch.tensor(x, requires_grad=True), torch.tensor(h, requires_grad=True)
    theirs(tx, th).backward(torch.tensor(g))
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(dh, th.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(cell.dLdweight_hh, theirs.weight_hh.grad.numpy(), rtol=1e-10)
    identity = nn.Identity()
    identity.forward(x)
    np.testing.assert_array_equal(identity.backward(np.full((2, 3), 2.0)), np.full((2, 3), 2.0))


def test_a_parameter_used_twice_gets_both_paths():
    """The lecture's scanning MLP: one layer applied at two positions, then a skip connection."""
    rng = np.random.default_rng(11)
    engine = Autograd()
    shared = nn.Linear(3, 3)
    x1, x2 = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    out = F.sum(F.add(F.add(shared(x1), shared(x2)), x1))
    engine.backward(out)
    t = to_torch_module(shared, torch.nn.Linear(3, 3))
    (t(torch.tensor(x1)) + t(torch.tensor(x2))).sum().backward()
    np.testing.assert_allclose(shared.dLdW, t.weight.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(engine.gradient_buffer.get_param(x1), 1 + shared.W.sum(0)[None].repeat(2, 0))


def test_a_primitive_with_many_inputs_records_and_walks():
    """Engine fix: stack/concatenate of more than 7 arrays used to fail while recording (KeyError)."""
    engine = Autograd()
    parts = [np.full(2, float(i)) for i in range(12)]
    total = F.sum(F.mul(F.stack(parts), F.reshape(F.concatenate(parts), (12, 2))))  # Σ part²
    engine.backward(total)
    for i, part in enumerate(parts):
        np.testing.assert_array_equal(engine.gradient_buffer.get_param(part), np.full(2, 2.0 * i))

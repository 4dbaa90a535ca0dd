"""Layers and optimizers that never give a silent wrong answer (issue 10): shared parameters are
stepped once, a parameter off the loss's path is left alone, loading a state is all or nothing, and a
width mismatch names the layer."""

import numpy as np
import pytest
from oracle import torch

from mytorch import functional as F
from mytorch import nn, optim
from mytorch.autograd_engine import Autograd

# ---- a parameter shared by two layers is listed (and stepped) once ------------------------------


def _tied_autoencoder():
    np.random.seed(0)
    encoder, decoder = nn.Linear(3, 3), nn.Linear(3, 3)
    decoder.W = encoder.W  # tied weights
    return nn.Sequential(encoder, nn.Tanh(), decoder)


def test_a_layer_used_twice_is_listed_once_as_in_pytorch():
    layer = nn.Linear(2, 2)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert [id(p) for p in model.parameters()] == [id(layer.W), id(layer.b)]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]  # every name
    assert len(list(model.children())) == 2 and len(list(model.modules())) == 3
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear"] and len(model) == 3
    assert [name for name, _ in model.named_parameters(remove_duplicate=False)] == [
        "0.weight", "0.bias", "2.weight", "2.bias"
    ]


def test_tied_weights_are_listed_once_under_their_first_name():
    model = _tied_autoencoder()
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.bias"]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    model.load_state_dict(model.state_dict())  # both names load into the one array


def test_names_of_shared_parameters_match_pytorch():
    layer = torch.nn.Linear(2, 2)
    theirs = torch.nn.Sequential(layer, torch.nn.ReLU(), layer)
    ours_layer = nn.Linear(2, 2)
    ours = nn.Sequential(ours_layer, nn.ReLU(), ours_layer)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    encoder, decoder = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    decoder.weight = encoder.weight
    theirs = torch.nn.Sequential(encoder, torch.nn.Tanh(), decoder)
    ours = _tied_autoencoder()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.parametrize("make", [
    lambda p: optim.SGD(p, lr=0.1),
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.1),
    lambda p: optim.Adam(p, lr=0.01),
], ids=["sgd", "sgd-momentum-decay", "adam"])
def test_a_tied_weight_is_stepped_once_with_the_sum_of_both_paths(make):
    X = np.random.default_rng(1).normal(size=(4, 3))
    ours = _tied_autoencoder()
    opt = make(ours.parameters())
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh(), torch.nn.Linear(3, 3)).double()
    theirs[2].weight = theirs[0].weight
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    their_opt = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam}[type(opt).__name__](
        theirs.parameters(), **{k: v for k, v in vars(opt).items()
                                if k in ("lr", "momentum", "weight_decay", "betas", "eps")})
    for _ in range(3):
        engine = Autograd()
        engine.backward(F.mean(F.mul(ours(X), ours(X))))
        opt.step()
        their_opt.zero_grad()
        out = theirs(torch.tensor(X))
        (out * out).mean().backward()
        their_opt.step()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p, q.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_an_optimizer_given_the_same_array_twice_warns_and_steps_it_once():
    w = np.array([1.0, -2.0])
    with pytest.warns(UserWarning, match="more than once"):
        opt = optim.SGD([w, w], lr=0.1)
    Autograd().backward(F.sum(F.mul(w, w)))
    opt.step()
    np.testing.assert_allclose(w, [0.8, -1.6])


# ---- a parameter off the loss's path has no gradient, and is left alone -------------------------


@pytest.mark.parametrize("make", [
    lambda p: optim.SGD(p, lr=0.1, weight_decay=0.5),
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.5),
    lambda p: optim.Adam(p, lr=0.1),
    lambda p: optim.Adam(p, lr=0.1, weight_decay=0.5, amsgrad=True),
], ids=["sgd-decay", "sgd-momentum", "adam", "adam-decay-amsgrad"])
def test_a_parameter_used_off_the_loss_path_is_not_moved(make):
    w, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    opt = make([w, b])
    engine = Autograd()
    F.mul(b, 2.0)  # b takes part in the forward, but not in the loss
    engine.backward(F.sum(F.mul(w, w)))
    assert engine.gradient_buffer.gradient(b) is None
    np.testing.assert_array_equal(engine.gradient_buffer.get_param(b), [0.0, 0.0])  # the handout's read
    opt.step()
    np.testing.assert_array_equal(b, [3.0, 4.0])  # was [2.85, 3.8] with weight_decay=0.5
    assert not np.allclose(w, [1.0, 2.0])


def test_pytorch_also_leaves_a_parameter_off_the_loss_path_alone():
    w = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w, b], lr=0.1, weight_decay=0.5)
    _ = w + b
    (w * w).sum().backward()
    opt.step()
    assert b.grad is None and b.tolist() == [3.0, 4.0]


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Linear(3, 2), nn.Linear(3, 2)

    def forward(self, x):
        return self.first(x), self.second(x)


def test_a_head_left_out_of_the_loss_keeps_its_weights_and_reads_zero_gradients():
    np.random.seed(0)
    model = TwoHeads()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    before = {name: p.copy() for name, p in model.named_parameters()}
    for _ in range(2):
        engine = Autograd()
        first, _ = model(np.ones((4, 3)))
        engine.backward(F.sum(first))
        opt.step()
    for name, p in model.named_parameters():
        assert np.array_equal(p, before[name]) == name.startswith("second"), name
    np.testing.assert_array_equal(model.second.dLdW, np.zeros((2, 3)))  # the protocol's arrays: zeros
    np.testing.assert_array_equal(model.first.dLdb, [4.0, 4.0])


def test_zero_grad_forgets_gradients_so_a_step_moves_nothing():
    w = np.array([1.0, 2.0])
    opt = optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=0.5)
    engine = Autograd()
    engine.backward(F.sum(F.mul(w, w)))
    opt.zero_grad()  # PyTorch's default: set_to_none
    opt.step()
    np.testing.assert_array_equal(w, [1.0, 2.0])
    assert engine.gradient_buffer.gradient(w) is None
    opt.zero_grad(set_to_none=False)
    opt.step()  # a zero gradient is a gradient: weight decay moves w
    np.testing.assert_allclose(w, [0.95, 1.9])


class SideBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_parameter("weight", np.array([1.0, 2.0]), attribute="W")
        self.register_parameter("unused", np.array([3.0, 4.0]))

    def forward(self, x):
        F.mul(self.unused, 2.0)  # recorded, but off the output's path
        return F.mul(x, self.W)


def test_the_drop_in_protocol_leaves_a_parameter_it_did_not_reach_without_gradient():
    layer = SideBranch()
    opt = optim.SGD(layer.parameters(), lr=0.1, weight_decay=0.5)
    Autograd()
    layer(np.array([5.0, 6.0]))
    dLdA = layer.backward(np.ones(2))
    np.testing.assert_array_equal(dLdA, [1.0, 2.0])
    np.testing.assert_array_equal(layer.dLdW, [5.0, 6.0])
    np.testing.assert_array_equal(layer.dLdunused, [0.0, 0.0])  # an array, as homework code expects
    opt.step()
    np.testing.assert_array_equal(layer.unused, [3.0, 4.0])
    np.testing.assert_allclose(layer.W, [1.0 - 0.1 * 5.5, 2.0 - 0.1 * 7.0])


def test_gradient_buffer_gradient_tells_none_from_zero():
    engine = Autograd()
    x, y, z = np.array([1.0]), np.array([2.0]), np.array([3.0])
    F.mul(y, 2.0)
    engine.backward(F.sum(F.mul(x, 0.0)))
    buffer = engine.gradient_buffer
    np.testing.assert_array_equal(buffer.gradient(x), [0.0])  # reached: a zero gradient
    assert buffer.gradient(y) is None and buffer.gradient(z) is None  # tracked / untracked
    assert buffer.gradient(z, default="none") == "none"


# ---- load_state_dict: all or nothing -------------------------------------------------------------


def _net():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


@pytest.mark.parametrize("bad, match", [
    ({"3.bias": np.zeros(3)}, r"3\.bias has shape \(3,\) in the state, \(2,\) in the model"),
    ({"3.weight": np.zeros((2, 4), dtype=complex)}, r"3\.weight has dtype complex128"),
    ({"3.bias": ["a", "b"]}, r"3\.bias has dtype <U1"),
    ({"1.num_batches_tracked": np.array(0.5)}, r"num_batches_tracked has dtype float64"),
    ({"3.bias": [[1.0], [2.0, 3.0]]}, r"3\.bias is not an array"),
])
def test_a_mismatch_in_the_last_layer_leaves_the_model_unchanged(bad, match):
    np.random.seed(0)
    model = _net()
    before = {key: value.copy() for key, value in model.state_dict().items()}
    np.random.seed(1)
    state = {**_net().state_dict(), **bad}
    with pytest.raises(ValueError, match=match) as error:
        model.load_state_dict(state)
    assert "nothing was loaded" in str(error.value)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_load_state_dict_reports_every_mismatch_at_once_and_refuses_unknown_keys():
    model = _net()
    state = {**model.state_dict(), "0.weight": np.zeros((4, 4)), "3.bias": np.zeros(5)}
    with pytest.raises(ValueError, match=r"0\.weight has shape.*3\.bias has shape"):
        model.load_state_dict(state)
    with pytest.raises(KeyError, match="unexpected keys \\['extra'\\].*nothing was loaded"):
        model.load_state_dict({**model.state_dict(), "extra": np.zeros(1)})


def test_load_state_dict_casts_within_a_kind_and_loads_in_place():
    model = _net()
    weight = model[0].W
    state = {key: value.astype(np.float32) if value.dtype.kind == "f" else value
             for key, value in _net().state_dict().items()}
    model.load_state_dict(state)
    assert model[0].W is weight and model[0].W.dtype == np.float64
    np.testing.assert_allclose(model[0].W, state["0.weight"])


def test_load_state_dict_refuses_arrays_the_tape_holds_before_writing_any():
    model = _net()
    state = _net().state_dict()
    before = model[0].W.copy()
    Autograd()
    model(np.ones((5, 3)))  # the tape holds the parameters (read-only) until backward
    with pytest.raises(RuntimeError, match="read-only by the tape"):
        model.load_state_dict(state)
    np.testing.assert_array_equal(model[0].W, before)


def test_load_state_dict_non_strict_loads_what_is_there():
    model = _net()
    source = _net()
    model.load_state_dict({"3.bias": source[3].b}, strict=False)
    np.testing.assert_array_equal(model[3].b, source[3].b)


# ---- a width mismatch names the layer ----------------------------------------------------------


def test_a_width_mismatch_names_the_linear_layer_and_both_shapes():
    with pytest.raises(ValueError, match=r"Linear\(in_features=3, out_features=2\).*\(4, 5\).*\(2, 3\)"):
        nn.Linear(3, 2)(np.ones((4, 5)))
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(7, 2))
    with pytest.raises(ValueError, match=r"Linear\(in_features=7, out_features=2\).*\(4, 8\)"):
        model(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"Linear\(in_features=3, out_features=2\).*shape \(\)"):
        nn.Linear(3, 2)(np.array(1.0))
    assert nn.Linear(3, 2)(np.ones(3)).shape == (2,)  # an unbatched input is fine

"""The course's 2024 HW3 autograd handout (RNN, GRU, CTC), checked as its autograder does.

That year the course ran its own solution code on a swapped-in engine: `Autograd(debug=False)`,
one engine per test, sequences sliced by hand with `add_operation(inputs=[x, np.array(idx,
dtype=object)], ..., backward_operation=slice_backward)`, a loss from `np.sum` (a NumPy scalar) fed
to `add_operation` with `sum_backward`, and rules whose extra argument is recorded as one more
input (`tanh_backward(g, a, state)`, `expand_dims_backward(g, a, np.array([axis]))`) and so return
`(grad, None)`. Every value and gradient must equal PyTorch's (float64) to 1e-9.
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from oracle import torch  # imported on first use: tests that never touch it run without it

import mytorch
import mytorch.nn as nn
from mytorch import autograd_engine
from mytorch import functional as F
from mytorch.nn.functional import (
    expand_dims_backward,
    identity_backward,
    matmul_backward,
    max_backward,
    slice_backward,
    squeeze_backward,
    sum_backward,
    tanh_backward,
    transpose_backward,
)


def same_as_torch(array, tensor):
    expected = tensor.detach().numpy()
    assert np.shape(array) == expected.shape, f"shape {np.shape(array)} vs torch's {expected.shape}"
    np.testing.assert_allclose(array, expected, rtol=1e-9, atol=1e-9)


def leaf(x):
    return torch.tensor(np.array(x), requires_grad=True)


def torch_adjoint(forward, a, g):
    """PyTorch's gradient of <forward(a), g> with respect to a."""
    ta = leaf(a)
    (forward(ta) * torch.tensor(np.asarray(g))).sum().backward()
    return ta.grad


RNG = np.random.default_rng(11785)


# ---- the 2024 engine's call shapes ------------------------------------------------------------


def test_engine_takes_the_debug_flag():
    engine = autograd_engine.Autograd(debug=False)
    x = np.array([1.0, 2.0])
    y = F.sum(F.mul(x, x))
    engine.backward(y)
    np.testing.assert_array_equal(engine.gradient_buffer.get_param(x), [2.0, 4.0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_scalar_from_np_sum_is_an_operation_output(dtype):
    engine = autograd_engine.Autograd()
    h = RNG.random((2, 3)).astype(dtype)
    doubled = F.mul(h, dtype(2))
    loss = np.sum(doubled)  # a NumPy scalar, not an array
    assert type(loss) is dtype
    engine.add_operation(inputs=[doubled], output=loss, gradients_to_update=[None],
                         backward_operation=sum_backward)
    engine.backward(1)
    np.testing.assert_array_equal(engine.gradient_buffer.get_param(h), np.full((2, 3), 2, dtype=dtype))


def _run_in_a_copied_package(tmp_path, script):
    package = tmp_path / "mytorch"
    package.mkdir()
    (package / "__init__.py").write_text("")
    source = Path(autograd_engine.__file__).parent
    for name in ("autograd_engine.py", "utils.py"):
        shutil.copy(source / name, package / name)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=tmp_path, env=environment,
                          capture_output=True, text=True, timeout=120)


STANDALONE = """
    import os
    import sys
    import numpy as np
    from mytorch.autograd_engine import Autograd

    loaded = sorted(m for m in sys.modules if m.startswith("mytorch"))
    assert loaded == ["mytorch", "mytorch.autograd_engine", "mytorch.utils"], loaded
    assert sys.modules["mytorch"].__file__.startswith(os.getcwd()), sys.modules["mytorch"].__file__

    def matmul_backward(g, a, b):
        return g @ b.T, a.T @ g

    def add_backward(g, a, b):
        return g, g.sum(axis=0)

    engine = Autograd()
    x = np.arange(6.0).reshape(2, 3)
    W = np.ones((3, 4))
    b = np.zeros(4)
    dW, db = np.zeros_like(W), np.zeros_like(b)
    y = x @ W
    engine.add_operation([x, W], y, [None, dW], matmul_backward)
    z = y + b
    engine.add_operation([y, b], z, [None, db], add_backward)
    engine.backward(np.ones_like(z))
    assert np.array_equal(dW, x.T @ np.ones((2, 4))), dW
    assert np.array_equal(db, [2.0, 2.0, 2.0, 2.0]), db
    assert np.array_equal(engine.gradient_buffer.get_param(x), np.full((2, 3), 4.0))
    print("ok")
"""


def test_engine_and_utils_run_when_copied_into_another_package(tmp_path):
    result = _run_in_a_copied_package(tmp_path, STANDALONE)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


# ---- the HW3 rules, in the handout's call shape and in the primitive's ------------------------


def test_identity_and_transpose_backward():
    a, g = RNG.random((3, 4)), RNG.standard_normal((3, 4))
    same_as_torch(identity_backward(g, a), torch_adjoint(lambda t: t * 1, a, g))
    same_as_torch(transpose_backward(g.T, a), torch_adjoint(lambda t: t.T, a, g.T))


def test_tanh_backward_with_the_forward_output_as_state():
    a, g = RNG.standard_normal((4, 5)), RNG.standard_normal((4, 5))
    expected = torch_adjoint(torch.tanh, a, g)
    grad, none = tanh_backward(g, a, np.tanh(a))  # the handout's (grad, a, state)
    assert none is None
    same_as_torch(grad, expected)
    same_as_torch(tanh_backward(g, a), expected)  # the primitive's (grad, a): one array


@pytest.mark.parametrize("shape, axis", [((3, 4), 0), ((3, 4), 1), ((3, 4), -1), ((2, 3, 4), 2)])
def test_expand_dims_and_squeeze_backward_with_the_axis_as_an_array(shape, axis):
    a = RNG.random(shape)
    g = RNG.standard_normal(np.expand_dims(a, axis).shape)
    expected = torch_adjoint(lambda t: t.unsqueeze(axis), a, g)
    grad, none = expand_dims_backward(g, a, np.array([axis]))
    assert none is None
    same_as_torch(grad, expected)
    same_as_torch(expand_dims_backward(g, a, axis), expected)

    b = np.expand_dims(a, axis)
    expected = torch_adjoint(lambda t: t.squeeze(axis), b, a)
    grad, none = squeeze_backward(a, b, np.array([axis]))
    assert none is None
    same_as_torch(grad, expected)
    same_as_torch(squeeze_backward(a, b, axis), expected)


@pytest.mark.parametrize("index", [
    np.index_exp[2], np.index_exp[1:3], np.index_exp[:4, 1, 3], np.index_exp[:, 0],
    np.index_exp[-1, :, ::2], np.index_exp[:, [0, 2, 0]],  # a repeated pick adds up
])
def test_slice_backward_with_the_index_as_an_object_array(index):
    a = RNG.random((5, 3, 4))
    g = RNG.standard_normal(a[index].shape)
    expected = torch_adjoint(lambda t: t[index], a, g)
    grad, none = slice_backward(g, a, np.array(index, dtype=object))
    assert none is None
    same_as_torch(grad, expected)
    same_as_torch(slice_backward(g, a, index), expected)


@pytest.mark.parametrize("shape, axis", [((4, 3), 0), ((4, 3), 1), ((3, 3), 0), ((2, 3, 4), (0, 2)),
                                         ((2, 3, 4), None), ((5,), 0)])
def test_sum_backward_over_an_axis(shape, axis):
    a = RNG.random(shape)
    reduced = np.sum(a, axis=axis)
    g = RNG.standard_normal(np.shape(reduced))
    dims = tuple(range(len(shape))) if axis is None else axis
    expected = torch_adjoint(lambda t: t.sum(dim=dims), a, g)
    same_as_torch(sum_backward(g, a, axis=axis), expected)
    if axis in (0, None) or axis == (0, 2) or shape == (4, 3):
        same_as_torch(sum_backward(g, a), expected)  # the handout's call: the axis read off g's shape
    if isinstance(axis, int):
        grad, none = sum_backward(g, a, np.array([axis]))
        assert none is None
        same_as_torch(grad, expected)
    kept = RNG.standard_normal(np.sum(a, axis=axis, keepdims=True).shape)
    same_as_torch(sum_backward(kept, a), torch_adjoint(lambda t: t.sum(dim=dims, keepdim=True), a, kept))


def test_max_backward_as_the_handouts_relu_and_as_a_reduction():
    a = RNG.standard_normal((4, 6))
    a[0, 0] = 0.0  # the kink: no gradient, as torch.relu
    g = RNG.standard_normal((4, 6))
    same_as_torch(max_backward(g, a), torch_adjoint(torch.relu, a, g))

    g_all = np.array(1.7)
    same_as_torch(max_backward(g_all, a), torch_adjoint(lambda t: t.max(), a, g_all))
    g_rows = RNG.standard_normal(4)
    same_as_torch(max_backward(g_rows, a, axis=1), torch_adjoint(lambda t: t.max(dim=1).values, a, g_rows))


def test_handout_rules_drive_the_engine_through_add_operation():
    # A hand-recorded RNN step in the handout's way: the input sliced with an object-array index,
    # x Wᵀ recorded with transpose and matmul, tanh recorded with its output as the second input.
    engine = autograd_engine.Autograd()
    xs, W, h = RNG.standard_normal((3, 2, 4)), RNG.standard_normal((5, 4)), RNG.standard_normal((2, 5))
    index = np.index_exp[1]
    x = xs[index].copy()
    engine.add_operation([xs, np.array(index, dtype=object)], x, [None, None], slice_backward)
    W_T = W.T
    engine.add_operation([W], W_T, [None], transpose_backward)
    z = x @ W_T
    engine.add_operation([x, W_T], z, [None, None], matmul_backward)
    pre = z + h
    engine.add_operation([z, h], pre, [None, None], F.add.backward)
    state = np.tanh(pre)
    engine.add_operation([pre, state], state, [None, None], tanh_backward)
    column = np.expand_dims(state, 2)
    engine.add_operation([state, np.array([2])], column, [None, None], expand_dims_backward)
    seed = RNG.standard_normal(column.shape)
    engine.backward(seed)

    t_xs, t_W, t_h = leaf(xs), leaf(W), leaf(h)
    (torch.tanh(t_xs[1] @ t_W.T + t_h).unsqueeze(2) * torch.tensor(seed)).sum().backward()
    for array, tensor in ((xs, t_xs), (W, t_W), (h, t_h)):
        same_as_torch(engine.gradient_buffer.get_param(array), tensor.grad)


def _rnn_cell_backward(time_steps, batch, inputs, hidden, numpy_sum_loss):
    torch.manual_seed(11785)
    reference = torch.nn.RNNCell(inputs, hidden).double()
    autograd = autograd_engine.Autograd()
    cell = nn.RNNCell(inputs, hidden, autograd)
    cell.load_state_dict({k: v.numpy() for k, v in reference.state_dict().items()})

    sequence = torch.randn(time_steps, batch, inputs, dtype=torch.float64, requires_grad=True)
    torch_hiddens = [torch.randn(batch, hidden, dtype=torch.float64, requires_grad=True)]
    user_sequence = sequence.detach().numpy().copy()
    user_hiddens = [torch_hiddens[0].detach().numpy().copy()]
    for t in range(time_steps):
        torch_hiddens.append(reference(sequence[t], torch_hiddens[-1]))
        index = np.index_exp[t]
        step = user_sequence[index].copy()
        autograd.add_operation(inputs=[user_sequence, np.array(index, dtype=object)], output=step,
                               gradients_to_update=[None, None], backward_operation=slice_backward)
        user_hiddens.append(cell(step, user_hiddens[-1]))
        same_as_torch(user_hiddens[-1], torch_hiddens[-1])

    torch_hiddens[-1].sum().backward()
    if numpy_sum_loss:  # as the autograder: np.sum's scalar, recorded by hand
        loss = np.sum(user_hiddens[-1])
        autograd.add_operation(inputs=[user_hiddens[-1]], output=loss, gradients_to_update=[None],
                               backward_operation=sum_backward)
    else:
        F.sum(user_hiddens[-1])
    autograd.backward(1)

    same_as_torch(autograd.gradient_buffer.get_param(user_sequence), sequence.grad)
    same_as_torch(autograd.gradient_buffer.get_param(user_hiddens[0]), torch_hiddens[0].grad)
    for name, parameter in reference.named_parameters():
        same_as_torch(cell.gradient_of(getattr(cell, name)), parameter.grad)


@pytest.mark.parametrize("i", [1, 2, 3])
def test_rnn_cell_backward_through_hand_sliced_inputs(i):
    _rnn_cell_backward(time_steps=2 * i, batch=2 * i, inputs=2 * i, hidden=3 * i, numpy_sum_loss=False)


def test_rnn_cell_backward_as_the_autograder_with_np_sum():
    _rnn_cell_backward(time_steps=4, batch=3, inputs=2, hidden=5, numpy_sum_loss=True)


# ---- CTC loss -------------------------------------------------------------------------------------


TARGETS = np.array([[1, 1, 2, 3], [3, 0, 0, 0], [2, 4, 2, 4], [1, 2, 0, 0], [4, 4, 4, 0]])


def ctc_case(frames=12, classes=5, input_lengths=(12, 7, 9, 3, 5), target_lengths=(4, 1, 4, 0, 3), seed=0):
    rng = np.random.default_rng(seed)
    batch = len(input_lengths)
    logits = rng.standard_normal((frames, batch, classes)) * 2
    return logits, TARGETS[:batch], np.array(input_lengths), np.array(target_lengths)


def mytorch_ctc(logits, targets, input_lengths, target_lengths, **options):
    """The loss and d(loss)/d(logits), the log-probabilities being log_softmax(logits)."""
    engine = mytorch.Autograd()
    loss = nn.CTCLoss(**options)(F.log_softmax(logits, axis=-1), targets, input_lengths, target_lengths)
    engine.backward(F.sum(loss))
    return loss, engine.gradient_buffer.get_param(logits)


def torch_ctc(logits, targets, input_lengths, target_lengths, **options):
    t_logits = leaf(logits)
    loss = torch.nn.functional.ctc_loss(t_logits.log_softmax(-1), torch.tensor(targets),
                                        torch.tensor(input_lengths), torch.tensor(target_lengths), **options)
    loss.sum().backward()
    return loss, t_logits.grad


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_ctc_loss_value_and_gradient_equal_torchs(reduction, zero_infinity):
    case = ctc_case()  # repeated labels, an empty target, a sequence that just fits (3 frames, 0 labels)
    options = dict(reduction=reduction, zero_infinity=zero_infinity)
    loss, grad = mytorch_ctc(*case, **options)
    t_loss, t_grad = torch_ctc(*case, **options)
    same_as_torch(loss, t_loss)
    same_as_torch(grad, t_grad)


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_ctc_loss_of_a_target_too_long_for_its_input(reduction, zero_infinity):
    # [1, 1, 2, 3] needs 5 frames (a blank between the repeated 1s); it gets 4.
    case = ctc_case(input_lengths=(4, 7, 9), target_lengths=(4, 1, 4))
    options = dict(reduction=reduction, zero_infinity=zero_infinity)
    loss, grad = mytorch_ctc(*case, **options)
    t_loss, t_grad = torch_ctc(*case, **options)
    same_as_torch(loss, t_loss)  # inf, or 0 with zero_infinity
    feasible = slice(None) if zero_infinity else slice(1, None)  # PyTorch's gradient is nan there
    same_as_torch(grad[:, feasible], t_grad[:, feasible])
    assert np.all(grad[:, 0] == 0)


def test_ctc_loss_targets_padded_or_concatenated_and_unbatched():
    logits, targets, input_lengths, target_lengths = ctc_case()
    concatenated = np.concatenate([row[:n] for row, n in zip(targets, target_lengths)])
    padded_loss, padded_grad = mytorch_ctc(logits, targets, input_lengths, target_lengths)
    loss, grad = mytorch_ctc(logits, concatenated, input_lengths, target_lengths)
    np.testing.assert_allclose(loss, padded_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, padded_grad, rtol=1e-12, atol=1e-15)
    t_loss, t_grad = torch_ctc(logits, concatenated, input_lengths, target_lengths)
    same_as_torch(grad, t_grad)

    single = logits[:, 0]
    loss, grad = mytorch_ctc(single, targets[0], 12, 4)
    t_loss, t_grad = torch_ctc(single, targets[0], np.array(12), np.array(4))
    same_as_torch(loss, t_loss)
    same_as_torch(grad, t_grad)


def test_ctc_loss_with_another_blank_and_a_long_input():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((60, 2, 6)) * 4  # peaked distributions over many frames
    targets = np.array([[0, 1, 1, 2, 3, 0, 0], [2, 2, 2, 1, 0, 4, 3]])
    case = (logits, targets, np.array([60, 45]), np.array([7, 7]))
    loss, grad = mytorch_ctc(*case, blank=5)
    t_loss, t_grad = torch_ctc(*case, blank=5)
    same_as_torch(loss, t_loss)
    same_as_torch(grad, t_grad)


def test_ctc_loss_keeps_float32_and_the_drop_in_protocol():
    logits, targets, input_lengths, target_lengths = ctc_case()
    log_probs = F.log_softmax(logits, axis=-1).astype(np.float32)
    autograd = autograd_engine.Autograd()
    criterion = nn.CTCLoss(autograd)  # the engine positionally, as the handout's losses take it
    loss = criterion(log_probs, targets, input_lengths, target_lengths)
    assert loss.dtype == np.float32
    dLdlog_probs = criterion.backward()
    assert dLdlog_probs.dtype == np.float32 and dLdlog_probs.shape == log_probs.shape
    t_log_probs = leaf(log_probs)
    t_loss = torch.nn.functional.ctc_loss(t_log_probs, torch.tensor(targets), torch.tensor(input_lengths),
                                          torch.tensor(target_lengths))
    np.testing.assert_allclose(loss, t_loss.detach().numpy(), rtol=1e-5)
    # dL/dlog_probs is the true derivative; PyTorch's adds exp(log_probs) times each loss's scale.
    t_loss.backward()
    scale = 1 / (len(target_lengths) * np.maximum(target_lengths, 1))
    frames = np.arange(len(log_probs))[:, None, None] < input_lengths[None, :, None]
    shifted = t_log_probs.grad.numpy() - np.exp(log_probs) * scale[None, :, None] * frames
    np.testing.assert_allclose(dLdlog_probs, shifted, rtol=1e-4, atol=1e-6)


def test_ctc_loss_refuses_bad_arguments():
    logits, targets, input_lengths, target_lengths = ctc_case()
    log_probs = F.log_softmax(logits, axis=-1)
    criterion = nn.CTCLoss()
    with pytest.raises(ValueError, match="blank"):
        criterion(log_probs, np.zeros((5, 4), dtype=int), input_lengths, target_lengths)
    with pytest.raises(ValueError, match="input lengths"):
        criterion(log_probs, targets, input_lengths + 1, target_lengths)
    with pytest.raises(ValueError, match="targets"):
        criterion(log_probs, targets[:, :2], input_lengths, target_lengths)
    with pytest.raises(ValueError, match="reduction"):
        nn.CTCLoss(reduction="average")

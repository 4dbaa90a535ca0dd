"""Law 3: casts and dtypes are honest.

A cast to an integer or bool dtype has derivative zero in every mode; integer and bool inputs are
constants everywhere (labels included); complex values are differentiated with PyTorch's convention
by the primitives that declare them (`complex=`), and refused by any other at the first one, never
dropped from the chain; a float32 batch through a float64 layer
is refused as PyTorch refuses it; layers take `dtype=`, modules have `.astype(dtype)`.
Properties over every registered primitive and every nn layer.
"""

from __future__ import annotations

import numpy as np
import pytest
from _laws import examples
from hypothesis import given, settings
from hypothesis import strategies as st

import mytorch
from mytorch import functional as F
from mytorch.autograd_engine import Stretch
from mytorch.testing.registry import layers, missing_layers, registry

RECORDS = registry()
LAYERS = layers()
CASTS = [np.int8, np.int32, np.int64, np.uint8, np.bool_]


def _through_cast(dtype):
    """f(x) = Σ cast(x) · x: its derivative is cast(x) exactly (the cast contributes nothing)."""
    return lambda x: F.sum(F.mul(F.astype(x, dtype), x))


X = np.array([1.5, -2.5, 0.25, 3.75])


@pytest.mark.parametrize("dtype", CASTS, ids=lambda d: np.dtype(d).name)
def test_a_cast_to_an_integer_or_bool_dtype_has_derivative_zero_in_every_mode(dtype):
    f, slope = _through_cast(dtype), X.astype(dtype).astype(float)
    np.testing.assert_array_equal(mytorch.grad(f)(X), slope)
    np.testing.assert_array_equal(mytorch.jvp(f, (X,), (np.ones(4),))[1], slope.sum())
    np.testing.assert_array_equal(mytorch.vjp(f, X)[1](np.array(1.0))[0], slope)
    for mode in ("rev", "fwd"):
        np.testing.assert_array_equal(mytorch.jacobian(f, mode=mode)(X), slope)
    np.testing.assert_array_equal(mytorch.hessian(f)(X), np.zeros((4, 4)))
    np.testing.assert_array_equal(mytorch.grad(mytorch.checkpoint(f))(X), slope)
    with Stretch() as stretch:  # the engine's own walks, seeded at the cast's output
        cast = F.astype(X, dtype)
        assert stretch.forward({id(X): np.ones(4)}).get(id(cast)) is None


@pytest.mark.parametrize("name", sorted(RECORDS))
@settings(max_examples=examples(10))
@given(data=st.data())
def test_integer_and_bool_inputs_are_constants(name, data):
    op = RECORDS[name]
    example = data.draw(op.examples(), label="example")
    constants = [v for v in example.inputs if isinstance(v, np.ndarray) and v.dtype.kind in "biu"]
    with Stretch() as stretch:
        output = op.primitive.apply(example.inputs, example.params)
        if stretch.producer(output) is None:
            return  # no float input: nothing recorded, no gradient to give
        adjoints = stretch.backward(output, np.ones(output.shape, output.dtype))
        for value in constants:
            assert adjoints.get(id(value)) is None, f"{name}: an integer or bool input got a gradient"
            assert not stretch.engine.gradient_buffer.is_in_memory(value)


@pytest.mark.parametrize("name", sorted(RECORDS))
@settings(max_examples=examples(5))
@given(data=st.data())
def test_a_complex_value_is_refused_where_it_enters_the_tape(name, data):
    op = RECORDS[name]
    if op.primitive.complex:
        return  # differentiated (the next law and `check` say how well)
    example = data.draw(op.examples(), label="example")
    positions = example.float_positions
    if not positions:
        return  # no float input to make complex
    inputs = list(example.inputs)
    inputs[positions[0]] = np.asarray(inputs[positions[0]] + 0.5j)  # (0-d stays an array)
    try:
        with mytorch.no_grad():
            op.primitive.apply(tuple(inputs), example.params)
    except Exception:
        return  # the forward itself does not take complex values: nothing can be dropped
    with Stretch(), pytest.raises(TypeError, match=rf"^{name}: complex values are not differentiable"):
        op.primitive.apply(tuple(inputs), example.params)


COMPLEX_RECORDS = sorted(name for name, op in RECORDS.items() if op.primitive.complex)


@pytest.mark.parametrize("name", COMPLEX_RECORDS)
@settings(max_examples=5)
@given(data=st.data())
def test_a_declared_primitive_gives_each_input_a_gradient_of_its_own_dtype(name, data):
    """Complex inputs get complex gradients, real inputs of a complex operation real ones (the real
    part, as in PyTorch), in both precisions; nothing is dropped from the chain."""
    op = RECORDS[name]
    dtype = data.draw(st.sampled_from([np.complex128, np.complex64]), label="dtype")
    example = data.draw(op.examples(dtype), label="example")
    with Stretch() as stretch:
        output = op.primitive.apply(example.inputs, example.params)
        if stretch.producer(output) is None:
            return
        adjoints = stretch.backward(output, np.ones(output.shape, output.dtype))
    for i in example.float_positions:
        gradient = adjoints.get(id(example.inputs[i]))
        assert gradient is None or gradient.dtype == example.inputs[i].dtype, f"{name}: input {i}"


def test_a_complex_constant_meeting_the_tape_is_refused_where_complex_values_are_not_declared():
    with pytest.raises(TypeError, match="maximum: complex values"):
        mytorch.grad(lambda x: F.sum(F.abs(F.maximum(x, np.complex128(1 + 2j)))))(X)
    # mul declares them: |x (1 + 2i)| = √5 |x|
    np.testing.assert_allclose(mytorch.grad(lambda x: F.sum(F.abs(F.mul(x, np.complex128(1 + 2j)))))(X),
                               np.sqrt(5) * np.sign(X))


def test_a_complex_intermediate_is_refused_at_the_first_primitive_that_does_not_declare_it():
    with pytest.raises(TypeError, match="maximum: complex values"):
        mytorch.grad(lambda x: F.sum(F.real(F.maximum(F.astype(x, np.complex128), 0.0))))(X)
    # a cast there and back keeps the chain: the real part's gradient
    np.testing.assert_allclose(
        mytorch.grad(lambda x: F.sum(F.mul(F.astype(F.astype(x, np.complex128), np.float64), x)))(X), 2 * X)


def test_a_complex_loss_is_refused_as_pytorch_refuses_it():
    with pytest.raises(TypeError, match="real output"):
        mytorch.grad(lambda z: F.sum(F.mul(z, z)))(np.array([1 + 1j]))
    engine = mytorch.autograd_engine.Autograd()
    loss = F.sum(F.mul(np.array([1 + 1j]), np.array([2.0])))
    with pytest.raises(TypeError, match="loss is complex"):
        engine.backward(loss)


def test_every_nn_layer_has_a_record():
    assert missing_layers() == []


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_a_batch_of_another_float_dtype_than_the_layer_is_refused(name):
    info = LAYERS[name]
    layer = info.make()
    if not layer.parameters():
        assert np.asarray(layer(np.ones(info.input_shape, np.float32))).dtype == np.float32
        return  # no parameters: nothing to mix with, the dtype is kept
    for given_dtype in (np.float32, np.float16):
        with pytest.raises(TypeError, match=rf"\w+: input 0 has dtype {np.dtype(given_dtype)}.*refuses this"):
            layer(np.ones(info.input_shape, given_dtype))


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("how", ["dtype=", "astype"])
def test_a_float32_layer_computes_and_differentiates_in_float32(name, how):
    info = LAYERS[name]
    layer = info.make(dtype=np.float32) if how == "dtype=" else info.make().astype(np.float32)
    assert all(p.dtype == np.float32 for p in layer.parameters())
    x = np.random.default_rng(0).uniform(-1, 1, info.input_shape).astype(np.float32)
    with Stretch() as stretch:
        out = layer(x)
        assert out.dtype == np.float32
        adjoints = stretch.backward(out, np.ones(out.shape, np.float32))
    for array in [x, *layer.parameters()]:
        gradient = adjoints.get(id(array))
        assert gradient is None or gradient.dtype == np.float32


def test_astype_refuses_a_non_float_dtype_and_keeps_integer_buffers():
    model = mytorch.nn.BatchNorm1d(3)
    with pytest.raises(TypeError, match="parameters are floats"):
        model.astype(np.int64)
    model.astype(np.float32)
    assert model.num_batches_tracked.dtype.kind == "i"

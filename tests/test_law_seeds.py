"""Law 4: seeds are linear. `backward(c * seed)` scales every gradient by `c`, for every registered
primitive (engine walks, `gradient=`, the handout's seed forms) and every nn layer's drop-in
`backward(dLdZ)`, parameters included."""

from __future__ import annotations

import numpy as np
import pytest
from _laws import draw_accepted, examples
from hypothesis import given, settings
from hypothesis import strategies as st

import mytorch
from mytorch.autograd_engine import Stretch
from mytorch.testing.registry import layers, registry
from mytorch.testing.strategies import float_arrays

RECORDS = registry()
LAYERS = layers()
SCALES = st.sampled_from([3.0, -0.5, 0.0, 2.0**-10])


def _close(a, b, dtype) -> bool:
    tolerance = 1e-4 if np.dtype(dtype) == np.float32 else 1e-9
    number = complex if np.iscomplexobj(a) or np.iscomplexobj(b) else float  # (complex: both parts)
    a, b = np.asarray(a, number), np.asarray(b, number)
    return np.allclose(a, b, rtol=tolerance, atol=tolerance, equal_nan=True)


@pytest.mark.parametrize("name", sorted(RECORDS))
@settings(max_examples=examples(10))
@given(data=st.data())
def test_scaling_the_seed_scales_every_gradient(name, data):
    op = RECORDS[name]
    dtype = data.draw(st.sampled_from(op.dtypes), label="dtype")
    drawn = draw_accepted(op, data, dtype=dtype)
    if drawn is None:
        return  # refused by the forward: no seed to scale
    example, output = drawn
    c = data.draw(SCALES, label="c")
    if output.dtype.kind not in "fc":
        return  # an integer or bool output has no seed
    seed = data.draw(float_arrays(output.shape, output.dtype), label="seed")
    results = []
    for scale in (1.0, c):
        with Stretch() as stretch:
            out = op.primitive.apply(example.inputs, example.params)
            if stretch.producer(out) is None:
                return  # no float input: nothing recorded
            adjoints = stretch.backward(out, (seed * scale).astype(out.dtype))
            results.append([adjoints.get(id(example.inputs[i])) for i in example.float_positions])
    for once, scaled in zip(*results):
        if once is None:
            assert scaled is None or not np.any(scaled)
        else:
            single = {np.dtype(np.float32), np.dtype(np.complex64)}
            least = np.float32 if single & {np.dtype(dtype), output.dtype} else np.float64
            assert _close(scaled, c * np.asarray(once), least), f"{name}: not linear in the seed"


@pytest.mark.parametrize("form", ["gradient=", "seed array"])
def test_the_engines_seed_forms_are_linear(form):
    x = np.array([0.5, -1.0, 2.0])
    grads = []
    for c in (1.0, -3.0):
        engine = mytorch.autograd_engine.Autograd()
        out = mytorch.functional.tanh(mytorch.functional.mul(x, x))
        if form == "gradient=":
            engine.backward(out, gradient=c * np.array([1.0, 2.0, 3.0]))
        else:
            engine.backward(c * np.array([1.0, 2.0, 3.0]))
        grads.append(engine.gradient_buffer.get_param(x))
    np.testing.assert_allclose(grads[1], -3.0 * grads[0])


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("c", [3.0, -0.5])
def test_a_layers_backward_scales_with_dLdZ_parameters_included(name, c):
    info = LAYERS[name]
    layer = info.make()
    x = np.random.default_rng(1).uniform(-1, 1, info.input_shape)
    results = []
    for scale in (1.0, c):
        np.random.seed(0)  # the same dropout mask, if any
        out = layer(x)
        dLdZ = np.random.default_rng(2).uniform(-1, 1, np.shape(out))
        dLdA = layer.backward(scale * dLdZ)
        results.append([dLdA, *(layer.gradient_of(p) for p in layer.parameters())])
    for once, scaled in zip(*results):
        np.testing.assert_allclose(scaled, c * once, rtol=1e-9, atol=1e-12)

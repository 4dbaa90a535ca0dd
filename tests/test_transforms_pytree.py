"""Transforms over containers of arrays, has_aux, and gradient checkpointing (issue 15)."""

import tracemalloc
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mytorch
from mytorch import functional as F
from mytorch.pytree import tree_flatten, tree_map, tree_unflatten

Pair = namedtuple("Pair", ["a", "b"])


def test_flatten_and_unflatten_round_trip():
    tree = {"w": np.ones(2), "layers": [(1.0, None), Pair(np.zeros(1), 3)], "empty": {}}
    leaves, structure = tree_flatten(tree)
    assert len(leaves) == 4 and structure.leaf_count == 4
    rebuilt = tree_unflatten(structure, leaves)
    assert rebuilt.keys() == tree.keys() and isinstance(rebuilt["layers"][1], Pair)
    assert rebuilt["layers"][0][1] is None and rebuilt["empty"] == {}
    assert tree_map(lambda v: 2 * np.asarray(v), tree)["layers"][1].b == 6
    with pytest.raises(ValueError, match="more leaves"):
        tree_unflatten(structure, leaves + [1])


def mlp_loss(params, x):
    h = x
    for layer in params["layers"]:
        h = F.tanh(F.add(F.matmul(h, layer["W"]), layer["b"]))
    return F.sum(F.mul(h, params["head"]))


def flat_loss(x, *arrays):
    layers = [{"W": arrays[0], "b": arrays[1]}, {"W": arrays[2], "b": arrays[3]}]
    params = {"layers": layers, "head": arrays[4]}
    return mlp_loss(params, x)


@given(st.integers(0, 2**16))
@settings(max_examples=min(10, settings().max_examples))
def test_gradients_come_back_in_the_arguments_structure(seed):
    rng = np.random.default_rng(seed)
    params = {
        "layers": [{"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)},
                   {"W": rng.standard_normal((4, 2)), "b": rng.standard_normal(2)}],
        "head": rng.standard_normal(2),
    }
    x = rng.standard_normal((5, 3))
    grads = mytorch.grad(mlp_loss)(params, x)
    assert tree_flatten(grads)[1] == tree_flatten(params)[1]
    arrays = [params["layers"][0]["W"], params["layers"][0]["b"], params["layers"][1]["W"],
              params["layers"][1]["b"], params["head"]]
    expected = mytorch.grad(flat_loss, argnums=(1, 2, 3, 4, 5))(x, *arrays)
    for got, want in zip(tree_flatten(grads)[0], expected):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    # several arguments, a tuple argnums, and value_and_grad
    value, (g_params, g_x) = mytorch.value_and_grad(mlp_loss, argnums=(0, 1))(params, x)
    assert float(value) == pytest.approx(float(mlp_loss(params, x)))
    np.testing.assert_allclose(g_params["head"], grads["head"])
    assert g_x.shape == x.shape


def test_has_aux_returns_jaxs_shapes():
    x = np.array([1.0, 2.0])

    def f(x):
        y = F.mul(x, x)
        return F.sum(y), {"y": y, "note": "aux"}

    g, aux = mytorch.grad(f, has_aux=True)(x)
    np.testing.assert_array_equal(g, 2 * x)
    np.testing.assert_array_equal(aux["y"], x * x) and aux["note"] == "aux"
    (value, aux), g = mytorch.value_and_grad(f, has_aux=True)(x)
    assert value == 5.0 and aux["note"] == "aux"
    np.testing.assert_array_equal(g, 2 * x)
    (gx, gy), aux = mytorch.grad(lambda x, y: (F.sum(F.mul(x, y)), 7), argnums=(0, 1), has_aux=True)(x, 2 * x)
    np.testing.assert_array_equal(gx, 2 * x) and aux == 7
    with pytest.raises(TypeError, match="has_aux"):
        mytorch.grad(lambda x: F.sum(x), has_aux=True)(x)


def test_trees_nest_inside_higher_order_transforms():
    params = {"a": np.array([1.0, 2.0]), "b": [np.array(0.5)]}
    cube = lambda p: F.sum(F.mul(F.power(p["a"], 3.0), p["b"][0]))
    inner = lambda p: F.sum(mytorch.grad(cube)(p)["a"])  # Σ 3 a² b
    outer = mytorch.grad(inner)(params)
    np.testing.assert_allclose(outer["a"], 6 * params["a"] * 0.5)
    np.testing.assert_allclose(outer["b"][0], np.sum(3 * params["a"] ** 2))
    g, aux = mytorch.grad(lambda p: (cube(p), p["a"]), has_aux=True)({"a": np.ones(2), "b": [np.array(2.0)]})
    np.testing.assert_allclose(g["a"], [6.0, 6.0])


# ---- checkpoint ----------------------------------------------------------------------------------


def tanh_layers(h, *Ws):
    for W in Ws:
        h = F.tanh(F.matmul(h, W))
    return h


@given(hnp.arrays(np.float64, (3, 4), elements=st.floats(-1, 1)), st.integers(0, 2**16))
@settings(max_examples=min(10, settings().max_examples))
def test_checkpoint_gives_the_same_values_and_derivatives(x, seed):
    rng = np.random.default_rng(seed)
    Ws = [rng.standard_normal((4, 4)) * 0.7 for _ in range(4)]
    block = mytorch.checkpoint(tanh_layers)
    plain = lambda x, *Ws: F.sum(F.sin(tanh_layers(tanh_layers(x, *Ws[:2]), *Ws[2:])))
    kept = lambda x, *Ws: F.sum(F.sin(block(block(x, *Ws[:2]), *Ws[2:])))
    every = tuple(range(5))
    np.testing.assert_allclose(kept(x, *Ws), plain(x, *Ws))
    for a, b in zip(mytorch.grad(kept, every)(x, *Ws), mytorch.grad(plain, every)(x, *Ws)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # second order: reverse over reverse, forward over reverse, and forward mode alone
    v = rng.standard_normal(x.shape)
    directions = (v, *[np.zeros_like(W) for W in Ws])
    products = zip(mytorch.hvp(kept, (x, *Ws), directions), mytorch.hvp(plain, (x, *Ws), directions))
    for a, b in products:
        np.testing.assert_allclose(a, b, atol=1e-12)
    second = lambda f: mytorch.grad(lambda x: F.sum(F.mul(mytorch.grad(f)(x, *Ws), v)))(x)
    np.testing.assert_allclose(second(kept), second(plain), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mytorch.jvp(lambda x: kept(x, *Ws), (x,), (v,))[1],
                               mytorch.jvp(lambda x: plain(x, *Ws), (x,), (v,))[1], rtol=1e-12)


def test_checkpoint_on_the_users_tape_and_with_repeated_inputs(fresh_engine):
    engine = fresh_engine
    x, W = np.array([[0.3, -0.2]]), np.array([[1.0, 0.5], [-0.5, 1.0]])
    block = mytorch.checkpoint(lambda a, b, W: F.add(F.matmul(a, W), F.mul(b, b)))
    loss = F.sum(F.tanh(block(x, x, W)))  # x passed twice: each share counted once
    assert len(engine.operation_list) == 3  # the block is one operation on the tape
    engine.backward(loss)
    expected = mytorch.grad(lambda x, W: F.sum(F.tanh(F.add(F.matmul(x, W), F.mul(x, x)))), (0, 1))(x, W)
    np.testing.assert_allclose(engine.gradient_buffer.get_param(x), expected[0])
    np.testing.assert_allclose(engine.gradient_buffer.get_param(W), expected[1])
    # with create_graph the rerun stays on the tape, so the gradient can be differentiated
    engine.zero_grad()
    y = F.sum(mytorch.checkpoint(lambda v: F.power(v, 3.0))(x))
    engine.backward(y, create_graph=True)
    slope = engine.gradient_buffer.get_param(x)
    np.testing.assert_allclose(slope, 3 * x**2)
    total = F.sum(slope)
    start = next(i for i, op in enumerate(engine.operation_list) if op.output is total)
    np.testing.assert_allclose(engine.walk_backward(start, np.ones(()))[id(x)], 6 * x)


def test_checkpointing_a_deep_mlp_cuts_peak_memory():
    """24 tanh layers, a checkpoint every 6: the tape keeps 4 segment boundaries instead of 48
    activations, and the backward walk recomputes one segment at a time."""
    rng = np.random.default_rng(0)
    width, batch, depth, every = 64, 1024, 24, 6
    Ws = [rng.standard_normal((width, width)) / np.sqrt(width) for _ in range(depth)]
    x = rng.standard_normal((batch, width))
    block = mytorch.checkpoint(tanh_layers)

    def plain(Ws):
        return F.sum(tanh_layers(x, *Ws))

    def checkpointed(Ws):
        h = x
        for start in range(0, depth, every):
            h = block(h, *Ws[start : start + every])
        return F.sum(h)

    def peak(loss):
        tracemalloc.start()
        try:
            grads = mytorch.grad(loss)(Ws)
            return tracemalloc.get_traced_memory()[1], grads
        finally:
            tracemalloc.stop()

    plain_peak, plain_grads = peak(plain)
    kept_peak, kept_grads = peak(checkpointed)
    for a, b in zip(kept_grads, plain_grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    activation = batch * width * 8
    assert plain_peak > 40 * activation  # two arrays a layer on the tape
    assert kept_peak < 0.5 * plain_peak, (kept_peak / 2**20, plain_peak / 2**20)


def test_vjp_and_jvp_take_trees():
    params = {"a": np.array([1.0, 2.0]), "b": [np.array(3.0)]}
    f = lambda p: F.sum(F.mul(p["a"], p["b"][0]))
    out, vjp_fn = mytorch.vjp(f, params)
    (g,) = vjp_fn(np.array(2.0))
    assert out == 9.0
    np.testing.assert_array_equal(g["a"], [6.0, 6.0])
    np.testing.assert_array_equal(g["b"][0], 6.0)
    tangent = {"a": np.array([1.0, 0.0]), "b": [np.array(1.0)]}
    assert mytorch.jvp(f, (params,), (tangent,))[1] == 3.0 + 3.0
    with pytest.raises(ValueError, match="structure"):
        mytorch.jvp(f, (params,), ({"a": np.ones(2)},))


def test_checkpoint_gives_gradients_to_arrays_the_block_closes_over():
    import mytorch
    from mytorch import functional as F
    from mytorch import nn

    W, X = np.array([[1.0, 0.5], [0.0, 2.0]]), np.array([[1.0, 2.0]])
    plain = mytorch.grad(lambda W: F.sum(F.square(F.matmul(X, W))))(W)
    kept = mytorch.grad(lambda W: F.sum(F.square(mytorch.checkpoint(lambda h: F.matmul(h, W))(X))))(W)
    np.testing.assert_allclose(kept, plain)

    layer, x = nn.Linear(3, 2), np.ones((4, 3))
    engine = mytorch.engine()
    engine.backward(F.sum(F.square(mytorch.checkpoint(layer)(x))))
    expected = 2 * (x @ layer.W.T + layer.b).T @ x
    np.testing.assert_allclose(engine.gradient_buffer.gradient(layer.W), expected)


def test_checkpoint_replays_numpy_random_draws():
    import mytorch
    from mytorch import functional as F

    np.random.seed(0)
    block = mytorch.checkpoint(lambda h: F.mul(h, (np.random.random(h.shape) > 0.5).astype(float)))
    x = np.ones(8)
    y = block(x)
    engine = mytorch.engine()
    engine.backward(F.sum(F.mul(y, np.arange(8.0))))
    np.testing.assert_array_equal(engine.gradient_buffer.get_param(x), y * np.arange(8.0))

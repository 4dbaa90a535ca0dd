"""Law 9: checkpoint recomputes what the forward computed. The recomputation reads the arrays, indices
and numbers the forward read, or it refuses: a loop variable closed over by the block has moved on
by backward time. For every transform that walks a checkpoint (grad, vjp, jvp, jacobian both modes)."""

from __future__ import annotations

import numpy as np
import pytest

import mytorch
from mytorch import functional as F

RNG = np.random.default_rng(0)
WS = [RNG.uniform(-1, 1, (3, 3)) for _ in range(3)]
SCALES = RNG.uniform(0.5, 1.5, 3)
X = RNG.uniform(-1, 1, (2, 3))


def _derivative(transform: str, f, x):
    if transform == "grad":
        return mytorch.grad(f)(x)
    if transform == "vjp":
        return mytorch.vjp(f, x)[1](np.array(1.0))[0]
    if transform == "jvp":
        return mytorch.jvp(f, (x,), (np.ones_like(x),))[1]
    return mytorch.jacobian(f, mode=transform.split()[1])(x)


TRANSFORMS = ["grad", "vjp", "jvp", "jacobian rev", "jacobian fwd"]

# Blocks that close over a loop variable: each block(i) reads the loop variable `i` or what it names.
LOOPS = {
    "an array (a layer's weight)": lambda i: lambda h: F.tanh(F.matmul(h, WS[i])),
    "an index parameter": lambda i: lambda h: F.mul(h, F.getitem(SCALES, i)),
    "a Python number": lambda i: lambda h: F.mul(h, float(SCALES[i])),
}


def _network(kind: str, checkpointed: bool, bind: bool):
    def f(x):
        h = x
        for i in range(3):
            if bind:
                block = (lambda i: LOOPS[kind](i))(i)  # each block gets its own i
            else:
                def block(h):
                    return LOOPS[kind](i)(h)  # reads the loop variable i when it runs  # noqa: B023
            h = mytorch.checkpoint(block)(h) if checkpointed else block(h)
        return F.sum(h)

    return f


@pytest.mark.parametrize("kind", sorted(LOOPS))
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_a_block_whose_loop_variable_moved_on_is_refused_not_recomputed_wrong(kind, transform):
    refused = r"checkpoint\(block\): recomputing f .* did not read what the forward"
    with pytest.raises(RuntimeError, match=refused):
        _derivative(transform, _network(kind, checkpointed=True, bind=False), X)


@pytest.mark.parametrize("kind", sorted(LOOPS))
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_a_block_that_reads_what_the_forward_read_gives_the_plain_gradients(kind, transform):
    expected = _derivative(transform, _network(kind, checkpointed=False, bind=True), X)
    got = _derivative(transform, _network(kind, checkpointed=True, bind=True), X)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_the_engines_own_backward_through_a_checkpoint_refuses_too():
    x = X.copy()
    loss = _network("an array (a layer's weight)", checkpointed=True, bind=False)(x)
    with pytest.raises(RuntimeError, match="did not read what the forward read"):
        mytorch.backward(loss)

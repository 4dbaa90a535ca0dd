"""Law 5: transforms have levels. `no_grad` inside a transform stops gradients at that level and at
every level outside it, for grad, vjp, jvp, jacobian, hessian and checkpoint (as
`jax.lax.stop_gradient`); an inner transform's output is a constant to the outer one only there.

Every inner transform is run under every outer one, with and without `no_grad` around it; the
expected derivatives are worked out by hand from stop_gradient's meaning.
"""

from __future__ import annotations

import numpy as np
import pytest

import mytorch
from mytorch import functional as F

X = np.array([0.5, 1.5, -0.75])


def cube(y):
    return F.sum(F.power(y, 3))


# inner(x) -> one array whose sum's derivative in x is `slope(x)` when followed.
INNER = {
    "grad": (lambda x: mytorch.grad(cube)(x), lambda x: 6 * x),
    "value_and_grad": (lambda x: mytorch.value_and_grad(cube)(x)[1], lambda x: 6 * x),
    "vjp": (lambda x: mytorch.vjp(lambda y: F.power(y, 3), x)[1](np.ones(3))[0], lambda x: 6 * x),
    "jvp": (lambda x: mytorch.jvp(lambda y: F.power(y, 3), (x,), (np.ones(3),))[1], lambda x: 6 * x),
    "jacobian rev": (lambda x: F.sum(mytorch.jacobian(lambda y: F.power(y, 3))(x), axis=0), lambda x: 6 * x),
    "jacobian fwd": (lambda x: F.sum(mytorch.jacobian(lambda y: F.power(y, 3), mode="fwd")(x), axis=0),
                     lambda x: 6 * x),
    "hessian": (lambda x: F.sum(mytorch.hessian(cube)(x), axis=0), lambda x: 6 * np.ones_like(x)),
    "checkpoint": (lambda x: mytorch.checkpoint(lambda y: F.power(y, 3))(x), lambda x: 3 * x**2),
}


def _outer_gradient(outer: str, f, x):
    """d/dx of the scalar f at x, computed by the outer transform `outer`."""
    if outer == "grad":
        return mytorch.grad(f)(x)
    if outer == "vjp":
        return mytorch.vjp(f, x)[1](np.array(1.0))[0]
    if outer == "jacobian fwd":
        return mytorch.jacobian(f, mode="fwd")(x)
    if outer == "jvp":  # one tangent per element: the gradient, column by column
        return np.array([mytorch.jvp(f, (x,), (np.eye(3)[k],))[1] for k in range(3)])
    raise AssertionError(outer)


OUTER = ["grad", "vjp", "jvp", "jacobian fwd"]


@pytest.mark.parametrize("inner", sorted(INNER))
@pytest.mark.parametrize("outer", OUTER)
def test_an_inner_transform_is_followed_by_the_outer_one(inner, outer):
    run, slope = INNER[inner]
    f = lambda x: F.add(F.sum(run(x)), F.sum(F.mul(x, x)))
    np.testing.assert_allclose(_outer_gradient(outer, f, X), slope(X) + 2 * X, rtol=1e-10)


@pytest.mark.parametrize("inner", sorted(INNER))
@pytest.mark.parametrize("outer", OUTER)
def test_no_grad_around_an_inner_transform_makes_it_a_constant_to_every_outer_one(inner, outer):
    run, _ = INNER[inner]

    def f(x):
        with mytorch.no_grad():
            stopped = run(x)
        return F.add(F.sum(stopped), F.sum(F.mul(x, x)))

    np.testing.assert_allclose(_outer_gradient(outer, f, X), 2 * X, rtol=1e-10)


@pytest.mark.parametrize("outer", OUTER)
def test_no_grad_inside_the_inner_function_stops_at_that_level_and_outside(outer):
    # inner: d/dy Σ y·sg(x·y) = sg(x·y) — a constant to the outer level too: the outer derivative
    # of Σ sg(x·x) is 0 (JAX: grad(lambda x: grad(lambda y: y * stop_gradient(x * y))(x))(x) == 0).
    def stopped(x, y):
        with mytorch.no_grad():
            return F.mul(x, y)

    f = lambda x: F.sum(mytorch.grad(lambda y: F.sum(F.mul(y, stopped(x, y))))(x))
    np.testing.assert_allclose(_outer_gradient(outer, f, X), np.zeros(3), atol=0)


def test_no_grad_around_a_transform_at_the_top_level_still_computes_it():
    with mytorch.no_grad():
        np.testing.assert_allclose(mytorch.grad(cube)(X), 3 * X**2)

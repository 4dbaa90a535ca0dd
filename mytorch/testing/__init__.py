"""Property-based gradient checking: hypothesis strategies, primitive and layer checks.

Check a primitive (built-in or your own) against central finite differences::

    from mytorch.testing import check_primitive, float_arrays
    check_primitive("matmul")                 # the built-in input spec of matmul
    check_primitive(my_op, float_arrays())    # your primitive, your inputs

Check a hand-written layer's backward against the engine, or against finite differences::

    from mytorch.testing import check_layer
    check_layer(MyLinear(3, 2), lambda A, W, b: F.linear(A, W, b))
    check_layer(MyLinear(3, 2))

Define a primitive of your own: forward, backward (vjp) and tangent (jvp) rules in one place.
Write the rules with mytorch primitives, so that recorded backward walks (`create_graph`),
`mytorch.grad(mytorch.grad(f))` and hessians work through it::

    from mytorch import functional as F
    softplus = F.primitive(
        "softplus", lambda x: np.logaddexp(0.0, x),
        vjp=lambda g, ans, x: (F.mul(g, F.sigmoid(x)),),     # one gradient per input
        jvp=lambda t, ans, x: F.mul(t[0], F.sigmoid(x)),     # t: one tangent per input
        register=False,                                      # yours: not in F.PRIMITIVES
    )
    y = softplus(x)                           # records on the engine like F.exp(x)
    check_primitive(softplus, float_arrays())

`vjp(g, ans, *inputs, **params)` gets the output's adjoint `g` and the output `ans`; it returns
one gradient per input, each with its input's shape (`mytorch.utils.unbroadcast` undoes
broadcasting), or None for an input with no gradient. `arity=n` says how many leading arguments
are inputs (the rest are parameters such as `axis`); `arity=None` means one sequence of inputs.
`register=False` keeps it private to your code; `register=True` (the built-ins) also puts it in
`F.PRIMITIVES`, where `python -m mytorch check` and the test suite expect an input spec for it
(`mytorch.testing.cases.case`).

See `mytorch.testing.examples` for a correct hand-written Linear and two with classic bugs.
"""

from mytorch.testing import cases_complex, cases_more  # noqa: F401  (register issue 23's specs in CASES)
from mytorch.testing.cases import CASES, Case, Example, all_primitives, missing_cases
from mytorch.testing.checks import (
    CheckReport,
    GradientCheckError,
    check_against_torch,
    check_primitive,
    primitive_gradients,
    primitive_tangent,
)
from mytorch.testing.layers import check_layer
from mytorch.testing.strategies import (
    arrays_away_from,
    axes,
    broadcast_targets,
    broadcastable_shapes,
    distinct_arrays,
    float_arrays,
    floats,
    indices,
    matmul_shapes,
    non_tying_pairs,
    positive_arrays,
    reshape_targets,
    shapes,
    well_conditioned_matrices,
)

__all__ = [
    "CASES",
    "Case",
    "CheckReport",
    "Example",
    "GradientCheckError",
    "all_primitives",
    "arrays_away_from",
    "axes",
    "broadcast_targets",
    "broadcastable_shapes",
    "check_against_torch",
    "check_layer",
    "check_primitive",
    "distinct_arrays",
    "float_arrays",
    "floats",
    "indices",
    "matmul_shapes",
    "missing_cases",
    "non_tying_pairs",
    "positive_arrays",
    "primitive_gradients",
    "primitive_tangent",
    "reshape_targets",
    "shapes",
    "well_conditioned_matrices",
]

"""Forward mode for every primitive: tangent rules against finite differences, and tied to the
backward rules by the dot-product test <ct, J t> = <Jᵀ ct, t>.

Inputs come from the compact table in tests/_primitive_cases.py.
"""

import numpy as np
import pytest
from _primitive_cases import CASES, Case
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mytorch
from mytorch import functional as F

NAMES = sorted(F.PRIMITIVES)


def test_every_primitive_has_a_case():
    missing = [name for name in NAMES if name not in CASES]
    assert not missing, f"primitives without an input case in tests/_primitive_cases.py: {missing}"


def as_function(name: str, case: Case):
    """The primitive as a function of its float inputs (the rest held constant)."""
    primitive, positions = F.PRIMITIVES[name], case.float_positions

    def f(*floats):
        inputs = list(case.inputs)
        for position, value in zip(positions, floats):
            inputs[position] = value
        return primitive.apply(tuple(inputs), case.params)

    return f, [case.inputs[i] for i in positions]


def draw_like(data, array: np.ndarray, label: str) -> np.ndarray:
    elements = st.floats(-1.0, 1.0, allow_nan=False, width=64)
    return data.draw(hnp.arrays(np.float64, array.shape, elements=elements), label=label).astype(array.dtype)


def directional_derivative(f, primals, tangents, h: float = 1e-3) -> np.ndarray:
    """d/ds f(primals + s·tangents) at s = 0: central differences with one Richardson step."""

    def at(s):
        with mytorch.no_grad():
            return np.asarray(f(*[p + s * t for p, t in zip(primals, tangents)]), dtype=np.float64)

    def central(step):
        return (at(step) - at(-step)) / (2 * step)

    return (4 * central(h / 2) - central(h)) / 3


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_tangent_rule_matches_finite_differences(name, data):
    if name not in CASES:
        pytest.skip("no input case (see test_every_primitive_has_a_case)")
    case = data.draw(CASES[name], label="case")
    f, primals = as_function(name, case)
    tangents = [draw_like(data, p, f"tangent {i}") for i, p in enumerate(primals)]

    out, tangent_out = mytorch.jvp(f, primals, tangents)

    assert tangent_out.shape == out.shape and tangent_out.dtype == out.dtype
    expected = directional_derivative(f, primals, tangents)
    np.testing.assert_allclose(tangent_out, expected, rtol=case.rtol, atol=case.rtol)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_tangent_and_adjoint_rules_agree(name, data):
    """<ct, J t> computed forwards equals <Jᵀ ct, t> computed backwards."""
    if name not in CASES:
        pytest.skip("no input case (see test_every_primitive_has_a_case)")
    case = data.draw(CASES[name], label="case")
    f, primals = as_function(name, case)
    tangents = [draw_like(data, p, f"tangent {i}") for i, p in enumerate(primals)]

    out, tangent_out = mytorch.jvp(f, primals, tangents)
    cotangent = draw_like(data, out, "cotangent")
    out_again, vjp_fn = mytorch.vjp(f, *primals)
    adjoints = vjp_fn(cotangent)

    np.testing.assert_array_equal(out, out_again)
    assert [a.shape for a in adjoints] == [p.shape for p in primals]
    assert [a.dtype for a in adjoints] == [p.dtype for p in primals]
    forwards = np.sum(cotangent.astype(np.float64) * tangent_out)
    backwards = sum(np.sum(a.astype(np.float64) * t) for a, t in zip(adjoints, tangents))
    scale = 1.0 + np.sum(np.abs(cotangent)) * max(np.max(np.abs(t), initial=0.0) for t in tangents)
    tolerance = (1e-10 if out.dtype == np.float64 else 1e-4) * scale
    assert abs(forwards - backwards) <= tolerance, (forwards, backwards)


def test_the_lecture_forward_trace():
    """y = ln(x1) + x1·x2 − sin(x2) at (2, 5): the tangent along x1 is 5.5 (DESIGN.md)."""

    def y(x1, x2):
        return F.sub(F.add(F.log(x1), F.mul(x1, x2)), F.sin(x2))

    value, along_x1 = mytorch.jvp(y, (2.0, 5.0), (1.0, 0.0))
    _, along_x2 = mytorch.jvp(y, (2.0, 5.0), (0.0, 1.0))
    assert value == pytest.approx(11.652, abs=1e-3)
    assert along_x1 == pytest.approx(5.5)
    assert along_x2 == pytest.approx(2 - np.cos(5.0))  # 1.716


def test_tangents_keep_float32():
    x = np.linspace(-1, 1, 5, dtype=np.float32)
    out, tangent = mytorch.jvp(lambda x: F.tanh(F.mul(x, 3.0)), (x,), (np.ones(5, np.float32),))
    assert out.dtype == tangent.dtype == np.float32
    np.testing.assert_allclose(tangent, 3 / np.cosh(3 * x) ** 2, rtol=1e-5)

"""Forward mode for every primitive: tangent rules against finite differences, and tied to the
backward rules by the dot-product test <ct, J t> = <Jᵀ ct, t>.

Inputs come from each primitive's case in mytorch.testing.cases (kept away from kinks and ties).
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mytorch
from mytorch import functional as F
from mytorch.testing.cases import CASES, Example, all_primitives, missing_cases

NAMES = sorted(all_primitives())


def test_every_primitive_has_a_case():
    missing = missing_cases()
    assert not missing, f"primitives without an input case in mytorch/testing/cases.py: {missing}"


def draw_example(data, name: str) -> Example:
    """An example of the arguments of primitive `name`, with at least one float input."""
    if name not in CASES:
        pytest.skip("no input case (see test_every_primitive_has_a_case)")
    example = data.draw(CASES[name].examples(), label="example")
    # Integer arrays and numbers are constants: with nothing else there is no derivative to check.
    assume(example.float_positions)
    return example


def assume_finite(out: np.ndarray) -> None:
    """Finite differences need a finite output: logsumexp over an empty axis is -inf, and stays -inf
    under any perturbation, where differencing reads inf - inf = nan."""
    assume(np.all(np.isfinite(out)))


def finite_difference_rtol(out: np.ndarray) -> float:
    """How closely a derivative matches finite differences of an output of this dtype: a float32
    output (astype) is rounded to ~6e-8, which differencing with a step of 1e-3 blows up ~1000 times."""
    return 1e-6 if out.dtype in (np.float64, np.complex128) else 1e-3


def as_function(name: str, example: Example):
    """The primitive as a function of its float inputs (the rest held constant)."""
    primitive, positions = F.PRIMITIVES[name], example.float_positions

    def f(*floats):
        inputs = list(example.inputs)
        for position, value in zip(positions, floats):
            inputs[position] = value
        return primitive.apply(tuple(inputs), example.params)

    return f, [example.inputs[i] for i in positions]


def draw_like(data, array: np.ndarray, label: str) -> np.ndarray:
    elements = st.floats(-1.0, 1.0, allow_nan=False, width=64)
    drawn = data.draw(hnp.arrays(np.float64, array.shape, elements=elements), label=label)
    if array.dtype.kind == "c":  # (the fft family and eig give complex outputs)
        drawn = drawn + 1j * data.draw(hnp.arrays(np.float64, array.shape, elements=elements), label=label)
    return drawn.astype(array.dtype)


def pairing(a, b) -> float:
    """Re Σ conj(a) b: the real inner product (Σ a b for real arrays)."""
    return float(np.sum(np.real(np.conj(np.asarray(a, np.complex128)) * b)))


def draw_function_and_tangents(data, name: str):
    """The primitive as a function of its float inputs (`as_function`), those inputs, and a tangent
    for each."""
    f, primals = as_function(name, draw_example(data, name))
    return f, primals, [draw_like(data, p, f"tangent {i}") for i, p in enumerate(primals)]


def directional_derivative(f, primals, tangents, h: float = 1e-3) -> np.ndarray:
    """d/ds f(primals + s·tangents) at s = 0: central differences with one Richardson step."""

    def at(s):
        with mytorch.no_grad():
            out = np.asarray(f(*[p + s * t for p, t in zip(primals, tangents)]))
            return out.astype(np.complex128 if out.dtype.kind == "c" else np.float64)

    def central(step):
        return (at(step) - at(-step)) / (2 * step)

    return (4 * central(h / 2) - central(h)) / 3


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_tangent_rule_matches_finite_differences(name, data):
    f, primals, tangents = draw_function_and_tangents(data, name)
    out, tangent_out = mytorch.jvp(f, primals, tangents)

    assert tangent_out.shape == out.shape and tangent_out.dtype == out.dtype
    assume_finite(out)
    expected = directional_derivative(f, primals, tangents)
    rtol = finite_difference_rtol(out)
    np.testing.assert_allclose(tangent_out, expected, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_tangent_and_adjoint_rules_agree(name, data):
    """<ct, J t> computed forwards equals <Jᵀ ct, t> computed backwards."""
    f, primals, tangents = draw_function_and_tangents(data, name)
    out, tangent_out = mytorch.jvp(f, primals, tangents)
    cotangent = draw_like(data, out, "cotangent")
    out_again, vjp_fn = mytorch.vjp(f, *primals)
    adjoints = vjp_fn(cotangent)

    np.testing.assert_array_equal(out, out_again)
    assert [a.shape for a in adjoints] == [p.shape for p in primals]
    assert [a.dtype for a in adjoints] == [p.dtype for p in primals]
    forwards = pairing(cotangent, tangent_out)
    backwards = sum(pairing(a, t) for a, t in zip(adjoints, tangents))
    scale = 1.0 + np.sum(np.abs(cotangent)) * max(np.max(np.abs(t), initial=0.0) for t in tangents)
    tolerance = (1e-10 if out.dtype in (np.float64, np.complex128) else 1e-4) * scale
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

"""Differential fuzzing: random programs of primitives against PyTorch (or finite differences).

Each program (mytorch.testing.fuzz.programs) chains up to 8 primitives over inputs of random
broadcastable shapes; its values, the gradients of its loss, the forward-mode derivative along a
random direction and a Hessian-vector product must agree with PyTorch's. The number of programs
run is printed at the end of this module's tests.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from mytorch import functional as F
from mytorch.testing.fuzz import compare_with_finite_differences, compare_with_torch, programs
from mytorch.testing.fuzz_complex import complex_programs

PROGRAMS = {"PyTorch": 0, "finite differences": 0}
FUZZ_SETTINGS = dict(database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module", autouse=True)
def report_how_many_programs_ran(request):
    yield
    line = "fuzz: " + ", ".join(
        f"{count} random programs compared with {what}" for what, count in PROGRAMS.items()
    )
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():  # shown even though pytest captures output
        print(f"\n{line}")


@pytest.mark.torch
def test_random_programs_match_pytorch():
    pytest.importorskip("torch")
    before = PROGRAMS["PyTorch"]

    @settings(max_examples=10 * settings.default.max_examples, **FUZZ_SETTINGS)
    @given(programs())
    def run(program):
        compare_with_torch(program)
        PROGRAMS["PyTorch"] += 1

    run()
    assert PROGRAMS["PyTorch"] - before >= 5 * settings.default.max_examples


@pytest.mark.torch
def test_random_float32_programs_match_pytorch_and_stay_float32():
    pytest.importorskip("torch")
    before = PROGRAMS["PyTorch"]

    @settings(max_examples=4 * settings.default.max_examples, **FUZZ_SETTINGS)
    @given(programs(dtype=np.float32))
    def run(program):
        compare_with_torch(program)  # every value, gradient, tangent and product must be float32
        PROGRAMS["PyTorch"] += 1

    run()
    assert PROGRAMS["PyTorch"] - before >= 2 * settings.default.max_examples


def test_random_programs_match_finite_differences():
    before = PROGRAMS["finite differences"]

    @settings(max_examples=2 * settings.default.max_examples, **FUZZ_SETTINGS)
    @given(programs(max_steps=5))
    def run(program):
        compare_with_finite_differences(program)
        PROGRAMS["finite differences"] += 1

    run()
    assert PROGRAMS["finite differences"] - before >= settings.default.max_examples


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_random_complex_programs_match_pytorchs_complex_autograd(dtype):
    """Complex leaves through the primitives that declare complex values, to a real loss: values,
    .grad (PyTorch's convention), the forward-mode derivative along a complex direction and a
    Hessian-vector product, each in its dtype."""
    pytest.importorskip("torch")
    before = PROGRAMS["PyTorch"]
    scale = 6 if dtype == np.complex128 else 2

    @settings(max_examples=scale * settings.default.max_examples, **FUZZ_SETTINGS)
    @given(complex_programs(dtype=dtype))
    def run(program):
        compare_with_torch(program)
        PROGRAMS["PyTorch"] += 1

    run()
    assert PROGRAMS["PyTorch"] - before >= scale // 2 * settings.default.max_examples


def test_random_complex_programs_match_finite_differences():
    before = PROGRAMS["finite differences"]

    @settings(max_examples=2 * settings.default.max_examples, **FUZZ_SETTINGS)
    @given(complex_programs(max_steps=5))
    def run(program):
        compare_with_finite_differences(program)
        PROGRAMS["finite differences"] += 1

    run()
    assert PROGRAMS["finite differences"] - before >= settings.default.max_examples


@settings(max_examples=10, database=None, deadline=None)
@given(complex_programs(max_steps=4))
def test_complex_programs_have_a_complex_leaf_and_a_real_loss(program):
    leaves = [program.steps[k].params["value"] for k in program.leaves]
    assert any(leaf.dtype == np.complex128 for leaf in leaves)
    assert all(leaf.dtype in (np.complex128, np.float64) for leaf in leaves)
    from mytorch.testing.fuzz import mytorch_run

    _, loss, _ = mytorch_run(program, [leaf.copy() for leaf in leaves])
    assert loss.dtype == np.float64


# ---- the fuzzer can fail: a wrong rule is caught and shrunk -------------------------------------


def _wrong_tanh_backward(g, ans, x):
    return (F.mul(g, F.sub(1, ans)),)  # forgot to square: 1 - tanh instead of 1 - tanh²


@pytest.mark.parametrize("reference", ["PyTorch", "finite differences"])
def test_the_fuzzer_catches_a_wrong_backward_rule(monkeypatch, reference):
    if reference == "PyTorch":
        pytest.importorskip("torch")
    compare = compare_with_torch if reference == "PyTorch" else compare_with_finite_differences
    monkeypatch.setattr(F.tanh, "vjp", _wrong_tanh_backward)

    @settings(max_examples=50, **FUZZ_SETTINGS)
    @given(programs(ops=("tanh", "add", "sum")))
    def run(program):
        compare(program)

    # Either the gradient or, where 1 - tanh happens to equal 1 - tanh² (at 0), the second derivative.
    with pytest.raises(AssertionError, match="gradient of the loss|Hessian-vector product") as info:
        run()
    assert "tanh(v" in str(info.value)  # the shrunk program is shown


@pytest.mark.parametrize("reference", ["PyTorch", "finite differences"])
def test_the_complex_fuzzer_catches_a_holomorphic_rule_without_its_conjugates(monkeypatch, reference):
    """exp's analytic rule ȳ · e^z run as it is on complex values (PyTorch's convention asks for
    ȳ · conj(e^z)): right on real programs, caught on complex ones."""
    if reference == "PyTorch":
        pytest.importorskip("torch")
    compare = compare_with_torch if reference == "PyTorch" else compare_with_finite_differences
    monkeypatch.setattr(F.exp, "complex_vjp", F.exp.vjp)

    @settings(max_examples=50, **FUZZ_SETTINGS)
    @given(complex_programs(ops=("exp", "abs", "real")))
    def run(program):
        compare(program)

    with pytest.raises(AssertionError, match="gradient of the loss|Hessian-vector product") as info:
        run()
    assert "exp(v" in str(info.value)


def test_the_fuzzer_catches_a_wrong_tangent_rule(monkeypatch):
    monkeypatch.setattr(F.sin, "jvp", lambda t, ans, x: F.mul(t[0], F.sin(x)))  # should be cos

    @settings(max_examples=50, **FUZZ_SETTINGS)
    @given(programs(ops=("sin",)))
    def run(program):
        compare_with_finite_differences(program)

    with pytest.raises(AssertionError, match="forward-mode derivative"):
        run()


@settings(max_examples=5, database=None)
@given(programs(max_steps=2))
def test_programs_are_printed_readably(program):
    text = repr(program)
    assert text.startswith("Program(") and "loss = sum(w" in text
    assert all(f"v{k} =" in text for k in range(len(program.steps)))
    assert np.all([np.isfinite(program.steps[k].params["value"]).all() for k in program.leaves])


def test_power_hessian_is_symmetric_where_pytorch_is_not():
    # The float32 fuzz run (deep profile) once disagreed with PyTorch on tanh(x ** p) at x = 1,
    # p = 0: PyTorch's pow backward masks the base's gradient where the exponent is 0, so its
    # ∂²/∂p∂x is 0 while ∂²/∂x∂p is sech²(1). mytorch gives sech²(1) both ways, which is right.
    import mytorch

    H = mytorch.hessian(lambda x, p: F.tanh(F.power(x, p)), argnums=(0, 1))(np.array(1.0), np.array(0.0))
    sech2 = 1 / np.cosh(1.0) ** 2
    hessian = [[H[0][0], H[0][1]], [H[1][0], H[1][1]]]
    np.testing.assert_allclose(hessian, [[0.0, sech2], [sech2, 0.0]], atol=1e-12)


def test_every_primitive_is_drawn_or_says_where_it_is_reached():
    from mytorch.testing.fuzz import MENU, NOT_DRAWN
    from mytorch.testing.fuzz_complex import COMPLEX_MENU

    drawn = {name.rpartition("+")[2] for name in (*MENU, *COMPLEX_MENU)}
    silent = sorted(set(F.PRIMITIVES) - drawn - set(NOT_DRAWN))
    assert not silent, f"primitives the fuzzer never draws, with no reason given: {silent}"


@pytest.mark.parametrize("op", ["leaf+linear", "astype", "unbroadcast", "scatter_add"])
def test_the_new_steps_match_pytorch(op):
    from hypothesis import given, settings

    from mytorch.testing.fuzz import compare_with_torch, programs

    pytest.importorskip("torch")

    @settings(max_examples=15, deadline=None, database=None)
    @given(programs(max_steps=3, ops=("tanh", op)))
    def run(program):
        compare_with_torch(program)

    run()

"""Property tests for every primitive (issue 2's tests), over the input specs of mytorch.testing.

For each primitive in `functional.PRIMITIVES`, hypothesis draws shapes with broadcasting, size-1
axes, 0-d and empty arrays where legal, and parameters (axis, keepdims, indices, pad widths...):

- backward and tangent rules against central finite differences, in float64 and in float32;
- forward values and engine gradients against PyTorch, in float64 and float32, on inputs full of
  kinks and ties;
- float32 in, float32 gradients out; integer/bool arrays and Python numbers are constants;
- bad input is refused with an error naming the op and the shapes.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mytorch
from mytorch import functional as F
from mytorch.autograd_engine import Autograd
from mytorch.testing import (
    CASES,
    all_primitives,
    check_against_torch,
    check_primitive,
    missing_cases,
    primitive_gradients,
)

PRIMITIVES = sorted(all_primitives())


def enough_examples() -> int:
    """At least half the profile's examples must have run (hypothesis may stop early on small spaces)."""
    return max(1, settings.default.max_examples // 2)


def test_every_registered_primitive_has_an_input_spec():
    missing = missing_cases()
    assert not missing, (
        f"primitives without an input spec in mytorch/testing/cases.py (so without property tests): {missing}"
    )


@pytest.mark.parametrize("name", PRIMITIVES)
def test_rules_match_finite_differences_in_float64(name):
    report = check_primitive(name, dtype=np.float64)
    assert report.examples >= enough_examples()


@pytest.mark.parametrize("name", PRIMITIVES)
def test_float32_rules_match_float64_finite_differences(name):
    report = check_primitive(name, dtype=np.float32)
    assert report.examples >= enough_examples()


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", PRIMITIVES)
def test_values_and_gradients_match_pytorch(name, dtype):
    pytest.importorskip("torch")
    from mytorch.testing.cases_more import NO_TORCH_TWIN

    if name in NO_TORCH_TWIN:  # (its value is SciPy's own; finite differences check its rules)
        pytest.skip(f"{name}: {NO_TORCH_TWIN[name]}")
    report = check_against_torch(name, dtype, ties=True)
    assert not report.skipped, report.skipped
    assert report.examples >= enough_examples()


def _float_inputs(example):
    return [(i, v) for i, v in enumerate(example.inputs) if isinstance(v, np.ndarray) and v.dtype.kind == "f"]


@pytest.mark.parametrize("name", PRIMITIVES)
def test_float32_inputs_get_float32_gradients(name):
    primitive = all_primitives()[name]

    @settings(max_examples=min(15, settings.default.max_examples), database=None)
    @given(CASES[name].examples(np.float32))
    def run(example):
        engine = Autograd()
        out = primitive.apply(example.inputs, example.params)
        assert type(out) is np.ndarray
        if not engine.operation_list:
            return
        engine.backward(out, gradient=np.ones_like(out))
        for i, x in _float_inputs(example):
            grad = engine.gradient_buffer.get_param(x)
            assert grad.dtype == np.float32, f"{name}: input {i} is float32, its gradient {grad.dtype}"
            assert grad.shape == x.shape

    run()


MULTI_INPUT = [n for n in PRIMITIVES if all_primitives()[n].arity != 1]


@pytest.mark.parametrize("name", MULTI_INPUT)
def test_integer_and_bool_arrays_and_numbers_are_constants(name):
    primitive = all_primitives()[name]
    seen = []

    @settings(max_examples=max(30, settings.default.max_examples), database=None)
    @given(CASES[name].examples())
    def run(example):
        constants = [
            (i, v)
            for i, v in enumerate(example.inputs)
            if v is not None and not (isinstance(v, np.ndarray) and v.dtype.kind == "f")
        ]
        engine = Autograd()
        out = primitive.apply(example.inputs, example.params)
        if not _float_inputs(example):
            assert engine.operation_list == []  # nothing to differentiate: nothing recorded
            return
        grads = primitive_gradients(primitive, example, np.ones_like(out, dtype=np.float64))
        for i, value in constants:
            seen.append(type(value).__name__ if not isinstance(value, np.ndarray) else value.dtype.kind)
            assert grads[i] is None, f"{name}: constant input {i} ({value!r}) got a gradient"
            if isinstance(value, np.ndarray):
                assert not engine.gradient_buffer.is_in_memory(value)

    run()
    assert seen, f"{name}: no example with a constant input was drawn"


BAD = [n for n in PRIMITIVES if CASES.get(n) is not None and CASES[n].bad is not None]


def test_nearly_every_primitive_has_a_bad_input_example():
    # im2col and col2im are internal helpers of conv/pool, whose own bad-input tests cover them.
    without = sorted(set(PRIMITIVES) - set(BAD) - {"im2col", "col2im"})
    assert not without, f"no bad-input example for {without}"


@pytest.mark.parametrize("name", BAD)
def test_bad_input_error_names_the_op_and_the_shapes(name):
    inputs, params, words = CASES[name].bad
    with pytest.raises((ValueError, TypeError, IndexError, NotImplementedError)) as info:
        all_primitives()[name](*inputs, **params)
    message = str(info.value)
    for word in words:  # numpy writes shapes with or without spaces: (2, 3) or (2,3)
        assert word.replace(" ", "") in message.replace(" ", ""), f"{name}: {word!r} missing from {message!r}"


def test_backward_helpers_called_by_hand_record_nothing():
    # Found by these checks: F.<name>_backward called by hand used to record its rule on the
    # tape, which locked the user's arrays and moved the start of backward(seed).
    engine = Autograd()
    x, W = np.ones((2, 3)), np.ones((3, 3))
    F.matmul_backward(np.ones((2, 3)), x, W)
    assert engine.operation_list == []
    assert x.flags.writeable and W.flags.writeable
    W -= 0.1  # an optimizer step right after a hand-written backward


@given(st.data())
@settings(max_examples=min(10, settings.default.max_examples), database=None)
def test_backward_helpers_agree_with_the_engine(data):
    # F.<name>_backward (plugged into add_operation by hand) and the engine's walk give the same.
    name = data.draw(st.sampled_from([n for n in PRIMITIVES if n in CASES]), label="primitive")
    primitive = all_primitives()[name]
    example = data.draw(CASES[name].examples(), label="example")
    if primitive.arity is None or not _float_inputs(example):
        return
    engine = Autograd()
    out = primitive.apply(example.inputs, example.params)
    adjoint = np.full(out.shape, 0.5)
    engine.backward(out, gradient=adjoint)
    by_hand = primitive_gradients(primitive, example, adjoint)
    for i, x in _float_inputs(example):
        expected = np.zeros(x.shape) if by_hand[i] is None else by_hand[i]
        np.testing.assert_allclose(engine.gradient_buffer.get_param(x), expected, rtol=1e-12, atol=1e-12)


def test_user_primitive_records_checks_and_transforms_like_a_builtin():
    from mytorch.testing import float_arrays
    from mytorch.testing.examples import softplus

    assert F.PRIMITIVES.get("softplus") is not softplus  # F.Primitive keeps it out of the built-in table
    engine = Autograd()
    x = np.array([-1.0, 0.0, 2.0])
    y = F.sum(softplus(x))
    assert [op.primitive for op in engine.operation_list][0] is softplus
    engine.backward(y)
    np.testing.assert_allclose(engine.gradient_buffer.get_param(x), 1 / (1 + np.exp(-x)))
    assert check_primitive(softplus, float_arrays(), max_examples=20).examples == 20
    if hasattr(mytorch, "grad"):  # transforms, and a second derivative through the rules
        sigmoid = 1 / (1 + np.exp(-x))
        np.testing.assert_allclose(mytorch.grad(lambda v: F.sum(softplus(v)))(x), sigmoid)
        second = mytorch.grad(lambda v: F.sum(mytorch.grad(lambda u: F.sum(softplus(u)))(v)))(x)
        np.testing.assert_allclose(second, sigmoid * (1 - sigmoid))
        _, tangent = mytorch.jvp(lambda v: F.sum(softplus(v)), (x,), (np.ones_like(x),))
        np.testing.assert_allclose(tangent, np.sum(sigmoid))
        hessian = mytorch.hessian(lambda v: F.sum(softplus(v)))(x)
        np.testing.assert_allclose(hessian, np.diag(sigmoid * (1 - sigmoid)), atol=1e-15)


def test_registering_a_user_primitive_is_opt_in():
    twice = F.primitive(
        "twice_for_test",
        lambda x: 2 * x,
        vjp=lambda g, ans, x: (F.mul(g, 2.0),),
        jvp=lambda t, ans, x: F.mul(t[0], 2.0),
        register=False,
    )
    assert "twice_for_test" not in F.PRIMITIVES
    check_primitive(twice, st.just(np.array([1.0, 2.0])), max_examples=1)


def test_float32_stays_float32_through_erf_power_and_cross_entropy():
    # Found by check_primitive's float32 run: float64 constants (2/√π, sub(p, 1) of a Python
    # number, np.prod of the batch shape) turned float32 values, tangents and gradients into float64.
    x = np.array([0.5, 1.5], np.float32)
    t = np.ones_like(x)
    assert F.cross_entropy(np.ones((2, 3), np.float32), np.array([0, 2])).dtype == np.float32
    assert mytorch.jvp(F.erf, (x,), (t,))[1].dtype == np.float32
    assert mytorch.jvp(lambda v: F.power(v, 2), (x,), (t,))[1].dtype == np.float32
    assert F.erf_backward(t, x).dtype == np.float32
    assert F.power_backward(t, x, 3)[0].dtype == np.float32
    assert F.power_backward(t, 2, x)[1].dtype == np.float32


def test_softmax_family_of_an_empty_array():
    # Found by the fuzzer: softmax of an empty array raised (np.max of nothing), and log_softmax /
    # logsumexp of an empty float32 array came back float64 (a Python 0 shift became an int64 array).
    assert F.softmax(np.zeros((0,))).shape == (0,)
    assert F.log_softmax(np.zeros((2, 0), np.float32)).dtype == np.float32
    with np.errstate(divide="ignore"):
        total = F.logsumexp(np.zeros((3, 0), np.float32))
    assert total.dtype == np.float32 and np.all(total == -np.inf)

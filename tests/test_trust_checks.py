"""Checking tools that never pass what they did not check (issue 10): check_layer finds the
parameters of the layers a model holds, and check_primitive catches rules computed with raw NumPy,
whose second derivatives would silently be zero."""

import numpy as np
import pytest
from hypothesis import strategies as st

import mytorch
from mytorch import functional as F
from mytorch import nn
from mytorch.testing import GradientCheckError, check_layer, check_primitive, float_arrays
from mytorch.testing.examples import HandwrittenLinear, LinearBiasNotSummed, softplus

# ---- check_layer on models whose parameters live in sub-layers ------------------------------------


class HandTanh:
    def forward(self, A):
        self.Z = np.tanh(A)
        return self.Z

    def backward(self, dLdZ):
        return dLdZ * (1 - self.Z**2)


class ListMLP:
    """The homework shape: layers in a list, forward in order, backward in reverse."""

    def __init__(self, last=HandwrittenLinear):
        self.layers = [HandwrittenLinear(3, 4, seed=1), HandTanh(), last(4, 2, seed=2)]

    def forward(self, A):
        for layer in self.layers:
            A = layer.forward(A)
        return A

    def backward(self, dLdZ):
        for layer in reversed(self.layers):
            dLdZ = layer.backward(dLdZ)
        return dLdZ


class DictMLP(ListMLP):
    def __init__(self, last=HandwrittenLinear):
        hidden, out = HandwrittenLinear(3, 4, seed=1), last(4, 2, seed=2)
        self.blocks = {"hidden": hidden, "act": HandTanh(), "out": out}

    @property
    def layers(self):
        return list(self.blocks.values())


class AttributeMLP(ListMLP):
    def __init__(self, last=HandwrittenLinear):
        self.hidden, self.act, self.out = HandwrittenLinear(3, 4, seed=1), HandTanh(), last(4, 2, seed=2)

    @property
    def layers(self):
        return [self.hidden, self.act, self.out]


def _reference(A, **p):
    """The MLP with primitives; its parameters come by path (`layers[0].W`, `hidden.W`, ...)."""
    first, last = list(p.values())[:2], list(p.values())[2:]
    return F.linear(F.tanh(F.linear(A, *first)), *last)


@pytest.mark.parametrize("model, prefixes", [
    (ListMLP, ("layers[0].", "layers[2].")),
    (DictMLP, ("blocks['hidden'].", "blocks['out'].")),
    (AttributeMLP, ("hidden.", "out.")),
])
@pytest.mark.parametrize("reference", [None, _reference], ids=["fd", "engine"])
def test_check_layer_finds_and_compares_the_parameters_of_sub_layers(model, prefixes, reference):
    report = check_layer(model(), reference, max_examples=10)
    first, last = prefixes
    gradients = ("dLdA", f"{first}dLdW", f"{first}dLdb", f"{last}dLdW", f"{last}dLdb")
    assert report.compared == gradients if reference is None else ("Z", *gradients)  # Z needs a reference
    assert f"compared {', '.join(report.compared)}" in str(report)


@pytest.mark.parametrize("model, quantity", [
    (ListMLP, "layers[2].dLdb"),
    (DictMLP, "blocks['out'].dLdb"),
    (AttributeMLP, "out.dLdb"),
])
@pytest.mark.parametrize("reference", [None, _reference], ids=["fd", "engine"])
def test_a_wrong_bias_gradient_in_a_sub_layer_fails(model, quantity, reference):
    with pytest.raises(GradientCheckError) as info:
        check_layer(model(last=LinearBiasNotSummed), reference, max_examples=50)
    message = str(info.value)
    assert message.startswith(f"check_layer({model.__name__}): {quantity}")
    assert "averaged, not summed?" in message


class NoGradients(ListMLP):
    """Sub-layers whose backward keeps its parameter gradients under other names."""

    def __init__(self):
        self.layers = [Scaler(3), HandTanh()]


class Scaler:
    def __init__(self, width):
        self.scale = np.linspace(0.5, 1.5, width)
        self.in_features = width

    def forward(self, A):
        self.A = A
        return A * self.scale

    def backward(self, dLdZ):
        self.grad_scale = (dLdZ * self.A).sum(axis=0)  # not dLdscale: nothing can find it
        return dLdZ * self.scale


def test_check_layer_fails_when_it_finds_arrays_but_no_gradient_to_compare():
    with pytest.raises(GradientCheckError, match=r"found no parameter whose gradient can be compared: the "
                                                 r"arrays layers\[0\]\.scale have no dLd<name>"):
        check_layer(NoGradients(), max_examples=5)
    report = check_layer(NoGradients(), params=[], max_examples=5)  # said out loud: dLdA alone
    assert report.compared == ("dLdA",)
    with pytest.raises(GradientCheckError, match=r"layers\[0\]\.dLdscale was not set by backward"):
        check_layer(NoGradients(), params=["layers[0].scale"], max_examples=5)


def test_a_forgotten_bias_gradient_fails_instead_of_being_skipped():
    class ForgetsBias(HandwrittenLinear):
        def backward(self, dLdZ):
            dLdA = super().backward(dLdZ)
            del self.dLdb
            return dLdA

    with pytest.raises(GradientCheckError, match=r"layers\[2\]\.dLdb was not set by backward"):
        check_layer(ListMLP(last=ForgetsBias), max_examples=5)


def test_a_model_of_activations_only_compares_dLdA_and_says_so():
    class Activations(ListMLP):
        def __init__(self):
            self.layers = [HandTanh(), HandTanh()]

    report = check_layer(Activations(), input_shape=(2, 3), max_examples=5)
    assert report.compared == ("dLdA",) and not report.not_compared


def test_check_layer_on_a_mytorch_sequential_and_against_one():
    np.random.seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    report = check_layer(model, max_examples=5)
    assert report.compared == ("dLdA", "0.dLdW", "0.dLdb", "2.dLdW", "2.dLdb")
    # a reference whose parameters sit at other paths is matched by order and shape
    reference = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    report = check_layer(ListMLP(), reference, max_examples=5)
    assert "layers[2].dLdb" in report.compared
    with pytest.raises(ValueError, match="holds no parameters at the layer's paths"):
        check_layer(ListMLP(), nn.Sequential(nn.Linear(3, 2)), max_examples=5)


def test_params_naming_a_missing_array_is_refused():
    with pytest.raises(ValueError, match=r"params= names 'layers\[5\]\.W'"):
        check_layer(ListMLP(), params=["layers[5].W"], max_examples=5)


def test_the_report_lists_arrays_it_did_not_take_for_parameters():
    class WithConstant(HandwrittenLinear):
        def __init__(self):
            super().__init__(3, 2)
            self.offsets = np.ones(2)  # used in forward as a constant, no gradient kept

        def forward(self, A):
            return super().forward(A) + self.offsets

    # By default an array that changes the output but gets no gradient is refused (law 8: it may be
    # a parameter whose gradient backward forgot); named parameters make it a listed constant.
    with pytest.raises(GradientCheckError, match="offsets changes the layer's output.*no dLdoffsets"):
        check_layer(WithConstant(), max_examples=5)
    report = check_layer(WithConstant(), params=["W", "b"], max_examples=5)
    assert report.not_compared == ("offsets",)
    assert "not compared (no gradient attribute): offsets" in str(report)


# ---- check_primitive: rules computed with raw NumPy -------------------------------------------


numpy_softplus = F.primitive(  # first order right, but its rules compute with NumPy
    "numpy_softplus",
    lambda x: np.logaddexp(0.0, x),
    vjp=lambda g, ans, x: (g / (1 + np.exp(-x)),),
    jvp=lambda t, ans, x: t[0] / (1 + np.exp(-x)),
    register=False,
)


def test_a_softplus_written_with_numpy_fails_and_says_why():
    with pytest.raises(GradientCheckError, match="your rule computes with NumPy: gradients of gradients "
                                                 "through it are zero"):
        check_primitive(numpy_softplus, float_arrays(), max_examples=10)
    # what the check protects against: the hessian is silently zero
    x = np.array([0.3, -1.0])
    assert np.all(mytorch.hessian(lambda x: F.sum(numpy_softplus(x)))(x) == 0)


def test_a_softplus_written_with_primitives_passes_and_its_hessian_is_right():
    assert check_primitive(softplus, float_arrays(), max_examples=10).examples == 10
    x = np.array([0.3, -1.0])
    sigmoid = 1 / (1 + np.exp(-x))
    hessian = mytorch.hessian(lambda x: F.sum(softplus(x)))(x)
    np.testing.assert_allclose(hessian, np.diag(sigmoid * (1 - sigmoid)))


def test_a_numpy_tangent_rule_alone_is_caught_too():
    half = F.primitive(
        "half_numpy_tangent",
        lambda x: np.logaddexp(0.0, x),
        vjp=lambda g, ans, x: (F.mul(g, F.sigmoid(x)),),
        jvp=lambda t, ans, x: t[0] * (1 / (1 + np.exp(-x))),
        register=False,
    )
    with pytest.raises(GradientCheckError, match=r"(?s)computes with NumPy.*tangent rule \(jvp\)"):
        check_primitive(half, float_arrays(), max_examples=10)
    check_primitive(half, float_arrays(), modes=("rev",), max_examples=10)  # asked for first order, reverse


def test_a_rule_that_mixes_in_a_numpy_constant_fails_on_its_second_derivative():
    sneaky = F.primitive(  # recorded (F.mul), but the sigmoid is a NumPy constant to the tape
        "sneaky_softplus",
        lambda x: np.logaddexp(0.0, x),
        vjp=lambda g, ans, x: (F.mul(g, 1 / (1 + np.exp(-x))),),
        jvp=lambda t, ans, x: F.mul(t[0], F.sigmoid(x)),
        register=False,
    )
    with pytest.raises(GradientCheckError, match="(?s)second derivative disagrees with finite differences"
                                                 ".*a part computed with NumPy"):
        check_primitive(sneaky, float_arrays(), max_examples=10)  # the default compares second derivatives
    check_primitive(sneaky, float_arrays(), max_examples=10, second_order="recorded")  # on the tape only
    check_primitive(softplus, float_arrays(), max_examples=10, second_order="numeric")


def test_a_linear_rule_whose_gradient_is_constant_passes():
    double = F.primitive("double", lambda x: 2 * x, vjp=lambda g, ans, x: (F.mul(g, 2.0),),
                         jvp=lambda t, ans, x: F.mul(t[0], 2.0), register=False)
    check_primitive(double, float_arrays(), max_examples=10)


def test_second_order_can_be_turned_off_for_a_first_order_rule():
    report = check_primitive(numpy_softplus, float_arrays(), max_examples=10, second_order=False)
    assert report.examples == 10


@pytest.mark.parametrize("op", ["mul", "exp", "matmul", "sum", "getitem", "maximum", "softmax", "conv2d",
                                "cross_entropy", "logsumexp", "max_pool2d"])
def test_built_in_primitives_record_their_rules_and_their_second_derivatives_match(op):
    check_primitive(op, max_examples=5, second_order="numeric")


def test_an_integer_or_constant_only_example_is_not_blamed():
    scale = F.primitive("scale_by_count", lambda x, n: x * n, arity=2,
                        vjp=lambda g, ans, x, n: (F.mul(g, n), None),
                        jvp=lambda t, ans, x, n: F.mul(t[0], n), register=False)
    check_primitive(scale, st.tuples(float_arrays(shape=(3,)), st.just(np.arange(3))), max_examples=5)


def test_a_model_that_already_ran_is_checked_the_same_and_its_caches_are_not_listed():
    model = ListMLP()
    model.forward(np.ones((2, 3)))
    model.backward(np.ones((2, 2)))  # leaves A, Z and dLdW/dLdb arrays behind
    report = check_layer(model, max_examples=5)
    assert report.compared == ("dLdA", "layers[0].dLdW", "layers[0].dLdb", "layers[2].dLdW", "layers[2].dLdb")
    assert report.not_compared == ()

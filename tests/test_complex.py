"""Complex numbers (issue 23): PyTorch's convention end to end, and the tracked-array corners.

The per-primitive rules are checked by the generic laws and `check` (every primitive that declares
`complex=` is drawn in complex128 and complex64); these tests pin the convention on whole programs,
against PyTorch's `.grad` where it is installed, and the pieces no primitive owns (seeds, refusals,
np.r_ / np.c_, `.real` / `.imag` of a tracked array).
"""

from __future__ import annotations

import numpy as np
import pytest

import mytorch
from mytorch import functional as F

RNG = np.random.default_rng(23)
Z = RNG.uniform(-1, 1, (3, 3)) + 1j * RNG.uniform(-1, 1, (3, 3))
X = RNG.uniform(0.5, 1.5, 4)


def _programs():
    """(name, mytorch-and-NumPy function, PyTorch function): real losses of complex leaves."""
    import torch

    return [
        ("|z|² summed", lambda z: np.sum(np.abs(z) ** 2), lambda z: torch.sum(torch.abs(z) ** 2)),
        ("Re(z @ z.conj()) + angle", lambda z: np.sum(np.real(z @ np.conj(z))) + np.sum(np.angle(z)),
         lambda z: torch.sum(torch.real(z @ torch.conj(z))) + torch.sum(torch.angle(z))),
        ("|exp(sin z) / (1 + z²)|", lambda z: np.sum(np.abs(np.exp(np.sin(z)) / (1 + z * z))),
         lambda z: torch.sum(torch.abs(torch.exp(torch.sin(z)) / (1 + z * z)))),
        ("imag of log and sqrt", lambda z: np.sum(np.imag(np.log(z + 3) * np.sqrt(z + 3))),
         lambda z: torch.sum(torch.imag(torch.log(z + 3) * torch.sqrt(z + 3)))),
        ("|fft| and irfft", lambda z: np.sum(np.abs(np.fft.fft(z, axis=0))) + np.sum(np.fft.irfft(z) ** 2),
         lambda z: torch.sum(torch.abs(torch.fft.fft(z, dim=0))) + torch.sum(torch.fft.irfft(z) ** 2)),
        ("mean of tanh, reshaped", lambda z: np.real(np.mean(np.tanh(z).reshape(-1)[::2])) ** 2,
         lambda z: torch.real(torch.mean(torch.tanh(z).reshape(-1)[::2])) ** 2),
    ]


@pytest.mark.torch
@pytest.mark.parametrize("index", range(6))
def test_gradients_of_a_real_loss_equal_pytorchs_grad(index):
    torch = pytest.importorskip("torch")
    name, f, twin = _programs()[index]
    leaf = torch.tensor(Z, requires_grad=True)
    twin(leaf).backward()
    np.testing.assert_allclose(mytorch.grad(f)(Z), leaf.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.torch
def test_second_order_through_complex_values_equals_pytorchs():
    """A Hessian-vector product: the gradient of Re⟨v, ∇L(z)⟩, by mytorch and by PyTorch."""
    torch = pytest.importorskip("torch")
    v = RNG.uniform(-1, 1, Z.shape) + 1j * RNG.uniform(-1, 1, Z.shape)
    f = lambda z: np.sum(np.abs(np.exp(z) * z) ** 2)  # noqa: E731
    along = lambda z: np.sum(np.real(np.conj(v) * mytorch.grad(f)(z)))  # noqa: E731
    leaf = torch.tensor(Z, requires_grad=True)
    (first,) = torch.autograd.grad(torch.sum(torch.abs(torch.exp(leaf) * leaf) ** 2), leaf, create_graph=True)
    torch.sum(torch.real(torch.conj(torch.tensor(v)) * first)).backward()
    np.testing.assert_allclose(mytorch.grad(along)(Z), leaf.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_jvp_is_complex_linear_in_the_tangent_for_a_holomorphic_function():
    f = lambda z: np.exp(z) * np.sin(z) @ z  # noqa: E731
    t = RNG.uniform(-1, 1, Z.shape) + 0j
    _, along = mytorch.jvp(f, (Z,), (t,))
    _, along_i = mytorch.jvp(f, (Z,), (1j * t,))
    np.testing.assert_allclose(along_i, 1j * along, rtol=1e-12, atol=1e-12)


def test_a_real_input_of_a_complex_operation_gets_the_real_part_of_its_gradient():
    w = np.array([1 + 2j, -0.5j, 2.0, 1 - 1j])
    loss = lambda x: np.sum(np.abs(x * w) ** 2 + np.angle(x + 1j))  # noqa: E731
    gradient = mytorch.grad(loss)(X)
    assert gradient.dtype == np.float64
    expected = 2 * X * np.abs(w) ** 2 - 1 / (X**2 + 1)  # d/dx atan2(1, x) = -1/(x² + 1)
    np.testing.assert_allclose(gradient, expected, rtol=1e-12)


def test_holomorphic_backward_is_the_adjoint_times_the_conjugate_derivative():
    g = np.array([0.3 - 1j, 2 + 0.5j])
    z = np.array([0.2 + 1j, -1 - 0.3j])
    for name, slope in [("exp", np.exp(z)), ("sin", np.cos(z)), ("log", 1 / z), ("sqrt", 0.5 / np.sqrt(z))]:
        np.testing.assert_allclose(getattr(F, f"{name}_backward")(g, z), g * np.conj(slope), err_msg=name)


def test_refusals_name_the_primitive_and_the_dtype():
    with pytest.raises(TypeError, match=r"^maximum: complex values .*complex64"):
        mytorch.grad(lambda z: np.sum(np.real(np.maximum(z, 0))))(Z.astype(np.complex64))
    with pytest.raises(TypeError, match=r"^relu: complex values .*complex128"):
        F.relu_backward(np.ones(2), np.array([1j, 2.0]))
    with pytest.raises(TypeError, match=r"rfft: the input is complex \(complex128\)"):
        F.fft.rfft(Z)


def test_eig_matches_pytorchs_gradient_for_losses_that_ignore_the_phases():
    torch = pytest.importorskip("torch")
    a = np.array([[2.0, 1.0, 0.3], [-1.0, 0.5, 0.2], [0.4, -0.6, -1.5]])  # a complex pair and a real value

    def loss(m):
        values, vectors = F.linalg.eig(m)
        return np.sum(np.abs(values) ** 2) + np.sum(np.abs(vectors[0]) ** 3)

    leaf = torch.tensor(a, requires_grad=True)
    values, vectors = torch.linalg.eig(leaf)
    (torch.sum(torch.abs(values) ** 2) + torch.sum(torch.abs(vectors[0]) ** 3)).backward()
    np.testing.assert_allclose(mytorch.grad(loss)(a), leaf.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_eig_values_are_numpys_and_its_phase_dependent_gradient_is_numpys_gauge():
    values, vectors = F.linalg.eig(Z)
    expected = np.linalg.eig(Z)
    np.testing.assert_allclose(values, expected.eigenvalues)
    np.testing.assert_allclose(vectors, expected.eigenvectors)
    # Re(v[0, 0]) depends on the phase NumPy picks: the gradient is that of NumPy's function.
    f = lambda m: np.real(F.linalg.eig(m).eigenvectors[0, 0])  # noqa: E731
    numeric, h = np.zeros_like(Z), 1e-6
    for index in np.ndindex(Z.shape):
        for unit in (1, 1j):
            step = np.zeros_like(Z)
            step[index] = h * unit
            ahead, behind = (np.linalg.eig(Z + s).eigenvectors[0, 0] for s in (step, -step))
            numeric[index] += unit * np.real(ahead - behind) / (2 * h)
    np.testing.assert_allclose(mytorch.grad(f)(Z), numeric, rtol=1e-6, atol=1e-7)


def test_a_complex_loss_needs_an_explicit_seed():
    out, pullback = mytorch.vjp(lambda z: z * z, Z)
    np.testing.assert_allclose(pullback(np.ones_like(Z))[0], 2 * np.conj(Z))


def test_r_of_tracked_arrays_of_one_dtype_differentiates():
    """np.r_ hands arrays of at least one axis and one dtype to np.concatenate as they are."""
    mytorch.check_grads(lambda x: np.sum(np.r_[x, 2 * x, 0:2, [1.0]] ** 2), (X,), order=2)


@pytest.mark.parametrize("build", ["a 0-d item", "c_", "a directive", "mixed dtypes"])
def test_r_and_c_given_what_numpy_copies_or_views_in_c_are_refused_not_silent_constants(build):
    """The rest go through np.array(item, subok=True, ndmin=..., dtype=...) in C, where no hook
    sees them: the arrays it makes are refused where they reach a primitive."""
    make = {
        "a 0-d item": lambda x: np.r_[x[0], 5.0, x[1:]],
        "c_": lambda x: np.c_[x, x**2],
        "a directive": lambda x: np.r_["0,2", x, 3 * x],
        "mixed dtypes": lambda x: np.r_[x.astype(np.float32), x],
    }[build]
    made = r"is (a copy|a view of a tracked array \(.*\)) that NumPy made outside"
    with pytest.raises(TypeError, match=made):
        mytorch.grad(lambda x: np.sum(make(x) ** 2))(X)


def test_the_parts_of_a_tracked_complex_array_are_on_the_tape():
    f = lambda z: np.sum(z.real**2 - z.imag + np.real(z * z.conj()))  # noqa: E731
    np.testing.assert_allclose(mytorch.grad(f)(Z), 2 * Z.real - 1j + 2 * Z)


def test_real_if_close_keeps_the_chain():
    f = lambda z: np.sum(np.real_if_close(z * np.conj(z)) ** 2)  # noqa: E731
    z = np.array([1 + 1j, 2 - 1j])
    np.testing.assert_allclose(mytorch.grad(f)(z), 4 * np.abs(z) ** 2 * z)
    assert F.real_if_close(np.array([1 + 1j])).dtype == np.complex128


@pytest.mark.parametrize("name", ["rfft2", "irfft2", "rfftn", "irfftn", "hfft", "ihfft"])
def test_the_real_and_hermitian_transforms_run_under_numpys_names_in_first_and_second_order(name):
    """np.fft.<name> on a tracked array is mytorch's, with NumPy's values; rfft2 and irfft2 (the
    two-axis forms) are compositions, checked here in both orders against finite differences."""
    real = RNG.uniform(-1, 1, (3, 4))
    x = Z if name in ("irfft2", "irfftn", "hfft") else real
    function = getattr(np.fft, name)
    np.testing.assert_allclose(function(mytorch.track(x)), function(x), atol=1e-12)
    assert getattr(F.fft, name)(x).dtype == function(x).dtype
    weights = np.arange(1.0, 4.0)[:, None] ** 0.5
    loss = lambda a: np.sum(np.abs(function(a, norm="ortho")) ** 2 * weights)  # noqa: E731
    if np.iscomplexobj(x):  # (check_grads perturbs real arguments: the parts, then)
        mytorch.check_grads(lambda re, im: loss(re + 1j * im), (x.real, x.imag), order=2)
    else:
        mytorch.check_grads(loss, (x,), order=2)


@pytest.mark.torch
def test_hfft_and_ihfft_match_pytorchs_complex_gradients():
    torch = pytest.importorskip("torch")
    leaf = torch.tensor(Z, requires_grad=True)
    torch.sum(torch.fft.hfft(leaf, n=5) ** 3).backward()
    np.testing.assert_allclose(mytorch.grad(lambda z: np.sum(np.fft.hfft(z, n=5) ** 3))(Z),
                               leaf.grad.resolve_conj().numpy(), rtol=1e-10, atol=1e-12)
    leaf = torch.tensor(X, requires_grad=True)
    torch.sum(torch.imag(torch.fft.ihfft(leaf, n=6)) * torch.arange(4.0)).backward()
    f = lambda x: np.sum(np.imag(np.fft.ihfft(x, n=6)) * np.arange(4.0))  # noqa: E731
    np.testing.assert_allclose(mytorch.grad(f)(X), leaf.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_every_primitive_declares_complex_values_or_says_why_it_refuses_them():
    from mytorch.primitive import COMPLEX_REFUSALS
    from mytorch.testing.cases import all_primitives

    primitives = all_primitives()
    assert sorted(n for n, p in primitives.items() if not p.complex and n not in COMPLEX_REFUSALS) == []
    assert not [name for name in COMPLEX_REFUSALS if all_primitives()[name].complex]  # (a stale entry)


@pytest.mark.parametrize(("name", "call", "words"), [
    ("maximum", lambda z: F.maximum(z, 0.0), "no order"),
    ("softmax", F.softmax, "softmax family"),
    ("sign", F.sign, "sgn"),
    ("gamma", F.special.gamma, "special functions"),  # (SciPy's gamma takes complex values)
])
def test_a_refusal_names_the_primitive_the_dtype_and_the_reason(name, call, words):
    with pytest.raises(TypeError, match=rf"^{name}: complex values .*{words}.*complex64"):
        mytorch.grad(lambda z: np.sum(np.real(call(z))))(Z.astype(np.complex64))


@pytest.mark.torch
@pytest.mark.parametrize("name", ["sigmoid", "prod", "cumprod", "var", "std", "logsumexp"])
def test_the_newly_declared_reductions_and_sigmoid_equal_pytorchs_grad(name):
    torch = pytest.importorskip("torch")
    mine = {"sigmoid": lambda z: F.sigmoid(z), "prod": lambda z: F.prod(z, axis=0),
            "cumprod": lambda z: F.cumprod(z, axis=1), "var": lambda z: F.var(z, axis=0, ddof=1),
            "std": lambda z: F.std(z, ddof=1), "logsumexp": lambda z: F.logsumexp(z, axis=0)}[name]
    twin = {"sigmoid": torch.sigmoid, "prod": lambda z: torch.prod(z, 0),
            "cumprod": lambda z: torch.cumprod(z, 1), "var": lambda z: torch.var(z, 0), "std": torch.std,
            "logsumexp": lambda z: torch.logsumexp(z, 0)}[name]
    weights = np.arange(1.0, 10.0).reshape(3, 3) + 1j

    def weighted(value, w):
        return value * (w[: value.shape[-1]] if value.ndim else 1.0)

    leaf = torch.tensor(Z, requires_grad=True)
    torch.sum(torch.abs(weighted(twin(leaf), torch.tensor(weights[0]))) ** 2).backward()
    loss = lambda z: np.sum(np.abs(weighted(mine(z), weights[0])) ** 2)  # noqa: E731

    np.testing.assert_allclose(mytorch.grad(loss)(Z), leaf.grad.resolve_conj().numpy(), rtol=1e-9, atol=1e-10)


def test_erf_of_a_complex_value_is_scipys_and_its_rule_is_holomorphic():
    import scipy.special

    np.testing.assert_allclose(F.erf(Z), scipy.special.erf(Z))
    np.testing.assert_allclose(F.special.erfc(Z), scipy.special.erfc(Z))
    g = np.ones_like(Z)
    np.testing.assert_allclose(F.erf_backward(g, Z), np.conj(2 / np.sqrt(np.pi) * np.exp(-Z**2)))
    mytorch.check_grads(lambda re, im: np.sum(np.abs(F.erf(re + 1j * im)) ** 2), (Z.real, Z.imag), order=2)

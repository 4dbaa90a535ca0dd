"""Input specs of the complex-number primitives (real, imag, conj, angle) and the Fourier transforms
(`F.fft`), registered in `mytorch.testing.cases.CASES` as the built-in ones are.

Drawn in a float dtype they take real arrays (the transforms still give complex results); in a
complex dtype the generic rule of `Case.examples` gives them complex inputs, except `angle`, which
draws its own (away from 0 and from its branch cut on the negative real axis), and `rfft`, whose
input is real (and so are ihfft's and rfftn's).

>>> from mytorch.testing.cases import CASES
>>> sorted(n for n in CASES if "fft" in n)
['fft', 'fftn', 'hfft', 'ifft', 'ifftn', 'ihfft', 'irfft', 'irfftn', 'rfft', 'rfftn']
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from hypothesis import strategies as st

from mytorch.testing import cases_more  # noqa: F401  (erfc's case, given a complex twin here)
from mytorch.testing.cases import _ANY_SHAPE, CASES, Example, _values, case
from mytorch.testing.strategies import SEEDS, seeded_picks, shapes

_STRINGS = ((np.array(["a", "b"]),), {})


def _torch(path: str) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        import torch

        function: Any = torch
        for part in path.split("."):
            function = getattr(function, part)
        return function(*args, **kwargs)

    call.__name__ = path
    return call


def _unary(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(_ANY_SHAPE)
    return Example((_values(draw, shape, dtype, ties),))


def _torch_imag(x: Any) -> Any:
    import torch

    return torch.imag(x) if x.is_complex() else x * 0  # (PyTorch has no imag of a real tensor)


case("conj", torch=_torch("conj_physical"), bad=(*_STRINGS, ("conj", "(2,)")))(_unary)
case("real", torch=_torch("real"), bad=(*_STRINGS, ("real", "(2,)")))(_unary)
case("imag", torch=_torch_imag, bad=(*_STRINGS, ("imag", "(2,)")))(_unary)


def _torch_angle(z: Any, deg: bool = False) -> Any:
    import torch

    angle = torch.angle(z)
    return angle * (180.0 / np.pi) if deg else angle


@case("angle", torch=_torch_angle, bad=(*_STRINGS, ("angle", "(2,)")), draws_complex=True)
def _angle(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(shapes())
    params = {"deg": True} if draw(st.booleans()) else {}
    if dtype.kind != "c":  # a real input: 0 or π, a zero derivative (away from the jump at 0)
        return Example((_values(draw, shape, dtype, ties, kinks=(0.0,)),), params)
    part = np.finfo(dtype).dtype
    if ties:  # a grid off the branch cut (the negative real axis), 0 included
        grid = [complex(a, b) for a in (-1.0, 0.0, 1.0) for b in (-1.0, 0.0, 1.0) if not (b == 0 and a < 0)]
        return Example((seeded_picks(draw(SEEDS), shape, grid, dtype),), params)
    radius = _values(draw, shape, part, low=0.3, high=3.0)
    turn = _values(draw, shape, part, low=-np.pi + 0.3, high=np.pi - 0.3)
    return Example((np.asarray(radius * np.exp(1j * turn.astype(np.float64)), dtype=dtype),), params)


# ---- erf and erfc: PyTorch has no complex erf, so their complex twin is erf's Taylor series ---


def _erf_series(z: Any) -> Any:
    """erf(z) = 2/√π Σ_n (−1)^n z^(2n+1) / (n! (2n+1)) in complex128, on PyTorch's tape: PyTorch's
    complex autograd differentiates the polynomial (an oracle independent of mytorch's rule).
    90 terms reach double precision for |z| ≤ 3.5, the case's range."""
    import torch

    w = z.to(torch.complex128)
    square, power, total = -w * w, w, w * 0
    for n in range(90):
        total = total + power / float((2 * n + 1) * math.factorial(n))
        power = power * square
    return (total * (2 / math.sqrt(math.pi))).to(z.dtype)


def _with_complex_series(name: str, complement: bool) -> None:
    real_twin = CASES[name].torch

    def twin(x: Any) -> Any:
        if not x.is_complex():
            return real_twin(x)
        value = _erf_series(x)
        return 1 - value if complement else value

    CASES[name] = dataclasses.replace(CASES[name], torch=twin)


_with_complex_series("erf", complement=False)
_with_complex_series("erfc", complement=True)


# ---- the Fourier transforms ------------------------------------------------------------------

_NORMS = st.sampled_from([None, "backward", "ortho", "forward"])


def _one_axis(draw: st.DrawFn, dtype: np.dtype, ties: bool, *, least: int = 1) -> Example:
    shape = draw(shapes(min_dims=1, max_dims=3))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    if shape[axis] < least:
        shape = shape[:axis % len(shape)] + (least,) + shape[axis % len(shape) + 1:]
    params: dict[str, Any] = {}
    n = draw(st.none() | st.integers(1, 6))
    if n is not None:
        params["n"] = n
    if axis != -1 or draw(st.booleans()):
        params["axis"] = axis
    norm = draw(_NORMS)
    if norm is not None:
        params["norm"] = norm
    return Example((_values(draw, shape, dtype, ties),), params)


def _torch_one_axis(path: str) -> Any:
    def call(x: Any, n: Any = None, axis: int = -1, norm: Any = None) -> Any:
        return _torch(path)(x, n=n, dim=axis, norm=norm)

    return call


_BAD_AXIS = ((np.ones(3),), {"axis": 2}, ("(3,)",))
case("fft", torch=_torch_one_axis("fft.fft"), bad=(*_BAD_AXIS[:2], ("fft", "(3,)")))(_one_axis)
case("ifft", torch=_torch_one_axis("fft.ifft"), bad=(*_BAD_AXIS[:2], ("ifft", "(3,)")))(_one_axis)
case("rfft", torch=_torch_one_axis("fft.rfft"), bad=(*_BAD_AXIS[:2], ("rfft", "(3,)")), complex_inputs=())(
    _one_axis
)


@case("irfft", torch=_torch_one_axis("fft.irfft"), bad=(*_BAD_AXIS[:2], ("irfft", "(3,)")))
def _irfft(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    example = _one_axis(draw, dtype, ties, least=2)  # n = 2 (m - 1) must be positive
    if example.params.get("n") == 1:
        example.params["n"] = 2
    return example


def _many_axes(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(shapes(min_dims=1, max_dims=3))
    ndim = len(shape)
    params: dict[str, Any] = {}
    axes = draw(st.none() | st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    count = 0 if axes is None else len(axes)
    if axes is not None:
        params["axes"] = tuple(axes)
    if axes is not None and draw(st.booleans()):  # (s without axes is deprecated in NumPy 2)
        params["s"] = tuple(draw(st.lists(st.integers(1, 5), min_size=count, max_size=count)))
    norm = draw(_NORMS)
    if norm is not None:
        params["norm"] = norm
    return Example((_values(draw, shape, dtype, ties),), params)


def _torch_many_axes(path: str) -> Any:
    def call(x: Any, s: Any = None, axes: Any = None, norm: Any = None) -> Any:
        return _torch(path)(x, s=s, dim=axes, norm=norm)

    return call


case("fftn", torch=_torch_many_axes("fft.fftn"), bad=((np.ones(3),), {"axes": (2,)}, ("fftn", "(3,)")))(
    _many_axes
)
case("ifftn", torch=_torch_many_axes("fft.ifftn"), bad=((np.ones(3),), {"axes": (2,)}, ("ifftn", "(3,)")))(
    _many_axes
)


case("ihfft", torch=_torch_one_axis("fft.ihfft"), bad=(*_BAD_AXIS[:2], ("ihfft", "(3,)")), complex_inputs=())(
    _one_axis
)


@case("hfft", torch=_torch_one_axis("fft.hfft"), bad=(*_BAD_AXIS[:2], ("hfft", "(3,)")))
def _hfft(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    return _irfft(draw, dtype, ties)  # n = 2 (m - 1) by default, as irfft's


case("rfftn", torch=_torch_many_axes("fft.rfftn"), bad=((np.ones(3),), {"axes": (2,)}, ("rfftn", "(3,)")),
     complex_inputs=())(_many_axes)


@case("irfftn", torch=_torch_many_axes("fft.irfftn"), bad=((np.ones(3),), {"axes": (2,)}, ("irfftn", "(3,)")))
def _irfftn(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    """The last transformed axis has at least 2 bins (its default length 2 (m - 1) is then positive)."""
    example = _many_axes(draw, dtype, ties)
    (x,) = example.inputs
    axes = example.params.get("axes", tuple(range(x.ndim)))
    last = axes[-1] % x.ndim
    if "s" not in example.params and x.shape[last] < 2:
        x = np.concatenate([x, x], axis=last)
    return Example((x,), example.params)


# ---- linalg.eig ------------------------------------------------------------------------------


@case("eig", bad=((np.ones((2, 3)),), {}, ("eig", "(2, 3)")), draws_complex=True)
def _eig(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    """Matrices whose eigenvalues lie at least about 1 apart (the rules divide by their gaps):
    a block diagonal of distinct real values and, for a real dtype, 2 x 2 rotation blocks (a
    complex pair a ± ib, b ≥ 0.6), plus a small perturbation, in a random basis."""
    n = draw(st.integers(1, 4))
    batch = draw(st.sampled_from([(), (), (2,)]))
    part = np.finfo(dtype).dtype if dtype.kind == "c" else dtype
    rng = np.random.default_rng(draw(st.integers(0, 2**16), label="matrix seed"))
    blocks, place = np.zeros((*batch, n, n)), 0.0
    i = 0
    while i < n:
        if dtype.kind == "f" and i + 1 < n and draw(st.booleans()):
            b = rng.uniform(0.6, 1.2)
            blocks[..., i:i + 2, i:i + 2] = [[place, b], [-b, place]]
            i, place = i + 2, place + 2.5
        else:
            blocks[..., i, i] = place
            i, place = i + 1, place + 1.5
    noise = rng.uniform(-0.1, 0.1, blocks.shape)
    basis = np.eye(n) + rng.uniform(-0.3, 0.3, (*batch, n, n))
    if dtype.kind == "c":
        noise = noise + 1j * rng.uniform(-0.1, 0.1, blocks.shape)
        basis = basis + 1j * rng.uniform(-0.3, 0.3, basis.shape)
        blocks = blocks + 1j * np.diag(rng.uniform(-1, 1, n))
    a = basis @ (blocks + noise) @ np.linalg.inv(basis)
    return Example((np.asarray(a, dtype=dtype if dtype.kind == "c" else part),))


def _no_twin() -> None:
    from mytorch.testing.cases_more import NO_TORCH_TWIN

    NO_TORCH_TWIN["eig"] = ("PyTorch differentiates eig only for losses that ignore the eigenvectors' "
                            "phases (tests/test_complex.py compares those)")


_no_twin()

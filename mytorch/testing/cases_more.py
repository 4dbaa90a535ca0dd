"""Input specs of issue 23's primitives (the rest of NumPy, SciPy's special functions and linalg),
registered in `mytorch.testing.cases.CASES` exactly as the built-in ones are.

Primitives whose SciPy function has no PyTorch twin with a derivative (betainc, the Bessel
functions of order n, ...) are listed in `NO_TORCH_TWIN` with the reason; their forward value is
SciPy's own, and `check` compares their rules with finite differences in first and second order.

>>> from mytorch.testing.cases import CASES
>>> "log10" in CASES and "mod" in CASES
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import strategies as st

from mytorch.testing.cases import (
    _ANY_SHAPE,
    _MISMATCH,
    Example,
    _booleans,
    _elementwise_shapes,
    _integers,
    _twin_binary,
    _unary_case,
    _values,
    case,
)
from mytorch.testing.strategies import SEEDS, seeded_distinct, seeded_picks, shapes

__all__ = ["NO_TORCH_TWIN"]

# Primitives without a PyTorch twin, and why (their values are SciPy's; finite differences check them).
NO_TORCH_TWIN: dict[str, str] = {}

# ---- the rest of NumPy: elementwise ----------------------------------------------------------------

_STEPS = tuple(float(k) for k in np.arange(-3.0, 3.01, 0.5))  # where floor, ceil, trunc, rint jump

_UNARY_23 = {
    # name: (torch name, domain of the drawn values)
    "log10": ("log10", {"low": 0.1, "high": 4.0}),
    "log2": ("log2", {"low": 0.1, "high": 4.0}),
    "exp2": ("exp2", {}),
    "arctanh": ("atanh", {"low": -0.9, "high": 0.9}),
    "arccosh": ("acosh", {"low": 1.1, "high": 4.0}),
    "floor": ("floor", {"kinks": _STEPS}),
    "ceil": ("ceil", {"kinks": _STEPS}),
    "trunc": ("trunc", {"kinks": _STEPS}),
    "rint": ("round", {"kinks": _STEPS}),
}
for _name, (_torch_name, _domain) in _UNARY_23.items():
    _unary_case(_name, _torch_name, _domain)


@case("round", torch=lambda x, decimals=0: __import__("torch").round(x, decimals=decimals),
      bad=((np.array(["a"]),), {}, ("round", "(1,)")))
def _round(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(_ANY_SHAPE)
    decimals = draw(st.sampled_from([0, 0, 1]))
    if decimals == 0:
        return Example((_values(draw, shape, dtype, ties, kinks=_STEPS),))
    # multiples of 0.1, halfway between round(x, 1)'s jumps
    steps = _integers(draw, shape, -30, 30)
    return Example((np.asarray(steps * 0.1, dtype=dtype),), {"decimals": 1})


def _wrap_case(name: str, torch_name: str) -> None:
    def draw_wrap(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
        # y away from 0 and x / y away from whole numbers, where mod and fmod jump
        x_shape, y_shape = draw(_elementwise_shapes(2))
        out_shape = np.broadcast_shapes(x_shape, y_shape)
        magnitudes = _values(draw, y_shape, np.dtype(np.float64), low=0.5, high=2.0)
        signs = _booleans(draw, y_shape)
        y: Any = np.where(signs, magnitudes, -magnitudes).astype(dtype)
        if draw(st.integers(0, 3)) == 0:  # a constant divisor: an int array or a number
            divisors = lambda: seeded_picks(draw(SEEDS), y_shape, (1, 2, -2), np.int64)
            y = draw(st.sampled_from([2, -3, 1.5])) if draw(st.booleans()) else divisors()
        whole = _integers(draw, out_shape, -2, 2)
        fraction = _values(draw, out_shape, np.dtype(np.float64), low=0.15, high=0.85)
        divisor = np.broadcast_to(np.asarray(y, np.float64), out_shape)
        x = np.asarray(divisor * (whole + fraction), dtype=dtype)
        return Example((x, y))

    case(name, torch=_twin_binary(torch_name), bad=(*_MISMATCH[:2], (name, "(2, 3)", "(4, 5)")))(draw_wrap)


_wrap_case("mod", "remainder")
_wrap_case("fmod", "fmod")


@case("logaddexp2", torch=_twin_binary("logaddexp2"),
      bad=(*_MISMATCH[:2], ("logaddexp2", "(2, 3)", "(4, 5)")))
def _logaddexp2(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    x_shape, y_shape = draw(_elementwise_shapes(2))
    x = _values(draw, x_shape, dtype, ties)
    y = _values(draw, y_shape, dtype, ties) if draw(st.integers(0, 3)) else draw(st.sampled_from([1, 2.5]))
    return Example((x, y))


# ---- F.linalg: svd, pinv, qr, eigvalsh; eigh and norm with NumPy's every argument ------------------


def _orthogonal(draw: st.DrawFn, batch: tuple[int, ...], n: int) -> np.ndarray:
    mixed = _values(draw, (*batch, n, n), np.dtype(np.float64), low=-1.0, high=1.0)
    q, r = np.linalg.qr(mixed + 3 * np.eye(n))
    # mixed by a fixed dense rotation: what hypothesis shrinks towards is not a diagonal matrix, where
    # LAPACK's choice of eigenvector signs jumps under a perturbation
    mixing = np.linalg.qr(np.cos(np.arange(1.0, n * n + 1).reshape(n, n)) + 0.1 * np.eye(n))[0]
    return q @ mixing


def _separated(draw: st.DrawFn, batch: tuple[int, ...], k: int, low: float = 0.5) -> np.ndarray:
    """k values per matrix, ascending, at least 0.4 apart, the smallest at least `low`."""
    steps = _values(draw, (*batch, k), np.dtype(np.float64), low=0.4, high=1.0)
    return np.cumsum(steps, axis=-1) + (low - 0.4)


def _matrices_with_singular_values(draw: st.DrawFn, dtype: np.dtype, *, square: bool = False,
                                   tall: bool = False) -> np.ndarray:
    """U diag(s) Vᵀ with distinct singular values well away from 0 (the svd rules divide by
    their gaps and by them)."""
    batch = draw(shapes(max_dims=1, max_side=2))
    m = draw(st.integers(1, 3))
    n = m if square else draw(st.integers(1, m if tall else 3))
    k = min(m, n)
    s = _separated(draw, batch, k)[..., ::-1]
    u = _orthogonal(draw, batch, m)[..., :k]
    v = _orthogonal(draw, batch, n)[..., :k]
    return ((u * s[..., None, :]) @ np.swapaxes(v, -1, -2)).astype(dtype)


def _aligned(vectors: Any, reference: np.ndarray, axis: int) -> Any:
    """±1 per column of `vectors` (a tensor; summing over axis=-2), so that each points as the
    same column of NumPy's `reference` does (both are right: a vector's sign is arbitrary)."""
    import torch

    dots = (vectors.detach().double() * torch.from_numpy(np.asarray(reference, np.float64))).sum(dim=axis)
    return torch.where(dots < 0, -1.0, 1.0).to(vectors.dtype)


def _torch_svd(a: Any, full_matrices: bool = True) -> Any:
    import torch

    u, s, vh = torch.linalg.svd(a, full_matrices=full_matrices)
    ref_u, _, _ = np.linalg.svd(a.detach().numpy(), full_matrices=full_matrices)
    k = s.shape[-1]
    signs = _aligned(u[..., :k], ref_u[..., :k], -2)  # one per singular vector
    u = torch.cat([u[..., :k] * signs.unsqueeze(-2), u[..., k:]], dim=-1)
    vh = torch.cat([vh[..., :k, :] * signs.unsqueeze(-1), vh[..., k:, :]], dim=-2)
    batch = tuple(a.shape[:-2])
    return torch.cat([u.reshape(*batch, -1), s, vh.reshape(*batch, -1)], dim=-1)


@case("svd", torch=_torch_svd, bad=((np.ones(3),), {}, ("svd", "(3,)")))
def _svd(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    square = draw(st.booleans())
    a = _matrices_with_singular_values(draw, dtype, square=square)
    # full_matrices=True only for square matrices: a tall one's completion is arbitrary (no gradient)
    return Example((a,), {"full_matrices": square and draw(st.booleans())})


@case("svdvals", torch=lambda a: __import__("torch").linalg.svdvals(a),
      bad=((np.ones(3),), {}, ("svd", "(3,)")))
def _svdvals(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    return Example((_matrices_with_singular_values(draw, dtype),))


@case("pinv", torch=lambda a, rcond=None: __import__("torch").linalg.pinv(a),
      bad=((np.ones(3),), {}, ("pinv", "(3,)")))
def _pinv(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    return Example((_matrices_with_singular_values(draw, dtype),))


def _torch_qr(a: Any) -> Any:
    import torch

    q, r = torch.linalg.qr(a)
    signs = _aligned(q, np.linalg.qr(a.detach().numpy())[0], -2)
    return torch.cat([q * signs.unsqueeze(-2), r * signs.unsqueeze(-1)], dim=-2)


@case("qr", torch=_torch_qr, bad=((np.ones((2, 3)),), {}, ("qr", "(2, 3)")))
def _qr(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    return Example((_matrices_with_singular_values(draw, dtype, tall=True),))


def _triangle_matrices(draw: st.DrawFn, dtype: np.dtype, uplo: str) -> np.ndarray:
    """Q diag(λ) Qᵀ (eigenvalues at least 0.4 apart) in the triangle `uplo` reads, anything in the other."""
    batch = draw(shapes(max_dims=1, max_side=2))
    n = draw(st.integers(1, 3))
    values = _separated(draw, batch, n, low=-1.5)
    q = _orthogonal(draw, batch, n)
    a = q @ (values[..., :, None] * np.swapaxes(q, -1, -2))
    noise = _values(draw, (*batch, n, n), np.dtype(np.float64), low=-2.0, high=2.0)
    a = np.tril(a) + np.triu(noise, 1) if uplo == "L" else np.triu(a) + np.tril(noise, -1)
    return a.astype(dtype)


def _torch_read(a: Any, uplo: str) -> Any:
    if uplo == "L":
        return a.tril() + a.tril(-1).mT
    return a.triu() + a.triu(1).mT


def _torch_eigh(a: Any, UPLO: str = "L") -> Any:  # noqa: N803
    import torch

    values, vectors = torch.linalg.eigh(_torch_read(a, UPLO))
    vectors = vectors * _aligned(vectors, np.linalg.eigh(a.detach().numpy(), UPLO)[1], -2).unsqueeze(-2)
    return torch.cat([values.unsqueeze(-2), vectors], dim=-2)


def _uplo_params(draw: st.DrawFn) -> tuple[str, dict]:
    uplo = draw(st.sampled_from(["L", "U"]))
    return uplo, ({} if uplo == "L" and draw(st.booleans()) else {"UPLO": uplo})


@case("eigh", torch=_torch_eigh, bad=((np.ones((2, 3)),), {}, ("eigh", "(2, 3)")))
def _eigh(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    uplo, params = _uplo_params(draw)
    return Example((_triangle_matrices(draw, dtype, uplo),), params)


@case("eigvalsh", torch=lambda a, UPLO="L": __import__("torch").linalg.eigvalsh(_torch_read(a, UPLO)),
      bad=((np.ones((2, 3)),), {}, ("eigvalsh", "(2, 3)")))
def _eigvalsh(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    uplo, params = _uplo_params(draw)
    return Example((_triangle_matrices(draw, dtype, uplo),), params)


_VECTOR_ORDS = (None, 1, 2, np.inf, -np.inf, 0, 3, 0.5, -1)
_MATRIX_ORDS = ("fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf)


def _torch_norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A002
    import torch

    ndim = x.ndim
    if axis is None:
        axes: tuple = tuple(range(ndim))
    else:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
    matrix = len(axes) == 2 and (axis is not None or ord is not None)
    p = 2 if ord in (None, "fro") else ord
    if matrix and ord not in (None, "fro"):
        return torch.linalg.matrix_norm(x, ord=p, dim=axes, keepdim=keepdims)
    if not axes:  # a 0-d array: |x|
        return torch.linalg.vector_norm(x.reshape(1), ord=p).reshape(())
    return torch.linalg.vector_norm(x, ord=p, dim=axes, keepdim=keepdims)


def _signed_distinct(draw: st.DrawFn, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Distinct magnitudes (a multiple of 0.05 from 0.1 to 3) with random signs."""
    count = int(np.prod(shape))
    # distinct multiples of 0.05 in [-1.45, 1.45], moved to [0.1, 3.0]
    magnitudes = seeded_distinct(draw(SEEDS), (count,), np.float64, spacing=0.05, low=-1.45) + 1.55
    signs = _booleans(draw, (count,))
    return np.where(signs, magnitudes, -magnitudes).reshape(shape).astype(dtype)


@case("norm", torch=_torch_norm, bad=((np.ones((2, 3)),), {"axis": 3}, ("norm", "(2, 3)")))
def _norm(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    form = draw(st.sampled_from(["flat", "vector", "matrix", "matrix"]))
    params: dict[str, Any] = {}
    if form == "matrix":
        p = draw(st.sampled_from(_MATRIX_ORDS))
        if p in ("nuc", 2, -2) or (p == "fro" and not ties):
            x = _matrices_with_singular_values(draw, np.dtype(np.float64))
        else:
            batch = draw(shapes(max_dims=1, max_side=2))
            shape = (*batch, draw(st.integers(1, 3)), draw(st.integers(1, 3)))
            x = _values(draw, shape, np.dtype(np.float64), True) if ties else _signed_distinct(
                draw, shape, np.dtype(np.float64))
            if not ties:  # distinct column (row) sums: a unique largest and smallest
                x = x + np.sign(x) * (np.arange(shape[-1]) if p in (1, -1) else np.arange(shape[-2])[:, None])
        if x.ndim == 2 and draw(st.booleans()):
            params["ord"] = p
        else:
            params.update(ord=p, axis=draw(st.sampled_from([(-2, -1), (-1, -2)])))
        x = x.astype(dtype)
    else:
        shape = draw(shapes(min_dims=1))
        ords = (None, 1, 2, 3, np.inf, -np.inf, 0) if ties else _VECTOR_ORDS
        p = draw(st.sampled_from(ords))
        if form == "vector" and len(shape) > 1:
            params["axis"] = draw(st.integers(-len(shape), len(shape) - 1))
        else:
            shape = shape[:1]
        if p is not None or draw(st.booleans()):
            params["ord"] = p
        if ties:
            x = _values(draw, shape, dtype, True)
            if draw(st.integers(0, 3)) == 0:
                x = np.zeros(shape, dtype)  # the norm's kink: gradient 0
        elif p in (np.inf, -np.inf):  # one largest (smallest) |x| per row
            x = _signed_distinct(draw, shape, dtype)
        elif p in (1, 0, 0.5, -1):
            x = _values(draw, shape, dtype, kinks=(0.0,), margin=0.3)
        else:
            x = _values(draw, shape, dtype, kinks=(0.0,), margin=0.3)
    if draw(st.booleans()):
        params["keepdims"] = True
    return Example((x,), params)


# ---- F.special: the gamma and beta families, error and Bessel functions, ndtr ------------------------


def _torch_special(expression: Any) -> Any:
    """A twin built from PyTorch's functions: `expression(torch, *tensors)`."""

    def call(*args: Any, **kwargs: Any) -> Any:
        import torch

        return expression(torch, *args, **kwargs)

    return call


_STRINGS = (np.array(["a", "b"]),)

_UNARY_SPECIAL = {
    # name: (twin, domain)
    "gamma": (_torch_special(lambda t, x: t.exp(t.lgamma(x))), {"low": 0.2, "high": 4.0}),
    "rgamma": (_torch_special(lambda t, x: t.exp(-t.lgamma(x))), {"low": 0.2, "high": 4.0}),
    "erfc": (_torch_special(lambda t, x: t.special.erfc(x)), {}),
    "erfinv": (_torch_special(lambda t, x: t.special.erfinv(x)), {"low": -0.9, "high": 0.9}),
    "erfcinv": (_torch_special(lambda t, x: t.special.erfinv(1 - x)), {"low": 0.1, "high": 1.9}),
    "ndtr": (_torch_special(lambda t, x: t.special.ndtr(x)), {}),
    "log_ndtr": (_torch_special(lambda t, x: t.special.log_ndtr(x)), {"low": -6.0, "high": 3.0}),
    "i0": (_torch_special(lambda t, x: t.special.i0(x)), {}),
    "i1": (_torch_special(lambda t, x: t.special.i1(x)), {}),
    "j0": (None, {"low": 0.1, "high": 6.0}),
    "j1": (None, {"low": 0.1, "high": 6.0}),
    "y0": (None, {"low": 0.3, "high": 6.0}),
    "y1": (None, {"low": 0.3, "high": 6.0}),
    "gammasgn": (_torch_special(lambda t, x: t.where(x > 0, 1.0, (-1.0) ** t.ceil(-x.detach())).to(x.dtype)
                                + 0 * x), {"kinks": _STEPS[::2], "margin": 0.1}),
}
for _name, (_twin, _domain) in _UNARY_SPECIAL.items():

    def _draw_unary(draw: st.DrawFn, dtype: np.dtype, ties: bool, domain: dict = _domain) -> Example:
        shape = draw(_ANY_SHAPE)
        return Example((_values(draw, shape, dtype, False, **domain),))

    case(_name, torch=_twin, bad=(_STRINGS, {}, (_name, "(2,)")))(_draw_unary)
    if _twin is None:
        NO_TORCH_TWIN[_name] = "PyTorch's Bessel functions have no derivative"


def _positive_pair(draw: st.DrawFn, dtype: np.dtype) -> tuple[Any, Any]:
    from mytorch.testing.cases import _constant_or, _whole

    a_shape, b_shape = draw(_elementwise_shapes(2))
    make = lambda shape: lambda: _values(draw, shape, dtype, low=0.3, high=3.0)
    a = _constant_or(draw, a_shape, make(a_shape), _whole(1, 3))
    b = _constant_or(draw, b_shape, make(b_shape), _whole(1, 3))
    return a, b


def _torch_betaln(t: Any, a: Any, b: Any) -> Any:
    from mytorch.testing.cases import _cast_like

    a, b = _cast_like(a, b)
    return t.lgamma(a) + t.lgamma(b) - t.lgamma(a + b)


@case("beta", torch=_torch_special(lambda t, a, b: t.exp(_torch_betaln(t, a, b))),
      bad=(*_MISMATCH[:2], ("beta", "(2, 3)", "(4, 5)")))
def _beta(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    return Example(_positive_pair(draw, dtype))


@case("betaln", torch=_torch_special(_torch_betaln), bad=(*_MISMATCH[:2], ("betaln", "(2, 3)", "(4, 5)")))
def _betaln(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    return Example(_positive_pair(draw, dtype))


def _shape_parameter(draw: st.DrawFn, low: float, high: float) -> Any:
    """A constant: a Python number, or now and then an integer array."""
    if draw(st.integers(0, 3)) == 0:
        return np.asarray(draw(st.integers(max(1, math.ceil(low)), max(1, int(high)))))
    return draw(st.sampled_from([low, (low + high) / 2, high]))


@case("betainc", bad=((1.0, 1.0, np.array(["a"])), {}, ("betainc", "(1,)")))
def _betainc(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    shape = draw(shapes())
    x = _values(draw, shape, dtype, low=0.05, high=0.95)
    return Example((_shape_parameter(draw, 0.7, 3.0), _shape_parameter(draw, 0.7, 3.0), x))


NO_TORCH_TWIN["betainc"] = "PyTorch has no regularized incomplete beta function"


def _torch_gammainc(name: str) -> Any:
    def call(a: Any, x: Any) -> Any:
        import torch

        return getattr(torch.special, name)(torch.as_tensor(a, dtype=x.dtype), x)

    return call


for _name in ("gammainc", "gammaincc"):

    def _draw_gammainc(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
        shape = draw(shapes())
        return Example((_shape_parameter(draw, 0.7, 3.0), _values(draw, shape, dtype, low=0.1, high=4.0)))

    bad = ((1.0, np.array(["a"])), {}, (_name, "(1,)"))
    case(_name, torch=_torch_gammainc(_name), bad=bad)(_draw_gammainc)


@case("multigammaln", torch=lambda a, d: __import__("torch").special.multigammaln(a, int(d)),
      bad=((np.array(["a"]),), {"d": 2}, ("multigammaln", "(1,)")))
def _multigammaln(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    d = draw(st.integers(1, 3))
    shape = draw(shapes())
    return Example((_values(draw, shape, dtype, low=(d - 1) / 2 + 0.3, high=(d - 1) / 2 + 4.0),), {"d": d})


def _bessel_case(name: str, orders: st.SearchStrategy, domain: dict) -> None:
    def draw_bessel(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
        shape = draw(shapes())
        order = draw(orders)
        if draw(st.integers(0, 3)) == 0:
            order = np.asarray(int(order))
        return Example((order, _values(draw, shape, dtype, **domain)))

    case(name, bad=((1, np.array(["a"])), {}, (name, "(1,)")))(draw_bessel)
    NO_TORCH_TWIN[name] = "PyTorch has no Bessel functions of any order"


_bessel_case("jn", st.integers(0, 3), {"low": 0.1, "high": 6.0})
_bessel_case("yn", st.integers(0, 2), {"low": 0.5, "high": 6.0})
_bessel_case("iv", st.sampled_from([0, 1, 1.5, 2.5]), {"low": 0.1, "high": 3.0})
_bessel_case("ive", st.sampled_from([0, 1, 1.5, 2.5]), {"low": 0.1, "high": 3.0})


# ---- F.scipy_linalg ----------------------------------------------------------------------------------


def _torch_sylvester(a: Any, b: Any, q: Any) -> Any:
    """AX + XB = Q as one linear system: (I ⊗ A + Bᵀ ⊗ I) vec(X) = vec(Q), columns stacked."""
    import torch

    from mytorch.testing.cases import _cast_like

    a, b, q = _cast_like(a, b, q)
    n, m = q.shape
    eye_m, eye_n = torch.eye(m, dtype=a.dtype), torch.eye(n, dtype=a.dtype)
    system = torch.kron(eye_m, a) + torch.kron(b.mT.contiguous(), eye_n)
    return torch.linalg.solve(system, q.mT.reshape(-1)).reshape(m, n).mT.contiguous()


def _shifted_square(draw: st.DrawFn, n: int, dtype: np.dtype, shift: float) -> np.ndarray:
    return (_values(draw, (n, n), np.dtype(np.float64), low=-0.5, high=0.5) + shift * np.eye(n)).astype(dtype)


@case("solve_sylvester", torch=_torch_sylvester,
      bad=((np.eye(2), np.eye(3), np.ones((3, 2))), {}, ("solve_sylvester", "(3, 2)")))
def _solve_sylvester(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    n, m = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    # spectra near +2 and +1: A and −B never share an eigenvalue
    a, b = _shifted_square(draw, n, dtype, 2.0), _shifted_square(draw, m, dtype, 1.0)
    q = _values(draw, (n, m), dtype)
    if draw(st.integers(0, 3)) == 0:
        q = _integers(draw, (n, m), -2, 2)
    return Example((a, b, q))


@case("sqrtm", bad=((np.ones((2, 3)),), {}, ("sqrtm", "(2, 3)")))
def _sqrtm(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    n = draw(st.integers(1, 3))
    return Example((_shifted_square(draw, n, dtype, 2.0),))  # eigenvalues near 2: a real root


NO_TORCH_TWIN["sqrtm"] = "PyTorch has no matrix square root"


@case("expm", torch=lambda A: __import__("torch").linalg.matrix_exp(A),
      bad=((np.ones((2, 3)),), {}, ("expm", "(2, 3)")))
def _expm(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    batch = draw(shapes(max_dims=1, max_side=2))
    n = draw(st.integers(1, 3))
    return Example((_values(draw, (*batch, n, n), dtype, low=-1.0, high=1.0),))


def _torch_solve_triangular(a: Any, b: Any, trans: Any = 0, lower: bool = False,
                            unit_diagonal: bool = False) -> Any:
    import torch

    from mytorch.testing.cases import _cast_like

    a, b = _cast_like(a, b)
    transposed = trans not in (0, "N")
    matrix = a.mT if transposed else a
    column = b.unsqueeze(-1) if b.ndim == 1 else b
    upper = lower == transposed
    out = torch.linalg.solve_triangular(matrix, column, upper=upper, unitriangular=unit_diagonal)
    return out.squeeze(-1) if b.ndim == 1 else out


@case("solve_triangular", torch=_torch_solve_triangular,
      bad=((np.eye(2), np.ones(3)), {}, ("solve_triangular", "(2, 2)", "(3,)")))
def _solve_triangular(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
    n = draw(st.integers(1, 3))
    lower = draw(st.booleans())
    diagonal = _values(draw, (n,), np.dtype(np.float64), low=1.0, high=2.0)
    a = _values(draw, (n, n), np.dtype(np.float64), low=-0.5, high=0.5) + np.diag(diagonal)
    b_shape = (n,) if draw(st.booleans()) else (n, draw(st.integers(1, 2)))
    b: Any = _values(draw, b_shape, dtype)
    if draw(st.integers(0, 3)) == 0:
        b = _integers(draw, b_shape, -2, 2)
    params: dict[str, Any] = {"lower": lower}
    if draw(st.booleans()):
        params["trans"] = draw(st.sampled_from([0, 1, "T"]))
    if draw(st.booleans()):
        params["unit_diagonal"] = True
    return Example((a.astype(dtype), b), params)

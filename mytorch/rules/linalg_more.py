"""More of `F.linalg` (issue 23): svd, pinv, qr, eigvalsh, matrix_power, under NumPy's names.

The rules (real matrices; distinct, nonzero singular values; full-rank factors):

    A = U S Vᵀ:   Ā = U [(F ∘ (UᵀŪ − ŪᵀU)) S + diag(S̄) + S (F ∘ (VᵀV̄ − V̄ᵀV))] Vᵀ
                      + (I − UUᵀ) Ū S⁻¹ Vᵀ + U S⁻¹ V̄ᵀ (I − VVᵀ),      F_ij = 1/(s_j² − s_i²)
    X = A⁺:       Ā = −Xᵀ X̄ Xᵀ + (I − AX) X̄ᵀ X Xᵀ + Xᵀ X X̄ᵀ (I − XA)
    A = QR:       Ā = (Q̄ + Q copyltu(M)) R⁻ᵀ,  M = R R̄ᵀ − Q̄ᵀ Q       (m ≥ n; wider A is split)

with copyltu(M) the symmetric matrix whose lower triangle is M's. Multi-output primitives pack
their outputs into one array (flattened, side by side) that `getitem` and `reshape` unpack.

With `full_matrices=True` on a non-square matrix, the extra columns of U (rows of Vᵀ) are an
arbitrary basis of a complement: they carry no gradient (PyTorch's convention).

>>> import numpy as np
>>> from mytorch import functional as F
>>> F.linalg.svd(np.diag([3.0, 2.0]), compute_uv=False)
array([3., 2.])
"""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

import numpy as np

from mytorch.primitive import primitive
from mytorch.rules.core import (
    add,
    concatenate,
    div,
    expand_dims,
    getitem,
    matmul,
    mul,
    neg,
    reshape,
    sub,
    where,
)
from mytorch.rules.core import sum as sum_
from mytorch.rules.linalg import _T, _onto_triangle, _triangle_read, eigh, inv, solve
from mytorch.rules.numpy_ops import tril, triu

__all__ = ["eigvalsh", "matrix_power", "pinv", "qr", "svd"]

SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
QRResult = namedtuple("QRResult", ["Q", "R"])


# ---- packing several outputs into one array -------------------------------------------------------


def _pack(parts: list[np.ndarray], batch: tuple[int, ...], dtype: Any) -> np.ndarray:
    return np.concatenate([np.reshape(p, (*batch, -1)) for p in parts], axis=-1).astype(dtype, copy=False)


def _unpack(packed: Any, batch: tuple[int, ...], shapes: list[tuple[int, ...]]) -> list:
    parts, offset = [], 0
    for shape in shapes:
        size = math.prod(shape)
        parts.append(reshape(getitem(packed, (Ellipsis, slice(offset, offset + size))), (*batch, *shape)))
        offset += size
    return parts


def _needs_matrices(name: str, a: Any) -> None:
    if np.ndim(a) < 2:
        raise ValueError(f"{name}: needs a matrix (or a stack of them), got shape {np.shape(a)}")


def _eye(n: int, like: Any) -> np.ndarray:
    return np.eye(n, dtype=like.dtype)


# ---- svd ----------------------------------------------------------------------------------------


def _svd_shapes(a_shape: tuple[int, ...], full_matrices: bool) -> list[tuple[int, ...]]:
    m, n = a_shape[-2:]
    k = min(m, n)
    return [(m, m if full_matrices else k), (k,), (n if full_matrices else k, n)]


def _svd_forward(a: Any, full_matrices: bool = True) -> np.ndarray:
    _needs_matrices("svd", a)
    u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
    return _pack([u, s, vh], np.shape(a)[:-2], np.asarray(a).dtype)


def _svd_parts(packed: Any, a: Any, full_matrices: bool) -> tuple[Any, Any, Any]:
    """U, s, V (reduced: k columns each), unpacked from the packed output or its adjoint."""
    shape = np.shape(a)
    k = min(shape[-2:])
    u, s, vh = _unpack(packed, shape[:-2], _svd_shapes(shape, full_matrices))
    if full_matrices:
        u = getitem(u, (Ellipsis, slice(0, k)))
        vh = getitem(vh, (Ellipsis, slice(0, k), slice(None)))
    return u, s, _T(vh)


def _gap_inverse(s: Any) -> Any:
    """F_ij = 1/(s_j² − s_i²) off the diagonal, 0 on it."""
    squared = mul(s, s)
    gaps = sub(expand_dims(squared, -2), expand_dims(squared, -1))  # [.., i, j] = s_j² − s_i²
    eye = _eye(np.shape(s)[-1], np.asarray(s))
    return div(1 - eye, where(eye.astype(bool), 1.0, gaps))


def _svd_vjp(g: np.ndarray, ans: np.ndarray, a: Any, full_matrices: bool = True) -> tuple:
    u, s, v = _svd_parts(ans, a, full_matrices)
    gu, gs, gv = _svd_parts(g, a, full_matrices)
    m, n = np.shape(a)[-2:]
    k = min(m, n)
    eye = _eye(k, np.asarray(s))
    inner = mul(eye, expand_dims(gs, -2))  # diag(S̄)
    uses_vectors = bool(np.any(np.asarray(gu)) or np.any(np.asarray(gv)))
    if uses_vectors:  # (a loss of the singular values alone is fine where they repeat)
        gaps = _gap_inverse(s)
        j = mul(gaps, sub(matmul(_T(u), gu), matmul(_T(gu), u)))
        kk = mul(gaps, sub(matmul(_T(v), gv), matmul(_T(gv), v)))
        inner = add(inner, add(mul(j, expand_dims(s, -2)), mul(expand_dims(s, -1), kk)))
    grad = matmul(matmul(u, inner), _T(v))
    if uses_vectors and m > k:  # (I − UUᵀ) Ū S⁻¹ Vᵀ
        off = sub(gu, matmul(u, matmul(_T(u), gu)))
        grad = add(grad, matmul(div(off, expand_dims(s, -2)), _T(v)))
    if uses_vectors and n > k:  # U S⁻¹ V̄ᵀ (I − VVᵀ)
        off = sub(gv, matmul(v, matmul(_T(v), gv)))
        grad = add(grad, matmul(u, _T(div(off, expand_dims(s, -2)))))
    return (grad,)


def _svd_jvp(t: list, ans: np.ndarray, a: Any, full_matrices: bool = True) -> np.ndarray:
    u, s, v = _svd_parts(ans, a, full_matrices)
    da = t[0]
    m, n = np.shape(a)[-2:]
    k = min(m, n)
    p = matmul(_T(u), matmul(da, v))  # Uᵀ Ȧ V
    ds = sum_(mul(p, _eye(k, np.asarray(s))), axis=-1)
    gaps = _gap_inverse(s)
    row, col = expand_dims(s, -2), expand_dims(s, -1)  # s_j along columns, s_i along rows
    du = matmul(u, mul(gaps, add(mul(p, row), mul(col, _T(p)))))
    dv = matmul(v, mul(gaps, add(mul(col, p), mul(_T(p), row))))
    if m > k:
        du = add(du, div(sub(matmul(da, v), matmul(u, matmul(_T(u), matmul(da, v)))), row))
    if n > k:
        dat_u = matmul(_T(da), u)
        dv = add(dv, div(sub(dat_u, matmul(v, matmul(_T(v), dat_u))), row))
    dvh = _T(dv)
    batch = np.shape(a)[:-2]
    if full_matrices:  # the completion's columns (rows) are constants: zero tangents
        if m > k:
            du = concatenate([du, np.zeros((*batch, m, m - k), ans.dtype)], axis=-1)
        if n > k:
            dvh = concatenate([dvh, np.zeros((*batch, n - k, n), ans.dtype)], axis=-2)
    flat = lambda x: reshape(x, (*batch, -1))
    return concatenate([flat(du), ds, flat(dvh)], axis=-1)


_svd = primitive("svd", _svd_forward, vjp=_svd_vjp, jvp=_svd_jvp)


def _svdvals_forward(a: Any) -> np.ndarray:
    _needs_matrices("svd", a)
    return np.linalg.svd(a, compute_uv=False).astype(np.asarray(a).dtype, copy=False)


def _svdvals_vjp(g: np.ndarray, ans: np.ndarray, a: Any) -> tuple:
    u, s, v = _svd_parts(_svd(a, False), a, False)
    return (matmul(mul(u, expand_dims(g, -2)), _T(v)),)  # U diag(s̄) Vᵀ


def _svdvals_jvp(t: list, ans: np.ndarray, a: Any) -> np.ndarray:
    u, s, v = _svd_parts(_svd(a, False), a, False)
    return sum_(mul(u, matmul(t[0], v)), axis=-2)  # diag(Uᵀ Ȧ V)


svdvals = primitive("svdvals", _svdvals_forward, vjp=_svdvals_vjp, jvp=_svdvals_jvp)


def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True, hermitian: bool = False) -> Any:
    """`np.linalg.svd`: (U, S, Vh) as NumPy computes them, or S alone with compute_uv=False.

    Differentiable where the singular values are distinct and nonzero (the vector rule divides by
    their gaps); with full_matrices=True the completion columns carry no gradient.

    >>> svd(np.array([[0.0, 2.0], [1.0, 0.0]])).S
    array([2., 1.])
    """
    if hermitian:
        raise NotImplementedError("svd: hermitian=True is not supported; the general SVD gives the same S")
    if not compute_uv:
        return svdvals(a)
    packed = _svd(a, full_matrices)
    u, s, vh = _unpack(packed, np.shape(a)[:-2], _svd_shapes(np.shape(a), full_matrices))
    return SVDResult(u, s, vh)


# ---- pinv ---------------------------------------------------------------------------------------


def _pinv_forward(a: Any, rcond: Any = None, hermitian: bool = False) -> np.ndarray:
    _needs_matrices("pinv", a)
    out = np.linalg.pinv(a, hermitian=hermitian) if rcond is None else np.linalg.pinv(a, rcond, hermitian)
    return out.astype(np.asarray(a).dtype, copy=False)


def _pinv_vjp(g: np.ndarray, ans: np.ndarray, a: Any, rcond: Any = None, hermitian: bool = False) -> tuple:
    x = ans
    m, n = np.shape(a)[-2:]
    left = sub(_eye(m, g), matmul(a, x))  # I − AX
    right = sub(_eye(n, g), matmul(x, a))  # I − XA
    grad = neg(matmul(_T(x), matmul(g, _T(x))))
    grad = add(grad, matmul(left, matmul(_T(g), matmul(x, _T(x)))))
    return (add(grad, matmul(matmul(_T(x), x), matmul(_T(g), right))),)


def _pinv_jvp(t: list, ans: np.ndarray, a: Any, rcond: Any = None, hermitian: bool = False) -> np.ndarray:
    x, da = ans, t[0]
    m, n = np.shape(a)[-2:]
    left = sub(_eye(m, ans), matmul(a, x))
    right = sub(_eye(n, ans), matmul(x, a))
    out = neg(matmul(x, matmul(da, x)))
    out = add(out, matmul(matmul(x, _T(x)), matmul(_T(da), left)))
    return add(out, matmul(right, matmul(_T(da), matmul(_T(x), x))))


pinv = primitive("pinv", _pinv_forward, vjp=_pinv_vjp, jvp=_pinv_jvp)
pinv.__doc__ = """`np.linalg.pinv(a, rcond, hermitian)`: the Moore-Penrose pseudo-inverse, differentiable
where the rank does not change (full-rank matrices)."""

# ---- qr -------------------------------------------------------------------------------------------


def _qr_forward(a: Any) -> np.ndarray:
    _needs_matrices("qr", a)
    m, n = np.shape(a)[-2:]
    if m < n:
        raise ValueError(f"qr: the packed factorization needs rows >= columns, got shape {np.shape(a)}")
    q, r = np.linalg.qr(a, mode="reduced")
    return np.concatenate([q, r], axis=-2).astype(np.asarray(a).dtype, copy=False)


def _qr_parts(packed: Any, a: Any) -> tuple[Any, Any]:
    m = np.shape(a)[-2]
    every = slice(None)
    return getitem(packed, (Ellipsis, slice(0, m), every)), getitem(packed, (Ellipsis, slice(m, None), every))


def _times_r_inverse(x: Any, r: Any) -> Any:
    """X R⁻¹, as (R⁻ᵀ Xᵀ)ᵀ."""
    return _T(solve(_T(r), _T(x)))


def _qr_vjp(g: np.ndarray, ans: np.ndarray, a: Any) -> tuple:
    q, r = _qr_parts(ans, a)
    gq, gr = _qr_parts(g, a)
    m_ = sub(matmul(r, _T(gr)), matmul(_T(gq), q))
    copyltu = add(tril(m_), _T(tril(m_, -1)))
    return (_T(solve(r, _T(add(gq, matmul(q, copyltu))))),)  # (Q̄ + Q copyltu(M)) R⁻ᵀ


def _qr_jvp(t: list, ans: np.ndarray, a: Any) -> np.ndarray:
    q, r = _qr_parts(ans, a)
    da_rinv = _times_r_inverse(t[0], r)
    x = matmul(_T(q), da_rinv)  # Qᵀ Ȧ R⁻¹ = QᵀQ̇ (skew) + Ṙ R⁻¹ (upper)
    upper = add(triu(x), _T(tril(x, -1)))
    return concatenate([sub(da_rinv, matmul(q, upper)), matmul(upper, r)], axis=-2)


_qr = primitive("qr", _qr_forward, vjp=_qr_vjp, jvp=_qr_jvp)


def qr(a: Any, mode: str = "reduced") -> Any:
    """`np.linalg.qr` (modes 'reduced', 'complete', 'r'): Q and R as NumPy computes them.

    A wide matrix [X | Y] is factored as X = QU, then R = [U | QᵀY]. With mode='complete' on a
    tall matrix, Q's extra columns (an arbitrary completion) and R's zero rows carry no gradient.

    >>> qr(np.array([[3.0], [4.0]])).R
    array([[-5.]])
    """
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}")
    _needs_matrices("qr", a)
    m, n = np.shape(a)[-2:]
    if m < n:
        every = slice(None)
        q, u = qr(getitem(a, (Ellipsis, every, slice(0, m))))
        rest = matmul(_T(q), getitem(a, (Ellipsis, every, slice(m, None))))
        result = QRResult(q, concatenate([u, rest], axis=-1))
    else:
        q, r = _qr_parts(_qr(a), a)
        if mode == "complete" and m > n:
            completion = np.linalg.qr(np.asarray(a), mode="complete")[0][..., n:].astype(np.asarray(a).dtype)
            q = concatenate([q, completion], axis=-1)
            r = concatenate([r, np.zeros((*np.shape(a)[:-2], m - n, n), np.asarray(a).dtype)], axis=-2)
        result = QRResult(q, r)
    return result.R if mode == "r" else result


# ---- eigvalsh, matrix_power -----------------------------------------------------------------------


def _eigvalsh_forward(a: Any, UPLO: str = "L") -> np.ndarray:  # noqa: N803 - NumPy's name
    return np.linalg.eigvalsh(a, UPLO).astype(np.asarray(a).dtype, copy=False)


def _eigvalsh_vjp(g: np.ndarray, ans: np.ndarray, a: Any, UPLO: str = "L") -> tuple:  # noqa: N803
    vectors = eigh(a, UPLO).eigenvectors
    spread = matmul(mul(vectors, expand_dims(g, -2)), _T(vectors))  # V diag(λ̄) Vᵀ
    return (_onto_triangle(spread, UPLO),)


def _eigvalsh_jvp(t: list, ans: np.ndarray, a: Any, UPLO: str = "L") -> np.ndarray:  # noqa: N803
    vectors = eigh(a, UPLO).eigenvectors
    return sum_(mul(vectors, matmul(_triangle_read(t[0], UPLO), vectors)), axis=-2)  # diag(Vᵀ Ȧ V)


eigvalsh = primitive("eigvalsh", _eigvalsh_forward, vjp=_eigvalsh_vjp, jvp=_eigvalsh_jvp)
eigvalsh.__doc__ = """`np.linalg.eigvalsh(a, UPLO)`: the eigenvalues NumPy computes from one triangle;
the gradient V diag(λ̄) Vᵀ lands on that triangle."""


def matrix_power(a: Any, n: int) -> np.ndarray:
    """`np.linalg.matrix_power`: NumPy's sequence of products (squarings), an `inv` for n < 0.

    >>> matrix_power(np.array([[1.0, 1.0], [0.0, 1.0]]), 3)
    array([[1., 3.],
           [0., 1.]])
    """
    _needs_matrices("matrix_power", a)
    if np.shape(a)[-1] != np.shape(a)[-2]:
        raise ValueError(f"matrix_power: needs square matrices, got shape {np.shape(a)}")
    n = int(n)
    if n == 0:
        value = np.asarray(a)
        eye = np.broadcast_to(np.eye(value.shape[-1], dtype=value.dtype), value.shape)
        return add(mul(a, 0.0), eye) if value.dtype.kind == "f" else eye.copy()
    if n < 0:
        a, n = inv(a), -n
    if n == 1:
        return reshape(a, np.shape(a))
    if n == 2:
        return matmul(a, a)
    if n == 3:
        return matmul(matmul(a, a), a)
    z = result = None
    while n > 0:
        z = a if z is None else matmul(z, z)
        n, bit = divmod(n, 2)
        if bit:
            result = z if result is None else matmul(result, z)
    return result

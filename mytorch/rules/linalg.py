"""`F.linalg`: NumPy's linear algebra, differentiable (norm, inv, solve, det, slogdet, cholesky, eigh).

The rules are the classic matrix adjoints, written with recording primitives:

    Y = A⁻¹:         Ā = −Yᵀ Ȳ Yᵀ                       Ẏ = −Y Ȧ Y
    x = A⁻¹ b:       b̄ = A⁻ᵀ x̄,  Ā = −b̄ xᵀ                ẋ = A⁻¹ (ḃ − Ȧ x)
    d = det A:       Ā = d̄ d A⁻ᵀ                          ḋ = d tr(A⁻¹ Ȧ)
    A = L Lᵀ:        Ā = sym(L⁻ᵀ Φ(Lᵀ L̄) L⁻¹)              L̇ = L Φ(L⁻¹ Ȧ L⁻ᵀ)
    A = V Λ Vᵀ:      Ā = V (Λ̄ + F ∘ VᵀV̄) Vᵀ               V̇ = V (F ∘ VᵀȦV),  Λ̇ = diag(VᵀȦV)

with Φ the lower triangle with its diagonal halved and F_ij = 1/(λ_j − λ_i) off the diagonal.

`cholesky` and `eigh` read the lower triangle of their input, as NumPy does (eigh's UPLO="U": the
upper one), so their values equal NumPy's for any input (eigh's eigenvectors with NumPy's signs)
and their gradients lie in that triangle; `symmetrize=True` reads (A + Aᵀ)/2 instead, PyTorch's
convention (symmetric gradients). The eigenvector rule holds for distinct eigenvalues: F blows up
as two of them meet (the eigenvectors of a repeated eigenvalue are not unique).

`slogdet` and `eigh` return two arrays; each is one primitive whose output packs both (the sign
and the log, or the eigenvalues as row 0 above the eigenvectors), unpacked by `getitem`.

>>> import numpy as np
>>> from mytorch import functional as F
>>> F.linalg.norm(np.zeros(3)), F.norm_backward(np.ones(()), np.zeros(3))
(array(0.), array([0., 0., 0.]))
"""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

import numpy as np

from mytorch.primitive import primitive, sum_to_shape
from mytorch.rules.core import abs as abs_
from mytorch.rules.core import (
    add,
    concatenate,
    div,
    expand_dims,
    getitem,
    matmul,
    mul,
    neg,
    power,
    reshape,
    stack,
    sub,
    swapaxes,
    transpose,
    where,
)
from mytorch.rules.core import sum as sum_
from mytorch.rules.numpy_ops import tril, triu
from mytorch.tracked import is_tracked
from mytorch.utils import is_complex

__all__ = ["cholesky", "det", "eig", "eigh", "eigvalsh", "inv", "matrix_power", "norm", "pinv", "qr",
           "slogdet",
           "solve", "svd", "svdvals"]

SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])


def _is_float(value: Any) -> bool:
    """A float or complex array: one that carries a gradient."""
    return isinstance(value, np.ndarray) and value.dtype.kind in "fc"


def _T(a: Any) -> Any:
    return swapaxes(a, -1, -2)



def _symmetric(a: np.ndarray, UPLO: str = "L", symmetrize: bool = False) -> np.ndarray:  # noqa: N803
    """The symmetric matrix NumPy's eigh and cholesky read from `a`: its lower triangle mirrored
    (UPLO="U": its upper one), or, with `symmetrize` (PyTorch's gradient convention), (A + Aᵀ)/2."""
    a = np.asarray(a)
    if symmetrize:
        return (a + np.swapaxes(a, -1, -2)) / 2
    lower = np.tril(a) if UPLO == "L" else np.swapaxes(np.triu(a), -1, -2)
    return lower + np.swapaxes(np.tril(lower, -1), -1, -2)


def _symmetrize(a: Any) -> Any:
    return mul(add(a, _T(a)), 0.5)


def _read_tangent(t: Any, UPLO: str, symmetrize: bool) -> Any:  # noqa: N803
    """The tangent of `_symmetric(a)` along `t` (recorded)."""
    if symmetrize:
        return _symmetrize(t)
    lower = tril(t) if UPLO == "L" else _T(triu(t))
    return add(lower, _T(tril(lower, -1)))


def _onto_input(sym_grad: Any, UPLO: str, symmetrize: bool) -> Any:  # noqa: N803
    """The gradient of `a` from the (symmetric) gradient of the matrix `_symmetric(a)` read: the
    triangle read gets both halves, its mirror nothing (recorded)."""
    if symmetrize:
        return sym_grad
    eye = np.eye(np.shape(sym_grad)[-1], dtype=np.asarray(sym_grad).dtype)
    half = tril(sym_grad) if UPLO == "L" else triu(sym_grad)
    return sub(mul(half, 2.0), mul(sym_grad, eye))


# ---- norm -----------------------------------------------------------------------------------------


def _norm_kind(x: Any, ord: Any, axis: Any) -> tuple[str, Any, tuple[int, ...]]:  # noqa: A002
    """NumPy's reading of `ord` and `axis`: ("vector", p, axes) or ("matrix", ord, (row, col))."""
    if isinstance(ord, (np.ndarray, np.generic)) and np.ndim(ord) == 0:
        ord = ord.item()  # noqa: A001 - a NumPy scalar or 0-d array, read as NumPy reads it
    ndim = np.ndim(x)
    if axis is None:
        if ord is None or ndim not in (1, 2):
            if ord is not None:
                raise ValueError(f"norm: ord={ord!r} needs a 1-D or 2-D array (or axis=), got {ndim}-D")
            return "vector", 2, tuple(range(ndim))
        given: tuple = tuple(range(ndim))
    else:
        given = (int(axis),) if np.ndim(axis) == 0 else tuple(axis)  # a NumPy scalar or 0-d array too
    axes = tuple(int(a) % max(ndim, 1) for a in given)
    if len(axes) not in (1, 2) or len(set(axes)) != len(axes) or any(
            not -max(ndim, 1) <= a < max(ndim, 1) for a in given):
        raise ValueError(f"norm: axis must be an int or a pair of distinct ints for {ndim}-D, got {axis!r}")
    if len(axes) == 1:
        if isinstance(ord, str):
            raise ValueError(f"norm: invalid norm order {ord!r} for vectors")
        return "vector", 2 if ord is None else ord, axes
    if ord in (None, "fro", "f"):
        return "vector", 2, tuple(sorted(axes))  # Frobenius: the 2-norm of the elements
    if ord not in ("nuc", 1, -1, 2, -2, np.inf, -np.inf):
        raise ValueError(f"norm: invalid norm order {ord!r} for matrices")
    return "matrix", ord, axes


def _norm_forward(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> np.ndarray:  # noqa: A002
    kind, p, _ = _norm_kind(x, ord, axis)
    if kind == "matrix" and p in (2, -2, "nuc"):
        _needs_finite(f"norm(ord={p!r})", x)  # these go through the SVD
    return np.linalg.norm(x, ord, axis, keepdims)


def _keep(g: Any, ndim: int, axes: tuple[int, ...], keepdims: bool) -> Any:
    """Re-insert the reduced axes, so `g` broadcasts against the input."""
    return g if keepdims or not axes else expand_dims(g, tuple(sorted(axes)))


def _shared(hits: np.ndarray, axes: Any, like: Any) -> np.ndarray:
    """A 0/1 mask of the elements that attain the extremum, shared evenly among ties."""
    return (hits / np.sum(hits, axis=axes, keepdims=True)).astype(like.dtype)


def _norm_slope(x: Any, norm: Any, kind: str, p: Any, axes: tuple[int, ...]) -> Any:
    """∂‖x‖/∂x over `axes`, `norm` broadcasting against x (0 at x = 0, as PyTorch's)."""
    signs = np.sign(x).astype(x.dtype)  # NumPy on x itself: a compiled trace records it
    if kind == "vector":
        if p == 2:
            nonzero = np.greater(norm, 0)
            return div(x, where(nonzero, norm, 1))  # x = 0 where the norm is 0: a zero gradient
        if p == 1:
            return signs
        if p == 0:
            return np.zeros(x.shape, x.dtype)
        if p in (np.inf, -np.inf):
            return signs * _shared(np.equal(np.abs(x), norm), axes, x)
        # sign(x) |x|^(p−1) / ‖x‖^(p−1)
        nonzero = np.greater(norm, 0)
        return mul(mul(signs, power(abs_(x), p - 1)), power(where(nonzero, norm, 1), 1 - p))
    row, col = axes
    if p in (1, -1, np.inf, -np.inf):  # the largest (smallest) column (row) sum of |x|
        summed = row if p in (1, -1) else col
        sums = np.sum(np.abs(x), axis=summed, keepdims=True)
        return signs * _shared(np.equal(sums, norm), axes, x)
    # 2, -2, 'nuc': through the singular vectors, U diag(w) Vᵀ with w picking singular values
    moved = _moveaxes(x, (row, col), (-2, -1))
    u, s, vh = svd(moved, full_matrices=False)
    k = np.shape(s)[-1]
    weights = {"nuc": np.ones(k), 2: np.eye(k)[0], -2: np.eye(k)[-1]}[p].astype(x.dtype)
    return _moveaxes(matmul(mul(u, weights), vh), (-2, -1), (row, col))


def _moveaxes(x: Any, source: tuple[int, int], destination: tuple[int, int]) -> Any:
    ndim = np.ndim(x)
    source = tuple(a % ndim for a in source)
    destination = tuple(a % ndim for a in destination)
    order = [n for n in range(ndim) if n not in source]
    for dest, src in sorted(zip(destination, source)):
        order.insert(dest, src)
    return transpose(x, tuple(order))


def _norm_vjp(g: np.ndarray, ans: np.ndarray, x: Any, ord: Any = None, axis: Any = None,  # noqa: A002
              keepdims: bool = False) -> tuple:
    kind, p, axes = _norm_kind(x, ord, axis)
    norm = _keep(ans, x.ndim, axes, keepdims)
    return (mul(_keep(g, x.ndim, axes, keepdims), _norm_slope(x, norm, kind, p, axes)),)


def _norm_jvp(t: list, ans: np.ndarray, x: Any, ord: Any = None, axis: Any = None,  # noqa: A002
              keepdims: bool = False) -> np.ndarray:
    kind, p, axes = _norm_kind(x, ord, axis)
    norm = _keep(ans, x.ndim, axes, keepdims)
    return sum_(mul(t[0], _norm_slope(x, norm, kind, p, axes)), axis=tuple(sorted(axes)), keepdims=keepdims)


norm = primitive("norm", _norm_forward, vjp=_norm_vjp, jvp=_norm_jvp)
norm.__doc__ = """`np.linalg.norm(x, ord, axis, keepdims)`: every ord NumPy takes (vector p for any p,
inf, -inf, 0; matrix 'fro', 'nuc', 1, -1, 2, -2, inf, -inf).

The gradient at x = 0 is 0 (the subgradient PyTorch uses); ±inf and the matrix 1 / inf norms share
it evenly among ties; the matrix 2 / -2 / 'nuc' norms go through the singular vectors."""

# ---- inverse, solve, determinants -------------------------------------------------------------------

inv = primitive(
    "inv", np.linalg.inv,
    vjp=lambda g, ans, a: (neg(matmul(matmul(_T(ans), g), _T(ans))),),
    jvp=lambda t, ans, a: neg(matmul(matmul(ans, t[0]), ans)),
    complex="holomorphic",
)


def _as_columns(b: Any, x: Any) -> tuple[bool, Any]:
    """NumPy's solve reads a 1-D b as one vector: the rules work on (n, 1) columns."""
    vector = np.ndim(b) == 1
    return vector, (expand_dims(x, -1) if vector else x)


def _solve_vjp(g: np.ndarray, ans: np.ndarray, a: Any, b: Any) -> tuple:
    vector, x = _as_columns(b, ans)
    _, g_columns = _as_columns(b, g)
    grad_b = solve(_T(a), g_columns)  # A⁻ᵀ x̄
    grad_a = neg(matmul(grad_b, _T(x))) if _is_float(a) else None
    if vector:
        grad_b = reshape(grad_b, np.shape(grad_b)[:-1])
    return (
        sum_to_shape(grad_a, np.shape(a)) if grad_a is not None else None,
        sum_to_shape(grad_b, np.shape(b)) if _is_float(b) else None,
    )


def _solve_jvp(t: list, ans: np.ndarray, a: Any, b: Any) -> np.ndarray:
    vector, x = _as_columns(b, ans)
    terms = []
    if _is_float(b):
        terms.append(_as_columns(b, t[1])[1])
    if _is_float(a):
        terms.append(neg(matmul(t[0], x)))
    rhs = terms[0] if len(terms) == 1 else add(terms[0], terms[1])
    tangent = solve(a, rhs)
    return reshape(tangent, np.shape(ans)) if vector else tangent


solve = primitive("solve", lambda a, b: np.linalg.solve(a, b), arity=2, vjp=_solve_vjp, jvp=_solve_jvp,
                  complex="holomorphic")


def _trace_of_inverse_times(a: Any, t: Any) -> Any:
    """tr(A⁻¹ Ȧ) over the last two axes."""
    return sum_(mul(_T(inv(a)), t), axis=(-2, -1))


det = primitive(
    "det", np.linalg.det,
    vjp=lambda g, ans, a: (mul(expand_dims(mul(g, ans), (-2, -1)), _T(inv(a))),),
    jvp=lambda t, ans, a: mul(ans, _trace_of_inverse_times(a, t[0])),
    complex="holomorphic",
)


def _slogdet_packed(a: Any) -> np.ndarray:
    sign, logabsdet = np.linalg.slogdet(a)
    return np.stack([sign, logabsdet], axis=-1)


def _slogdet_jvp(t: list, ans: np.ndarray, a: Any) -> np.ndarray:
    tangent = _trace_of_inverse_times(a, t[0])
    return stack([np.zeros(np.shape(tangent), ans.dtype), tangent], axis=-1)


_slogdet = primitive(  # packed: [..., 0] the sign (a constant), [..., 1] log |det A|
    "slogdet", _slogdet_packed,
    vjp=lambda g, ans, a: (mul(expand_dims(getitem(g, (Ellipsis, 1)), (-2, -1)), _T(inv(a))),),
    jvp=_slogdet_jvp,
)


def slogdet(a: Any) -> SlogdetResult:
    """(sign, log|det a|) as `np.linalg.slogdet`; the log is differentiable, the sign a constant.

    >>> slogdet(np.diag([-2.0, 3.0]))
    SlogdetResult(sign=array(-1.), logabsdet=array(1.79175947))
    """
    packed = _slogdet(a)
    return SlogdetResult(getitem(packed, (Ellipsis, 0)), getitem(packed, (Ellipsis, 1)))


# ---- factorizations ----------------------------------------------------------------------------------


def _half_diagonal(n: int, like: Any) -> np.ndarray:
    """Φ's weights: 1 below the diagonal, 1/2 on it (0 above, where tril already put zeros)."""
    return np.asarray(np.tril(np.ones((n, n))) - 0.5 * np.eye(n), dtype=like.dtype)


def _cholesky_vjp(g: np.ndarray, ans: np.ndarray, a: Any, symmetrize: bool = False) -> tuple:
    L = ans
    phi = mul(tril(matmul(_T(L), tril(g))), _half_diagonal(L.shape[-1], L))
    left = solve(_T(L), phi)  # L⁻ᵀ Φ
    return (_onto_input(_symmetrize(_T(solve(_T(L), _T(left)))), "L", symmetrize),)  # (L⁻ᵀ Φ) L⁻¹


def _cholesky_jvp(t: list, ans: np.ndarray, a: Any, symmetrize: bool = False) -> np.ndarray:
    L = ans
    inner = _T(solve(L, _T(solve(L, _read_tangent(t[0], "L", symmetrize)))))  # L⁻¹ Ȧ L⁻ᵀ
    return matmul(L, mul(tril(inner), _half_diagonal(L.shape[-1], L)))


# Reads the lower triangle, as NumPy does (symmetrize=True: (A + Aᵀ)/2, PyTorch's gradient).
cholesky = primitive(
    "cholesky",
    lambda a, symmetrize=False: np.linalg.cholesky(_symmetric(a, "L", symmetrize)).astype(
        np.asarray(a).dtype, copy=False),
    vjp=_cholesky_vjp, jvp=_cholesky_jvp,
)


def _eigh_packed(a: Any, UPLO: str = "L", symmetrize: bool = False) -> np.ndarray:  # noqa: N803
    if UPLO not in ("L", "U"):
        raise ValueError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    # NumPy's values and vectors, signs included (or those of (A + Aᵀ)/2 with symmetrize)
    values, vectors = np.linalg.eigh(_symmetric(a, UPLO, True) if symmetrize else a, UPLO)
    return np.concatenate([values[..., None, :], vectors], axis=-2).astype(np.asarray(a).dtype, copy=False)


def _eigen_gaps(values: Any, unused: Any = False) -> tuple[Any, np.ndarray]:
    """F_ij = 1/(λ_j − λ_i) off the diagonal, 0 on it (recorded: it depends on A); and the identity.
    Where `unused` (a traced bool), every gap is 1: the term they make is then discarded."""
    n = np.shape(values)[-1]
    eye = np.eye(n, dtype=values.dtype)
    gaps = sub(values, _T(values))  # [.., i, j] = λ_j − λ_i, from values (.., 1, n)
    return div(1 - eye, where(np.logical_or(eye.astype(bool), unused), 1.0, gaps)), eye


def _eigh_parts(packed: Any) -> tuple[Any, Any]:
    every = slice(None)
    return getitem(packed, (Ellipsis, slice(0, 1), every)), getitem(packed, (Ellipsis, slice(1, None), every))


def _eigh_vjp(g: np.ndarray, ans: np.ndarray, a: Any, UPLO: str = "L", symmetrize: bool = False) -> tuple:  # noqa: N803
    values, vectors = _eigh_parts(ans)
    grad_values, grad_vectors = _eigh_parts(g)
    eye = np.eye(np.shape(values)[-1], dtype=values.dtype)
    middle = mul(eye, grad_values)
    used = np.any(grad_vectors)  # (a loss of the eigenvalues alone is fine at repeated ones)
    if is_tracked(used):  # compile traces: the choice is a step, made again at every replay
        gaps, eye = _eigen_gaps(values, np.logical_not(used))
        middle = add(where(used, mul(gaps, matmul(_T(vectors), grad_vectors)), 0.0), middle)
    elif used:
        gaps, eye = _eigen_gaps(values)
        middle = add(mul(gaps, matmul(_T(vectors), grad_vectors)), middle)
    return (_onto_input(_symmetrize(matmul(matmul(vectors, middle), _T(vectors))), UPLO, symmetrize),)


def _eigh_jvp(t: list, ans: np.ndarray, a: Any, UPLO: str = "L", symmetrize: bool = False) -> np.ndarray:  # noqa: N803
    values, vectors = _eigh_parts(ans)
    gaps, eye = _eigen_gaps(values)
    rotated = matmul(_T(vectors), matmul(_read_tangent(t[0], UPLO, symmetrize), vectors))  # Vᵀ Ȧ V
    value_tangent = sum_(mul(rotated, eye), axis=-2, keepdims=True)
    return concatenate([value_tangent, matmul(vectors, mul(gaps, rotated))], axis=-2)


_eigh = primitive(  # packed: row 0 the eigenvalues (ascending), rows 1.. the eigenvectors (columns)
    "eigh", _eigh_packed, vjp=_eigh_vjp, jvp=_eigh_jvp,
)


def eigh(a: Any, UPLO: str = "L", symmetrize: bool = False) -> EighResult:  # noqa: N803
    """(eigenvalues, eigenvectors) of the symmetric matrix `a`, as `np.linalg.eigh`: only its lower
    triangle is read (UPLO="U": the upper one), so the values equal NumPy's for any `a`, and the
    gradient lies in that triangle. `symmetrize=True` reads (A + Aᵀ)/2 instead: PyTorch's
    convention, whose gradients are symmetric (equal values for a symmetric `a`).

    Differentiable where the eigenvalues are distinct (the eigenvector rule divides by their
    gaps). The gradient is that of the function NumPy computes: it lands on the triangle read
    (each off-diagonal entry there stands for two entries of the symmetric matrix).

    >>> eigh(np.diag([2.0, 1.0])).eigenvalues
    array([1., 2.])
    """
    packed = _eigh(a, UPLO, symmetrize)
    every, rows = slice(None), slice(1, None)
    return EighResult(getitem(packed, (Ellipsis, 0, every)), getitem(packed, (Ellipsis, rows, every)))


# ==== issue 23: svd, svdvals, pinv, qr, eigvalsh, matrix_power ========================================
#
# More of `F.linalg` (issue 23): svd, pinv, qr, eigvalsh, matrix_power, under NumPy's names.
#
# The rules (real matrices; distinct, nonzero singular values; full-rank factors):
#
#     A = U S Vᵀ:   Ā = U [(F ∘ (UᵀŪ − ŪᵀU)) S + diag(S̄) + S (F ∘ (VᵀV̄ − V̄ᵀV))] Vᵀ
#                       + (I − UUᵀ) Ū S⁻¹ Vᵀ + U S⁻¹ V̄ᵀ (I − VVᵀ),      F_ij = 1/(s_j² − s_i²)
#     X = A⁺:       Ā = −Xᵀ X̄ Xᵀ + (I − AX) X̄ᵀ X Xᵀ + Xᵀ X X̄ᵀ (I − XA)
#     A = QR:       Ā = (Q̄ + Q copyltu(M)) R⁻ᵀ,  M = R R̄ᵀ − Q̄ᵀ Q       (m ≥ n; wider A is split)
#
# with copyltu(M) the symmetric matrix whose lower triangle is M's. Multi-output primitives pack
# their outputs into one array (flattened, side by side) that `getitem` and `reshape` unpack.
#
# With `full_matrices=True` on a non-square matrix, the extra columns of U (rows of Vᵀ) are an
# arbitrary basis of a complement: they carry no gradient (PyTorch's convention).

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


def _needs_finite(name: str, a: Any) -> None:
    """A factorization undefined on inf and nan (LAPACK's SVD does not converge there, or never
    returns): refused at once."""
    if not np.all(np.isfinite(a)):
        raise np.linalg.LinAlgError(f"{name}: the matrix holds inf or nan (shape {np.shape(a)}), where "
                                    "it is undefined")


def _eye(n: int, like: Any) -> np.ndarray:
    return np.eye(n, dtype=like.dtype)


# ---- svd ----------------------------------------------------------------------------------------


def _svd_shapes(a_shape: tuple[int, ...], full_matrices: bool) -> list[tuple[int, ...]]:
    m, n = a_shape[-2:]
    k = min(m, n)
    return [(m, m if full_matrices else k), (k,), (n if full_matrices else k, n)]


def _svd_forward(a: Any, full_matrices: bool = True) -> np.ndarray:
    _needs_matrices("svd", a)
    _needs_finite("svd", a)
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
    _needs_finite("svd", a)
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
    _needs_finite("pinv", a)
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
    return (_onto_input(spread, UPLO, False),)


def _eigvalsh_jvp(t: list, ans: np.ndarray, a: Any, UPLO: str = "L") -> np.ndarray:  # noqa: N803
    vectors = eigh(a, UPLO).eigenvectors
    return sum_(mul(vectors, matmul(_read_tangent(t[0], UPLO, False), vectors)), axis=-2)  # diag(Vᵀ Ȧ V)


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


# ==== issue 23: eig, with complex results ===========================================================
#
# A = V Λ V⁻¹ for a general square A (real or complex); Λ and V are complex unless every eigenvalue
# of a real A is real (then NumPy returns real arrays, and so does this). NumPy's (LAPACK's) gauge:
# each eigenvector has unit 2-norm and its component of largest modulus, at row k_j, is real
# (and positive: LAPACK makes it so for a complex A; for a real A, whose signs LAPACK leaves to
# chance, mytorch makes it so, so its eigenvectors equal NumPy's up to sign).
# The gauge fixes the derivative of V: with P = V⁻¹ Ȧ V and E_ij = λ_j − λ_i,
#
#     Λ̇ = diag(P)      V̇ = W + V diag(d),   W = V (P / E off the diagonal, 0 on it)
#     d_j = −Re(v_jᴴ w_j) − i Im(W_{k_j j}) / V_{k_j j}      (unit norm; V_{k_j j} stays real)
#
# and its adjoint (PyTorch's convention for complex gradients), with Y = Vᴴ V̄ and y = diag(Y):
#
#     Ā = V⁻ᴴ (Λ̄ as a diagonal + (Y − VᴴV diag(Re y) − i C diag(Im y / V_{k_j j})) / conj(E) off it) Vᴴ
#
# where C_mj = conj(V_{k_j m}). Without the C term this is PyTorch's formula, which it applies only to
# losses that do not depend on the eigenvectors' phases (Im y = 0, where the C term vanishes); with
# it the gradient is that of the function NumPy computes, phases included. For a real A the gradient
# is the real part. Distinct eigenvalues only: E has the gaps on its off-diagonal.

EigResult = namedtuple("EigResult", ["eigenvalues", "eigenvectors"])


def _eig_packed(a: Any) -> np.ndarray:
    _needs_matrices("eig", a)
    _needs_finite("eig", a)
    values, vectors = np.linalg.eig(a)
    # LAPACK leaves the sign of a real matrix's eigenvectors open (it flips between neighbouring
    # inputs, where no derivative exists): each one's largest component is made positive, as
    # LAPACK already makes it for a complex matrix.
    largest = np.take_along_axis(vectors, np.argmax(np.abs(vectors), axis=-2)[..., None, :], axis=-2)
    vectors = vectors * np.where(np.real(largest) < 0, -1, 1).astype(vectors.dtype)
    return np.concatenate([values[..., None, :], vectors], axis=-2)


def _eig_parts(packed: Any) -> tuple[Any, Any]:
    every = slice(None)
    return getitem(packed, (Ellipsis, 0, every)), getitem(packed, (Ellipsis, slice(1, None), every))


def _gaps(values: Any) -> tuple[Any, np.ndarray]:
    """E_ij = λ_j − λ_i with 1 on the diagonal (so it divides), and the identity mask."""
    n = np.shape(values)[-1]
    eye = np.eye(n, dtype=bool)
    return where(eye, 1, sub(expand_dims(values, -2), expand_dims(values, -1))), eye


def _largest_rows(vectors: Any) -> np.ndarray:
    """k_j: the row of each eigenvector's component of largest modulus (a constant: the gauge)."""
    from mytorch.tracked import computed

    return computed(lambda v: np.argmax(np.abs(v), axis=-2)[..., None, :], (vectors,))


def _eig_vjp(g: Any, ans: Any, a: Any) -> tuple:
    from mytorch.rules.complex import conj, imag, real
    from mytorch.rules.numpy_ops import diagonal, take_along_axis

    values, vectors = _eig_parts(ans)
    grad_values, grad_vectors = _eig_parts(g)
    vh = conj(swapaxes(vectors, -1, -2))
    inner = matmul(vh, grad_vectors)
    along = diagonal(inner, 0, -2, -1)
    projected = sub(inner, mul(matmul(vh, vectors), expand_dims(real(along), -2)))
    if is_complex(ans):  # the phase gauge (a real V has none to keep)
        rows = _largest_rows(vectors)
        pivots = real(take_along_axis(vectors, rows, -2))  # V_{k_j j}, shape (..., 1, n)
        picked = conj(swapaxes(take_along_axis(vectors, swapaxes(rows, -1, -2), -2), -1, -2))  # C
        projected = sub(projected, mul(picked, mul(1j, div(expand_dims(imag(along), -2), pivots))))
    gaps, eye = _gaps(values)
    inside = add(where(eye, 0, div(projected, conj(gaps))), mul(expand_dims(grad_values, -2), eye))
    return (solve(vh, matmul(inside, vh)),)


def _eig_jvp(t: list, ans: Any, a: Any) -> Any:
    from mytorch.rules.complex import conj, imag, real
    from mytorch.rules.numpy_ops import diagonal, take_along_axis

    values, vectors = _eig_parts(ans)
    inner = solve(vectors, matmul(t[0], vectors))  # P = V⁻¹ Ȧ V
    gaps, eye = _gaps(values)
    w = matmul(vectors, where(eye, 0, div(inner, gaps)))
    d = neg(real(sum_(mul(conj(vectors), w), axis=-2)))
    if is_complex(ans) or is_complex(t[0]):
        rows = _largest_rows(vectors)
        pivots = real(take_along_axis(vectors, rows, -2))
        phase = div(imag(take_along_axis(w, rows, -2)), pivots)  # (..., 1, n)
        d = sub(d, mul(1j, reshape(phase, np.shape(d))))
    tangent_vectors = add(w, mul(vectors, expand_dims(d, -2)))
    return concatenate([expand_dims(diagonal(inner, 0, -2, -1), -2), tangent_vectors], axis=-2)


_eig = primitive(  # packed: row 0 the eigenvalues, rows 1.. the eigenvectors (columns)
    "eig", _eig_packed, vjp=_eig_vjp, jvp=_eig_jvp, complex="explicit",
)


def eig(a: Any) -> EigResult:
    """(eigenvalues, eigenvectors) of the square matrix `a`, as `np.linalg.eig` (NumPy's values and
    gauge: unit-norm eigenvectors whose largest component is real, made positive where NumPy
    leaves its sign to chance, for a real `a`). Differentiable where the eigenvalues are
    distinct, in the eigenvectors' phases too (see the rules above).

    >>> eig(np.array([[2.0, 0.0], [0.0, 1.0]])).eigenvalues
    array([2., 1.])
    """
    packed = _eig(a)
    return EigResult(*_eig_parts(packed))

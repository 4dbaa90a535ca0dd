"""`F.linalg`: NumPy's linear algebra, differentiable (norm, inv, solve, det, slogdet, cholesky, eigh).

The rules are the classic matrix adjoints, written with recording primitives:

    Y = A⁻¹:         Ā = −Yᵀ Ȳ Yᵀ                       Ẏ = −Y Ȧ Y
    x = A⁻¹ b:       b̄ = A⁻ᵀ x̄,  Ā = −b̄ xᵀ                ẋ = A⁻¹ (ḃ − Ȧ x)
    d = det A:       Ā = d̄ d A⁻ᵀ                          ḋ = d tr(A⁻¹ Ȧ)
    A = L Lᵀ:        Ā = sym(L⁻ᵀ Φ(Lᵀ L̄) L⁻¹)              L̇ = L Φ(L⁻¹ Ȧ L⁻ᵀ)
    A = V Λ Vᵀ:      Ā = V (Λ̄ + F ∘ VᵀV̄) Vᵀ               V̇ = V (F ∘ VᵀȦV),  Λ̇ = diag(VᵀȦV)

with Φ the lower triangle with its diagonal halved and F_ij = 1/(λ_j − λ_i) off the diagonal.

`cholesky` reads the symmetric part (A + Aᵀ)/2 of its input (NumPy reads one triangle; for a
symmetric A they agree), so its gradient is symmetric, as PyTorch's is. `eigh` computes what
NumPy computes (one triangle read, NumPy's eigenvector signs) and its gradient lands on that
triangle. The eigenvector rule holds for distinct eigenvalues: F blows up as two of them meet (the
eigenvectors of a repeated eigenvalue are not unique).

`slogdet` and `eigh` return two arrays; each is one primitive whose output packs both (the sign
and the log, or the eigenvalues as row 0 above the eigenvectors), unpacked by `getitem`.

>>> import numpy as np
>>> from mytorch import functional as F
>>> F.linalg.norm(np.zeros(3)), F.norm_backward(np.ones(()), np.zeros(3))
(array(0.), array([0., 0., 0.]))
"""

from __future__ import annotations

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

__all__ = ["cholesky", "det", "eigh", "inv", "norm", "slogdet", "solve"]

SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])


def _is_float(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def _T(a: Any) -> Any:
    return swapaxes(a, -1, -2)



def _symmetric(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return (a + np.swapaxes(a, -1, -2)) / 2


def _symmetrize(a: Any) -> Any:
    return mul(add(a, _T(a)), 0.5)


# ---- norm -----------------------------------------------------------------------------------------


def _norm_kind(x: Any, ord: Any, axis: Any) -> tuple[str, Any, tuple[int, ...]]:  # noqa: A002
    """NumPy's reading of `ord` and `axis`: ("vector", p, axes) or ("matrix", ord, (row, col))."""
    ndim = np.ndim(x)
    if axis is None:
        if ord is None or ndim not in (1, 2):
            if ord is not None:
                raise ValueError(f"norm: ord={ord!r} needs a 1-D or 2-D array (or axis=), got {ndim}-D")
            return "vector", 2, tuple(range(ndim))
        given: tuple = tuple(range(ndim))
    else:
        given = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
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
    _norm_kind(x, ord, axis)
    return np.linalg.norm(x, ord, axis, keepdims)


def _keep(g: Any, ndim: int, axes: tuple[int, ...], keepdims: bool) -> Any:
    """Re-insert the reduced axes, so `g` broadcasts against the input."""
    return g if keepdims or not axes else expand_dims(g, tuple(sorted(axes)))


def _shared(hits: np.ndarray, axes: Any, like: Any) -> np.ndarray:
    """A 0/1 mask of the elements that attain the extremum, shared evenly among ties."""
    return (hits / np.sum(hits, axis=axes, keepdims=True)).astype(like.dtype)


def _norm_slope(x: Any, norm: Any, kind: str, p: Any, axes: tuple[int, ...]) -> Any:
    """∂‖x‖/∂x over `axes`, `norm` broadcasting against x (0 at x = 0, as PyTorch's)."""
    value, signs = np.asarray(x), np.sign(np.asarray(x)).astype(x.dtype)
    if kind == "vector":
        if p == 2:
            nonzero = np.asarray(norm) > 0
            return div(x, where(nonzero, norm, 1))  # x = 0 where the norm is 0: a zero gradient
        if p == 1:
            return signs
        if p == 0:
            return np.zeros(x.shape, x.dtype)
        if p in (np.inf, -np.inf):
            return signs * _shared(np.abs(value) == np.asarray(norm), axes, x)
        # sign(x) |x|^(p−1) / ‖x‖^(p−1)
        nonzero = np.asarray(norm) > 0
        return mul(mul(signs, power(abs_(x), p - 1)), power(where(nonzero, norm, 1), 1 - p))
    row, col = axes
    if p in (1, -1, np.inf, -np.inf):  # the largest (smallest) column (row) sum of |x|
        summed = row if p in (1, -1) else col
        sums = np.sum(np.abs(value), axis=summed, keepdims=True)
        return signs * _shared(sums == np.asarray(norm), axes, x)
    # 2, -2, 'nuc': through the singular vectors, U diag(w) Vᵀ with w picking singular values
    from mytorch.rules.linalg_more import svd

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


solve = primitive("solve", lambda a, b: np.linalg.solve(a, b), arity=2, vjp=_solve_vjp, jvp=_solve_jvp)


def _trace_of_inverse_times(a: Any, t: Any) -> Any:
    """tr(A⁻¹ Ȧ) over the last two axes."""
    return sum_(mul(_T(inv(a)), t), axis=(-2, -1))


det = primitive(
    "det", np.linalg.det,
    vjp=lambda g, ans, a: (mul(expand_dims(mul(g, ans), (-2, -1)), _T(inv(a))),),
    jvp=lambda t, ans, a: mul(ans, _trace_of_inverse_times(a, t[0])),
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


def _cholesky_vjp(g: np.ndarray, ans: np.ndarray, a: Any) -> tuple:
    L = ans
    phi = mul(tril(matmul(_T(L), tril(g))), _half_diagonal(L.shape[-1], L))
    left = solve(_T(L), phi)  # L⁻ᵀ Φ
    return (_symmetrize(_T(solve(_T(L), _T(left)))),)  # (L⁻ᵀ Φ) L⁻¹


def _cholesky_jvp(t: list, ans: np.ndarray, a: Any) -> np.ndarray:
    L = ans
    inner = _T(solve(L, _T(solve(L, _symmetrize(t[0])))))  # L⁻¹ Ȧ L⁻ᵀ
    return matmul(L, mul(tril(inner), _half_diagonal(L.shape[-1], L)))


cholesky = primitive(
    "cholesky", lambda a: np.linalg.cholesky(_symmetric(a)).astype(np.asarray(a).dtype, copy=False),
    vjp=_cholesky_vjp, jvp=_cholesky_jvp,
)


def _eigh_packed(a: Any, UPLO: str = "L") -> np.ndarray:  # noqa: N803 - NumPy's name
    values, vectors = np.linalg.eigh(a, UPLO)  # NumPy's values and vectors, signs included
    return np.concatenate([values[..., None, :], vectors], axis=-2).astype(np.asarray(a).dtype, copy=False)


def _triangle_read(a: Any, UPLO: str) -> Any:  # noqa: N803
    """The symmetric matrix NumPy's eigh sees: one triangle of `a`, mirrored."""
    if UPLO == "L":
        return add(tril(a), _T(tril(a, -1)))
    return add(triu(a), _T(triu(a, 1)))


def _onto_triangle(g: Any, UPLO: str) -> Any:  # noqa: N803
    """The adjoint of `_triangle_read` for a symmetric `g`: the read triangle gets g, and its
    off-diagonal entries g twice (each stands for two entries of the symmetric matrix)."""
    if UPLO == "L":
        return add(tril(g), tril(g, -1))
    return add(triu(g), triu(g, 1))


def _eigen_gaps(values: Any) -> tuple[Any, np.ndarray]:
    """F_ij = 1/(λ_j − λ_i) off the diagonal, 0 on it (recorded: it depends on A); and the identity."""
    n = np.shape(values)[-1]
    eye = np.eye(n, dtype=values.dtype)
    gaps = sub(values, _T(values))  # [.., i, j] = λ_j − λ_i, from values (.., 1, n)
    return div(1 - eye, where(eye.astype(bool), 1.0, gaps)), eye


def _eigh_parts(packed: Any) -> tuple[Any, Any]:
    every = slice(None)
    return getitem(packed, (Ellipsis, slice(0, 1), every)), getitem(packed, (Ellipsis, slice(1, None), every))


def _eigh_vjp(g: np.ndarray, ans: np.ndarray, a: Any, UPLO: str = "L") -> tuple:  # noqa: N803
    values, vectors = _eigh_parts(ans)
    grad_values, grad_vectors = _eigh_parts(g)
    eye = np.eye(np.shape(values)[-1], dtype=values.dtype)
    middle = mul(eye, grad_values)
    if np.any(np.asarray(grad_vectors)):  # (a loss of the eigenvalues alone is fine at repeated ones)
        gaps, eye = _eigen_gaps(values)
        middle = add(mul(gaps, matmul(_T(vectors), grad_vectors)), middle)
    return (_onto_triangle(_symmetrize(matmul(matmul(vectors, middle), _T(vectors))), UPLO),)


def _eigh_jvp(t: list, ans: np.ndarray, a: Any, UPLO: str = "L") -> np.ndarray:  # noqa: N803
    values, vectors = _eigh_parts(ans)
    gaps, eye = _eigen_gaps(values)
    rotated = matmul(_T(vectors), matmul(_triangle_read(t[0], UPLO), vectors))  # Vᵀ Ȧ V
    value_tangent = sum_(mul(rotated, eye), axis=-2, keepdims=True)
    return concatenate([value_tangent, matmul(vectors, mul(gaps, rotated))], axis=-2)


_eigh = primitive(  # packed: row 0 the eigenvalues (ascending), rows 1.. the eigenvectors (columns)
    "eigh", _eigh_packed, vjp=_eigh_vjp, jvp=_eigh_jvp,
)


def eigh(a: Any, UPLO: str = "L") -> EighResult:  # noqa: N803 - NumPy's name
    """(eigenvalues, eigenvectors) as `np.linalg.eigh`: NumPy's values and vectors, read from the
    lower (UPLO='L') or upper ('U') triangle of `a`.

    Differentiable where the eigenvalues are distinct (the eigenvector rule divides by their
    gaps). The gradient is that of the function NumPy computes: it lands on the triangle read
    (each off-diagonal entry there stands for two entries of the symmetric matrix).

    >>> eigh(np.diag([2.0, 1.0])).eigenvalues
    array([1., 2.])
    """
    if UPLO not in ("L", "U"):
        raise ValueError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    packed = _eigh(a, UPLO)
    every, rows = slice(None), slice(1, None)
    return EighResult(getitem(packed, (Ellipsis, 0, every)), getitem(packed, (Ellipsis, rows, every)))


# ---- issue 23: svd, pinv, qr, eigvalsh, matrix_power (in mytorch/rules/linalg_more.py) -------------

from mytorch.rules.linalg_more import eigvalsh, matrix_power, pinv, qr, svd  # noqa: E402

__all__ += ["eigvalsh", "matrix_power", "pinv", "qr", "svd"]

"""`F.linalg`: NumPy's linear algebra, differentiable (norm, inv, solve, det, slogdet, cholesky, eigh).

The rules are the classic matrix adjoints, written with recording primitives:

    Y = A⁻¹:         Ā = −Yᵀ Ȳ Yᵀ                       Ẏ = −Y Ȧ Y
    x = A⁻¹ b:       b̄ = A⁻ᵀ x̄,  Ā = −b̄ xᵀ                ẋ = A⁻¹ (ḃ − Ȧ x)
    d = det A:       Ā = d̄ d A⁻ᵀ                          ḋ = d tr(A⁻¹ Ȧ)
    A = L Lᵀ:        Ā = sym(L⁻ᵀ Φ(Lᵀ L̄) L⁻¹)              L̇ = L Φ(L⁻¹ Ȧ L⁻ᵀ)
    A = V Λ Vᵀ:      Ā = V (Λ̄ + F ∘ VᵀV̄) Vᵀ               V̇ = V (F ∘ VᵀȦV),  Λ̇ = diag(VᵀȦV)

with Φ the lower triangle with its diagonal halved and F_ij = 1/(λ_j − λ_i) off the diagonal.

`cholesky` and `eigh` read the symmetric part (A + Aᵀ)/2 of their input (NumPy reads one
triangle; for a symmetric A they agree), so their gradients are symmetric, as PyTorch's are.
The eigenvector rule holds for distinct eigenvalues: F blows up as two of them meet (the
eigenvectors of a repeated eigenvalue are not unique). Eigenvectors come with a fixed sign
(each one's largest component positive), so they are a function of A.

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
    stack,
    sub,
    swapaxes,
    where,
)
from mytorch.rules.core import sum as sum_
from mytorch.rules.numpy_ops import tril
from mytorch.tracked import is_tracked

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


def _norm_kind(x: Any, ord: Any, axis: Any) -> tuple[str, tuple[int, ...]]:  # noqa: A002
    """Which norm (as "1", "2" or "inf" of the elements) over which axes; NumPy's reading of
    `ord` and `axis`. Matrix norms other than Frobenius are refused."""
    ndim = np.ndim(x)
    if axis is None:
        axes = tuple(range(ndim))
        matrix = ord is not None and ndim == 2
        if ord is not None and ndim not in (1, 2):
            raise ValueError(f"norm: ord={ord!r} needs a 1-D or 2-D array (or axis=), got {ndim}-D")
    else:
        given = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        axes = tuple(sorted(int(a) % max(ndim, 1) for a in given))
        if len(axes) not in (1, 2) or len(set(axes)) != len(axes):
            raise ValueError(f"norm: axis must be an int or a pair of distinct ints, got {axis!r}")
        matrix = len(axes) == 2
    if matrix:
        if ord not in (None, "fro"):
            raise NotImplementedError(f"norm: matrix ord={ord!r} is not differentiable here; use 'fro'")
        return "2", axes
    if ord is None or ord == 2:
        return "2", axes
    if ord == 1:
        return "1", axes
    if ord == np.inf:
        return "inf", axes
    raise NotImplementedError(f"norm: vector ord={ord!r} is not supported (1, 2, inf)")


def _norm_forward(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> np.ndarray:  # noqa: A002
    _norm_kind(x, ord, axis)
    return np.linalg.norm(x, ord, axis, keepdims)


def _keep(g: Any, ndim: int, axes: tuple[int, ...], keepdims: bool) -> Any:
    """Re-insert the reduced axes, so `g` broadcasts against the input."""
    return g if keepdims or not axes else expand_dims(g, axes)


def _norm_slope(x: Any, norm: Any, kind: str, axes: tuple[int, ...]) -> Any:
    """∂‖x‖/∂x: x/‖x‖ (0 at 0), sign(x), or sign(x) shared evenly by the largest |x|."""
    if kind == "2":
        nonzero = np.greater(norm, 0)
        return div(x, where(nonzero, norm, 1))  # x = 0 where the norm is 0: a zero gradient
    dtype = x.dtype
    signs = np.sign(x)
    if kind == "1":
        return signs.astype(dtype)
    largest = np.equal(np.abs(x), norm)
    return (signs * largest / np.sum(largest, axis=axes, keepdims=True)).astype(dtype)


def _norm_vjp(g: np.ndarray, ans: np.ndarray, x: Any, ord: Any = None, axis: Any = None,  # noqa: A002
              keepdims: bool = False) -> tuple:
    kind, axes = _norm_kind(x, ord, axis)
    norm = _keep(ans, x.ndim, axes, keepdims)
    return (mul(_keep(g, x.ndim, axes, keepdims), _norm_slope(x, norm, kind, axes)),)


def _norm_jvp(t: list, ans: np.ndarray, x: Any, ord: Any = None, axis: Any = None,  # noqa: A002
              keepdims: bool = False) -> np.ndarray:
    kind, axes = _norm_kind(x, ord, axis)
    norm = _keep(ans, x.ndim, axes, keepdims)
    return sum_(mul(t[0], _norm_slope(x, norm, kind, axes)), axis=axes, keepdims=keepdims)


norm = primitive("norm", _norm_forward, vjp=_norm_vjp, jvp=_norm_jvp)
norm.__doc__ = """`np.linalg.norm(x, ord, axis, keepdims)`: vector ord 1, 2, inf; matrix 'fro'.

The gradient at x = 0 is 0 (the subgradient PyTorch uses); ord=inf shares it evenly among ties."""

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


def _eigh_packed(a: Any) -> np.ndarray:
    values, vectors = np.linalg.eigh(_symmetric(a))
    # a fixed sign: each eigenvector's largest component (the first of equals) is positive
    largest = np.take_along_axis(vectors, np.argmax(np.abs(vectors), axis=-2)[..., None, :], axis=-2)
    vectors = vectors * np.where(largest < 0, -1, 1).astype(vectors.dtype)
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


def _eigh_vjp(g: np.ndarray, ans: np.ndarray, a: Any) -> tuple:
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
    return (_symmetrize(matmul(matmul(vectors, middle), _T(vectors))),)


def _eigh_jvp(t: list, ans: np.ndarray, a: Any) -> np.ndarray:
    values, vectors = _eigh_parts(ans)
    gaps, eye = _eigen_gaps(values)
    rotated = matmul(_T(vectors), matmul(_symmetrize(t[0]), vectors))  # Vᵀ Ȧ V
    value_tangent = sum_(mul(rotated, eye), axis=-2, keepdims=True)
    return concatenate([value_tangent, matmul(vectors, mul(gaps, rotated))], axis=-2)


_eigh = primitive(  # packed: row 0 the eigenvalues (ascending), rows 1.. the eigenvectors (columns)
    "eigh", _eigh_packed, vjp=_eigh_vjp, jvp=_eigh_jvp,
)


def eigh(a: Any) -> EighResult:
    """(eigenvalues, eigenvectors) of the symmetric part of `a`, as `np.linalg.eigh`.

    Differentiable where the eigenvalues are distinct (the eigenvector rule divides by their
    gaps); each eigenvector's largest component is positive.

    >>> eigh(np.diag([2.0, 1.0])).eigenvalues
    array([1., 2.])
    """
    packed = _eigh(a)
    every, rows = slice(None), slice(1, None)
    return EighResult(getitem(packed, (Ellipsis, 0, every)), getitem(packed, (Ellipsis, rows, every)))

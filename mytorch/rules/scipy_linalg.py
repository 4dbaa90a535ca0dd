"""`F.scipy_linalg`: SciPy's linear algebra, differentiable (solve_triangular, cho_solve, expm, sqrtm,
solve_sylvester), under SciPy's names and arguments. The rules, written with recording primitives:

    X: AX + XB = Q:       Q̄ = sylvester(Aᵀ, Bᵀ, X̄),  Ā = −Q̄ Xᵀ,  B̄ = −Xᵀ Q̄
                           Ẋ = sylvester(A, B, Q̇ − ȦX − XḂ)
    X = sqrtm(A):          Ā = sylvester(Xᵀ, Xᵀ, X̄)                             Ẋ = sylvester(X, X, Ȧ)
    Y = expm(A):           Ā = the upper-right block of expm([[Aᵀ, Ȳ], [0, Aᵀ]])  (and Ẏ of [[A, Ȧ], [0, A]])
    x = op(A)⁻¹ b:         b̄ = op(A)⁻ᵀ x̄,  op(A)̄ = −b̄ xᵀ, kept on the triangle A is read from

`cho_solve((c, lower), b)` is two triangular solves.

>>> import numpy as np
>>> from mytorch import functional as F
>>> F.scipy_linalg.expm(np.zeros((2, 2)))
array([[1., 0.],
       [0., 1.]])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from mytorch.primitive import primitive, reduce_to
from mytorch.rules.core import concatenate, expand_dims, getitem, matmul, neg, reshape, sub
from mytorch.rules.linalg import _T, _needs_finite
from mytorch.rules.numpy_ops import tril, triu

__all__ = ["cho_solve", "expm", "solve_sylvester", "solve_triangular", "sqrtm"]


def _is_float(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def _float_dtype(*values: Any) -> np.dtype:
    floats = [v.dtype for v in values if _is_float(v)]
    return np.result_type(*floats) if floats else np.dtype(np.float64)


def _square(name: str, a: Any) -> None:
    if np.ndim(a) < 2 or np.shape(a)[-1] != np.shape(a)[-2]:
        raise ValueError(f"{name}: needs a square matrix, got shape {np.shape(a)}")


# ---- solve_sylvester ------------------------------------------------------------------------------


def _sylvester_forward(a: Any, b: Any, q: Any) -> np.ndarray:
    _square("solve_sylvester", a)
    _square("solve_sylvester", b)
    if np.ndim(a) != 2 or np.ndim(b) != 2 or np.shape(q) != (np.shape(a)[0], np.shape(b)[0]):
        raise ValueError(f"solve_sylvester: a {np.shape(a)}, b {np.shape(b)} and q {np.shape(q)} do not "
                         "make AX + XB = Q")
    return np.asarray(scipy.linalg.solve_sylvester(a, b, q)).astype(_float_dtype(a, b, q), copy=False)


def _sylvester_q_adjoint(g: Any, a: Any, b: Any) -> Any:
    return solve_sylvester(_T(a), _T(b), g)


def _sylvester_jvp(t: list, ans: np.ndarray, a: Any, b: Any, q: Any) -> Any:
    rhs = t[2] if _is_float(q) else np.zeros(ans.shape, ans.dtype)
    if _is_float(a):
        rhs = sub(rhs, matmul(t[0], ans))
    if _is_float(b):
        rhs = sub(rhs, matmul(ans, t[1]))
    return solve_sylvester(a, b, rhs)


solve_sylvester = primitive("solve_sylvester", _sylvester_forward, arity=3, vjp=(
    lambda g, ans, a, b, q: neg(matmul(_sylvester_q_adjoint(g, a, b), _T(ans))),
    lambda g, ans, a, b, q: neg(matmul(_T(ans), _sylvester_q_adjoint(g, a, b))),
    lambda g, ans, a, b, q: _sylvester_q_adjoint(g, a, b),
), jvp=_sylvester_jvp)
solve_sylvester.__doc__ = """`scipy.linalg.solve_sylvester(a, b, q)`: X with AX + XB = Q, differentiable
in all three (where the spectra of A and −B do not meet)."""

# ---- sqrtm, expm -----------------------------------------------------------------------------------


def _sqrtm_forward(A: Any) -> np.ndarray:  # noqa: N803 - SciPy's name
    _square("sqrtm", A)
    _needs_finite("sqrtm", A)  # its rule solves a Sylvester equation, which refuses inf and nan
    root = np.asarray(scipy.linalg.sqrtm(A))
    if np.iscomplexobj(root):
        if np.any(np.imag(root)):
            raise ValueError(f"sqrtm: the square root of this {np.shape(A)} matrix is complex (an "
                             "eigenvalue on the negative real axis); mytorch differentiates real results")
        root = np.real(root)
    return root.astype(_float_dtype(A), copy=False)


sqrtm = primitive(
    "sqrtm", _sqrtm_forward,
    vjp=lambda g, ans, A: (solve_sylvester(_T(ans), _T(ans), g),),
    jvp=lambda t, ans, A: solve_sylvester(ans, ans, t[0]),
)
sqrtm.__doc__ = """`scipy.linalg.sqrtm(A)`: the principal square root X (X X = A), real results only;
X dX + dX X = dA, a Sylvester equation, gives both rules."""


def _expm_forward(A: Any) -> np.ndarray:  # noqa: N803
    _square("expm", A)
    return np.asarray(scipy.linalg.expm(A)).astype(_float_dtype(A), copy=False)


def _upper_right_of_block_expm(top_left: Any, top_right: Any) -> Any:
    """The upper-right block of expm([[M, E], [0, M]]): the derivative of expm at M along E."""
    n = np.shape(top_left)[-1]
    zeros = np.zeros(np.shape(top_left), _float_dtype(top_left, top_right))
    top = concatenate([top_left, top_right], axis=-1)
    bottom = concatenate([zeros, top_left], axis=-1)
    block = expm(concatenate([top, bottom], axis=-2))
    return getitem(block, (Ellipsis, slice(0, n), slice(n, None)))


expm = primitive(
    "expm", _expm_forward,
    vjp=lambda g, ans, A: (_upper_right_of_block_expm(_T(A), g),),
    jvp=lambda t, ans, A: _upper_right_of_block_expm(A, t[0]),
)
expm.__doc__ = """`scipy.linalg.expm(A)`: the matrix exponential (stacks too); its rules are the
upper-right blocks of a twice larger exponential (Van Loan's block formula)."""

# ---- triangular solves -------------------------------------------------------------------------------


def _transposed_flag(trans: Any) -> bool:
    if trans in (0, "N"):
        return False
    if trans in (1, "T", 2, "C"):
        return True
    raise ValueError(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' or 'C', got {trans!r}")


def _triangular_forward(a: Any, b: Any, trans: Any = 0, lower: bool = False,
                        unit_diagonal: bool = False) -> np.ndarray:
    _square("solve_triangular", a)
    if np.ndim(a) != 2 or np.shape(b)[:1] != np.shape(a)[:1] or np.ndim(b) not in (1, 2):
        raise ValueError(f"solve_triangular: a {np.shape(a)} and b {np.shape(b)} do not match")
    _transposed_flag(trans)
    out = scipy.linalg.solve_triangular(a, b, trans=trans, lower=lower, unit_diagonal=unit_diagonal)
    return np.asarray(out).astype(_float_dtype(a, b), copy=False)


def _on_triangle(m: Any, lower: bool, unit_diagonal: bool) -> Any:
    """`m` kept on the triangle solve_triangular reads (without the diagonal when it is taken as 1)."""
    shift = (-1 if lower else 1) if unit_diagonal else 0
    return tril(m, shift) if lower else triu(m, shift)


def _columns(b: Any, value: Any) -> Any:
    return expand_dims(value, -1) if np.ndim(b) == 1 else value


def _triangular_b_adjoint(g: Any, a: Any, b: Any, trans: Any, lower: bool, unit_diagonal: bool) -> Any:
    return solve_triangular(a, g, trans=0 if _transposed_flag(trans) else 1, lower=lower,
                            unit_diagonal=unit_diagonal)


def _triangular_a_vjp(g: np.ndarray, ans: np.ndarray, a: Any, b: Any, trans: Any = 0, lower: bool = False,
                      unit_diagonal: bool = False) -> Any:
    grad_b = _columns(b, _triangular_b_adjoint(g, a, b, trans, lower, unit_diagonal))
    grad_op = neg(matmul(grad_b, _T(_columns(b, ans))))  # the gradient of op(A)
    return _on_triangle(_T(grad_op) if _transposed_flag(trans) else grad_op, lower, unit_diagonal)


def _triangular_b_vjp(g: np.ndarray, ans: np.ndarray, a: Any, b: Any, trans: Any = 0, lower: bool = False,
                      unit_diagonal: bool = False) -> Any:
    return reduce_to(_triangular_b_adjoint(g, a, b, trans, lower, unit_diagonal), b)


def _triangular_jvp(t: list, ans: np.ndarray, a: Any, b: Any, trans: Any = 0, lower: bool = False,
                    unit_diagonal: bool = False) -> Any:
    rhs = t[1] if _is_float(b) else np.zeros(ans.shape, ans.dtype)
    if _is_float(a):
        da = _on_triangle(t[0], lower, unit_diagonal)
        da = _T(da) if _transposed_flag(trans) else da
        moved = matmul(da, _columns(b, ans))
        rhs = sub(rhs, reshape(moved, ans.shape) if np.ndim(b) == 1 else moved)
    return solve_triangular(a, rhs, trans=trans, lower=lower, unit_diagonal=unit_diagonal)


_solve_triangular = primitive("solve_triangular", _triangular_forward, arity=2, vjp=(
    lambda g, ans, a, b, **flags: _triangular_a_vjp(g, ans, a, b, **flags),
    lambda g, ans, a, b, **flags: _triangular_b_vjp(g, ans, a, b, **flags),
), jvp=_triangular_jvp)


def solve_triangular(a: Any, b: Any, trans: Any = 0, lower: bool = False, unit_diagonal: bool = False,
                     overwrite_b: bool = False, check_finite: bool = True) -> np.ndarray:
    """`scipy.linalg.solve_triangular`: x with op(A) x = b, A read from one triangle; the gradient
    to `a` lands on that triangle.

    >>> solve_triangular(np.array([[2.0, 0.0], [1.0, 1.0]]), np.array([2.0, 3.0]), lower=True)
    array([1., 2.])
    """
    return _solve_triangular(a, b, trans=trans, lower=lower, unit_diagonal=unit_diagonal)


def cho_solve(c_and_lower: tuple[Any, bool], b: Any, overwrite_b: bool = False,
              check_finite: bool = True) -> np.ndarray:
    """`scipy.linalg.cho_solve((c, lower), b)`: x with A x = b for A = L Lᵀ (or Uᵀ U), as two
    triangular solves (differentiable in the factor and in b).

    >>> cho_solve((np.array([[2.0, 0.0], [1.0, 1.0]]), True), np.array([4.0, 3.0]))
    array([0.5, 1. ])
    """
    c, lower = c_and_lower
    if lower:
        return solve_triangular(c, solve_triangular(c, b, lower=True), trans=1, lower=True)
    return solve_triangular(c, solve_triangular(c, b, trans=1, lower=False), lower=False)


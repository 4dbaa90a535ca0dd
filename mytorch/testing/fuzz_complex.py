"""Random complex programs: complex leaves through the primitives that declare complex values,
ending in a real loss, against PyTorch's complex autograd and finite differences.

`complex_programs()` draws from `COMPLEX_MENU` here (through mytorch.testing.fuzz's `programs`): the steps
of the real fuzzer whose primitive declares `complex=` (each kept away from its poles and branch
cuts, which sit off the real axis for complex values: log's on the negative reals, tanh's poles at
±iπ/2), the parts of a complex value (real, imag, conj, abs, angle: real results that flow on), and
the Fourier transforms. A leaf is complex, or now and then real (a real input of a complex
operation gets the real part of its gradient, as in PyTorch). The loss is real:
Σ_k sum(Re(w_k · v_k)) over the values no later step used.

With PyTorch's convention the gradient of the real loss L with respect to z = x + iy is
∂L/∂x + i ∂L/∂y, so finite differences take a step along x and one along y for each element; the
derivative along a complex direction v is Re Σ conj(∂L/∂z) · v, which is what forward mode must
give; and the Hessian-vector product is the gradient of that.

>>> program = complex_programs(max_steps=3).example()
>>> program.steps[0].params["value"].dtype
dtype('complex128')
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import strategies as st

from mytorch.testing import fuzz
from mytorch.testing.fuzz import MARGIN, Const, Step, _pick
from mytorch.testing.strategies import float_arrays

__all__ = ["COMPLEX_MENU", "complex_leaf", "complex_programs"]


def _as_complex(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=np.complex128)


def _all(test: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], bool]:
    """A guard that holds when `test` holds at every element (seen as complex numbers)."""
    return lambda v: v.size == 0 or bool(np.all(test(_as_complex(v))))


# Where each function is smooth, for a complex argument z (a real value is z with Im z = 0).
_EVERYWHERE = _all(lambda z: np.isfinite(z))
_OFF_CUT = _all(lambda z: (z.real > 0.1) | (np.abs(z.imag) > 0.1))  # log, sqrt, angle, power
_OFF_CUT_OF_1P = _all(lambda z: (z.real > -0.9) | (np.abs(z.imag) > 0.1))  # log1p
_OFF_ZERO = _all(lambda z: np.abs(z) > MARGIN)
_SMALL = _all(lambda z: np.abs(z) < 0.9)  # inverse trig and hyperbolic: cuts beyond ±1 or ±i
_GROWTH = _all(lambda z: (z.real < 2.5) & (np.abs(z) < 6))  # exp and its kin
_IMAG_STRIP = _all(lambda z: (np.abs(z.imag) < 1.2) & (np.abs(z.real) < 4))  # tanh: poles at ±iπ/2
_REAL_STRIP = _all(lambda z: (np.abs(z.real) < 1.2) & (np.abs(z.imag) < 4))  # tan: poles at ±π/2
_MODERATE = _all(lambda z: np.abs(z) < 3.0)  # sin, cos, sinh, cosh grow along one axis
_ARCCOSH = _all(lambda z: (z.real > 1.1) | (np.abs(z.imag) > 0.1))  # its cut: the reals below 1


def _real(v: np.ndarray) -> bool:
    return v.dtype.kind == "f"


def complex_leaf(draw: st.DrawFn, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A leaf of `dtype` (complex: real and imaginary parts in [-1, 1]; a real dtype as it is).

    >>> complex_leaf(lambda s: s.example(), (2,), np.complex64).dtype
    dtype('complex64')
    """
    return draw(float_arrays(shape, dtype, low=-1.0, high=1.0))


def _leaf_of(draw: st.DrawFn, values: list[np.ndarray], k: int, shape: tuple[int, ...]) -> np.ndarray:
    """A weight leaf of the program's complex dtype (for value `k`'s layer, which may be real)."""
    return complex_leaf(draw, shape, next(v.dtype for v in values if v.dtype.kind == "c"))


def _power(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    base = _pick(draw, values, _OFF_CUT)
    if base is None:
        return None
    if draw(st.booleans()):
        return Step("power", (base, Const(draw(st.sampled_from([2, 3, 0.5, -1.0])))))
    small = _all(lambda z: np.abs(z) < 2)
    exponent = _pick(draw, values, lambda v: fuzz._broadcasts(values[base], v) and small(v))
    return None if exponent is None else Step("power", (base, exponent))


def _complex_matrix(op: str, draw: st.DrawFn, values: list[np.ndarray], n: int) -> np.ndarray:
    """A well-conditioned complex n x n matrix: its real part near 2·I."""
    noise = _leaf_of(draw, values, 0, (n, n))
    return (0.4 * noise + 2 * np.eye(n)).astype(noise.dtype)


_REAL_INPUT = ("rfft", "ihfft", "rfftn")


def _one_axis_transform(op: str) -> Callable:
    """fft, ifft, rfft and ihfft (of a real value), irfft or hfft along one axis, with n and norm
    now and then."""

    def propose(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
        least = 2 if op in ("irfft", "hfft") else 1
        k = _pick(draw, values,
                  lambda v: v.ndim >= 1 and min(v.shape) >= least and (op not in _REAL_INPUT or _real(v)))
        if k is None:
            return None
        x = values[k]
        params: dict[str, Any] = {"axis": draw(st.integers(-x.ndim, x.ndim - 1))}
        n = draw(st.none() | st.integers(2, 5))
        if n is not None and fuzz._size_ok(x.shape[:-1] + (n,)):
            params["n"] = n
        norm = draw(st.sampled_from([None, "ortho", "forward"]))
        if norm is not None:
            params["norm"] = norm
        return Step(op, (k,), params)

    return propose


def _many_axes_transform(op: str) -> Callable:
    """fftn, ifftn, rfftn (of a real value) or irfftn (at least 2 bins along every axis, so the
    last one's default length 2 (m - 1) is positive) over some axes."""

    def propose(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
        least = 2 if op == "irfftn" else 1
        k = _pick(draw, values, lambda v: v.ndim >= 1 and v.size > 0 and min(v.shape) >= least
                  and (op not in _REAL_INPUT or _real(v)))
        if k is None:
            return None
        ndim = values[k].ndim
        chosen = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
        return Step(op, (k,), {"axes": tuple(chosen), "norm": draw(st.sampled_from([None, "ortho"]))})

    return propose


def _setitem(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    """setitem, but never a complex value into a real array (NumPy would drop its imaginary part)."""
    step = fuzz._setitem(draw, values)
    if step is None or not isinstance(step.operands[1], int):
        return step
    target, value = (values[k] for k in step.operands)
    return None if value.dtype.kind == "c" and target.dtype.kind != "c" else step


def _std(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    """std over an axis (or all) of a value whose elements are apart (std divides by itself)."""
    step = fuzz._small_reduction("std")(draw, values)
    if step is None:
        return None
    x = values[step.operands[0]]
    axis = step.params["axis"]
    count = x.size if axis is None else x.shape[axis]
    spread = np.std(x, axis=axis)
    return step if count >= 2 and float(np.min(spread)) > 0.1 else None


def _logsumexp(draw: st.DrawFn, values: list[np.ndarray]) -> Step | None:
    """logsumexp where Σ e^z keeps off the negative reals (its log's branch cut)."""
    step = fuzz._reduction("logsumexp")(draw, values)
    if step is None:
        return None
    x = values[step.operands[0]]
    with np.errstate(all="ignore"):
        total = np.sum(np.exp(_as_complex(x)), axis=step.params["axis"])
    return step if _GROWTH(x) and _OFF_CUT(np.asarray(total)) else None


def _holomorphic(op: str, ok: Callable[[np.ndarray], bool]) -> Callable:
    return fuzz._unary(op, ok)


COMPLEX_MENU: dict[str, Callable] = {
    # the parts of a complex value: real results (abs and angle away from 0 and the cut)
    "real": fuzz._unary("real"),
    "imag": fuzz._unary("imag"),
    "conj": fuzz._unary("conj"),
    "abs": fuzz._unary("abs", _OFF_ZERO),
    "angle": fuzz._unary("angle", _OFF_CUT),
    # holomorphic functions, each on its domain of smoothness
    "exp": _holomorphic("exp", _GROWTH),
    "expm1": _holomorphic("expm1", _GROWTH),
    "exp2": _holomorphic("exp2", _GROWTH),
    "log": _holomorphic("log", _OFF_CUT),
    "log2": _holomorphic("log2", _OFF_CUT),
    "log10": _holomorphic("log10", _OFF_CUT),
    "log1p": _holomorphic("log1p", _OFF_CUT_OF_1P),
    "sqrt": _holomorphic("sqrt", _OFF_CUT),
    "square": _holomorphic("square", _MODERATE),
    "sin": _holomorphic("sin", _MODERATE),
    "cos": _holomorphic("cos", _MODERATE),
    "tan": _holomorphic("tan", _REAL_STRIP),
    "sinh": _holomorphic("sinh", _MODERATE),
    "cosh": _holomorphic("cosh", _MODERATE),
    "tanh": _holomorphic("tanh", _IMAG_STRIP),
    "arcsin": _holomorphic("arcsin", _SMALL),
    "arccos": _holomorphic("arccos", _SMALL),
    "arctan": _holomorphic("arctan", _SMALL),
    "arcsinh": _holomorphic("arcsinh", _SMALL),
    "arctanh": _holomorphic("arctanh", _SMALL),
    "arccosh": _holomorphic("arccosh", _ARCCOSH),
    "sigmoid": _holomorphic("sigmoid", _IMAG_STRIP),  # poles at ±iπ
    "expit": _holomorphic("expit", _IMAG_STRIP),
    "erf": _holomorphic("erf", _all(lambda z: np.abs(z) < 2.5)),
    "erfc": _holomorphic("erfc", _all(lambda z: np.abs(z) < 2.5)),
    "neg": fuzz._unary("neg"),
    "add": fuzz._binary("add"),
    "sub": fuzz._binary("sub"),
    "mul": fuzz._binary("mul", lambda a, b: _MODERATE(a) and _MODERATE(b)),
    "div": fuzz._binary("div", lambda a, b: _all(lambda z: np.abs(z) > 0.3)(b)),
    "power": _power,
    # linear algebra
    "matmul": fuzz._matmul,
    "leaf+matmul": functools.partial(fuzz._leaf_matmul, leaf=_leaf_of),
    "leaf+linear": functools.partial(fuzz._leaf_linear, leaf=_leaf_of),
    "einsum": fuzz._einsum,
    "tensordot": fuzz._tensordot,
    "outer": fuzz._outer,
    "inv": fuzz._leaf_matrix("inv", _complex_matrix),
    "solve": fuzz._leaf_matrix("solve", _complex_matrix),
    "det": fuzz._leaf_matrix("det", _complex_matrix),
    # reductions, scans and the shape of things
    "sum": fuzz._reduction("sum"),
    "mean": fuzz._reduction("mean"),
    "logsumexp": _logsumexp,
    "prod": fuzz._small_reduction("prod"),
    "cumprod": fuzz._scan("cumprod", lambda v: v.size <= 12),
    "var": fuzz._small_reduction("var", lambda draw, x, axis: {"ddof": 0}),
    "std": _std,
    "cumsum": fuzz._scan("cumsum"),
    "flip": fuzz._scan("flip"),
    "roll": fuzz._roll,
    "tile": fuzz._tile,
    "repeat": fuzz._repeat,
    "take": fuzz._take,
    "take_along_axis": fuzz._take_along_axis,
    "diagonal": fuzz._matrix_op("diagonal"),
    "trace": fuzz._matrix_op("trace"),
    "triu": fuzz._matrix_op("triu"),
    "tril": fuzz._matrix_op("tril"),
    "setitem": _setitem,
    "reshape": fuzz._reshape,
    "transpose": fuzz._transpose,
    "expand_dims": fuzz._expand_dims,
    "squeeze": fuzz._squeeze,
    "getitem": fuzz._getitem,
    "broadcast_to": fuzz._broadcast_to,
    "unbroadcast": fuzz._unbroadcast,
    "scatter_add": fuzz._scatter_add,
    "concatenate": fuzz._concatenate,
    "stack": fuzz._stack,
    "pad": fuzz._pad,
    "where": fuzz._where,
    "astype": fuzz._astype,
    # the Fourier transforms
    "fft": _one_axis_transform("fft"),
    "ifft": _one_axis_transform("ifft"),
    "rfft": _one_axis_transform("rfft"),
    "irfft": _one_axis_transform("irfft"),
    "ihfft": _one_axis_transform("ihfft"),
    "hfft": _one_axis_transform("hfft"),
    "fftn": _many_axes_transform("fftn"),
    "ifftn": _many_axes_transform("ifftn"),
    "rfftn": _many_axes_transform("rfftn"),
    "irfftn": _many_axes_transform("irfftn"),
}


def complex_programs(*, max_inputs: int = 3, max_steps: int = 8, ops: tuple[str, ...] | None = None,
                     dtype: Any = np.complex128) -> st.SearchStrategy[fuzz.Program]:
    """Random complex programs (see the module docstring): the first leaf complex of `dtype`, each
    other one complex or (one time in four) real of the same precision; steps from COMPLEX_MENU
    (or `ops` of it); a real loss. Compare them with `fuzz.compare_with_torch` and
    `fuzz.compare_with_finite_differences`.

    >>> complex_programs(dtype=np.complex64).example().steps[0].params["value"].dtype
    dtype('complex64')
    """
    part = np.finfo(dtype).dtype

    def leaf(draw: st.DrawFn, shape: tuple[int, ...], position: int) -> np.ndarray:
        real = position > 0 and draw(st.integers(0, 3), label="real leaf") == 0
        return complex_leaf(draw, shape, part if real else dtype)

    # (neg where a drawn step does not apply: tanh, the real fuzzer's, has poles off the real axis)
    return fuzz.programs(max_inputs=max_inputs, max_steps=max_steps, ops=ops, dtype=dtype,
                         menu=COMPLEX_MENU, leaf=leaf, fallback="neg")

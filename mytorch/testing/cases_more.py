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

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mytorch.testing.cases import (
    _MISMATCH,
    Example,
    _elementwise_shapes,
    _twin_binary,
    _unary_case,
    _values,
    case,
)
from mytorch.testing.strategies import shapes

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
    shape = draw(st.one_of(shapes(), shapes(min_side=0)))
    decimals = draw(st.sampled_from([0, 0, 1]))
    if decimals == 0:
        return Example((_values(draw, shape, dtype, ties, kinks=_STEPS),))
    # multiples of 0.1, halfway between round(x, 1)'s jumps
    steps = hnp.arrays(np.int64, shape, elements=st.integers(-30, 30), fill=st.nothing())
    return Example((np.asarray(draw(steps) * 0.1, dtype=dtype),), {"decimals": 1})


def _wrap_case(name: str, torch_name: str) -> None:
    def draw_wrap(draw: st.DrawFn, dtype: np.dtype, ties: bool) -> Example:
        # y away from 0 and x / y away from whole numbers, where mod and fmod jump
        x_shape, y_shape = draw(_elementwise_shapes(2))
        out_shape = np.broadcast_shapes(x_shape, y_shape)
        magnitudes = _values(draw, y_shape, np.dtype(np.float64), low=0.5, high=2.0)
        signs = draw(hnp.arrays(np.bool_, y_shape, fill=st.nothing()))
        y: Any = np.where(signs, magnitudes, -magnitudes).astype(dtype)
        if draw(st.integers(0, 3)) == 0:  # a constant divisor: an int array or a number
            divisors = hnp.arrays(np.int64, y_shape, elements=st.sampled_from([1, 2, -2]), fill=st.nothing())
            y = draw(st.sampled_from([2, -3, 1.5])) if draw(st.booleans()) else draw(divisors)
        whole = draw(hnp.arrays(np.int64, out_shape, elements=st.integers(-2, 2), fill=st.nothing()))
        fraction = _values(draw, out_shape, np.dtype(np.float64), low=0.15, high=0.85)
        x = np.asarray(np.broadcast_to(np.asarray(y, np.float64), out_shape) * (whole + fraction), dtype=dtype)
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

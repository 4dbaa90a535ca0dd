"""What a wrong number is, said in terms of the mistake that makes it.

A wrong gradient is often the right one times something: -1 (a sign), 1/n (a mean where a sum
belongs), an input squared (multiplying by it where dividing belongs), 1/ȳ (the output's adjoint
left out). The ratio got/expected is compared, element by element, with each of these; the first
that fits is named. A ratio that is constant is only called a constant when it is seen on more than
one element, or when it is 1/n for n an axis length of what the rule got (on one element every
ratio is constant, and x² = 0.25 is not a mean over four).

>>> x = np.array([2.0, 3.0])
>>> factor_hint(x, 1 / x, [("input 1", x)])  # ā = ȳ·b written for ā = ȳ/b (ȳ = 1)
'; it is the expected value times input 1²: multiplying by input 1 where dividing belongs?'
>>> factor_hint(np.array([0.5, 1.0]), np.array([2.0, 4.0]))
'; it is the expected value times 1/4: a mean where a sum belongs (over 4 elements)?'
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np

POWERS = {  # power of a named array: how the ratio reads
    2: "times {name}²: multiplying by {name} where dividing belongs?",
    -2: "divided by {name}²: dividing by {name} where multiplying belongs?",
    1: "times {name}: an extra factor of {name}?",
    -1: "divided by {name}: a factor of {name} left out?",
}
FIT = 1e-6  # relative closeness of a ratio to a candidate


def _constant_hint(ratio: float) -> str:
    simple = Fraction(ratio).limit_denominator(12)
    if abs(float(simple) - ratio) > FIT * abs(ratio):
        return f"times {ratio:.4g} (a constant factor: a wrong coefficient?)"
    if simple.numerator == 1 and simple.denominator > 1:
        n = simple.denominator
        return f"times 1/{n}: a mean where a sum belongs (over {n} elements)?"
    if simple.denominator == 1 and simple.numerator > 1:
        n = simple.numerator
        return f"times {n}: a sum where a mean belongs, or a term counted {n} times?"
    return f"times {simple} (a constant factor: a wrong coefficient?)"


def factor_hint(
    got: np.ndarray, expected: np.ndarray, named: Sequence[tuple[str, np.ndarray]] = (), atol: float = 1e-8
) -> str:
    """'' or "; it is the expected value times ...": the first explanation of got/expected that fits
    every element where the expected value is not zero. `named`: arrays the rule was called with
    (inputs, ȳ, the output), tried in order where they broadcast to the gradient's shape."""
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    if got.shape != expected.shape:
        return ""
    with np.errstate(all="ignore"):
        where = (np.abs(expected) > 10 * atol) & np.isfinite(expected) & np.isfinite(got)
        if not where.any() or not np.any(got[where]):
            return ""
        ratio = got[where] / expected[where]
        fits = []  # on few elements several explanations may fit: each is named
        for name, value in named:
            value = np.asarray(value, dtype=float)
            try:
                value = np.broadcast_to(value, expected.shape)[where]
            except ValueError:
                if value.size != expected.size:
                    continue
                value = value.reshape(expected.shape)[where]  # y of shape (1,) by a 0-d x: its one element
            for power, text in POWERS.items():
                candidate = value**power
                varies = np.ptp(candidate) > FIT * np.max(np.abs(candidate), initial=0.0)
                if (varies or ratio.size == 1) and np.allclose(ratio, candidate, rtol=FIT, atol=0.0):
                    fits.append(text.format(name=name))
                    break
        if fits:
            return "; it is the expected value " + "; or ".join(fits)
        if np.allclose(ratio, ratio[0], rtol=FIT, atol=0.0) and ratio[0] > 0:
            if ratio.size > 1 or _a_mean_over_an_axis(float(ratio[0]), named):
                return "; it is the expected value " + _constant_hint(float(ratio[0]))
    return ""


def _a_mean_over_an_axis(ratio: float, named: Sequence[tuple[str, np.ndarray]]) -> bool:
    """Whether `ratio` is 1/n for n the length of an axis of what the rule got (a batch of n)."""
    lengths = {side for _, value in named for side in np.shape(value) if side > 1}
    return any(abs(ratio * n - 1) <= FIT for n in lengths)

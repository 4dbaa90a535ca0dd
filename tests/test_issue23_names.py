"""Issue 23's list of names, walked: each one is reached by its NumPy or SciPy name on tracked
arrays (or through `mytorch.stats`), its value is NumPy's or SciPy's, and its gradient matches
finite differences in first and second order (reverse and forward mode). A name that is a
registered primitive also has an input spec (so `check` and the laws walk it); the others are
compositions of primitives, whose gradients this walk checks.

Two kinds of names are reached through mytorch's namespace instead, because no hook sees them:
np.array / np.asarray of a list (NumPy copies the list's arrays in C: F.array, F.asarray), and
SciPy's Python-level functions (scipy.linalg's, scipy.signal.convolve, scipy.special.multigammaln
and logsumexp convert their inputs with np.asarray: F.scipy_linalg, F.signal, F.special). SciPy's
ufuncs (scipy.special.gamma, erfc, jn, ...) dispatch to mytorch's under their own names.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import scipy.signal
import scipy.special
import scipy.stats

import mytorch
from mytorch import functional as F
from mytorch import stats
from mytorch.testing.cases import CASES, all_primitives

RNG = np.random.default_rng(2323)
V = RNG.uniform(0.3, 1.2, 4)  # a positive vector
W = RNG.uniform(-1.0, 1.0, 4)
M = RNG.uniform(-1.0, 1.0, (3, 3)) + 2.5 * np.eye(3)  # well conditioned, distinct singular values
R = RNG.uniform(-1.0, 1.0, (3, 2))
SPD = M @ M.T + np.eye(3)
CUBE = RNG.uniform(-1.0, 1.0, (2, 2, 3))
P = np.array([0.2, 0.45, 0.7, 0.85])  # in (0, 1)
Z = np.array([1.0 + 0.5j, -0.3 + 0.8j, 0.6 - 0.4j, 2.0 + 0.1j])

# Each name: (a function of arrays written with NumPy's and SciPy's names, its arguments). Its value
# is compared with the same function on plain arrays (NumPy's and SciPy's own); functions with
# list, tuple or complex results are reduced to a real array inside.
# (`primitive`: the name of the primitive behind it, when there is one)


def _scipy(dotted):
    """SciPy's Python-level function `dotted` (scipy.linalg's, scipy.signal's, multigammaln,
    logsumexp): on tracked arrays mytorch's F.<family>.<name>, since SciPy converts its inputs with
    np.asarray, which no hook sees; on plain arrays SciPy's own (the reference)."""
    family, name = dotted.split(".")
    theirs = getattr(getattr(scipy, family), name)
    mine = getattr({"linalg": F.scipy_linalg, "signal": F.signal, "special": F.special}[family], name)

    def call(*args, **kwargs):
        return mine(*args, **kwargs) if any(mytorch.is_tracked(a) for a in args) else theirs(*args, **kwargs)

    return call


def _sum_parts(parts):
    return sum(np.sum(p * (i + 1.0)) for i, p in enumerate(parts))


def _svd_loss(full, uv=True):
    def loss(a):
        if not uv:
            return np.linalg.svd(a, compute_uv=False)
        u, s, vh = np.linalg.svd(a, full_matrices=full)
        return (
            np.sum(u**2 * np.arange(1.0, u.shape[1] + 1))
            + np.sum(s**3)
            + np.sum(vh**2 * np.arange(1.0, vh.shape[1] + 1))
        )

    return loss


def _eigh_loss(a):
    values, vectors = np.linalg.eigh(a, UPLO="U")
    return np.sum(values**3) + np.sum(vectors**2 * np.arange(1.0, 4.0))


def _norm(ord_, axis=None):
    return lambda a: np.linalg.norm(a, ord=ord_, axis=axis)


NAMES = {
    # NumPy constructors and joins
    # (np.array and np.asarray copy a list's arrays in C, past every hook: F.array, F.asarray)
    "array": (lambda x: F.array([x, 2 * x, x**2]), (V,)),
    "asarray": (lambda x: F.asarray([x, np.sin(x)]), (V,)),
    "hstack": (lambda x, y: np.hstack([x, y**2]), (V, W)),
    "vstack": (lambda x, y: np.vstack([x, y**2]), (V, W)),
    "dstack": (lambda x, y: np.dstack([x, y**2]), (V, W)),
    "column_stack": (lambda x, y: np.column_stack([x, y**2]), (V, W)),
    "row_stack": (
        lambda x, y: np.row_stack([x, y**2]) if hasattr(np, "row_stack") else F.row_stack([x, y**2]),
        (V, W),
    ),
    "append": (lambda x, y: np.append(x, y**2), (V, W)),
    "atleast_1d": (lambda x: np.atleast_1d(x) * 2, (V,)),
    "atleast_2d": (lambda x: np.atleast_2d(x) * 2, (V,)),
    "atleast_3d": (lambda x: np.atleast_3d(x) * 2, (V,)),
    "r_": (lambda x, y: np.r_[x, 2 * y], (V, W)),
    "split": (lambda x: _sum_parts(np.split(x, 2)), (V,)),
    "array_split": (lambda x: _sum_parts(np.array_split(x, 3)), (V,)),
    "hsplit": (lambda x: _sum_parts(np.hsplit(x, [1])), (R.T,)),
    "vsplit": (lambda x: _sum_parts(np.vsplit(x, [1])), (R,)),
    "dsplit": (lambda x: _sum_parts(np.dsplit(x, [1])), (CUBE,)),
    # shape
    "ravel": (lambda x: np.ravel(x, order="F") * np.arange(6.0), (R,)),
    "moveaxis": (lambda x: np.moveaxis(x, 0, -1), (CUBE,)),
    "rollaxis": (lambda x: np.rollaxis(x, 2), (CUBE,)),
    "swapaxes": (lambda x: np.swapaxes(x, 0, 2), (CUBE,)),
    "rot90": (lambda x: np.rot90(x, 3), (R,)),
    "flipud": (lambda x: np.flipud(x) * np.arange(3.0)[:, None], (R,)),
    "fliplr": (lambda x: np.fliplr(x) * np.arange(2.0), (R,)),
    "diag": (lambda x, m: np.sum(np.diag(x, 1) ** 2) + np.diag(m, -1), (V, M)),
    "kron": (lambda x, y: np.kron(x, y), (R, W)),
    "select": (lambda x, y: np.select([x > 0.6, y > 0], [x, y**2], -1.0), (V, W)),
    "partition": (lambda x: np.partition(x, 2) * np.arange(4.0), (V,)),
    # products and differences
    "dot": (lambda a, b: np.dot(a, b), (M, R)),
    "inner": (lambda a, b: np.inner(a, b), (R.T, M[:2])),
    "cross": (lambda a, b: np.cross(a, b), (M, W[:3])),
    "diff": (lambda x: np.diff(x, n=2), (V,)),
    "gradient": (lambda x: np.gradient(x, 0.5, edge_order=2), (V,)),
    "linspace": (lambda a, b: np.linspace(a, b, 5), (V[:2], W[:2])),
    "convolve": (lambda a, b: np.convolve(a, b, "same"), (V, W[:3])),
    "scipy.signal.convolve": (
        lambda a, b: np.concatenate(
            [_scipy("signal.convolve")(a, b, mode=mode) for mode in ("full", "same", "valid")]
        ),
        (V, W[:3]),
    ),
    # elementwise
    "log10": (np.log10, (V,)),
    "log2": (np.log2, (V,)),
    "exp2": (np.exp2, (W,)),
    "logaddexp2": (np.logaddexp2, (V, W)),
    "arctanh": (lambda x: np.arctanh(x * 0.9), (W,)),
    "arccosh": (lambda x: np.arccosh(x + 1.1), (V,)),
    "floor": (lambda x: np.floor(x * 3.3) * x, (V,)),
    "ceil": (lambda x: np.ceil(x * 3.3) * x, (V,)),
    "round": (lambda x: np.round(x * 3.3) * x, (V,)),
    "mod": (lambda x, y: np.mod(x, y + 2), (V, W)),
    "remainder": (lambda x, y: np.remainder(x, y + 2), (V, W)),
    "fmod": (lambda x, y: np.fmod(x, y + 2), (V, W)),
    "fmax": (np.fmax, (V, W)),
    "fmin": (np.fmin, (V, W)),
    "nan_to_num": (lambda x: np.nan_to_num(x * 2), (W,)),
    "radians": (np.radians, (W,)),
    "degrees": (np.degrees, (W,)),
    "deg2rad": (np.deg2rad, (W,)),
    "rad2deg": (np.rad2deg, (W,)),
    "real": (lambda x, y: np.real(x * (1 + 2j) + y), (V, W)),
    "imag": (lambda x, y: np.imag(x * (1 + 2j) + y), (V, W)),
    "conj": (lambda x: np.real(np.conj(x * (1 - 2j)) * (0.5 + 1j)), (V,)),
    "angle": (lambda x, y: np.angle(x + 1j * y), (V, W)),
    "real_if_close": (lambda x: np.real_if_close(x * (1 + 0j)) ** 2, (W,)),
    # numpy.linalg
    "svd": (_svd_loss(True), (M,)),
    "svd(full_matrices=False)": (_svd_loss(False), (R,)),
    "svd(compute_uv=False)": (_svd_loss(False, uv=False), (R,)),
    "eig": (lambda a: np.abs(np.linalg.eig(a).eigenvalues) ** 2, (M,)),
    "pinv": (np.linalg.pinv, (R,)),
    "qr": (
        lambda a: np.sum(np.linalg.qr(a).R ** 2 * np.arange(1.0, 3.0)) + np.sum(np.linalg.qr(a).Q[0]),
        (R,),
    ),
    "eigvalsh": (np.linalg.eigvalsh, (SPD,)),
    "eigh(UPLO='U')": (_eigh_loss, (SPD,)),
    "matrix_power": (lambda a: np.linalg.matrix_power(a, 3), (M,)),
    **{f"norm(ord={o!r})": (_norm(o), (M,)) for o in ("nuc", "fro", 1, -1, 2, -2, np.inf, -np.inf)},
    **{f"norm(vector ord={o!r})": (_norm(o, 0), (M,)) for o in (1, 2, 3, 0.5, np.inf, -np.inf)},
    # scipy.linalg
    "sqrtm": (lambda a: _scipy("linalg.sqrtm")(a), (SPD,)),
    "solve_triangular": (lambda a, b: _scipy("linalg.solve_triangular")(a, b, lower=True), (np.tril(M), R)),
    "cho_solve": (lambda a, b: _scipy("linalg.cho_solve")((np.linalg.cholesky(a), True), b), (SPD, R)),
    "expm": (lambda a: _scipy("linalg.expm")(a * 0.3), (M,)),
    "solve_sylvester": (lambda a, b, q: _scipy("linalg.solve_sylvester")(a, b, q), (M, SPD, M.T)),
    # scipy.special
    "gamma": (scipy.special.gamma, (V + 0.5,)),
    "rgamma": (scipy.special.rgamma, (V + 0.5,)),
    "gammasgn": (lambda x: scipy.special.gammasgn(x) * x, (V,)),
    "beta": (scipy.special.beta, (V, V[::-1])),
    "betaln": (scipy.special.betaln, (V, V[::-1])),
    "betainc": (lambda x: scipy.special.betainc(2.0, 3.0, x), (P,)),
    "gammainc": (lambda x: scipy.special.gammainc(1.5, x), (V,)),
    "gammaincc": (lambda x: scipy.special.gammaincc(1.5, x), (V,)),
    "erfc": (scipy.special.erfc, (W,)),
    "erfinv": (lambda x: scipy.special.erfinv(x * 0.9), (W,)),
    "erfcinv": (lambda x: scipy.special.erfcinv(x + 0.5), (P,)),
    "multigammaln": (lambda x: _scipy("special.multigammaln")(x + 1.0, 3), (V,)),
    "logsumexp(b=...)": (lambda x, b: _scipy("special.logsumexp")(x, b=b), (W, V)),
    "j0": (scipy.special.j0, (V,)),
    "j1": (scipy.special.j1, (V,)),
    "jn": (lambda x: scipy.special.jn(2, x), (V,)),
    "y0": (scipy.special.y0, (V,)),
    "y1": (scipy.special.y1, (V,)),
    "yn": (lambda x: scipy.special.yn(2, x), (V,)),
    "i0": (scipy.special.i0, (W,)),
    "i1": (scipy.special.i1, (W,)),
    "iv": (lambda x: scipy.special.iv(1.5, x), (V,)),
    "ive": (lambda x: scipy.special.ive(1.5, x), (V,)),
}

# mytorch.stats against scipy.stats: (distribution, method, arguments: the differentiated ones first)
STATS = [
    *[
        ("norm", m, (W, np.array(0.2), V[1:2] + 0.5))
        for m in ("pdf", "logpdf", "cdf", "logcdf", "sf", "logsf")
    ],
    *[("t", m, (W, 3.5)) for m in ("pdf", "logpdf", "cdf")],
    *[("chi2", m, (V, 2.5)) for m in ("pdf", "logpdf", "cdf")],
    *[("gamma", m, (V, 1.7)) for m in ("pdf", "logpdf", "cdf")],
    *[("beta", m, (P, 2.0, 3.0)) for m in ("pdf", "logpdf", "cdf")],
    *[("poisson", m, (np.arange(4), V[:1] + 1.0)) for m in ("pmf", "logpmf", "cdf")],
    ("dirichlet", "logpdf", (np.array([0.2, 0.3, 0.5]), np.array([1.5, 2.0, 2.5]))),
    ("dirichlet", "pdf", (np.array([0.2, 0.3, 0.5]), np.array([1.5, 2.0, 2.5]))),
    ("multivariate_normal", "pdf", (W[:3], V[:3], SPD)),
    ("multivariate_normal", "logpdf", (W[:3], V[:3], SPD)),
    ("multivariate_normal", "entropy", (V[:3], SPD)),
]

# The primitives behind names that are not spelled as the primitive (the others are their own).
PRIMITIVE_OF = {
    "svd(full_matrices=False)": "svd",
    "svd(compute_uv=False)": "svdvals",
    "eigh(UPLO='U')": "eigh",
    "remainder": "mod",
    "logsumexp(b=...)": None,
    "scipy.signal.convolve": None,
}


def _float_args(args):
    return tuple(i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f")


def _check(f, args, expected):
    positions = _float_args(args)

    def on(*floats):
        full = list(args)
        for i, value in zip(positions, floats):
            full[i] = value
        return f(*full)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        got = on(*(mytorch.track(args[i]) for i in positions))
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-7, atol=1e-10)
        assert isinstance(got, mytorch.Tracked) or type(got).__name__ == "Tracked", "not on the tape"
        mytorch.check_grads(on, tuple(args[i] for i in positions), order=2)


@pytest.mark.parametrize("name", sorted(NAMES))
def test_each_name_is_reached_by_numpys_name_and_differentiated_in_both_orders(name):
    f, args = NAMES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        expected = f(*args)  # NumPy's and SciPy's own functions, on plain arrays
    _check(f, args, expected)
    primitive = PRIMITIVE_OF.get(name, name.split("(")[0])
    if primitive in all_primitives():
        assert primitive in CASES, f"{primitive}: a primitive with no input spec"


@pytest.mark.parametrize(("distribution", "method", "args"), STATS, ids=[f"{d}.{m}" for d, m, _ in STATS])
def test_each_distribution_of_mytorch_stats_is_scipys_and_differentiated(distribution, method, args):
    mine = getattr(getattr(stats, distribution), method)
    theirs = getattr(getattr(scipy.stats, distribution), method)
    _check(mine, args, theirs(*args))


def test_eigh_forward_is_numpys_on_any_input():
    """On a matrix that is not symmetric, eigh reads one triangle, as NumPy's does."""
    for uplo in ("L", "U"):
        values, vectors = np.linalg.eigh(mytorch.track(M), UPLO=uplo)
        expected = np.linalg.eigh(M, UPLO=uplo)
        np.testing.assert_allclose(values, expected.eigenvalues, rtol=1e-12)
        np.testing.assert_allclose(np.abs(vectors), np.abs(expected.eigenvectors), rtol=1e-10)

"""Issue 23, the rest of NumPy: the compositions (joins, splits, shapes, products, differences,
linspace, convolve, the elementwise ones built from primitives) under NumPy's names.

Each is checked on hypothesis-drawn shapes: its value against NumPy's function of the same name,
its first and second derivatives (reverse and forward mode) against finite differences. The
primitives among them (log10, mod, floor, ...) are walked by the generic tests of every
registered primitive (tests/test_primitives.py, test_forward_mode.py, test_higher_order.py).
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mytorch import functional as F
from mytorch.gradcheck import check_grads
from mytorch.testing.strategies import distinct_arrays, float_arrays, shapes

SETTINGS = settings(max_examples=8, deadline=None, database=None)


def _arrays(shape, dtype=np.float64, low=-2.0, high=2.0):
    return float_arrays(shape, dtype, low=low, high=high)


@st.composite
def _same_shaped(draw, count, min_dims=0, max_dims=3, min_side=1):
    shape = draw(shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=3))
    return [draw(_arrays(shape)) for _ in range(count)]


def _agree(name, args, kwargs=None, *, listed=False, numpy=None):
    """F.name's value equals np.name's; its derivatives match finite differences to second order."""
    kwargs = kwargs or {}
    call = (lambda *xs: getattr(F, name)(list(xs), **kwargs)) if listed else (
        lambda *xs: getattr(F, name)(*xs, **kwargs))
    reference = numpy or getattr(np, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        expected = reference(list(args), **kwargs) if listed else reference(*args, **kwargs)
        got = call(*args)
    expected = list(expected) if isinstance(expected, (list, tuple)) else [expected]
    got = list(got) if isinstance(got, (list, tuple)) else [got]
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert type(g) is np.ndarray and g.shape == np.shape(e), (name, g, e)
        assert g.dtype == np.asarray(e).dtype, (name, g, e)
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)
    if any(np.asarray(g).size for g in got):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            check_grads(call, args, order=2)


JOINS = ["hstack", "vstack", "dstack", "column_stack", "row_stack"]


@pytest.mark.parametrize("name", JOINS)
@SETTINGS
@given(data=st.data())
def test_joins(name, data):
    count = data.draw(st.integers(1, 3))
    arrays = data.draw(_same_shaped(count, max_dims=2 if name == "column_stack" else 3))
    _agree(name, arrays, listed=True, numpy=np.vstack if name == "row_stack" else None)


@pytest.mark.parametrize("name", ["atleast_1d", "atleast_2d", "atleast_3d"])
@SETTINGS
@given(data=st.data())
def test_atleast(name, data):
    _agree(name, data.draw(_same_shaped(data.draw(st.integers(1, 2)))))


@SETTINGS
@given(data=st.data())
def test_append_and_array(data):
    a, b = data.draw(_same_shaped(2, min_dims=1))
    axis = data.draw(st.sampled_from([None, 0, -1]))
    _agree("append", [a, b], {"axis": axis})
    _agree("array", [a, b], listed=True)
    check_grads(lambda x, y: F.asarray([[x, y], [y, x]]), (a, b), order=2)


@pytest.mark.parametrize("name", ["split", "array_split", "hsplit", "vsplit", "dsplit"])
@SETTINGS
@given(data=st.data())
def test_splits(name, data):
    ndim = {"vsplit": 2, "dsplit": 3}.get(name, 1)
    shape = data.draw(shapes(min_dims=ndim, max_dims=3, max_side=4))
    axis = {"vsplit": 0, "dsplit": 2, "hsplit": 1 if len(shape) > 1 else 0}.get(name, data.draw(
        st.integers(0, len(shape) - 1)))
    n = shape[axis]
    if name == "array_split":
        sections = data.draw(st.integers(1, 4))
    else:
        sections = data.draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))
    if data.draw(st.booleans()):
        sections = sorted(data.draw(st.lists(st.integers(0, n), max_size=2)))
    x = data.draw(_arrays(shape))
    kwargs = {"axis": axis} if name in ("split", "array_split") else {}
    _agree(name, [x, sections], kwargs)


@SETTINGS
@given(data=st.data())
def test_shape_functions(data):
    x = data.draw(_arrays(data.draw(shapes(min_dims=2, max_dims=3))))
    ndim = x.ndim
    axis = data.draw(st.integers(-ndim, ndim - 1))
    other = data.draw(st.sampled_from([a for a in range(ndim) if a != axis % ndim]))
    _agree("ravel", [x], {"order": data.draw(st.sampled_from(["C", "F"]))})
    _agree("moveaxis", [x, axis, other])
    _agree("rollaxis", [x, axis, data.draw(st.integers(0, ndim))])
    _agree("rot90", [x, data.draw(st.integers(-5, 5)), (axis, other)])
    _agree("flipud", [x])
    _agree("fliplr", [x])
    _agree("swapaxes", [x, axis, other])


@SETTINGS
@given(data=st.data())
def test_diag_kron_select_partition(data):
    v = data.draw(_arrays(data.draw(shapes(min_dims=1, max_dims=1))))
    k = data.draw(st.integers(-2, 2))
    _agree("diag", [v, k])
    m = data.draw(_arrays(data.draw(shapes(min_dims=2, max_dims=2))))
    _agree("diag", [m, k])
    a, b = (data.draw(_arrays(data.draw(shapes(max_dims=3, max_side=3)))) for _ in range(2))
    _agree("kron", [a, b])
    c, d = data.draw(_same_shaped(2))
    conditions = [c > 0, d > 0]
    check_grads(lambda x, y: F.select(conditions, [x, y], -1.0), (c, d), order=2)
    np.testing.assert_array_equal(F.select(conditions, [c, d], -1.0), np.select(conditions, [c, d], -1.0))
    x = data.draw(distinct_arrays(data.draw(shapes(min_dims=1, max_dims=2)), np.float64))
    _agree("partition", [x, data.draw(st.integers(0, x.shape[-1] - 1))])


@SETTINGS
@given(data=st.data())
def test_products(data):
    n = data.draw(st.integers(1, 3))
    lead = data.draw(shapes(max_dims=2, max_side=3))
    a = data.draw(_arrays((*lead, n)))
    b = data.draw(_arrays(data.draw(st.sampled_from([(n,), (n, 2), (2, n, 3)]))))
    _agree("dot", [a, b])
    _agree("inner", [a, data.draw(_arrays((*data.draw(shapes(max_dims=2, max_side=2)), n)))])
    _agree("dot", [a, data.draw(_arrays(()))])
    dim_a, dim_b = data.draw(st.sampled_from([(3, 3), (3, 2), (2, 3), (2, 2)]))
    u = data.draw(_arrays((*lead, dim_a)))
    w = data.draw(_arrays((dim_b,)))
    _agree("cross", [u, w])
    if lead:
        axes = {"axisa": 0, "axisc": 0} if 3 in (dim_a, dim_b) else {"axisa": 0}
        _agree("cross", [np.moveaxis(u, -1, 0), w], axes)


@SETTINGS
@given(data=st.data())
def test_differences(data):
    x = data.draw(_arrays(data.draw(shapes(min_dims=1, max_dims=3, min_side=3))))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    _agree("diff", [x], {"n": data.draw(st.integers(0, 2)), "axis": axis})
    edge = data.draw(_arrays(()))
    np.testing.assert_array_equal(F.diff(x, axis=axis, prepend=edge), np.diff(x, axis=axis, prepend=edge))
    check_grads(lambda x, e: F.diff(x, axis=axis, prepend=e, append=e), (x, edge), order=2)
    _agree("gradient", [x, 0.5], {"axis": axis, "edge_order": data.draw(st.sampled_from([1, 2]))})
    _agree("gradient", [x])


@SETTINGS
@given(data=st.data())
def test_linspace(data):
    start = data.draw(_arrays(data.draw(shapes(max_dims=1, max_side=2))))
    stop = data.draw(_arrays(start.shape))
    kwargs = {"num": data.draw(st.integers(0, 5)), "endpoint": data.draw(st.booleans())}
    if start.ndim and data.draw(st.booleans()):
        kwargs["axis"] = -1
    _agree("linspace", [start, stop], kwargs)
    values, step = F.linspace(start, stop, retstep=True, **kwargs)
    np.testing.assert_array_equal(step, np.linspace(start, stop, retstep=True, **kwargs)[1])
    np.testing.assert_array_equal(F.linspace(start.astype(np.float32), 1.0, 4),
                                  np.linspace(start.astype(np.float32), 1.0, 4))


@SETTINGS
@given(data=st.data())
def test_convolve(data):
    a = data.draw(_arrays((data.draw(st.integers(1, 5)),)))
    v = data.draw(_arrays((data.draw(st.integers(1, 5)),)))
    for mode in ("full", "same", "valid"):
        _agree("convolve", [a, v, mode])


def test_elementwise_compositions():
    x = np.array([[1.5, -0.3, np.nan], [np.inf, 2.0, -np.inf]])
    y = np.array([0.5, np.nan, 1.0])
    for name in ("fmax", "fmin"):
        np.testing.assert_array_equal(getattr(F, name)(x, y), getattr(np, name)(x, y))
    check_grads(lambda a, b: F.fmax(a, b), (np.array([1.0, 2.0]), np.array([1.5, 1.0])), order=2)
    check_grads(lambda a, b: F.fmin(a, b), (np.array([1.0, 2.0]), np.array([1.5, 1.0])), order=2)
    np.testing.assert_array_equal(F.nan_to_num(x, posinf=7.0), np.nan_to_num(x, posinf=7.0))
    finite = np.array([0.3, -1.2])
    check_grads(F.nan_to_num, (finite,), order=2)
    for name in ("radians", "degrees", "deg2rad", "rad2deg", "real", "conj", "conjugate", "real_if_close"):
        np.testing.assert_array_equal(getattr(F, name)(finite), getattr(np, name)(finite))
        check_grads(getattr(F, name), (finite,), order=2)
    np.testing.assert_array_equal(F.imag(finite), np.imag(finite))
    np.testing.assert_array_equal(F.angle(finite), np.angle(finite))
    np.testing.assert_array_equal(F.remainder(finite, 0.7), np.remainder(finite, 0.7))
    z = np.array([1.0 + 2.0j])  # complex values are differentiated now (issue 23), so real takes them
    np.testing.assert_array_equal(F.real(z), np.real(z))


def test_float32_stays_float32():
    x = np.array([[0.5, 1.5], [2.0, 3.0]], np.float32)
    for out in (F.hstack([x, x]), F.kron(x, x), F.dot(x, x), F.diff(x), F.gradient(x)[0], F.rot90(x),
                F.convolve(x[0], x[1]), F.cross(np.ones(3, np.float32), np.arange(3.0, dtype=np.float32)),
                F.linspace(x[0], x[1], 3), F.diag(x[0])):
        assert out.dtype == np.float32


def test_bad_input_names_the_operation_and_shapes():
    with pytest.raises(ValueError, match=r"split: array of shape \(5,\)"):
        F.split(np.ones(5), 2)
    with pytest.raises(ValueError, match=r"dot: shapes \(2, 2, 3\) and \(2, 2, 2\)"):
        F.dot(np.ones((2, 2, 3)), np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match=r"cross: .*\(4,\)"):
        F.cross(np.ones(4), np.ones(3))
    with pytest.raises(ValueError, match="convolve: v cannot be empty"):
        F.convolve(np.ones(3), np.ones(0))
    with pytest.raises(ValueError, match=r"diag: .*\(1, 1, 1\)"):
        F.diag(np.ones((1, 1, 1)))


# ---- F.linalg: NumPy's every argument -----------------------------------------------------------------


@st.composite
def _matrices(draw, square=False):
    batch = draw(shapes(max_dims=1, max_side=2))
    m = draw(st.integers(1, 3))
    n = m if square else draw(st.integers(1, 3))
    return draw(_arrays((*batch, m, n)))


@SETTINGS
@given(a=_matrices())
def test_linalg_forward_values_are_numpys(a):
    for full in (True, False):
        for got, expected in zip(F.linalg.svd(a, full_matrices=full), np.linalg.svd(a, full_matrices=full)):
            np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(F.linalg.svd(a, compute_uv=False), np.linalg.svd(a, compute_uv=False))
    for mode in ("reduced", "complete", "r"):
        got, expected = F.linalg.qr(a, mode), np.linalg.qr(a, mode)
        for g, e in zip(got if mode != "r" else [got], expected if mode != "r" else [expected]):
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(F.linalg.pinv(a), np.linalg.pinv(a))
    square = a[..., :1, :1] if a.shape[-1] != a.shape[-2] else a
    for uplo in ("L", "U"):  # any input: NumPy reads one triangle
        np.testing.assert_array_equal(F.linalg.eigvalsh(square, uplo), np.linalg.eigvalsh(square, uplo))
        for got, expected in zip(F.linalg.eigh(square, uplo), np.linalg.eigh(square, uplo)):
            np.testing.assert_array_equal(got, expected)
    for n in (-2, 0, 1, 2, 5):
        if n >= 0 or np.all(np.abs(np.linalg.det(square)) > 1e-3):
            np.testing.assert_allclose(F.linalg.matrix_power(square, n), np.linalg.matrix_power(square, n),
                                       rtol=1e-9, atol=1e-9)
    flat = a.reshape(-1, a.shape[-1])
    for order in ("fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf):
        np.testing.assert_allclose(F.linalg.norm(flat, order), np.linalg.norm(flat, order), rtol=1e-12)
    for order in (None, 0, 1, 2, 3, 0.5, -1, np.inf, -np.inf):
        np.testing.assert_allclose(F.linalg.norm(a, order, axis=-1), np.linalg.norm(a, order, axis=-1),
                                   rtol=1e-12)


def test_linalg_gradients_of_numpys_arguments():
    rng = np.random.default_rng(3)
    tall, wide = rng.standard_normal((4, 2)), rng.standard_normal((2, 4))
    for a in (tall, wide):
        k = min(a.shape)
        # full_matrices=True: the completion carries no gradient, the leading columns do
        check_grads(lambda a: [F.getitem(F.linalg.svd(a)[0], (Ellipsis, slice(0, k))), F.linalg.svd(a)[1]],
                    (a,), order=2)
        check_grads(lambda a: F.linalg.qr(a, "r"), (a,), order=2)
        check_grads(lambda a: F.linalg.qr(a, "reduced"), (a,), order=2)
        check_grads(F.linalg.pinv, (a,), order=2)
        for order in ("fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf):
            check_grads(lambda a: F.linalg.norm(a, order), (a,), order=2)
    square = rng.standard_normal((3, 3))
    for uplo in ("L", "U"):
        check_grads(lambda a: F.linalg.eigh(a, uplo), (square,), order=2)
        check_grads(lambda a: F.linalg.eigvalsh(a, uplo), (square,), order=2)
    for n in (-3, 2, 6):
        check_grads(lambda a: F.linalg.matrix_power(a, n), (square,), order=2)
    with pytest.raises(NotImplementedError, match="svd: hermitian"):
        F.linalg.svd(square, hermitian=True)
    with pytest.raises(ValueError, match=r"qr: mode"):
        F.linalg.qr(square, "raw")
    with pytest.raises(ValueError, match=r"svd: .*\(3,\)"):
        F.linalg.svd(np.ones(3))

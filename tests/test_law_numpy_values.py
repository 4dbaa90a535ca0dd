"""Law 7: values are NumPy's. For every registered primitive with a NumPy or SciPy function of the
same meaning (the registry's `reference`), `F.name(args)` equals it wherever NumPy defines it, on the
built-in input spec and the edge grammar (±inf, nan, ties, views, float32), in value and dtype.
Primitives without such a function are listed with the reason (`OpInfo.no_reference`)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _laws import examples
from hypothesis import given, settings
from hypothesis import strategies as st

import mytorch
from mytorch import functional as F
from mytorch.testing.registry import registry

RECORDS = registry()
COMPARED = sorted(name for name, op in RECORDS.items() if op.reference is not None)


def _reference_call(op, example):
    """The NumPy call of the same meaning: the inputs as NumPy takes them, then the parameters."""
    if op.primitive.arity is None:  # one sequence of inputs
        if op.name == "einsum":
            return op.reference(example.params["subscripts"], *example.inputs)
        return op.reference(list(example.inputs), **example.params)
    return op.reference(*example.inputs, **example.params)


def test_every_primitive_has_a_reference_or_a_reason():
    assert [n for n, op in RECORDS.items() if op.reference is None and not op.no_reference] == []


@pytest.mark.parametrize("name", COMPARED)
@settings(max_examples=examples(15))
@given(data=st.data())
def test_forward_values_equal_numpys(name, data):
    op = RECORDS[name]
    example = data.draw(op.edge_examples(), label="example")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        refused = None
        with mytorch.no_grad():
            try:
                got = op.primitive.apply(example.inputs, example.params)
            except np.linalg.LinAlgError:
                # refused where LAPACK is undefined (an SVD of inf or nan, on which NumPy's call
                # may never return): checked first, so NumPy is not asked
                return
            except (ValueError, TypeError, IndexError) as error:
                refused = error
        try:
            expected = _reference_call(op, example)
        except (ValueError, TypeError, IndexError, np.linalg.LinAlgError):
            return  # NumPy does not define it here
        if refused is not None:
            raise refused  # NumPy defines it, mytorch refused it
    if name in ("svd", "qr"):  # NumPy's tuple, packed by the primitive: compared through F.linalg
        with mytorch.no_grad():
            mine = getattr(F.linalg, name)(*example.inputs, **example.params)
        for part, numpys in zip(mine, expected):
            np.testing.assert_allclose(part, numpys, rtol=1e-5, atol=1e-6)
        return
    if name == "slogdet":  # NumPy's pair (sign, log|det|), packed along a last axis by mytorch
        expected = np.stack([np.asarray(e) for e in expected], axis=-1)
    if name == "eig":  # NumPy's pair, packed as rows; eigenvectors up to sign (see F.linalg.eig)
        values, vectors = (np.asarray(e) for e in expected)
        np.testing.assert_allclose(got[..., 0, :], values, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.abs(got[..., 1:, :]), np.abs(vectors), rtol=1e-4, atol=1e-5)
        return
    if name == "eigh":  # NumPy's pair, packed as rows: the eigenvalues above the eigenvectors
        values, vectors = (np.asarray(e) for e in expected)
        np.testing.assert_allclose(got[..., 0, :], values, rtol=1e-5, atol=1e-6)
        # eigenvectors up to sign (mytorch fixes it: each one's largest component positive)
        np.testing.assert_allclose(np.abs(got[..., 1:, :]), np.abs(vectors), rtol=1e-4, atol=1e-5)
        return
    expected = np.asarray(expected)
    assert np.shape(got) == expected.shape, f"{name}: shape {np.shape(got)} ≠ NumPy's {expected.shape}"
    kept_float32 = got.dtype == np.float32 and any(  # mytorch keeps float32 where SciPy promotes (§8)
        isinstance(v, np.ndarray) and v.dtype == np.float32 for v in example.inputs)
    kept_float32 = kept_float32 or got.dtype == np.complex64 and any(
        isinstance(v, np.ndarray) and v.dtype in (np.float32, np.complex64) for v in example.inputs)
    if expected.dtype.kind in "fc" and not kept_float32:
        assert got.dtype == expected.dtype, f"{name}: dtype {got.dtype} ≠ NumPy's {expected.dtype}"
    single = {np.dtype(np.float32), np.dtype(np.complex64)}
    tolerance = 1e-5 if single & {got.dtype, expected.dtype} else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance, equal_nan=True)

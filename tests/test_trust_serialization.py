"""mytorch.load on files that are not what save wrote (issue 10): each raises a ValueError naming the
file and what is wrong, never a bare BadZipFile, EOFError, KeyError, JSONDecodeError or RecursionError;
a size cap refuses zip bombs before inflating them."""

import io
import json
import re
import zipfile

import numpy as np
import pytest

import mytorch
from mytorch import nn
from mytorch.serialization import MAX_BYTES, MAX_DEPTH


def _saved(tmp_path):
    np.random.seed(0)
    path = tmp_path / "model.npz"
    mytorch.save(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), path)
    return path


def _refused(path, match, **kwargs):
    with pytest.raises(ValueError, match=re.escape(f"load({path}): ") + match):
        mytorch.load(path, **kwargs)


def test_a_text_file_is_named_and_said_to_be_text(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("epoch 3: loss 0.25\n")
    _refused(path, r"not an \.npz archive written by mytorch\.save: it holds text beginning b'epoch '")


def test_an_empty_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    _refused(path, "the file is empty")


@pytest.mark.parametrize("keep", [4, 40, 0.5, -1, -30])
def test_a_truncated_file(tmp_path, keep):
    path = _saved(tmp_path)
    data = path.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    path.write_bytes(data[:cut])
    _refused(path, r"(not a complete \.npz \(zip\) archive: truncated or damaged|not an \.npz archive)")


def test_a_damaged_entry_is_named(tmp_path):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("0.npy")
    data[info.header_offset + 30 + len("0.npy") + 140] ^= 0xFF  # a byte of the array's data
    path.write_bytes(bytes(data))
    _refused(path, r"entry '0' is damaged .*\(BadZipFile: Bad CRC-32")


def _with_layout(path, layout, arrays=None):
    arrays = {"0": np.ones(2)} if arrays is None else arrays
    np.savez(path, __mytorch_layout__=np.array(layout), **arrays)
    return path


@pytest.mark.parametrize("layout, match", [
    ('{"dict": [["w", {"array": "7"}]]}', r"its layout names an array '7' that the archive does not hold"),
    ('{"dict": [["w", {"array": "0"}], ["v", {"array": "0"}]]}', "its layout names array '0' twice"),
    ('{"dict": [["w"', r"its layout is not valid JSON \(Expecting"),
    ('[1, 2]', r"its layout holds \[1, 2\] where a node"),
    ('{"dict": {"w": 1}}', "its layout has a dict node .* not a list of \\[key, node\\]"),
    ('{"dict": [[1, {"none": true}]]}', "its layout has a dict node"),
    ('{"list": 3}', "its layout has a list node .* not a list"),
    ('{"scalar": "eval", "value": "print(1)"}', "its layout has a scalar node"),
    ('{"scalar": "int", "value": "12"}', "its layout has a scalar node"),
    ('{"scalar": "int", "value": true}', "its layout has a scalar node"),
    ('{"weights": 1}', "its layout has a node .* of no known kind"),
    ('{"array": ["0"]}', r"its layout names an array \['0'\]"),
    ('{"list": [' * 300 + '{"none": true}' + "]}" * 300, f"its layout nests more than {MAX_DEPTH} levels"),
    ('{"list": [' * 100_000 + "]}" * 100_000, f"its layout nests more than {MAX_DEPTH} levels"),
])
def test_a_crafted_layout_is_refused_with_what_is_wrong(tmp_path, layout, match):
    _refused(_with_layout(tmp_path / "crafted.npz", layout), match)


def test_a_layout_that_is_not_a_string(tmp_path):
    path = tmp_path / "crafted.npz"
    np.savez(path, __mytorch_layout__=np.arange(3), **{"0": np.ones(2)})
    _refused(path, r"its layout entry is a int64 array of shape \(3,\), not a string")


def test_a_valid_layout_still_loads_and_scalars_keep_their_types(tmp_path):
    layout = json.dumps({"dict": [["w", {"array": "0"}], ["n", {"scalar": "float", "value": 2}],
                                  ["t", {"tuple": [{"none": True}]}]]})
    loaded = mytorch.load(_with_layout(tmp_path / "ok.npz", layout))
    assert loaded["n"] == 2.0 and type(loaded["n"]) is float and loaded["t"] == (None,)
    np.testing.assert_array_equal(loaded["w"], np.ones(2))


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, w=np.zeros(2**22))  # 32 MiB of zeros in a few tens of KiB
    assert path.stat().st_size < 2**17
    _refused(path, r"its entries declare \d+ bytes once inflated, more than max_bytes=1000000 "
                   r"\(a zip bomb\?\)", max_bytes=10**6)
    assert mytorch.load(path)["w"].shape == (2**22,)  # under the default cap of 1 GiB
    assert MAX_BYTES == 2**30


def _entry_declaring(shape):
    """An .npy entry whose header declares `shape` of float64 but which holds 16 bytes of data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return header.getvalue() + bytes(16)


@pytest.mark.parametrize("shape, match", [
    ((10**12,), r"entry 'w' declares shape \(1000000000000,\) of float64 \(8000000000000 bytes\), more "
                r"than max_bytes=1073741824"),
    ((1000,), r"entry 'w' declares shape \(1000,\) of float64 \(8000 bytes\), more than the \d+ bytes "
              r"stored for it"),
])
def test_an_entry_whose_header_lies_about_its_size_is_refused(tmp_path, shape, match):
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("w.npy", _entry_declaring(shape))
    _refused(path, match)


def test_a_stream_is_named_by_its_type():
    with pytest.raises(ValueError, match=r"load\(<BytesIO>\): the file is empty"):
        mytorch.load(io.BytesIO())


def test_a_bare_npy_file_loads_and_is_checked_too(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(4.0))
    np.testing.assert_array_equal(mytorch.load(tmp_path / "a.npy"), np.arange(4.0))
    _refused(tmp_path / "a.npy", r"the array declares shape \(4,\) of float64 \(32 bytes\), more than "
                                 r"max_bytes=10", max_bytes=10)
    np.save(tmp_path / "o.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    _refused(tmp_path / "o.npy", "the array holds object \\(pickled\\) arrays; mytorch.load never unpickles")


def test_a_missing_file_is_still_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        mytorch.load(tmp_path / "nowhere.npz")

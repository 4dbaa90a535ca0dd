"""`mytorch.save(obj, path)` and `mytorch.load(path)`: arrays and (nested) dicts of arrays in .npz.

Loading never unpickles (numpy's `allow_pickle=False`): an .npz holding object arrays is refused
with a clear error instead of running whatever code a pickle carries. The layout of nested dicts is
kept in one JSON string stored as a plain unicode array. `load` trusts nothing in the file: the
archive, every array's header (its declared size against a cap and against what is stored) and
every node of the layout are checked, and whatever is wrong is said with the file's name.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
>>> save({"0.weight": np.eye(2), "epoch": 3}, path)
>>> load(path)["0.weight"]
array([[1., 0.],
       [0., 1.]])
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from typing import IO, Any

import numpy as np

_LAYOUT = "__mytorch_layout__"
_SCALARS = {"int": int, "float": float, "bool": bool, "str": str}
MAX_BYTES = 2**30  # load's default cap on the arrays' total (uncompressed) size
MAX_DEPTH = 200  # load's cap on how deeply a layout nests containers


def save(obj: Any, path: str | os.PathLike | IO[bytes]) -> None:
    """Write an array, a number, a Module (its state_dict) or a nested dict of those to `path`."""
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        obj = obj.state_dict()
    arrays: dict[str, np.ndarray] = {}
    layout = _flatten(obj, arrays, where="obj")
    arrays[_LAYOUT] = np.array(json.dumps(layout))
    if isinstance(path, (str, os.PathLike)):
        with open(path, "wb") as file:  # the exact path: np.savez would append ".npz" to a bare name
            np.savez(file, **arrays)
    else:
        np.savez(path, **arrays)


def load(path: str | os.PathLike | IO[bytes], *, max_bytes: int = MAX_BYTES) -> Any:
    """Read what `save` wrote (or a plain `.npz` / `.npy` of numeric arrays); never unpickles.

    A file that is not such an archive (text, empty, truncated, damaged, or a crafted layout: keys
    that do not match, JSON that does not parse or nests too deeply) raises `ValueError` naming the
    file and what is wrong. `max_bytes` (1 GiB by default) caps the total size the arrays declare:
    a small file that would inflate beyond it (a zip bomb) is refused before anything is inflated.
    """
    where = os.fspath(path) if isinstance(path, (str, os.PathLike)) else f"<{type(path).__name__}>"
    try:
        if isinstance(path, (str, os.PathLike)):
            with open(path, "rb") as file:
                return _load(file, max_bytes)
        return _load(path, max_bytes)
    except _Refused as problem:
        raise ValueError(f"load({where}): {problem}") from problem.__cause__


class _Refused(Exception):
    """What is wrong with the file (load adds which file)."""


_ZIP, _NPY = (b"PK\x03\x04", b"PK\x05\x06"), b"\x93NUMPY"
# What a damaged archive or entry raises from zipfile, zlib and numpy's reader.
_DAMAGED = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError)


def _load(file: IO[bytes], max_bytes: int) -> Any:
    start = file.tell()
    head = file.read(len(_NPY))
    file.seek(start)
    if not head:
        raise _Refused("the file is empty")
    if head == _NPY:
        stored = file.seek(0, os.SEEK_END) - start
        file.seek(start)
        return _read_npy(file, "the array", max_bytes, stored)
    if not head.startswith(_ZIP):
        kind = "text" if _looks_like_text(file, start) else "data"
        raise _Refused(
            f"not an .npz archive written by mytorch.save: it holds {kind} beginning {head!r} "
            "(an .npz file is a zip archive, beginning b'PK\\x03\\x04')"
        )
    try:
        archive = zipfile.ZipFile(file)
        entries = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
    except _DAMAGED as error:
        raise _Refused(f"not a complete .npz (zip) archive: truncated or damaged ({error})") from error
    declared = sum(info.file_size for info in entries.values())
    if declared > max_bytes:
        raise _Refused(
            f"its entries declare {declared} bytes once inflated, more than max_bytes={max_bytes} "
            "(a zip bomb?); pass load(..., max_bytes=N) to allow more"
        )
    with archive:
        if _LAYOUT not in entries:  # a plain .npz from np.savez: its arrays by name
            return {name: _read_entry(archive, info, name, max_bytes) for name, info in entries.items()}
        text = _read_entry(archive, entries[_LAYOUT], _LAYOUT, max_bytes)
        if text.dtype.kind != "U" or text.ndim != 0:
            raise _Refused(f"its layout entry is a {text.dtype} array of shape {text.shape}, not a string")
        try:
            layout = json.loads(str(text))
        except json.JSONDecodeError as error:
            raise _Refused(f"its layout is not valid JSON ({error})") from error
        except RecursionError as error:
            raise _Refused(f"its layout nests more than {MAX_DEPTH} levels deep") from error
        arrays = {name: info for name, info in entries.items() if name != _LAYOUT}
        return _unflatten(layout, lambda key: _read_entry(archive, arrays[key], key, max_bytes), arrays)


def _looks_like_text(file: IO[bytes], start: int) -> bool:
    sample = file.read(512)
    file.seek(start)
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, max_bytes: int) -> np.ndarray:
    try:
        with archive.open(info) as entry:
            return _read_npy(entry, f"entry {name!r}", max_bytes, info.file_size)
    except _DAMAGED as error:
        raise _Refused(f"entry {name!r} is damaged or truncated ({type(error).__name__}: {error})") from error


def _read_npy(file: IO[bytes], name: str, max_bytes: int, stored: int) -> np.ndarray:
    """One .npy array, after checking from its header that it is no object array and no bomb."""
    start = file.tell() if file.seekable() else None
    try:
        version = np.lib.format.read_magic(file)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else (
            np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(file)
    except _DAMAGED as error:
        raise _Refused(f"{name} is damaged or not an .npy array ({type(error).__name__}: {error})") from error
    if dtype.hasobject:
        raise _Refused(
            f"{name} holds object (pickled) arrays; mytorch.load never unpickles. Save plain numeric "
            "arrays instead."
        )
    size = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if size > max_bytes or size > stored:
        raise _Refused(
            f"{name} declares shape {shape} of {dtype} ({size} bytes), more than "
            + (f"max_bytes={max_bytes}" if size > max_bytes else f"the {stored} bytes stored for it")
        )
    if start is None:
        raise _Refused(f"{name} cannot be read again from a stream that does not seek")
    file.seek(start)
    try:
        return np.lib.format.read_array(file, allow_pickle=False)
    except _DAMAGED as error:
        raise _Refused(f"{name} is damaged or truncated ({type(error).__name__}: {error})") from error


def _flatten(obj: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    """Store the arrays of `obj` in `arrays` (under numbered keys) and return its JSON layout."""
    if isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, str):
                raise TypeError(f"save: dict keys must be strings, got {key!r} in {where}")
        return {"dict": [[key, _flatten(value, arrays, f"{where}[{key!r}]")] for key, value in obj.items()]}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_flatten(value, arrays, f"{where}[{i}]") for i, value in enumerate(obj)]}
    if isinstance(obj, (bool, int, float, str)) and not isinstance(obj, np.generic):
        return {"scalar": type(obj).__name__, "value": obj}
    if obj is None:
        return {"none": True}
    array = np.asarray(obj)
    if array.dtype.hasobject:
        raise TypeError(
            f"save: {where} is an object array ({type(obj).__name__}); only numeric, bool and string "
            "arrays can be saved without pickling"
        )
    key = str(len(arrays))
    arrays[key] = array
    return {"array": key}


def _unflatten(layout: Any, read: Any, arrays: dict, depth: int = 0, used: set | None = None) -> Any:
    """Rebuild what `_flatten` stored, checking every node (a crafted layout gets a clear error)."""
    used = set() if used is None else used
    if depth > MAX_DEPTH:
        raise _Refused(f"its layout nests more than {MAX_DEPTH} levels deep")
    if not isinstance(layout, dict) or not layout:
        raise _Refused(f"its layout holds {_short(layout)} where a node ({{'array': key}}, ...) belongs")
    inner = depth + 1
    if "dict" in layout:
        pairs = layout["dict"]
        if not isinstance(pairs, list) or not all(
            isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) for pair in pairs
        ):
            raise _Refused(f"its layout has a dict node {_short(layout)} that is not a list of [key, node]")
        return {key: _unflatten(value, read, arrays, inner, used) for key, value in pairs}
    for kind, make in (("list", list), ("tuple", tuple)):
        if kind in layout:
            if not isinstance(layout[kind], list):
                raise _Refused(f"its layout has a {kind} node {_short(layout)} that is not a list")
            return make(_unflatten(value, read, arrays, inner, used) for value in layout[kind])
    if "scalar" in layout:
        kind, value = layout["scalar"], layout.get("value")
        allowed = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}.get(kind)
        if allowed is None or not isinstance(value, allowed) or (kind != "bool" and isinstance(value, bool)):
            raise _Refused(f"its layout has a scalar node {_short(layout)}: not an int, float, bool or str")
        return _SCALARS[kind](value)
    if "none" in layout:
        return None
    key = layout.get("array")
    if "array" not in layout:
        raise _Refused(f"its layout has a node {_short(layout)} of no known kind (dict, list, array...)")
    if not isinstance(key, str) or key not in arrays:
        raise _Refused(
            f"its layout names an array {_short(key)} that the archive does not hold "
            f"(it holds {sorted(arrays)[:10]})"
        )
    if key in used:
        raise _Refused(f"its layout names array {key!r} twice")
    used.add(key)
    return read(key)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

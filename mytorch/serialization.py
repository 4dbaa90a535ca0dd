"""`mytorch.save(obj, path)` and `mytorch.load(path)`: arrays and (nested) dicts of arrays in .npz.

Loading never unpickles (numpy's `allow_pickle=False`): an .npz holding object arrays is refused
with a clear error instead of running whatever code a pickle carries. The layout of nested dicts is
kept in one JSON string stored as a plain unicode array.

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
from typing import IO, Any

import numpy as np

_LAYOUT = "__mytorch_layout__"
_SCALARS = {"int": int, "float": float, "bool": bool, "str": str}


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


def load(path: str | os.PathLike | IO[bytes]) -> Any:
    """Read what `save` wrote; never unpickles."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if _LAYOUT not in archive.files:  # a plain .npz from np.savez: its arrays by name
                return {name: archive[name] for name in archive.files}
            layout = json.loads(str(archive[_LAYOUT]))
            return _unflatten(layout, archive)
    except ValueError as error:
        if "allow_pickle" in str(error) or "Object arrays" in str(error):
            raise ValueError(
                f"load({os.fspath(path) if isinstance(path, (str, os.PathLike)) else 'file'}): "
                "the file holds "
                "object (pickled) arrays; mytorch.load never unpickles. Save plain numeric arrays instead."
            ) from error
        raise


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


def _unflatten(layout: Any, archive: Any) -> Any:
    if "dict" in layout:
        return {key: _unflatten(value, archive) for key, value in layout["dict"]}
    if "list" in layout:
        return [_unflatten(value, archive) for value in layout["list"]]
    if "tuple" in layout:
        return tuple(_unflatten(value, archive) for value in layout["tuple"])
    if "scalar" in layout:
        return _SCALARS[layout["scalar"]](layout["value"])
    if "none" in layout:
        return None
    return archive[layout["array"]]

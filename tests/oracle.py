"""PyTorch, the tests' oracle, imported on first use.

`from oracle import torch` at the top of a test file costs nothing: a test that touches `torch`
skips (as `pytest.importorskip` would) when PyTorch is not installed, and the file's other tests
still run. Module-level code must not touch it.
"""

import importlib

import pytest

# An installed but broken torch skips too (pytest >= 8.2 wants that said, and warns otherwise).
_PYTEST = tuple(int(part) for part in pytest.__version__.split(".")[:2])
_IMPORT_ERROR = {"exc_type": ImportError} if _PYTEST >= (8, 2) else {}


class _Oracle:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):  # introspection (pytest, copy, pickle): not the oracle
            raise AttributeError(attribute)
        pytest.importorskip(self._name.split(".")[0], reason="PyTorch, the test oracle, is not installed",
                            **_IMPORT_ERROR)
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<{self._name}, imported on first use>"


torch = _Oracle("torch")
TF = _Oracle("torch.nn.functional")

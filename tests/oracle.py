"""PyTorch, the tests' oracle, imported on first use.

`from oracle import torch` at the top of a test file costs nothing: a test that touches `torch`
skips (as `pytest.importorskip` would) when PyTorch is not installed, and the file's other tests
still run. Module-level code must not touch it.
"""

import importlib

import pytest


class _Oracle:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):  # introspection (pytest, copy, pickle): not the oracle
            raise AttributeError(attribute)
        pytest.importorskip(self._name.split(".")[0], reason="PyTorch, the test oracle, is not installed")
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<{self._name}, imported on first use>"


torch = _Oracle("torch")
TF = _Oracle("torch.nn.functional")

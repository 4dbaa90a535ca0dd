"""Every ```python block of README.md runs as pasted, each on its own: in a fresh namespace, on a
fresh engine (the autouse fixture), with nothing defined by the blocks before it. A block that
imports torch skips when PyTorch is not installed."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _blocks() -> list:
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start()) + 2  # the block's first line of code
        blocks.append(pytest.param(match.group(1), line, id=f"README.md:{line}"))
    return blocks


def test_the_readme_has_python_blocks():
    assert len(_blocks()) >= 3


@pytest.mark.parametrize("source, line", _blocks())
def test_a_readme_python_block_runs_as_pasted(source, line):
    if re.search(r"^\s*(import torch|from torch)\b", source, re.MULTILINE):
        pytest.importorskip("torch")
    code = compile("\n" * (line - 1) + source, str(README), "exec")  # tracebacks show README's lines
    exec(code, {"__name__": "__readme__"})

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


def _table_examples() -> list:
    """The `example` column of README's primitive and composition tables: (family, expression of x)."""
    text = README.read_text(encoding="utf-8")
    rows = re.findall(r"^\| ([^|]+?) \| [^\n]*\| `([^`]+)` \|$", text, re.MULTILINE)
    return [pytest.param(expression, id=family) for family, expression in rows]


def test_every_family_of_the_primitive_tables_has_an_example():
    assert len(_table_examples()) >= 24


@pytest.mark.parametrize("expression", _table_examples())
def test_a_family_example_runs_on_a_tracked_vector_and_its_gradient_is_right(expression):
    """Each example is a function of x (4 numbers), differentiated in both orders by check_grads."""
    import numpy as np
    import scipy.special

    import mytorch
    from mytorch import functional as F

    namespace = {"np": np, "F": F, "mytorch": mytorch, "scipy": scipy}
    f = eval(f"lambda x: {expression}", namespace)  # noqa: S307 - the README's own text
    x = np.array([0.27, 0.41, 0.62, 0.83])
    np.testing.assert_allclose(f(mytorch.track(x)), f(x), rtol=1e-12)  # (plain x: NumPy's own, or F.*)
    mytorch.check_grads(f, (x,), order=2)

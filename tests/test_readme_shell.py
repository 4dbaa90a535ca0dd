"""Every ```bash block of README.md runs as pasted, in order, in a fresh copy of the repository, as a
reader of the README would run them: one shell per block, one folder for all.

`pip` and `pytest` are stand-ins on the PATH that only record their arguments: installing would
change the machine's Python for everyone, and this test runs inside the suite `pytest` would start.
The copy is first on PYTHONPATH, as `pip install -e .` would make it.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```bash[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
LEFT_OUT = (".git", "__pycache__", ".hypothesis", ".ruff_cache", ".benchmarks", "*.egg-info", ".pytest_cache")


def bash_blocks(text: str) -> list[tuple[int, str]]:
    """(first line, code) of each bash block.

    >>> bash_blocks("text\\n```bash\\necho hi\\n```\\n")
    [(3, 'echo hi\\n')]
    """
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in BLOCK.finditer(text)]


def _stand_in(folder: Path, name: str) -> None:
    path = folder / name
    path.write_text(f'#!/usr/bin/env bash\necho "{name} $*" >> "$STAND_IN_LOG"\n', encoding="utf-8")
    path.chmod(0o755)


def test_every_readme_shell_command_runs_as_pasted(tmp_path: Path) -> None:
    clone = tmp_path / "mytorch"
    shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns(*LEFT_OUT, "grades", "hw1*", "submissions"))
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    for name in ("pip", "pytest"):
        _stand_in(bin_folder, name)
    (bin_folder / "python").symlink_to(sys.executable)
    env = {**os.environ, "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(clone),
           "STAND_IN_LOG": str(tmp_path / "stand-ins.log"), "MPLBACKEND": "Agg"}
    blocks = bash_blocks((clone / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 4
    for line, code in blocks:
        run = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=clone, env=env,
                             capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, f"README.md:{line}\n{code}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    # What the commands promise to leave behind.
    assert json.loads((clone / "alice.json").read_text(encoding="utf-8"))["max_score"] > 0
    rows = list(csv.DictReader((clone / "grades" / "grades.csv").open(encoding="utf-8")))
    assert [row["student"] for row in rows] == ["alice"]
    assert (clone / "hw1-gradescope.zip").is_file() and (clone / "hw1-autolab" / "autograde.tar").is_file()
    assert "pip install -e ." in (tmp_path / "stand-ins.log").read_text(encoding="utf-8")

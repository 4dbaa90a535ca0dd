"""The benchmark runs in --quick mode and every implementation's gradients agree with the baseline.

No timing is asserted here: the machines are noisy. Speed is read off `python -m mytorch bench`.
"""

import contextlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from mytorch import autograd_engine
from mytorch.bench import gradient_difference, implementations
from mytorch.bench.compare import this_tree
from mytorch.bench.workloads import SAFETY_FEATURES, safety_row, workloads
from mytorch.cli import main

# float32 MLP and B4 conv, the rest float64
TOLERANCE = {"chain": 1e-9, "mlp": 1e-5, "conv": 1e-9, "b4": 1e-4, "rnn": 1e-9}


def test_quick_bench_runs_and_its_gradients_agree(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--no-peers", "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(path.read_text())
    names = [row["workload"] for row in report["rows"]]
    assert names == [row.name for row in workloads()]
    kinds = {row.name: row.kind for row in workloads()}
    for row in report["rows"]:
        assert set(row["seconds"]) >= {"NumPy", "mytorch"}
        if not row["workload"].startswith("B3"):  # the compiled rows: every workload but the long chain
            assert "mytorch compiled" in row["seconds"], row["workload"]
        for name, difference in row["grad_diff"].items():  # eager and compiled alike
            assert difference <= TOLERANCE[kinds[row["workload"]]], (name, row)
        assert row["workload"] in printed
    assert "mytorch per op / NumPy forward floor" in printed
    verdicts = {v["target"]: v["verdict"] for v in report["targets"]}
    assert len(verdicts) >= 10 and set(verdicts.values()) <= {"met", "missed", "n/a"}
    assert "Targets" in printed and "100k-op chain" in printed
    targets = "\n".join(v["target"] for v in report["targets"])
    for row in ("B1 eager per op vs PyTorch", "B2 eager N=32", "B2 compiled N=32", "B4 conv eager vs PyTorch",
                "B4 conv compiled vs PyTorch", "RNN eager", "RNN compiled", "tracked arrays"):
        assert row in targets, row


@pytest.mark.parametrize("row", workloads(), ids=lambda row: row.name)
def test_peers_compute_the_same_gradients(row):
    pytest.importorskip("torch")
    if row.name.startswith("B3"):
        pytest.skip("the long chain is covered by the quick run")
    data = row.make_data()
    import copy

    expected = row.baseline(copy.deepcopy(data))
    for name, run in implementations(row, with_peers=True).items():
        assert gradient_difference(expected, run(copy.deepcopy(data))) <= TOLERANCE[row.kind], name


def _in_a_git_checkout() -> bool:
    if shutil.which("git") is None:
        return False
    done = subprocess.run(["git", "-C", str(this_tree()), "rev-parse", "HEAD"], capture_output=True)
    return done.returncode == 0


def _compare_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("mytorch-compare-*"))


@pytest.mark.skipif(not _in_a_git_checkout(), reason="bench --compare needs git and a git checkout")
def test_compare_times_another_revision_beside_this_tree(tmp_path, capsys):
    """HEAD against itself on the smallest row: both trees' rows in one run, the checkout removed."""
    before = _compare_folders()
    path = tmp_path / "compare.json"
    assert main(["bench", "--compare", "HEAD", "--only", "B1", "--rounds", "2", "--no-peers",
                 "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(path.read_text())
    assert report["rev"] == "HEAD" and len(report["commit"]) == 40
    [row] = report["rows"]
    assert row["workload"] == "B1 elementwise" and row["rounds"] == 2
    for name in ("NumPy", "mytorch", "mytorch compiled", "NumPy @HEAD", "mytorch @HEAD",
                 "mytorch compiled @HEAD"):
        assert row["seconds"][name] > 0, name
        assert row["grad_diff"][name] <= 1e-9, name
    assert set(report["targets"]) == {"this", "HEAD"}
    ours, theirs = report["targets"]["this"], report["targets"]["HEAD"]
    assert [v["target"] for v in ours] == [v["target"] for v in theirs]
    # Every row of HEAD's tree is timed beside this tree's (the safety-off rows where HEAD has them).
    assert {"NumPy @HEAD", "mytorch @HEAD", "mytorch operators @HEAD",
            "mytorch compiled @HEAD"} <= set(row["versus_this"])
    assert all(name.endswith(" @HEAD") for name in row["versus_this"])
    assert "mytorch @HEAD" in printed and "vs this" in printed and "this tree | HEAD" in printed
    assert _compare_folders() <= before  # the temporary checkout is gone


@pytest.mark.skipif(not _in_a_git_checkout(), reason="bench --compare needs git and a git checkout")
def test_compare_names_a_revision_that_does_not_exist(capsys):
    assert main(["bench", "--compare", "no-such-revision-xyz", "--no-peers"]) == 2
    assert "no-such-revision-xyz" in capsys.readouterr().out


def test_safety_rows_run_the_eager_step_with_one_feature_off(monkeypatch):
    """The rows assume `autograd_engine.safety_off(feature)`; a refused feature is a note, not a row."""
    entered = []

    @contextlib.contextmanager
    def safety_off(feature):
        if feature == "checks":
            raise ValueError("not switchable here")
        entered.append(feature)
        yield

    monkeypatch.setattr(autograd_engine, "safety_off", safety_off, raising=False)
    rows = {row.name: row for row in workloads()}
    b1 = rows["B1 elementwise"]
    assert safety_row("guard") in b1.implementations and safety_row("consumption") in b1.implementations
    assert safety_row("checks") not in b1.implementations
    assert any("checks" in note for note in b1.notes)
    entered.clear()
    data = b1.make_data()
    expected = b1.baseline(data)
    assert gradient_difference(expected, b1.implementations[safety_row("guard")](data)) <= 1e-9
    assert entered == ["guard"]
    for name in ("B2 MLP N=32", "RNN step"):
        assert safety_row("guard") in rows[name].implementations


def test_without_the_switch_the_safety_rows_are_a_note(monkeypatch):
    monkeypatch.delattr(autograd_engine, "safety_off", raising=False)
    b1 = {row.name: row for row in workloads()}["B1 elementwise"]
    assert not any(safety_row(feature) in b1.implementations for feature in SAFETY_FEATURES)
    assert any("safety_off" in note for note in b1.notes)


def test_a_safety_row_that_cannot_run_the_step_is_a_note(monkeypatch, capsys):
    """An engine whose switch breaks a step (here: every call under it) costs a note, not the run."""

    @contextlib.contextmanager
    def safety_off(feature):
        before = autograd_engine.engine()
        yield
        if autograd_engine.engine() is not before:  # a step ran (it makes an engine), not the probe
            raise RuntimeError(f"{feature} cannot be switched off here")

    monkeypatch.setattr(autograd_engine, "safety_off", safety_off, raising=False)
    assert main(["bench", "--only", "B1", "--rounds", "1", "--no-peers"]) == 0
    printed = capsys.readouterr().out
    assert "'mytorch guard off' not timed: RuntimeError" in printed
    assert "mytorch guard off " not in printed.split("note:")[0]

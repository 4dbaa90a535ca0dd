"""The benchmark runs in --quick mode and every implementation's gradients agree with the baseline.

No timing is asserted here: the machines are noisy. Speed is read off `python -m mytorch bench`.
"""

import json

import pytest

from mytorch.bench import gradient_difference, implementations
from mytorch.bench.workloads import workloads
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
    assert "Targets" in printed and "100k-op chain under 1.5 s" in printed


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

"""The demo: the lecture's traces read off the tape, the Iris MLP, the graphs; end to end."""

import argparse
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import mytorch
from mytorch import demo
from mytorch import functional as F


def test_lecture_traces_are_the_lectures_numbers():
    traces = demo.lecture_traces()
    values = [traces.value(f"v{i}") for i in range(1, 8)]
    v3, v4, v5 = np.log(2), 10, np.sin(5)
    np.testing.assert_allclose(values, [2, 5, v3, v4, v5, v3 + v4, v3 + v4 - v5])
    assert round(traces.value("v7"), 3) == 11.652
    tangents = [traces.tangent(f"v{i}") for i in range(1, 8)]
    np.testing.assert_allclose(tangents, [1, 0, 0.5, 5, 0, 5.5, 5.5])
    adjoints = [traces.adjoint(f"v{i}") for i in range(1, 8)]
    np.testing.assert_allclose(adjoints, [5.5, 2 - np.cos(5), 1, 1, -1, 1, 1])
    assert round(traces.adjoint("v2"), 3) == 1.716
    assert traces.gradients == pytest.approx((5.5, 2 - np.cos(5)))
    # the tape is the real one: five recorded primitives in the lecture's order
    assert [op.primitive.name for op in traces.engine.operation_list] == ["log", "mul", "sin", "add", "sub"]


def test_the_traces_agree_with_the_transforms():
    def f(x1, x2):
        return F.sub(F.add(F.log(x1), F.mul(x1, x2)), F.sin(x2))

    x1, x2 = np.array(2.0), np.array(5.0)
    _, tangent = mytorch.jvp(f, (x1, x2), (np.array(1.0), np.array(0.0)))
    traces = demo.lecture_traces()
    assert traces.tangent("v7") == pytest.approx(float(tangent))
    assert traces.gradients == pytest.approx([float(g) for g in mytorch.grad(f, argnums=(0, 1))(x1, x2)])


def test_format_traces_prints_three_tables_and_has_an_ascii_form():
    traces = demo.lecture_traces()
    text = demo.format_traces(traces)
    assert text.count("trace") >= 3
    assert re.search(r"v5 = sin v2\s+= -0\.959", text)
    assert re.search(r"v\u03047 = ∂y/∂v7\s+= 1", text)
    assert re.search(r"v\u03042 = v\u03045 × cos v2 \+ v\u03044 × v1\s+= -0\.284 \+ 2\s+= 1\.716", text)
    plain = demo.format_traces(traces, unicode=False)
    plain.encode("ascii")
    assert re.search(r"v1_bar = v4_bar \* v2 \+ v3_bar / v1\s+= 5 \+ 0\.5\s+= 5\.5", plain)
    assert re.search(r"v4_dot = v1_dot \* v2 \+ v2_dot \* v1\s+= 5", plain)


def test_iris_training_is_deterministic_and_accurate():
    first = demo.train_iris(epochs=5, seed=3, progress=False)
    second = demo.train_iris(epochs=5, seed=3, progress=False)
    assert first.losses == second.losses
    assert first.train_size == 120 and first.test_size == 30
    result = demo.train_iris(epochs=100, seed=0, progress=False)
    assert result.losses[-1] < 0.1 < result.losses[0]
    assert result.test_accuracy >= 0.85 and result.train_accuracy >= 0.95


def test_iris_is_shipped_whole():
    features, labels, classes = demo.load_iris()
    assert features.shape == (150, 4) and classes == ["setosa", "versicolor", "virginica"]
    assert np.bincount(labels).tolist() == [50, 50, 50]
    np.testing.assert_allclose(features.mean(axis=0), [5.843, 3.057, 3.758, 1.199], atol=1e-3)


def test_tape_to_dot_draws_every_operation_and_array():
    traces = demo.lecture_traces()
    dot = demo.tape_to_dot(traces.engine.operation_list, {}, "lecture")
    assert dot.startswith('digraph "lecture" {') and dot.rstrip().endswith("}")
    assert dot.count("shape=box") == 5 and dot.count("shape=ellipse") == 7
    assert dot.count("->") == 8 + 5  # eight inputs into operations, five outputs out of them


def test_run_prints_the_numbers_and_writes_the_files(tmp_path, capsys):
    out = tmp_path / "demo output"
    assert demo.run(argparse.Namespace(epochs=40, seed=0, out=str(out))) == 0
    printed = capsys.readouterr().out
    assert re.search(r"y = v7\s+= 11\.652", printed)
    assert re.search(r"v\u03077 = v\u03076 - v\u03075\s+= 5\.5", printed)
    assert re.search(r"v\u03041 = .*= 5\.5", printed)
    assert re.search(r"v\u03042 = .*= 1\.716", printed)
    assert "engine.backward(y) agrees: dy/dx1 = 5.5, dy/dx2 = 1.716" in printed
    accuracy = float(re.search(r"test accuracy: (\d\.\d+)", printed).group(1))
    assert accuracy >= 0.85
    assert (out / "lecture_tape.dot").exists() and (out / "mlp_tape.dot").exists()
    assert "0.weight" in (out / "mlp_tape.dot").read_text()
    try:
        import matplotlib  # noqa: F401

        assert (out / "loss_curve.png").stat().st_size > 1000
    except ImportError:
        assert "matplotlib is not installed" in printed
    if shutil.which("dot"):
        assert (out / "lecture_tape.svg").exists()
    assert re.search(r"demo finished in \d+\.\d+ s", printed)


def test_run_refuses_zero_epochs(tmp_path):
    assert demo.run(argparse.Namespace(epochs=0, seed=0, out=str(tmp_path))) == 2


def test_the_command_line_runs_the_demo(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mytorch", "demo", "--epochs", "3", "--seed", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "test accuracy:" in done.stdout and "11.652" in done.stdout
    assert "training" in done.stderr  # tqdm's progress bar
    command = [sys.executable, "-m", "mytorch", "demo", "--epochs", "1", "--out", str(tmp_path)]
    ascii_only = subprocess.run(command, capture_output=True, text=True, timeout=300,
                                env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert ascii_only.returncode == 0, ascii_only.stderr
    assert "v2_bar = v5_bar * cos v2 + v4_bar * v1" in ascii_only.stdout
    listing = subprocess.run([sys.executable, "-m", "mytorch", "--help"], capture_output=True, text=True,
                             timeout=300)
    assert "demo" in listing.stdout
    script = shutil.which("mytorch")
    if script:  # the console script, when the package is installed
        helped = subprocess.run([script, "demo", "--help"], capture_output=True, text=True, timeout=300)
        assert helped.returncode == 0 and "--epochs" in helped.stdout

"""mytorch.save / mytorch.load: state_dicts of nested modules over .npz, never unpickling."""

import io
import pathlib

import numpy as np
import pytest

import mytorch
from mytorch import nn


def _model():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(),
                         nn.Sequential(nn.Linear(4, 2), nn.Tanh()))


def test_state_dict_round_trip_restores_the_model(tmp_path):
    np.random.seed(0)
    model = _model()
    model(np.random.normal(size=(6, 3)))  # moves BatchNorm's running statistics
    path = tmp_path / "model.npz"
    mytorch.save(model.state_dict(), path)
    state = mytorch.load(path)
    assert list(state) == list(model.state_dict())
    assert "3.0.weight" in state and "1.running_var" in state
    assert state["1.num_batches_tracked"].dtype == np.int64

    fresh = _model()
    fresh.load_state_dict(state)
    x = np.random.normal(size=(5, 3))
    model.eval()
    fresh.eval()
    with mytorch.no_grad():
        np.testing.assert_array_equal(fresh(x), model(x))


def test_a_module_saves_its_state_dict_and_the_path_is_kept_exactly(tmp_path):
    model = _model()
    path = tmp_path / "weights"  # no .npz suffix added behind the user's back
    mytorch.save(model, path)
    assert path.exists() and not (tmp_path / "weights.npz").exists()
    for key, value in mytorch.load(str(path)).items():
        np.testing.assert_array_equal(value, model.state_dict()[key])


def test_nested_containers_numbers_and_strings_round_trip():
    checkpoint = {
        "model": {"0.weight": np.eye(2), "0.bias": np.zeros(2, dtype=np.float32)},
        "optimizer": {"step": 7, "lr": 0.01, "nesterov": False, "name": "SGD",
                      "state": [np.ones(3), (1, 2.5)]},
        "note": None,
        "labels": np.array(["setosa", "versicolor"]),
    }
    buffer = io.BytesIO()
    mytorch.save(checkpoint, buffer)
    buffer.seek(0)
    loaded = mytorch.load(buffer)
    assert loaded["optimizer"]["step"] == 7 and type(loaded["optimizer"]["step"]) is int
    assert loaded["optimizer"]["lr"] == 0.01 and loaded["optimizer"]["nesterov"] is False
    assert loaded["optimizer"]["name"] == "SGD" and loaded["note"] is None
    assert loaded["optimizer"]["state"][1] == (1, 2.5)
    np.testing.assert_array_equal(loaded["optimizer"]["state"][0], np.ones(3))
    assert loaded["model"]["0.bias"].dtype == np.float32
    np.testing.assert_array_equal(loaded["labels"], checkpoint["labels"])


def test_a_bare_array_and_a_plain_npz(tmp_path):
    mytorch.save(np.arange(6.0).reshape(2, 3), tmp_path / "a.npz")
    np.testing.assert_array_equal(mytorch.load(tmp_path / "a.npz"), np.arange(6.0).reshape(2, 3))
    np.savez(tmp_path / "plain.npz", w=np.ones(2), b=np.zeros(1))
    plain = mytorch.load(tmp_path / "plain.npz")
    assert set(plain) == {"w", "b"}


def test_object_arrays_are_refused_when_saving():
    with pytest.raises(TypeError, match=r"obj\['bad'\] is an object array"):
        mytorch.save({"bad": np.array([{"a": 1}, None], dtype=object)}, io.BytesIO())
    with pytest.raises(TypeError, match="keys must be strings"):
        mytorch.save({1: np.ones(2)}, io.BytesIO())


class _Trap:
    """Unpickling this object would create a file: proof that a loader ran a pickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_load_never_unpickles(tmp_path):
    marker = tmp_path / "unpickled"
    trap = np.empty(1, dtype=object)
    trap[0] = _Trap(marker)
    np.savez(tmp_path / "evil.npz", weights=np.ones(2), trap=trap)  # numpy pickles object arrays
    with pytest.raises(ValueError, match="never unpickles"):
        mytorch.load(tmp_path / "evil.npz")
    assert not marker.exists()

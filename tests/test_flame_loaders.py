"""FLAME file loading without chumpy: the restricted unpickler, .npz round trip, convert-flame."""
from __future__ import annotations

import os
import pickle
import sys
import types

import numpy as np
import pytest

from engine.cli import main
from engine.errors import CheckpointError
from engine.flame.loaders import load_flame_model, save_flame_npz
from engine.flame.lbs import flame_lbs
from engine.flame.pkl_loader import load_flame_pickle
from engine.flame.synthetic import synthetic_head


class FakeCh:
    """Mimics a leaf chumpy.ch.Ch: pickled state is its __dict__ with the array under 'x'."""

    def __init__(self, x):
        self.x = x
        self.dterms = ()


class FakeCsc:
    """Mimics scipy.sparse csc_matrix state (data / indices / indptr / _shape)."""

    def __init__(self, dense):
        rows, cols = np.nonzero(dense.T)  # column-major walk
        self.data = dense.T[rows, cols]
        self.indices = cols.astype(np.int32)
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=dense.shape[1]))]).astype(np.int32)
        self._shape = dense.shape
        self.maxprint = 50


def _fake_module(monkeypatch, name, **attrs):
    parts = name.split(".")
    for i in range(1, len(parts)):  # pickle imports the parents too
        parent = ".".join(parts[:i])
        if parent not in sys.modules:
            monkeypatch.setitem(sys.modules, parent, types.ModuleType(parent))
    mod = types.ModuleType(name)
    for key, value in attrs.items():
        value.__module__, value.__qualname__ = name, key
        setattr(mod, key, value)
    monkeypatch.setitem(sys.modules, name, mod)


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_head()


@pytest.fixture(scope="module")
def small():
    """A tiny random model in FLAME's layout (keeps the text-protocol pickle fast)."""
    from engine.flame.model import FLAME_PARENTS, FlameModel

    rng = np.random.default_rng(0)
    nv = 40
    reg = np.where(rng.uniform(size=(5, nv)) < 0.2, rng.uniform(size=(5, nv)), 0.0)
    weights = rng.uniform(size=(nv, 5))
    return FlameModel(
        v_template=rng.normal(size=(nv, 3)).astype(np.float32),
        shapedirs=rng.normal(size=(nv, 3, 400)).astype(np.float32),
        posedirs=rng.normal(size=(nv, 3, 36)).astype(np.float32) * 0.01,
        J_regressor=(reg / reg.sum(1, keepdims=True)).astype(np.float32),
        weights=(weights / weights.sum(1, keepdims=True)).astype(np.float32),
        parents=FLAME_PARENTS, f=rng.integers(0, nv, (60, 3)).astype(np.int32))


def write_fake_flame_pkl(path, model, monkeypatch, protocol):
    """A pickle laid out like FLAME 2020's: chumpy arrays + a sparse J_regressor."""
    ch = type("Ch", (FakeCh,), {})
    csc = type("csc_matrix", (FakeCsc,), {})
    _fake_module(monkeypatch, "chumpy.ch", Ch=ch)
    _fake_module(monkeypatch, "scipy.sparse.csc", csc_matrix=csc)
    data = {
        "v_template": ch(model.v_template.astype(np.float64)),
        "shapedirs": ch(model.shapedirs.astype(np.float64)),
        "posedirs": model.posedirs.astype(np.float64),
        "J_regressor": csc(model.J_regressor.astype(np.float64)),
        "weights": ch(model.weights.astype(np.float64)),
        "kintree_table": np.array([[2**32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], np.int64),
        "f": model.f.astype(np.uint32),
        "bs_style": "lbs",
    }
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=protocol)


@pytest.mark.parametrize("protocol", [0, 2])
def test_restricted_unpickler_reads_chumpy_and_sparse(tmp_path, monkeypatch, small, protocol):
    synthetic = small
    path = tmp_path / "generic_model.pkl"
    write_fake_flame_pkl(path, synthetic, monkeypatch, protocol)
    monkeypatch.delitem(sys.modules, "chumpy.ch")  # loading must not need them
    monkeypatch.delitem(sys.modules, "scipy.sparse.csc")
    arrays = load_flame_pickle(path)
    assert np.array_equal(arrays["shapedirs"], synthetic.shapedirs.astype(np.float64))
    assert np.array_equal(arrays["J_regressor"], synthetic.J_regressor.astype(np.float64))
    model = load_flame_model(path)
    assert model.parents == (-1, 0, 1, 1, 1)
    pose = np.array([[0.1, 0.2, 0, 0.2, 0, 0]])
    a = flame_lbs(model, np.zeros(100), np.zeros((1, 50)), pose).verts
    b = flame_lbs(synthetic, np.zeros(100), np.zeros((1, 50)), pose).verts
    assert np.array_equal(a, b)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_other_globals(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"v_template": _Evil(marker)}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
        load_flame_pickle(path)
    with pytest.raises(CheckpointError, match="evil.pkl"):
        load_flame_model(path)
    assert not marker.exists()


def test_npz_round_trip_keeps_everything(tmp_path, synthetic):
    path = tmp_path / "head.npz"
    save_flame_npz(synthetic, path)
    again = load_flame_model(path)
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "f", "albedo"):
        assert np.array_equal(getattr(again, key), getattr(synthetic, key)), key
    assert again.name == synthetic.name and again.topology is not None
    with pytest.raises(FileExistsError):
        save_flame_npz(synthetic, path)


def test_missing_key_and_wrong_shape_are_named(tmp_path, synthetic):
    path = tmp_path / "bad.npz"
    np.savez(path, v_template=synthetic.v_template)
    with pytest.raises(CheckpointError, match="missing key"):
        load_flame_model(path)
    np.savez(path, v_template=synthetic.v_template, shapedirs=synthetic.shapedirs[..., :300],
             posedirs=synthetic.posedirs, J_regressor=synthetic.J_regressor, weights=synthetic.weights,
             kintree_table=np.zeros((2, 5)), f=synthetic.f)
    with pytest.raises(CheckpointError, match="shapedirs has shape"):
        load_flame_model(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_flame_model(tmp_path / "nope.pkl")


def test_convert_flame_cli(tmp_path, monkeypatch, small, capsys):
    synthetic = small
    pkl = tmp_path / "generic_model.pkl"
    write_fake_flame_pkl(pkl, synthetic, monkeypatch, 2)
    out = tmp_path / "flame.npz"
    assert main(["convert-flame", "--pkl", str(pkl), "--out", str(out)]) == 0
    model = load_flame_model(out)
    assert np.array_equal(model.shapedirs, synthetic.shapedirs) and model.topology is None
    assert main(["convert-flame", "--pkl", str(pkl), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err

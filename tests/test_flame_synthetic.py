"""The synthetic FLAME-format head, the camera chain (spec §3), params file and texture space."""
from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InputError
from engine.flame.camera import OrthoCamera
from engine.flame.model import check_model_arrays, model_to_arrays
from engine.flame.params import FlameParams
from engine.flame.synthetic import synthetic_head
from engine.flame.texture_space import albedo_from_texture_space
from engine.guidance.demo_motion import demo_flame_params


@pytest.fixture(scope="module")
def procedural():
    return synthetic_head()


@pytest.fixture(scope="module")
def on_template(shared_dir):
    return synthetic_head(shared_dir / "assets/deca/head_template.obj")


def _check_flame_layout(model):
    check_model_arrays(model_to_arrays(model), "synthetic")  # the FLAME pkl keys and shapes
    nv = model.num_verts
    assert model.shapedirs.shape == (nv, 3, 400) and model.posedirs.shape == (nv, 3, 36)
    assert np.allclose(model.weights.sum(1), 1, atol=1e-6) and model.weights.min() >= 0
    assert np.allclose(model.J_regressor.sum(1), 1, atol=1e-6)
    used = model.blendshapes()
    assert used.shape == (nv, 3, 150) and np.all(np.abs(used).reshape(-1, 150).max(0) > 1e-4)
    assert "synthetic" in model.name and "not FLAME" in model.name
    assert model.albedo.shape == (3, 256, 256) and 0 <= model.albedo.min() and model.albedo.max() <= 1
    topo = model.topology
    assert topo.uvs.min() >= 0 and topo.uvs.max() <= 1 and topo.faces.max() < nv
    for j in (2, 3, 4):  # jaw and both eyes drive some vertices
        assert (model.weights[:, j] > 0.5).sum() > 20


def test_procedural_head_has_the_flame_layout(procedural):
    _check_flame_layout(procedural)
    eyes = procedural.J_regressor[3:] @ procedural.v_template
    assert eyes[0, 0] > 0 > eyes[1, 0]  # joint 3 = subject's left eye = +x


def test_template_topology_is_mapped_verbatim(on_template, shared_dir):
    from engine.flame.obj_mesh import read_obj

    _check_flame_layout(on_template)
    mesh = read_obj(shared_dir / "assets/deca/head_template.obj")
    assert on_template.v_template.shape == (5023, 3)
    assert on_template.topology.uvs.shape == (5118, 2) and on_template.topology.faces.shape == (9976, 3)
    assert np.array_equal(on_template.topology.faces, mesh.faces)
    assert np.array_equal(on_template.topology.uv_faces, mesh.uv_faces)
    # positions are the obj's, only translated
    shift = on_template.v_template - mesh.verts
    assert np.abs(shift - shift[0]).max() < 1e-5


def test_camera_chain_matches_the_spec_closed_form():
    cam = OrthoCamera.from_params((8.5, 0.01, -0.02), (90.0, 70.0, 310.0))
    rng = np.random.default_rng(0)
    X = rng.uniform(-0.1, 0.1, (2, 50, 3))
    x, y, z_t = cam.to_image_pixels(X)
    k = 223 / 310
    ex = 112 / k * (8.5 * (X[..., 0] + 0.01) + 1) + 90  # spec §3.3 closed form
    ey = 112 / k * (1 - 8.5 * (X[..., 1] - 0.02)) + 70
    assert np.abs(x - ex).max() < 1e-3 and np.abs(y - ey).max() < 1e-3
    assert np.allclose(z_t, -8.5 * X[..., 2], atol=1e-6)
    ndc = cam.to_raster_space(X)
    assert np.allclose(ndc[..., 0], -(ex / 256 - 1), atol=1e-5)
    assert np.allclose(ndc[..., 1], -(ey / 256 - 1), atol=1e-5)
    assert np.allclose(ndc[..., 2].min(axis=1), 20)  # z_t - min + 10 + 10, per frame
    nearest = np.argmax(X[..., 2], axis=1)  # largest world Z = smallest raster z
    assert np.array_equal(nearest, np.argmin(ndc[..., 2], axis=1))


def test_params_file_round_trip_and_errors(tmp_path):
    params = demo_flame_params(5)
    path = tmp_path / "p.npz"
    params.save(path)
    again = FlameParams.load(path)
    assert np.array_equal(again.exp, params.exp) and np.array_equal(again.valid, params.valid)
    assert again.model == params.model and again.num_frames == 5
    with pytest.raises(InputError, match="exists"):
        params.save(path)
    arrays = dict(np.load(path))
    arrays["pose"] = arrays["pose"][:, :3]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError, match="'pose' has shape"):
        FlameParams.load(tmp_path / "bad.npz")
    del arrays["light"]
    np.savez(tmp_path / "bad2.npz", **arrays)
    with pytest.raises(InputError, match="light"):
        FlameParams.load(tmp_path / "bad2.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="junk.npz"):
        FlameParams.load(tmp_path / "junk.npz")


def test_texture_space_albedo_is_nearest_downsampled_and_rgb():
    rng = np.random.default_rng(0)
    mean = rng.uniform(0, 255, (1, 512, 512, 3)).astype(np.float32)
    tex_dir = rng.standard_normal((1, 512, 512, 3, 52), dtype=np.float32)  # only [..., :50] used
    code = rng.normal(0, 1, 50).astype(np.float32)
    albedo = albedo_from_texture_space(mean, tex_dir, code)
    full = (mean[0] + tex_dir[0, ..., :50] @ code) / 255  # HWC, BGR
    assert albedo.shape == (3, 256, 256)
    assert np.allclose(albedo[0], full[::2, ::2, 2], atol=1e-4)  # R comes from stored channel 2
    assert np.allclose(albedo[2], full[::2, ::2, 0], atol=1e-4)

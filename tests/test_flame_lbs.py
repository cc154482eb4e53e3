"""FLAME LBS properties (spec guidance_maps.md §2) on the synthetic FLAME-format head."""
from __future__ import annotations

import numpy as np
import pytest

from engine.flame.lbs import flame_lbs, rodrigues
from engine.flame.synthetic import synthetic_head


@pytest.fixture(scope="module")
def model():
    return synthetic_head()


def rot64(r):
    r = np.asarray(r, np.float64)
    theta = np.linalg.norm(r)
    if theta == 0:
        return np.eye(3)
    k = r / theta
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * K + (1 - np.cos(theta)) * K @ K


def shaped(model, shape, exp):
    basis = model.blendshapes().astype(np.float64)
    betas = np.concatenate([shape, exp]).astype(np.float64)
    return model.v_template + basis @ betas


def lbs64(model, shape, exp, pose):
    """Independent float64 LBS written joint by joint from spec §2."""
    v_shaped = shaped(model, shape, exp)
    J = model.J_regressor.astype(np.float64) @ v_shaped
    rots = [rot64(pose[:3]), np.eye(3), rot64(pose[3:]), np.eye(3), np.eye(3)]
    feat = np.concatenate([(R - np.eye(3)).reshape(-1) for R in rots[1:]])
    v_posed = v_shaped + (model.posedirs.astype(np.float64) @ feat)
    world = []
    for j, parent in enumerate(model.parents):
        local = np.eye(4)
        local[:3, :3] = rots[j]
        local[:3, 3] = J[j] - (J[parent] if parent >= 0 else 0)
        world.append(local if parent < 0 else world[parent] @ local)
    skin = np.zeros((len(v_shaped), 4, 4))
    for j, G in enumerate(world):
        A = G.copy()
        A[:3, 3] = G[:3, 3] - G[:3, :3] @ J[j]
        skin += model.weights[:, j, None, None].astype(np.float64) * A
    return np.einsum("vrc,vc->vr", skin[:, :3, :3], v_posed) + skin[:, :3, 3]


def test_rodrigues_matches_float64_and_is_identity_at_zero():
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.8, (16, 3))
    got = rodrigues(r)
    assert np.abs(got - np.stack([rot64(x) for x in r])).max() < 2e-6
    assert np.array_equal(rodrigues(np.zeros((1, 3)))[0], np.eye(3, dtype=np.float32))


def test_zero_pose_gives_the_shaped_template(model):
    rng = np.random.default_rng(1)
    shape, exp = rng.normal(0, 1, 100), rng.normal(0, 1, 50)
    out = flame_lbs(model, shape, exp[None], np.zeros((1, 6)))
    assert np.abs(out.verts[0] - shaped(model, shape, exp)).max() < 1e-6


def test_matches_an_independent_float64_lbs(model):
    rng = np.random.default_rng(2)
    shape, exp = rng.normal(0, 1, 100), rng.normal(0, 1, (3, 50))
    pose = rng.normal(0, 0.3, (3, 6))
    out = flame_lbs(model, shape, exp, pose)
    for b in range(3):
        assert np.abs(out.verts[b] - lbs64(model, shape, exp[b], pose[b])).max() < 2e-6


def test_global_rotation_pivots_about_the_shaped_root_joint(model):
    rng = np.random.default_rng(3)
    shape, exp = rng.normal(0, 1, 100), rng.normal(0, 1, 50)
    pose = np.array([[0.3, -0.5, 0.2, 0, 0, 0]])
    out = flame_lbs(model, shape, exp[None], pose)
    v = shaped(model, shape, exp)
    j0 = model.J_regressor[0].astype(np.float64) @ v
    expect = (v - j0) @ rot64(pose[0, :3]).T + j0
    assert np.abs(out.verts[0] - expect).max() < 2e-6
    assert np.abs(out.joints[0, 0] - j0).max() < 1e-6  # the root stays put
    # rotating about the origin instead would be visibly different
    assert np.abs(out.verts[0] - v @ rot64(pose[0, :3]).T).max() > 1e-3


def test_jaw_opening_moves_only_jaw_weighted_vertices(model):
    shape = np.zeros(100)
    rest = flame_lbs(model, shape, np.zeros((1, 50)), np.zeros((1, 6))).verts[0]
    opened = flame_lbs(model, shape, np.zeros((1, 50)), np.array([[0, 0, 0, 0.3, 0, 0]])).verts[0]
    moved = np.linalg.norm(opened - rest, axis=1)
    jaw = model.weights[:, 2]
    assert moved[jaw == 0].max() < 1e-7
    assert (jaw == 0).sum() > 0.5 * len(jaw) and (jaw > 0.5).sum() > 100
    assert moved[jaw > 0.5].min() > 1e-3
    chin = np.argmin(np.where(jaw > 0.99, model.v_template[:, 1], np.inf))
    assert opened[chin, 1] < rest[chin, 1] - 0.01  # positive x rotation opens downward


def test_shape_and_exp_broadcast_and_validate(model):
    with pytest.raises(ValueError, match="exp"):
        flame_lbs(model, np.zeros(100), np.zeros((2, 49)), np.zeros((2, 6)))
    out = flame_lbs(model, np.zeros(100), np.zeros(50), np.zeros((2, 6)))
    assert out.verts.shape == (2, model.num_verts, 3) and out.verts.dtype == np.float32


def test_torch_lbs_matches_numpy(model):
    torch = pytest.importorskip("torch")
    from engine.flame.lbs_torch import FlameLbs

    rng = np.random.default_rng(4)
    shape, exp, pose = rng.normal(0, 1, 100), rng.normal(0, 1, (4, 50)), rng.normal(0, 0.3, (4, 6))
    ref = flame_lbs(model, shape, exp, pose).verts
    t = lambda a: torch.from_numpy(np.asarray(a, np.float32))  # noqa: E731
    with torch.no_grad():
        got = FlameLbs(model)(t(shape)[None], t(exp), t(pose)).numpy()
    assert np.abs(got - ref).max() < 2e-6

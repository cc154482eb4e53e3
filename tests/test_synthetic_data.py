"""Synthetic people: deterministic from seeds, split by identity and motion, ranges as specified."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.synthetic import make_identity, make_motion, render_clip
from engine.synthetic.dataset import DatasetSpec, build_dataset, load_split, render_split
from engine.synthetic.motion import JAW, PITCH, YAW, reference_pose


def _clip(identity=1, motion=2, frames=2, size=64):
    return render_clip(make_identity(identity), make_motion(motion, frames),
                       reference_pose(np.random.default_rng(0)), size)


def test_identity_and_motion_are_deterministic_and_differ_by_seed():
    a, b, c = make_identity(5), make_identity(5), make_identity(6)
    assert np.array_equal(a.detail_albedo, b.detail_albedo) and np.array_equal(a.shape, b.shape)
    assert not np.array_equal(a.detail_albedo, c.detail_albedo)
    m1, m2 = make_motion(3, 40), make_motion(3, 40)
    assert np.array_equal(m1.pose, m2.pose) and np.array_equal(m1.cam, m2.cam)
    assert not np.array_equal(m1.pose, make_motion(4, 40).pose)


def test_identity_names_its_background_kind():
    """The quality benchmark reads fg_iou per background kind: the kind must describe the picture."""
    for seed in range(100000, 100006):  # the held-out identities the benchmark uses
        ident = make_identity(seed)
        levels = np.unique(ident.background.reshape(-1, 3), axis=0)
        expected = {"solid": lambda n: n == 1, "checks": lambda n: n == 2, "stripes": lambda n: n == 2,
                    "gradient": lambda n: n > 2}[ident.background_kind]
        assert expected(len(levels)), (seed, ident.background_kind, len(levels))
        assert f"{ident.background_kind} background" in ident.description


def test_rendered_clip_is_deterministic():
    x, y = _clip(), _clip()
    for k, v in x.arrays().items():
        assert np.array_equal(v, y.arrays()[k]), k


def test_motion_ranges_and_smoothness():
    poses = np.concatenate([make_motion(s, 48).pose for s in range(30)])
    assert np.abs(poses[:, 1]).max() <= YAW + 1e-6 and np.abs(poses[:, 1]).max() > 0.8 * YAW
    assert np.abs(poses[:, 0]).max() <= PITCH + 1e-6
    assert poses[:, 3].min() >= 0 and poses[:, 3].max() > 0.9 * JAW  # shut to open
    steps = np.abs(np.diff(make_motion(0, 48).pose, axis=0)).max()
    assert steps < 0.15  # radians per frame at 24 fps: smooth, no jumps


def test_guidance_cannot_show_the_detail_but_the_frames_do():
    """Two identities that share shape, light and skin tone get the same guidance maps, while their
    frames (texture, hair or cap, background) differ: only the reference can carry that."""
    ident = make_identity(1)
    other = dataclasses.replace(make_identity(2), shape=ident.shape, light=ident.light,
                                plain_albedo=ident.plain_albedo)
    m, ref = make_motion(0, 1), reference_pose(np.random.default_rng(0))
    a, b = render_clip(ident, m, ref, 64), render_clip(other, m, ref, 64)
    for kind in ("depth", "normal", "render"):
        assert np.array_equal(a.maps[kind], b.maps[kind]), kind
    assert np.abs(a.frames.astype(int) - b.frames).mean() > 10


def test_split_is_disjoint_by_identity_and_motion():
    spec = DatasetSpec()
    train, held = spec.clips("train"), spec.clips("heldout")
    assert not {i for i, _, _ in train} & {i for i, _, _ in held}
    assert not {m for _, m, _ in train} & {m for _, m, _ in held}


def test_resized_equals_rendering_at_that_size():
    big, small = _clip(size=128), _clip(size=64)
    r = big.resized(64)
    assert np.abs(r.frames.astype(int) - small.frames).max() <= 1  # box filters compose (rounding)
    assert np.abs(r.mask.astype(int) - small.mask).max() <= 1
    # maps: the runtime's bicubic resize applied twice vs once — close, not identical
    assert np.abs(r.maps["depth"].astype(int) - small.maps["depth"]).mean() < 2.0


def test_build_load_resume(tmp_path):
    spec = DatasetSpec(train_identities=1, clips_per_identity=1, heldout_identities=1, heldout_motions=1,
                       frames=2, size=64)
    build_dataset(tmp_path, spec)
    first = (tmp_path / "train" / "clip_00000.npz").stat().st_mtime_ns
    build_dataset(tmp_path, spec)  # finished clips are kept, not rendered again
    assert (tmp_path / "train" / "clip_00000.npz").stat().st_mtime_ns == first
    loaded = load_split(tmp_path, "heldout")
    direct = render_split(spec, "heldout")
    assert len(loaded) == len(direct) == 2
    assert np.array_equal(loaded[0].frames, direct[0].frames)
    pooled = render_split(spec, "heldout", size=32, workers=2)  # spawned workers: the same pixels
    assert [c.identity for c in pooled] == [c.identity for c in direct]
    assert all(np.array_equal(a.frames, b.resized(32).frames) and np.array_equal(a.mask, b.resized(32).mask)
               for a, b in zip(pooled, direct))
    with pytest.raises(Exception, match="another spec"):
        build_dataset(tmp_path, DatasetSpec(train_identities=2, frames=2, size=64))

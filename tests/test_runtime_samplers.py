"""Sampling modes against a frame-local backend (tests/helpers/runtime_fakes.py): bookkeeping, emission
order, frames per call, CFG policy. Tolerance 1e-5 absolute (float32 numpy, same operations)."""
import dataclasses

import numpy as np
import pytest

from engine.runtime.noise import FrameNoise
from engine.runtime.presets import preset_settings
from engine.runtime.modes import MODES
from helpers.runtime_fakes import FrameLocalBackend, one_frame_reference

NOISE = FrameNoise(seed=3, shape=(4, 2, 2))


def run_sampler(settings, frames: int):
    backend = FrameLocalBackend()
    identity = 0.25
    features = [0.1 * ((i * 7) % 5) for i in range(frames)]
    sampler = MODES[settings.mode](backend, identity, settings, NOISE)
    out, per_push = [], []
    for seq, feature in enumerate(features):
        done = sampler.push(seq, feature)
        per_push.append(len(done))
        out += done
    out += sampler.finish()
    return backend, identity, features, out, per_push


@pytest.mark.parametrize("preset,overrides", [
    ("quality", dict(steps=3, window=4, overlap=1)),
    ("quality", dict(steps=2, cfg_steps=1)),
    ("balanced", dict(steps=3, window=5, overlap=2)),
    ("balanced", dict(steps=2, window=4, overlap=0, cfg_steps=0)),
    ("realtime", dict(steps=3, frames_per_stage=2)),
    ("realtime", dict(steps=4, frames_per_stage=1, cfg_steps=2)),
])
@pytest.mark.parametrize("frames", [1, 7, 11])
def test_every_mode_matches_the_one_frame_loop(preset, overrides, frames):
    settings = preset_settings(preset, **overrides)
    backend, identity, features, out, _ = run_sampler(settings, frames)
    assert [seq for seq, _ in out] == list(range(frames)), "each frame exactly once, in order"
    for seq, latent in out:
        ref = one_frame_reference(FrameLocalBackend(), NOISE.frame(seq), features[seq], identity, settings.steps,
                                  settings.guidance_scale, settings.cfg_steps)
        np.testing.assert_allclose(latent, ref, atol=1e-5, rtol=0)


def test_stream_batch_finishes_a_stage_per_call_once_full():
    settings = preset_settings("realtime", steps=4, frames_per_stage=2, cfg_steps=0)
    backend, _, _, _, per_push = run_sampler(settings, 20)
    # A call every 2nd frame; the first 3 calls fill the queue, then every call finishes 2 frames.
    assert per_push[1::2] == [0, 0, 0] + [2] * 7
    assert all(n == 0 for n in per_push[0::2])
    assert max(f for _, f in backend.calls) == 8 and all(b == 1 for b, _ in backend.calls)


def test_stream_batch_cfg_first_k_runs_uncond_on_the_newest_frames_only():
    settings = preset_settings("realtime", steps=4, frames_per_stage=1, cfg_steps=2, guidance_scale=2.0)
    backend, *_ = run_sampler(settings, 8)
    full = [(b, f) for b, f in backend.calls]
    # Once the queue is full (4 frames) the conditional call sees 4 frames, the unconditional 2.
    assert (1, 4) in full and (1, 2) in full and not any(f > 4 for _, f in full)


def test_windowed_emits_stride_frames_per_window():
    settings = preset_settings("balanced", steps=2, window=6, overlap=2, cfg_steps=0)
    _, _, _, _, per_push = run_sampler(settings, 14)
    assert per_push == [0] * 5 + [4] + [0] * 3 + [4] + [0] * 3 + [4]


def test_windowed_overlap_is_blended_with_the_previous_window():
    """A backend whose v depends on the window (its mean) makes windows disagree; the blended seam
    must lie between the two windows' own results, and move towards the newer window frame by frame."""
    class WindowCoupled(FrameLocalBackend):
        def denoise(self, sample, timesteps, guidance, identity, use_reference):
            v = super().denoise(sample, timesteps, guidance, identity, use_reference)
            return v + 0.5 * sample.mean(axis=2, keepdims=True)
    settings = preset_settings("balanced", steps=3, window=6, overlap=3, cfg_steps=0)
    features = [0.2 * (i % 3) for i in range(9)]
    blended = dict()
    s = MODES["windowed"](WindowCoupled(), 0.3, settings, NOISE)
    for i, f in enumerate(features):
        blended.update(s.push(i, f))
    blended.update(s.finish())
    assert sorted(blended) == list(range(9))
    alone = dict()  # the second window without the first
    s2 = MODES["windowed"](WindowCoupled(), 0.3, dataclasses.replace(settings, overlap=0), NOISE)
    for i in range(3, 9):
        alone.update(s2.push(i, features[i]))
    first = dict()
    s3 = MODES["windowed"](WindowCoupled(), 0.3, dataclasses.replace(settings, overlap=0), NOISE)
    for i in range(0, 6):
        first.update(s3.push(i, features[i]))
    for k, j in enumerate((3, 4, 5)):
        lo, hi = np.minimum(first[j], alone[j]), np.maximum(first[j], alone[j])
        assert np.all(blended[j] >= lo - 0.05 * (hi - lo) - 1e-4) and np.all(blended[j] <= hi + 0.05 * (hi - lo) + 1e-4)
    d = [np.abs(blended[j] - alone[j]).mean() / np.abs(first[j] - alone[j]).mean() for j in (3, 4, 5)]
    assert d[0] > d[1] > d[2], f"seam weights should move towards the newer window: {d}"

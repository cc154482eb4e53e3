"""Parameter mixing (spec guidance_maps.md §1.4/§1.7), no-face policies, source cache, One-Euro."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from helpers.driving import LANDMARKER, MEDIA, randomize_
from engine.driving.deca_encoder import DecaCoarseEncoder
from engine.driving.encoder_weights import EncoderPair
from engine.driving.media import iter_video_frames
from engine.driving.mixing import mix_parameters
from engine.driving.one_euro import OneEuroConfig, OneEuroFilter, smooth_sequence
from engine.driving.pipeline import TrackingConfig, encode_source, track_driving, track_driving_detailed
from engine.driving.smirk_encoder import SmirkExpressionEncoder
from engine.driving.source_code import SourceCode
from engine.errors import InputError

pytest.importorskip("mediapipe", reason="face tracking needs the 'mediapipe' package")
pytest.importorskip("skimage", reason="upstream-equivalent crops need scikit-image")


@pytest.fixture(scope="module")
def encoders() -> EncoderPair:
    return EncoderPair(randomize_(DecaCoarseEncoder(), 11), randomize_(SmirkExpressionEncoder(), 12), "test:11/12",
                       random=True)


@pytest.fixture(scope="module")
def paths(shared_dir, tmp_path_factory):
    """A frame folder with a blank frame (index 1) and a noise frame (index 3) between real frames."""
    real = [f.rgb for f in iter_video_frames(shared_dir / MEDIA / "driving.mp4", 3)]
    noise = np.random.default_rng(0).integers(0, 256, real[0].shape, dtype=np.uint8)
    folder = tmp_path_factory.mktemp("frames")
    for i, frame in enumerate([real[0], np.zeros_like(real[0]), real[1], noise, real[2]]):
        Image.fromarray(frame).save(folder / f"frame_{i:04d}.png")
    return {"frames": folder, "source": shared_dir / MEDIA / "portrait_boy_cropped.jpg",
            "video": shared_dir / MEDIA / "driving.mp4", "landmarker": str(shared_dir / LANDMARKER),
            "cache": tmp_path_factory.mktemp("cache")}


def run(paths, encoders, **config):
    config.setdefault("cache_dir", str(paths["cache"]))
    return track_driving_detailed(paths["frames"], paths["source"], landmarker=paths["landmarker"],
                                  encoders=encoders, config=TrackingConfig(**config))


@pytest.fixture(scope="module")
def held(paths, encoders):
    return run(paths, encoders, no_face="hold")


def test_mixing_follows_spec_table():
    rng = np.random.default_rng(5)
    source = SourceCode(shape=rng.normal(size=100), tex=rng.normal(size=50), light=rng.normal(size=(9, 3)),
                        cam=np.array([9.1, 0.01, -0.02]), crop=np.array([80.5, 60.25, 350.0]))
    global_rot, exp, jaw = rng.normal(size=(4, 3)), rng.normal(size=(4, 50)), rng.normal(size=(4, 3))
    params = mix_parameters(source, global_rot, exp, jaw)
    params.validate()
    for key in ("shape", "tex", "light", "cam", "crop"):  # constant per video: from the source
        np.testing.assert_allclose(getattr(params, key), getattr(source, key), rtol=1e-6)
    np.testing.assert_allclose(params.pose[:, :3], global_rot, rtol=1e-6)  # DECA(driving) pose[:3]
    np.testing.assert_allclose(params.pose[:, 3:], jaw, rtol=1e-6)  # SMIRK jaw
    np.testing.assert_allclose(params.exp, exp, rtol=1e-6)  # SMIRK expression
    assert params.num_frames == 4 and params.valid is None
    with pytest.raises(InputError, match="exp"):
        mix_parameters(source, global_rot, exp[:, :10], jaw)


@pytest.mark.slow
def test_hold_policy_repeats_last_valid_frame(held):
    p = held.params
    assert held.frame_count == 5 and held.no_face_frames == [1, 3]
    assert p.valid.tolist() == [True, False, True, False, True]
    for a, b in ((1, 0), (3, 2)):
        np.testing.assert_array_equal(p.pose[a], p.pose[b])
        np.testing.assert_array_equal(p.exp[a], p.exp[b])
    assert not np.allclose(p.exp[0], p.exp[2]) and not np.allclose(p.pose[0], p.pose[4])


@pytest.mark.slow
def test_skip_policy_drops_faceless_frames(paths, encoders, held):
    skipped = run(paths, encoders, no_face="skip")
    assert skipped.no_face_frames == [1, 3] and skipped.params.num_frames == 3
    assert skipped.params.valid.all()
    np.testing.assert_allclose(skipped.params.exp, held.params.exp[[0, 2, 4]], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_upstream_policy_encodes_whole_frame(paths, encoders, held):
    upstream = run(paths, encoders, no_face="upstream", batch_size=2)
    p = upstream.params
    assert p.num_frames == 5 and p.valid.tolist() == [True, False, True, False, True]
    np.testing.assert_allclose(p.pose[[0, 2, 4]], held.params.pose[[0, 2, 4]], rtol=1e-5, atol=1e-6)
    assert not np.allclose(p.exp[1], p.exp[0])  # encoded from the blank frame, not held


@pytest.mark.slow
def test_source_constants_come_from_cache_second_time(paths, encoders, held):
    code, from_cache = encode_source(paths["source"], paths["landmarker"], encoders, str(paths["cache"]))
    assert from_cache  # the `held` run stored it
    np.testing.assert_allclose(held.params.shape, code.shape, rtol=1e-6)
    np.testing.assert_allclose(held.params.crop, code.crop, rtol=1e-6)
    x0, y0, size = code.crop
    assert 0 <= x0 and 0 <= y0 and x0 + size <= 512 and y0 + size <= 512 and 200 < size < 512
    other = EncoderPair(encoders.deca, encoders.smirk, "another-identity")
    _, again = encode_source(paths["source"], paths["landmarker"], other, str(paths["cache"]))
    assert not again  # the key covers the encoders


@pytest.mark.slow
def test_video_input_in_video_mode(paths, encoders):
    params = track_driving(paths["video"], paths["source"], landmarker=paths["landmarker"], encoders=encoders,
                           config=TrackingConfig(max_frames=3, cache_dir=str(paths["cache"])))
    assert params.num_frames == 3 and params.valid.all()
    assert np.isfinite(params.pose).all() and np.isfinite(params.exp).all()


@pytest.mark.slow
def test_no_face_anywhere_is_an_input_error(paths, encoders, tmp_path):
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(InputError, match="no face found in any of the 1 frames"):
        track_driving(tmp_path, paths["source"], landmarker=paths["landmarker"], encoders=encoders,
                      config=TrackingConfig(cache_dir=str(paths["cache"])))
    with pytest.raises(InputError, match="no face found in source image"):
        track_driving(tmp_path, tmp_path / "a.png", landmarker=paths["landmarker"], encoders=encoders,
                      config=TrackingConfig(cache_dir=""))


def test_bad_policy_and_missing_landmarker(paths, encoders):
    with pytest.raises(InputError, match="no-face policy"):
        run(paths, encoders, no_face="guess")
    with pytest.raises(InputError, match="--landmarker"):
        track_driving(paths["frames"], paths["source"], encoders=encoders)


def test_one_euro_keeps_constants_and_reduces_jitter():
    rng = np.random.default_rng(0)
    constant = np.tile([0.1, -0.2, 0.3], (50, 1))
    np.testing.assert_allclose(smooth_sequence(constant, 25.0), constant, atol=1e-12)
    noisy = constant + rng.normal(scale=0.02, size=constant.shape)
    smoothed = smooth_sequence(noisy, 25.0, OneEuroConfig(min_cutoff_hz=1.0, beta=0.0))
    assert np.std(smoothed[10:] - constant[10:]) < 0.4 * np.std(noisy[10:] - constant[10:])


def test_one_euro_follows_fast_motion_with_high_beta():
    ramp = np.linspace(0, 5, 50)[:, None]  # fast, steady motion
    lag_low = np.abs(smooth_sequence(ramp, 25.0, OneEuroConfig(beta=0.0)) - ramp)[-1, 0]
    lag_high = np.abs(smooth_sequence(ramp, 25.0, OneEuroConfig(beta=5.0)) - ramp)[-1, 0]
    assert lag_high < 0.5 * lag_low
    f = OneEuroFilter()
    assert f(np.array([1.0]), 0.0)[0] == 1.0  # first sample passes through


def test_smoothing_is_off_by_default():
    assert TrackingConfig().smoothing is None


@pytest.mark.slow
def test_errors_in_the_tracking_worker_reach_the_caller(paths, encoders, tmp_path):
    """A bad frame file is read in the worker thread; its InputError surfaces in the caller."""
    Image.open(paths["frames"] / "frame_0000.png").save(tmp_path / "frame_0000.png")
    (tmp_path / "frame_0001.png").write_text("not an image")
    with pytest.raises(InputError, match="frame_0001.png"):
        track_driving(tmp_path, paths["source"], landmarker=paths["landmarker"], encoders=encoders,
                      config=TrackingConfig(cache_dir=str(paths["cache"])))


def test_corrupt_driving_video_is_an_input_error(paths, encoders, tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(InputError, match="clip.mp4"):
        track_driving(bad, paths["source"], landmarker=paths["landmarker"], encoders=encoders,
                      config=TrackingConfig(cache_dir=str(paths["cache"])))

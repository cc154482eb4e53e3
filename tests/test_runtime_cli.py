"""`mprt animate` / `mprt demo` / `mprt live` on the tiny model: the default `quality` preset still
gives the offline result, --flame input, outputs and user errors, live input from a real-time video."""
import json

import numpy as np
import pytest
import torch

from engine.cli import main

SIZE = 128


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_runtime_equivalence.py
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from PIL import Image

    from engine.guidance.folders import write_guidance_folders
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(5)
    maps = {t: rng.integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8) for t in ("depth", "normal", "render")}
    write_guidance_folders(d / "guidance", maps)
    portrait = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(portrait).save(d / "portrait.png")
    return d, maps, portrait


@pytest.mark.slow
def test_animate_default_preset_is_the_offline_result(inputs, tmp_path):
    from engine.offline import animate_offline
    from engine.io.video_writer import VideoWriter, read_video_frames
    from engine.model import MagicPortraitModel
    from engine.sampling.offline import OfflineSettings
    from engine.weights.tiny import ensure_tiny_weights
    d, maps, portrait = inputs
    out, frames_dir, report = tmp_path / "out.mp4", tmp_path / "frames", tmp_path / "report.json"
    rc = main(["animate", "--source", str(d / "portrait.png"), "--guidance", str(d / "guidance"), "--out", str(out),
               "--steps", "2", "--frames-dir", str(frames_dir), "--report", str(report)])
    assert rc == 0
    model = MagicPortraitModel.from_weights(ensure_tiny_weights())
    expected = animate_offline(model, portrait, maps, SIZE, OfflineSettings(steps=2), seed=42)
    from PIL import Image
    pngs = sorted(frames_dir.glob("*.png"))
    got = np.stack([np.asarray(Image.open(p)) for p in pngs])
    assert len(pngs) == 4 and np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    with VideoWriter(tmp_path / "expected.mp4", 24.0) as w:  # same frames through the same encoder
        for f in expected:
            w.write(f)
    video, _ = read_video_frames(out)
    assert np.abs(video.astype(int) - read_video_frames(tmp_path / "expected.mp4")[0].astype(int)).mean() < 0.5
    data = json.loads(report.read_text())
    assert data["frames_out"] == 4 and data["preset"] == "quality" and "p95_ms" in data["stages"]["unet"]


@pytest.mark.slow
def test_animate_from_flame_params_with_grid(inputs, tmp_path):
    from engine.guidance.demo_motion import demo_flame_params
    from engine.io.video_writer import read_video_frames
    d, _, _ = inputs
    params = tmp_path / "motion.npz"
    demo_flame_params(5).save(params)
    out, grid = tmp_path / "flame.mp4", tmp_path / "grid.mp4"
    rc = main(["animate", "--source", str(d / "portrait.png"), "--flame", str(params), "--out", str(out),
               "--grid", str(grid), "--preset", "realtime", "--steps", "2", "--max-frames", "4"])
    assert rc == 0
    frames, _ = read_video_frames(out)
    grid_frames, _ = read_video_frames(grid)
    assert frames.shape == (4, SIZE, SIZE, 3) and grid_frames.shape == (4, SIZE, 5 * SIZE, 3)


def test_user_errors_are_one_line(inputs, tmp_path, capsys):
    d, _, _ = inputs
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep me")
    cases = [
        (["animate", "--source", str(d / "portrait.png"), "--guidance", str(d / "guidance"), "--out", str(existing)],
         "already exists"),
        (["animate", "--source", str(d / "portrait.png"), "--guidance", str(d / "guidance"),
          "--out", str(tmp_path / "a.mp4"), "--preset", "realtime", "--steps", "40"], "steps"),
        (["animate", "--source", str(d / "portrait.png"), "--guidance", str(d / "guidance"),
          "--out", str(tmp_path / "b.mp4"), "--backend", "onnxruntime"], "--onnx"),
        (["animate", "--source", str(d / "portrait.png"), "--guidance", str(d / "guidance")], "--out"),
        (["animate", "--source", str(d / "portrait.png"), "--guidance", str(d / "guidance"),
          "--frames-dir", str(tmp_path / "f"), "--report", str(existing)], "already exists"),
        (["animate", "--source", str(d / "portrait.png"), "--guidance", str(d / "guidance"),
          "--frames-dir", str(tmp_path / "g"), "--report", str(tmp_path / "no" / "r.json")], "does not exist"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("mprt animate: error:") and needle in err, err
    assert existing.read_bytes() == b"keep me"
    assert not (tmp_path / "f").exists() and not (tmp_path / "g").exists() and not list(tmp_path.glob(".*"))


@pytest.mark.slow
def test_demo_streams_end_to_end(tmp_path):
    from engine.io.video_writer import read_video_frames
    out = tmp_path / "demo.mp4"
    assert main(["demo", "--out", str(out), "--frames", "6", "--steps", "2"]) == 0
    assert read_video_frames(out)[0].shape == (6, SIZE, SIZE, 3)
    assert read_video_frames(tmp_path / "demo-grid.mp4")[0].shape[0] == 6


@pytest.mark.slow
def test_live_from_a_real_time_video(shared_dir, tmp_path):
    pytest.importorskip("mediapipe", reason="mediapipe (face tracking) not installed")
    from engine.io.video_writer import read_video_frames
    out, report = tmp_path / "live.mp4", tmp_path / "live.json"
    rc = main(["live", "--source", str(shared_dir / "assets/media/portrait_boy_cropped.jpg"),
               "--video", str(shared_dir / "assets/media/driving.mp4"),
               "--landmarker", str(shared_dir / "assets/models/face_landmarker.task"), "--random-encoders",
               "--max-frames", "12", "--steps", "2", "--out", str(out), "--report", str(report)])
    assert rc == 0
    data = json.loads(report.read_text())
    frames, _ = read_video_frames(out)
    # Paced at 24 fps, a CPU keeps up with only some frames: the rest are dropped (newest kept).
    assert 1 <= len(frames) == data["frames_out"] <= 12
    assert data["frames_out"] + data["camera_dropped_frames"] + data["dropped_input_frames"] <= 12


def test_live_refuses_the_quality_preset(shared_dir, tmp_path, capsys):
    rc = main(["live", "--source", str(shared_dir / "assets/media/portrait_boy_cropped.jpg"),
               "--video", str(shared_dir / "assets/media/driving.mp4"), "--preset", "quality",
               "--out", str(tmp_path / "x.mp4")])
    assert rc == 2 and "balanced or realtime" in capsys.readouterr().err

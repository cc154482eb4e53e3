"""`mprt animate` end to end on the tiny model: a video that reads back with the right frames and size."""
import numpy as np
import pytest

from engine.cli import main
from engine.io.video_writer import read_video_frames


@pytest.fixture(scope="module")
def guidance_dir(tmp_path_factory):
    from engine.guidance.folders import write_guidance_folders
    rng = np.random.default_rng(0)
    out = tmp_path_factory.mktemp("guidance") / "clip"
    maps = {t: rng.integers(0, 256, (6, 128, 128, 3), dtype=np.uint8) for t in ("depth", "normal", "render")}
    write_guidance_folders(out, maps)
    return out


@pytest.mark.slow
def test_animate_writes_a_video_and_grid(tiny_weights, guidance_dir, shared_dir, tmp_path, capsys):
    out, grid = tmp_path / "out.mp4", tmp_path / "grid.mp4"
    rc = main(["animate", "--weights", str(tiny_weights), "--source",
               str(shared_dir / "assets/media/portrait_boy_cropped.jpg"), "--guidance", str(guidance_dir),
               "--out", str(out), "--grid", str(grid), "--steps", "2", "--size", "128"])
    assert rc == 0
    frames, fps = read_video_frames(out)
    assert frames.shape == (6, 128, 128, 3) and fps == 24
    grid_frames, _ = read_video_frames(grid)
    assert grid_frames.shape == (6, 128, 5 * 128, 3)
    assert frames.std() > 1  # not a constant image
    assert not list(tmp_path.glob(".*partial*"))  # no temporary files left


def test_animate_refuses_to_overwrite(tiny_weights, guidance_dir, shared_dir, tmp_path, capsys):
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"user data")
    rc = main(["animate", "--weights", str(tiny_weights), "--source",
               str(shared_dir / "assets/media/portrait_boy_cropped.jpg"), "--guidance", str(guidance_dir),
               "--out", str(out)])
    assert rc == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == b"user data"


def test_animate_names_a_missing_guidance_folder(tiny_weights, shared_dir, tmp_path, capsys):
    rc = main(["animate", "--weights", str(tiny_weights), "--source",
               str(shared_dir / "assets/media/portrait_boy_cropped.jpg"), "--guidance", str(tmp_path / "none"),
               "--out", str(tmp_path / "o.mp4")])
    assert rc == 2
    assert "none" in capsys.readouterr().err


def test_animate_names_a_bad_source_image(tiny_weights, guidance_dir, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    rc = main(["animate", "--weights", str(tiny_weights), "--source", str(bad), "--guidance", str(guidance_dir),
               "--out", str(tmp_path / "o.mp4")])
    assert rc == 2
    assert "bad.jpg: not a readable image" in capsys.readouterr().err


@pytest.mark.slow
def test_offline_sampler_matches_a_hand_rolled_upstream_loop(tiny_model):
    """sample_offline == the loop written out from networks.md (d) for 2 steps, 8 frames, windows of 4."""
    import torch

    from engine.sampling.context import context_windows
    from engine.sampling.schedulers.ddim import DDIMSchedule
    from engine.sampling.offline import OfflineSettings, sample_offline
    m = tiny_model
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(1, 4, 8, 16, 16, generator=g)
    guidance = torch.randn(1, 32, 8, 16, 16, generator=g)
    kv = m.reference_kv(torch.randn(1, 4, 16, 16, generator=g))
    settings = OfflineSettings(steps=2, guidance_scale=3.5, window=4, overlap=1)
    got = sample_offline(m.denoising_unet, m.text_embedding, kv, guidance, noise, settings)
    s, x = DDIMSchedule(), noise.clone()
    with torch.no_grad():
        for t in s.timesteps(2):
            acc = torch.zeros(2, 4, 8, 16, 16)
            cnt = torch.zeros(8)
            for idx in context_windows(8, 4, 1):
                for half, use in ((0, False), (1, True)):
                    pred = m.denoising_unet(x[:, :, idx], torch.tensor(t), m.text_embedding, guidance[:, :, idx],
                                            kv if use else None)
                    acc[half:half + 1, :, idx] += pred
                cnt[idx] += 1
            v = acc / cnt.reshape(1, 1, -1, 1, 1)
            v = v[:1] + 3.5 * (v[1:] - v[:1])
            x = s.step(v, t, x, s.previous_timestep(t, 2))
    assert torch.allclose(got, x, atol=1e-5)


@pytest.mark.slow
def test_quality_preset_shows_progress_over_steps_and_windows(tiny_weights, guidance_dir, shared_dir, tmp_path,
                                                              capsys):
    rc = main(["animate", "--weights", str(tiny_weights), "--source",
               str(shared_dir / "assets/media/portrait_boy_cropped.jpg"), "--guidance", str(guidance_dir),
               "--out", str(tmp_path / "o.mp4"), "--steps", "2", "--status"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "denoising 6 frames: step 1/2, window 1/1 (50%)" in err

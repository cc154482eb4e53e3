"""`mprt distill-decoder` on the tiny model: the tiny decoder learns the VAE decoder's mapping, is
written in TAESD format and loads back through --decoder's loader; the clip-folder reader."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.errors import InputError


def smooth_images(n: int, size: int = 128, seed: int = 0) -> np.ndarray:
    """Blurry colour blobs: image-like content that a 4-channel latent can carry."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.zeros((n, size, size, 3))
    for i in range(n):
        for _ in range(4):
            cy, cx, r = rng.random(3) * [1, 1, 0.4] + [0, 0, 0.1]
            out[i] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / r ** 2)[..., None] * rng.random(3)
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


def write_clip_folder(root, clips: int = 2, frames: int = 3, size: int = 128):
    from PIL import Image
    for c in range(clips):
        folder = root / f"clip{c}"
        imgs = smooth_images(frames + 1, size, seed=c)
        for kind in ("depth", "normal", "render", "frames"):
            (folder / kind).mkdir(parents=True)
            for f in range(frames):
                Image.fromarray(imgs[f]).save(folder / kind / f"{f:04d}.png")
        Image.fromarray(imgs[frames]).save(folder / "reference.png")


@pytest.mark.slow
def test_tiny_decoder_learns_the_vae_mapping(tiny_model):
    from engine.distill.decoder import DecoderDistillConfig, DecoderDistiller
    d = DecoderDistiller(tiny_model, smooth_images(10), DecoderDistillConfig(steps=30, batch=4, lr=3e-3, width=8))
    losses = d.train(progress=False)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), (losses[:5], losses[-5:])
    report = d.compare()
    assert report["heldout_images"] == 1 and np.isfinite(report["psnr_tiny_vs_vae_db"])
    assert report["tiny_ms_per_frame"] > 0 and report["vae_ms_per_frame"] > 0


def test_clip_folder_reader(tmp_path):
    from engine.distill.data import read_clip_folder
    write_clip_folder(tmp_path / "data", clips=2, frames=3)
    clips = read_clip_folder(tmp_path / "data")
    assert [c.name for c in clips] == ["clip0", "clip1"]
    assert clips[0].frames.shape == clips[0].maps["depth"].shape == (3, 128, 128, 3)
    (tmp_path / "data" / "clip1" / "reference.png").unlink()
    with pytest.raises(InputError, match="clip1: no reference.png"):
        read_clip_folder(tmp_path / "data")
    with pytest.raises(InputError, match="--data .*nope: folder not found"):
        read_clip_folder(tmp_path / "nope")


@pytest.mark.slow
def test_cli_writes_a_decoder_that_loads(tiny_weights, tmp_path, capsys):
    from engine.cli import main
    from engine.weights.tiny_decoder import load_tiny_decoder
    write_clip_folder(tmp_path / "data", clips=1, frames=3)
    out = tmp_path / "dec"
    argv = ["distill-decoder", "--weights", str(tiny_weights), "--data", str(tmp_path / "data"), "--out", str(out),
            "--steps", "2", "--batch", "2", "--width", "8", "--no-progress"]
    assert main(argv) == 0
    net, meta = load_tiny_decoder(out)
    assert net.width == 8 and meta["steps"] == "2" and "psnr_tiny_vs_vae_db" in json.loads(meta["comparison"])
    assert "ms/frame" in capsys.readouterr().out
    assert main(argv) == 2 and "--overwrite" in capsys.readouterr().err
    with torch.no_grad():
        assert net(torch.zeros(1, 4, 16, 16)).shape == (1, 3, 128, 128)

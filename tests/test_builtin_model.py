"""The shipped built-in model: loads through the normal loader, files match their recorded sha256,
and the model card says how it was made."""
from __future__ import annotations

import pathlib

import pytest

from engine.weights.builtin import BUILTIN_DIR, DEFAULT_ENV, default_weights


@pytest.fixture(scope="module")
def builtin() -> pathlib.Path:
    assert (BUILTIN_DIR / "magicportrait.json").exists(), "engine/assets/synthetic_heads must be present"
    return BUILTIN_DIR


def test_it_is_the_default_unless_asked_for_tiny(builtin, monkeypatch):
    monkeypatch.delenv(DEFAULT_ENV, raising=False)
    assert default_weights(announce=False) == (builtin, False)
    monkeypatch.setenv(DEFAULT_ENV, "tiny")
    assert default_weights(announce=False)[1] is True


def test_files_match_their_sha256(builtin):
    from engine.training.package import sha256
    lines = (builtin / "SHA256SUMS").read_text().splitlines()
    assert len(lines) >= 8
    for line in lines:
        digest, name = line.split("  ", 1)
        assert sha256(builtin / name) == digest, name


def test_size_budget(builtin):
    """About 20 MiB of teacher and tiny decoder plus a 7.3 MiB student, all fp16: a small clone."""
    total = sum(p.stat().st_size for p in builtin.rglob("*") if p.is_file())
    assert total <= 30 * 2**20, total


def test_card_records_command_and_seed(builtin):
    """The card's command and seed are the ones the weights were trained with (their metadata's recipe)."""
    import json
    import re

    from safetensors import safe_open
    card = (builtin / "MODEL_CARD.md").read_text()
    found = re.search(r"Command: `(mprt train [^`]*)` \(seed (\d+)\)", card)
    assert found and "not" in card.lower(), "the card must give the training command and its seed"
    with safe_open(str(builtin / "denoising_unet.safetensors"), "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["recipe"])["seed"] == int(found.group(2))
    assert meta["command"] == found.group(1)
    # ... and the current recipe: the command in the card remakes these weights, not an older recipe's.
    # (A field added to the recipe after these weights were made is absent from the stored recipe and
    # takes its default.)
    from engine.training.recipe import TrainRecipe
    assert TrainRecipe(**json.loads(meta["recipe"])) == TrainRecipe(seed=int(found.group(2)))


def test_loads_through_the_normal_loader(builtin):
    from engine.model import MagicPortraitModel
    model = MagicPortraitModel.from_weights(builtin)
    assert model.config.image_size == 64
    assert set(model.report.loaded) >= {"denoising UNet3D", "reference UNet"}
    assert not any(model.report.unexpected.values())


def test_it_declares_its_cfg_scale_and_the_presets_use_it(builtin):
    """magicportrait.json's guidance_scale (the recipe's, measured) reaches the backend and the presets;
    --guidance-scale overrides it."""
    import argparse

    from engine.backends.torch_backend import TorchBackend
    from engine.cli.streaming import stream_settings
    from engine.training.recipe import TrainRecipe
    backend = TorchBackend.from_weights(builtin)
    assert backend.info.guidance_scale == TrainRecipe().guidance_scale != 3.5
    args = dict(preset="quality", scheduler=None, steps=None, cfg_steps=None, window=None, overlap=None,
                frames_per_stage=None, guidance_scale=None)
    assert stream_settings(argparse.Namespace(**args), backend).guidance_scale == backend.info.guidance_scale
    assert stream_settings(argparse.Namespace(**{**args, "guidance_scale": 3.5}), backend).guidance_scale == 3.5


def test_demo_runs_on_the_builtin_model(builtin, monkeypatch, tmp_path, capsys):
    from engine.cli import main
    from engine.io.video_writer import read_video_frames
    monkeypatch.delenv(DEFAULT_ENV, raising=False)
    out = tmp_path / "demo.mp4"
    assert main(["demo", "--out", str(out), "--frames", "4"]) == 0
    assert "built-in synthetic-heads model" in capsys.readouterr().err
    frames, _ = read_video_frames(out)
    assert frames.shape == (4, 64, 64, 3)
    grid, _ = read_video_frames(tmp_path / "demo-grid.mp4")
    assert grid.shape[0] == 4 and grid.shape[1] == 64


def test_realtime_takes_the_shipped_student_and_tiny_decoder(builtin):
    """The shipped student (mprt distill, stored fp16) and tiny decoder load beside the teacher, and the
    presets that prefer them get them; the student file records how it was made."""
    import json

    from engine.backends.registry import open_backend
    from engine.weights.student import find_student, read_student
    student = read_student(find_student(builtin))
    config = json.loads(student.metadata["config"])
    assert student.kind == "full" and int(student.metadata["steps"]) >= 1000 and config["data_weight"] > 0
    assert student.metadata["stored_dtype"] == "float16"
    backend = open_backend("torch", weights=builtin, student="auto", decoder="auto")
    assert backend.info.denoiser.startswith("student") and backend.info.decoder.startswith("taesd:")

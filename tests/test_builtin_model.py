"""The shipped built-in model: loads through the normal loader, files match their recorded sha256,
and the model card says how it was made."""
from __future__ import annotations

import pathlib

import pytest

from engine.weights.builtin import builtin_weights_dir


@pytest.fixture(scope="module")
def builtin() -> pathlib.Path:
    root = builtin_weights_dir()
    assert root is not None, "engine/assets/synthetic_heads is part of the repository and must be present"
    return root


def test_files_match_their_sha256(builtin):
    from engine.training.package import sha256
    lines = (builtin / "SHA256SUMS").read_text().splitlines()
    assert len(lines) >= 8
    for line in lines:
        digest, name = line.split("  ", 1)
        assert sha256(builtin / name) == digest, name


def test_size_budget(builtin):
    total = sum(p.stat().st_size for p in builtin.rglob("*") if p.is_file())
    assert total <= 25 * 2**20, total


def test_card_records_command_and_seed(builtin):
    card = (builtin / "MODEL_CARD.md").read_text()
    assert "mprt train" in card and "seed 0" in card and "not" in card.lower()


def test_loads_through_the_normal_loader(builtin):
    from engine.model import MagicPortraitModel
    model = MagicPortraitModel.from_weights(builtin)
    assert model.config.image_size == 64
    assert set(model.report.loaded) >= {"denoising UNet3D", "reference UNet"}
    assert not any(model.report.unexpected.values())

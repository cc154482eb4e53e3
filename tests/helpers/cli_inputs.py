"""Helpers for the CLI hardening tests (no tests here): small inputs on disk, and a guard that fails
a test when a model is loaded (refusals must come before any model load)."""
from __future__ import annotations

import numpy as np


def write_cli_inputs(folder, frames: int, seed: int, size: int = 64):
    """folder/guidance/{depth,normal,render}/ (`frames` random maps) and folder/portrait.png."""
    from PIL import Image

    from engine.guidance.folders import write_guidance_folders
    rng = np.random.default_rng(seed)
    write_guidance_folders(folder / "guidance", {t: rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
                                                 for t in ("depth", "normal", "render")})
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / "portrait.png")
    return folder


def refuse_model_loads(monkeypatch) -> None:
    import engine.cli.streaming as streaming

    def refuse(*_, **__):
        raise AssertionError("a model was loaded before the inputs and outputs were checked")
    monkeypatch.setattr(streaming, "build_backend", refuse)
    monkeypatch.setattr("engine.backends.registry.open_backend", refuse)

"""Helpers for the mprt serve tests (no tests here): a SharedModel on the frame-local fake backend
(fast, no torch model), camera frames from the shared driving video, waiting with a timeout."""
from __future__ import annotations

import pathlib
import time

import numpy as np

from engine.serve import framecode

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"
DRIVING = SHARED / "assets" / "media" / "driving.mp4"
LANDMARKER = SHARED / "assets" / "models" / "face_landmarker.task"
PORTRAIT = SHARED / "assets" / "media" / "portrait_boy_cropped.jpg"


def fake_shared(size: int = 16, landmarker: bool = False):
    """Everything sessions share, on FrameLocalBackend; camera driving (random encoders) if `landmarker`."""
    from engine.flame.synthetic import synthetic_head
    from engine.guidance.pipeline import resolve_backend
    from engine.runtime.presets import preset_settings
    from engine.serve.shared import SharedModel, builtin_inputs
    from helpers.runtime_fakes import FrameLocalBackend
    portrait, code, motion = builtin_inputs()
    encoders = None
    if landmarker:
        from engine.driving import random_encoders
        encoders = random_encoders()
    return SharedModel(backend=FrameLocalBackend(), size=size, settings_for=lambda name: preset_settings(name),
                       head_model=synthetic_head(), renderer=resolve_backend("host"),
                       landmarker=str(LANDMARKER) if landmarker else None, encoders=encoders,
                       builtin_portrait=portrait, builtin_source=code, builtin_motion=motion,
                       description="frame-local fake backend (test)")


def driving_frames(count: int, size: int = 256) -> list[np.ndarray]:
    from engine.driving.media import iter_video_frames
    from engine.io.images import resize_frames
    frames = [f.rgb for f in iter_video_frames(DRIVING, count)]
    return list(resize_frames(np.stack(frames), (size, size)))


def stamped(frames, first_code: int = 0) -> list[np.ndarray]:
    return [framecode.stamp(f, first_code + i) for i, f in enumerate(frames)]


def wait_for(predicate, timeout: float, period: float = 0.05, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(period)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")

"""Headless Chromium with a fake camera, for the browser tests and the serve benchmark.

Debian's chromium (apt-get install chromium) driven by Playwright through its path: Playwright's own
browser download does not work offline. The fake camera plays a .y4m file in a loop."""
from __future__ import annotations

import os
import shutil

CHROMIUM_FLAGS = [
    "--no-sandbox",                       # runs as root in CI containers
    "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic",   # no connections out of a closed network
    "--use-fake-ui-for-media-stream",     # grant the camera without a prompt
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


def chromium_args(fake_camera_y4m=None) -> list[str]:
    extra = [f"--use-file-for-fake-video-capture={fake_camera_y4m}"] if fake_camera_y4m else []
    return CHROMIUM_FLAGS + extra


def driving_clip_y4m(path, video, frames: int = 36, size: int = 256, fps: int = 12) -> None:
    """The first `frames` frames of a driving video, square `size`, as the fake camera's file."""
    import numpy as np

    from engine.driving.media import iter_video_frames
    from engine.io.images import resize_frames
    from engine.io.y4m import write_y4m
    rgb = np.stack([f.rgb for f in iter_video_frames(video, frames)])
    write_y4m(path, resize_frames(rgb, (size, size)), fps)

"""A virtual camera as an output (pyvirtualcam: v4l2loopback on Linux, OBS Virtual Camera on
Windows/macOS), so video-call apps can pick the animated portrait as their camera."""
from __future__ import annotations

import sys

import numpy as np

from engine.errors import InputError
from engine.runtime.sinks import FrameSink

HOW_TO = ("Linux: sudo modprobe v4l2loopback devices=1 (package v4l2loopback-dkms); Windows/macOS: install OBS "
          "and start its Virtual Camera once")


def require_pyvirtualcam():
    try:
        import pyvirtualcam
        return pyvirtualcam
    except ImportError:
        raise InputError("--virtual-camera needs pyvirtualcam: pip install -e '.[virtualcam]'") from None


def open_virtual_camera(width: int, height: int, fps: float, device: str | None = None):
    """An open pyvirtualcam.Camera, or InputError naming what is missing."""
    pyvirtualcam = require_pyvirtualcam()
    try:
        return pyvirtualcam.Camera(width=width, height=height, fps=fps, device=device)
    except RuntimeError as err:  # pyvirtualcam: no backend / no device found
        raise InputError(f"--virtual-camera: no virtual camera device ({str(err).splitlines()[0]}). {HOW_TO}") from None


class VirtualCameraSink(FrameSink):
    """Frames (of the size given) go to the virtual camera, opened here so a missing device is told
    before the stream starts."""

    def __init__(self, width: int, height: int, fps: float, device: str | None = None):
        self.camera = open_virtual_camera(width, height, fps, device)
        print(f"virtual camera: {self.camera.device} ({width}x{height} at {fps:g} fps)", file=sys.stderr)

    def write(self, index: int, frame: np.ndarray) -> None:
        if self.camera is not None and (frame.shape[1], frame.shape[0]) == (self.camera.width, self.camera.height):
            self.camera.send(np.ascontiguousarray(frame))

    def close(self, interrupted: bool = False) -> None:
        if self.camera is not None:
            self.camera.close()
            self.camera = None

"""Live driving: camera or video frames -> face tracking (engine.driving) -> FLAME params -> guidance maps.

`CameraFrames` yields RGB frames of a webcam (cv2) or of a video file played at its own frame rate
(a live-paced stand-in for a webcam, for tests). `DrivingTracker` turns one RGB frame into one
frame of FLAME parameters. `DrivingSource` puts them together as a live FrameSource; frames without
a face repeat the last parameters (none yet: the frame is skipped).
"""
from __future__ import annotations

import time
from typing import Callable, Iterator

import numpy as np

from engine.preprocess import GUIDANCE_TYPES
from engine.errors import InputError
from engine.runtime.latest import LatestOnly
from engine.runtime.sources import FrameSource, GuidanceFrame

RgbFrame = tuple[int, np.ndarray, int]  # (index, (H,W,3) uint8 RGB, timestamp ms)


def video_frames_paced(path, max_frames: int | None = None) -> Iterator[RgbFrame]:
    """A video file's frames, each released at its presentation time (as a camera would)."""
    from engine.driving.media import iter_video_frames
    start = time.perf_counter()
    for frame in iter_video_frames(path, max_frames):
        delay = start + frame.timestamp_ms / 1000.0 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        yield frame.index, frame.rgb, frame.timestamp_ms


def webcam_frames(device: int, max_frames: int | None = None) -> Iterator[RgbFrame]:
    try:
        import cv2
    except ImportError:
        raise InputError("--webcam needs OpenCV: pip install opencv-python (or use --video FILE)") from None
    cap = cv2.VideoCapture(device)
    if not cap.isOpened():
        raise InputError(f"--webcam {device}: cannot open the camera")
    start, i = time.perf_counter(), 0
    try:
        while max_frames is None or i < max_frames:
            ok, bgr = cap.read()
            if not ok:
                raise InputError(f"--webcam {device}: the camera stopped delivering frames after {i}")
            yield i, bgr[:, :, ::-1].copy(), int((time.perf_counter() - start) * 1000)
            i += 1
    finally:
        cap.release()


class DrivingTracker:
    """One RGB frame -> FLAME params of one frame (None when no face is found)."""

    def __init__(self, source_image, landmarker, weights_dir=None, random_weights: bool = False,
                 device: str = "cpu", fps: float = 25.0, frame_encoder=None):
        """frame_encoder: the per-frame encoder (`encode(inputs)`, e.g. engine.backends.driving_graphs.
        OrtDrivingEncoder); None = the torch DrivingEncoder on `device`."""
        from engine.driving import DrivingEncoder, encode_source, load_encoders, random_encoders
        encoders = random_encoders() if random_weights else load_encoders(weights_dir)
        source, _ = encode_source(source_image, landmarker, encoders, None)
        self._setup(source, landmarker, frame_encoder or DrivingEncoder(encoders, device), fps)

    @classmethod
    def from_parts(cls, source_code, landmarker, encoder, fps: float = 25.0) -> "DrivingTracker":
        """From an encoded source (SourceCode) and a loaded DrivingEncoder, e.g. shared by server sessions."""
        self = cls.__new__(cls)
        self._setup(source_code, landmarker, encoder, fps)
        return self

    def _setup(self, source_code, landmarker, encoder, fps: float) -> None:
        from engine.driving import FaceTracker, FaceTrackerConfig
        self.source, self.encoder = source_code, encoder
        self.tracker = FaceTracker(FaceTrackerConfig(str(landmarker), mode="video", fps=fps))

    def __call__(self, rgb: np.ndarray, timestamp_ms: int):
        from engine.driving import mix_parameters, prepare_encoder_inputs
        track = self.tracker.track(rgb, timestamp_ms)
        if track is None:
            return None
        enc = self.encoder.encode([prepare_encoder_inputs(rgb, track)])
        return mix_parameters(self.source, enc["pose"], enc["exp"], enc["jaw"], np.ones(1, bool))

    def close(self) -> None:
        self.tracker.close()


class DrivingSource(FrameSource):
    live = True

    def __init__(self, camera: Iterator[RgbFrame], to_params: Callable[[np.ndarray, int], object], flame_model,
                 name: str = "camera", fps: float | None = None, renderer="reference"):
        from engine.guidance.pipeline import resolve_backend
        self.camera, self.to_params, self.flame_model, self.name, self.fps = camera, to_params, flame_model, name, fps
        self.renderer = resolve_backend(renderer)  # once: the CUDA kernel loads its module here
        self.no_face = 0
        self.camera_dropped = 0

    def frames(self) -> Iterator[GuidanceFrame]:
        from engine.guidance.pipeline import render_guidance_maps
        newest = LatestOnly(self.camera, name="mprt-camera")  # tracking slower than the camera: skip ahead
        last = None
        try:
            for index, rgb, ts in newest:
                arrived = time.perf_counter()
                params = self.to_params(rgb, ts)
                if params is None:
                    self.no_face += 1
                    params = last
                if params is None:
                    continue
                last = params
                maps = render_guidance_maps(params, self.flame_model, backend=self.renderer)
                yield GuidanceFrame(index, {t: maps[t][0] for t in GUIDANCE_TYPES}, arrived)
        finally:
            newest.close()
            self.camera_dropped = newest.dropped

    def describe(self) -> str:
        return f"{self.name} (live, head model '{self.flame_model.name}')"

"""Face tracking with MediaPipe's FaceLandmarker (Tasks API) and the two crop boxes derived from it.

Video mode (temporal tracking, monotonically increasing timestamps) for streams; image mode
(independent detection, what upstream's SMIRK does per frame file) for single images and frame
folders. Detection settings follow upstream: num_faces=1, detection/presence confidence 0.1 (§1.5).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from engine.driving.crops import DECA_IMAGE_SIZE, CropBox, deca_crop_box, smirk_crop_box
from engine.driving.landmarks68 import ibug68_from_mediapipe
from engine.errors import InputError

LANDMARKER_FILE = "face_landmarker.task"


@dataclass(frozen=True)
class FaceTrackerConfig:
    model_path: str
    mode: str = "video"  # "video" (tracking across frames) or "image" (each frame on its own)
    min_detection_confidence: float = 0.1
    min_presence_confidence: float = 0.1
    min_tracking_confidence: float = 0.5
    fps: float = 25.0  # timestamps in video mode when the caller gives none


@dataclass(frozen=True)
class Track:
    """One face found in one frame."""

    landmarks: np.ndarray  # (478, 3) float64: x, y in frame pixels, z as MediaPipe gives it
    frame_hw: tuple[int, int]
    deca_box: CropBox  # in the frame resized to 512x512 (DECA's image, §1.2)
    smirk_box: CropBox  # in frame pixels (§1.5)


def track_from_landmarks(landmarks_px: np.ndarray, frame_hw: tuple[int, int]) -> Track:
    h, w = frame_hw
    to512 = np.array([DECA_IMAGE_SIZE / w, DECA_IMAGE_SIZE / h])
    points68 = ibug68_from_mediapipe(landmarks_px[:, :2]) * to512
    return Track(landmarks_px, frame_hw, deca_crop_box(points68), smirk_crop_box(landmarks_px[:, :2]))


class FaceTracker:
    """`track(frame_rgb_u8) -> Track | None`. Use as a context manager (closes the landmarker).

    Not thread-safe: one tracker per worker thread.
    """

    def __init__(self, config: FaceTrackerConfig):
        if config.mode not in ("video", "image"):
            raise InputError(f"face tracker mode must be 'video' or 'image', got {config.mode!r}")
        if not os.path.isfile(config.model_path):
            raise InputError(
                f"MediaPipe face landmarker model not found: {config.model_path} (expected {LANDMARKER_FILE}; "
                "get it from https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task)"
            )
        try:
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError as err:
            raise InputError("face tracking needs the 'mediapipe' package: pip install mediapipe") from err
        self.config = config
        running_mode = vision.RunningMode.VIDEO if config.mode == "video" else vision.RunningMode.IMAGE
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=config.model_path),
            running_mode=running_mode,
            num_faces=1,
            min_face_detection_confidence=config.min_detection_confidence,
            min_face_presence_confidence=config.min_presence_confidence,
            min_tracking_confidence=config.min_tracking_confidence,
        )
        try:
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as err:
            raise InputError(f"MediaPipe could not load the face landmarker model {config.model_path}: {err}") from err
        self._frames_seen = 0
        self._last_timestamp_ms = -1

    def track(self, frame_rgb_u8: np.ndarray, timestamp_ms: int | None = None) -> Track | None:
        """Landmarks and crop boxes of the (first) face in an RGB uint8 (H,W,3) frame; None if no face."""
        import mediapipe as mp

        frame = np.asarray(frame_rgb_u8)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise InputError(f"face tracker expects an RGB uint8 (H,W,3) frame, got {frame.dtype} {frame.shape}")
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
        if self.config.mode == "video":
            if timestamp_ms is None:
                timestamp_ms = int(round(self._frames_seen * 1000.0 / self.config.fps))
            timestamp_ms = max(int(timestamp_ms), self._last_timestamp_ms + 1)  # must increase strictly
            self._last_timestamp_ms = timestamp_ms
            result = self._landmarker.detect_for_video(image, timestamp_ms)
        else:
            result = self._landmarker.detect(image)
        self._frames_seen += 1
        if not result.face_landmarks:
            return None
        h, w = frame.shape[:2]
        landmarks = np.array([[p.x * w, p.y * h, p.z] for p in result.face_landmarks[0]], dtype=np.float64)
        return track_from_landmarks(landmarks, (h, w))

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> "FaceTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""Readers for driving input: a video file (PyAV) or a folder of frame images (sorted by name,
like upstream's `sorted(os.listdir)`). Errors name the file."""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from engine.errors import InputError
from engine.io.images import MIN_SIDE, read_rgb_image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class Frame:
    index: int
    rgb: np.ndarray  # (H, W, 3) uint8
    timestamp_ms: int


def list_frame_files(folder: str | os.PathLike) -> list[str]:
    folder = os.fspath(folder)
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise InputError(f"driving folder {folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return [os.path.join(folder, n) for n in names]


def video_fps(path: str | os.PathLike) -> float:
    import av

    try:
        with av.open(os.fspath(path)) as container:
            rate = container.streams.video[0].average_rate
    except (av.error.FFmpegError, IndexError) as err:
        raise InputError(f"driving video {os.fspath(path)} could not be opened as a video: {err}") from err
    return float(rate) if rate else 25.0


def iter_video_frames(path: str | os.PathLike, max_frames: int | None = None) -> Iterator[Frame]:
    import av

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"driving video not found: {path}")
    try:
        container = av.open(path)
    except av.error.FFmpegError as err:
        raise InputError(f"driving video {path} could not be opened as a video: {err}") from err
    with container:
        if not container.streams.video:
            raise InputError(f"driving video {path} has no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate) if stream.average_rate else 25.0
        declared = int(stream.frames or 0)  # 0: the container does not say
        count = 0
        try:
            for frame in container.decode(stream):
                if max_frames is not None and count >= max_frames:
                    return
                if count == 0 and min(frame.height, frame.width) < MIN_SIDE:
                    raise InputError(f"driving video {path}: {frame.width}x{frame.height} pixels is too small; "
                                     f"expected at least {MIN_SIDE}x{MIN_SIDE}")
                if frame.pts is not None and frame.time_base is not None:
                    ts = int(round(float(frame.pts * frame.time_base) * 1000))
                else:
                    ts = int(round(count * 1000 / fps))
                yield Frame(count, frame.to_ndarray(format="rgb24"), ts)
                count += 1
        except av.error.FFmpegError as err:
            raise InputError(f"driving video {path} is corrupt: decoding failed after {count} frames: {err}") from err
        if count == 0:
            raise InputError(f"driving video {path} holds no decodable frames")
        check_decoded_count(path, declared, count)


def check_decoded_count(path, declared: int, decoded: int) -> None:
    """A container that promises more frames than decode is truncated or corrupt: say so instead of
    silently using the few that decoded."""
    if declared and decoded < declared:
        raise InputError(f"video {path}: the container declares {declared} frames but only {decoded} decode "
                         "(truncated or corrupt file)")


def iter_folder_frames(folder: str | os.PathLike, fps: float, max_frames: int | None = None) -> Iterator[Frame]:
    for i, path in enumerate(list_frame_files(folder)[:max_frames]):
        yield Frame(i, read_rgb_image(path), int(round(i * 1000 / fps)))


def iter_driving_frames(driving: str | os.PathLike, fps: float = 25.0, max_frames: int | None = None) -> Iterator[Frame]:
    """Frames of a video file or of a folder of images (name order)."""
    driving = os.fspath(driving)
    if os.path.isdir(driving):
        return iter_folder_frames(driving, fps, max_frames)
    if not os.path.exists(driving):
        raise InputError(f"driving input not found: {driving} (expected a video file or a folder of frames)")
    return iter_video_frames(driving, max_frames)

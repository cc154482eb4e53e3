"""Video output that is written whole or not at all.

Frames go to a uniquely named temporary file beside the target (two runs never share one), which
becomes the target only when the stream is closed cleanly (or after Ctrl-C / SIGTERM, with what was
written so far: still a valid video). Without overwrite the final step never replaces a file.
"""
from __future__ import annotations

import pathlib
from fractions import Fraction

import numpy as np

from engine.errors import InputError
from engine.io.atomic import publish, temp_sibling
from engine.io.destinations import check_output_path


def _pick_codec(container) -> str:
    import av
    for name in ("libx264", "h264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:
            continue
    raise InputError("no H.264 or MPEG-4 encoder available in this PyAV build")


class VideoWriter:
    """`with VideoWriter(path, fps) as w: w.write(frame_u8)`; frames (H,W,3) uint8 RGB."""

    def __init__(self, path: str | pathlib.Path, fps: float = 24.0, overwrite: bool = False, crf: int = 18):
        self.path, self.overwrite = check_output_path(path, overwrite), overwrite
        self.tmp: pathlib.Path | None = None
        self.fps, self.crf = fps, crf
        self.container = self.stream = None
        self.frames = 0

    def __enter__(self) -> "VideoWriter":
        return self

    def _open(self, height: int, width: int) -> None:
        import av
        self.tmp = temp_sibling(self.path, suffix=".partial.mp4")
        self.container = av.open(str(self.tmp), mode="w", format="mp4")
        codec = _pick_codec(self.container)
        self.stream = self.container.add_stream(codec, rate=Fraction(self.fps).limit_denominator(1001))
        self.stream.width, self.stream.height = width + width % 2, height + height % 2
        self.stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            self.stream.options = {"crf": str(self.crf), "preset": "veryfast"}
        self.codec = codec

    def write(self, frame: np.ndarray) -> None:
        import av
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise InputError(f"video frame: expected (H,W,3) uint8, got {frame.shape} {frame.dtype}")
        if self.container is None:
            self._open(frame.shape[0], frame.shape[1])
        if frame.shape[0] % 2 or frame.shape[1] % 2:  # yuv420p needs even sizes
            frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), mode="edge")
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> pathlib.Path | None:
        """Finish the file and move it into place; None if no frame was written."""
        if self.container is None:
            self.abort()
            return None
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
            self.container.close()
            self.container = None
            publish(self.tmp, self.path, self.overwrite)
        except BaseException:
            self.abort()
            raise
        self.tmp = None
        return self.path

    def abort(self) -> None:
        if self.container is not None:
            try:
                self.container.close()
            except Exception:
                pass
            self.container = None
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
            self.tmp = None

    def __exit__(self, exc_type, exc, tb) -> None:
        # Ctrl-C keeps what was written (a valid, shorter video); any other error leaves nothing.
        if exc_type is None or issubclass(exc_type, KeyboardInterrupt):
            self.close()
        else:
            self.abort()


def read_video_frames(path: str | pathlib.Path) -> tuple[np.ndarray, float]:
    """Whole video -> ((F,H,W,3) uint8 RGB, fps). For tests and small clips."""
    import av
    path = pathlib.Path(path)
    if not path.is_file():
        raise InputError(f"{path}: video file not found")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 24)
            declared = int(stream.frames or 0)
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except (av.error.FFmpegError, IndexError) as err:
        raise InputError(f"{path}: not a readable video ({err})") from None
    if not frames:
        raise InputError(f"{path}: video holds no frames")
    if declared and len(frames) < declared:
        raise InputError(f"video {path}: the container declares {declared} frames but only {len(frames)} "
                         "decode (truncated or corrupt file)")
    return np.stack(frames), fps

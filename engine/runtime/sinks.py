"""Where output frames go: an MP4 (atomic; Ctrl-C keeps a valid video), a folder of PNG frames
(engine.io.frame_folder: moved into place at the end, never deleting files mprt did not write), a
preview window when a display exists."""
from __future__ import annotations

import os
import sys

import numpy as np


class FrameSink:
    def write(self, index: int, frame: np.ndarray) -> None:
        raise NotImplementedError

    def close(self, interrupted: bool = False) -> None:
        """Finish the output. interrupted: keep what was written (Ctrl-C / source failure)."""

    def abort(self) -> None:
        """Leave nothing behind (an error the output cannot survive)."""
        self.close()


class VideoSink(FrameSink):
    def __init__(self, path, fps: float, overwrite: bool = False):
        from engine.io.video_writer import VideoWriter
        self.writer = VideoWriter(path, fps, overwrite=overwrite)

    def write(self, index: int, frame: np.ndarray) -> None:
        self.writer.write(frame)

    def close(self, interrupted: bool = False) -> None:
        self.writer.close()

    def abort(self) -> None:
        self.writer.abort()


class FolderSink(FrameSink):
    """<dir>/frame_000000.png ... (engine.io.frame_folder.FrameFolder)."""

    def __init__(self, path, overwrite: bool = False):
        from engine.io.frame_folder import FrameFolder
        self.folder = FrameFolder(path, overwrite=overwrite)
        self.path = self.folder.path

    def write(self, index: int, frame: np.ndarray) -> None:
        self.folder.write(frame)

    def close(self, interrupted: bool = False) -> None:
        self.folder.close()

    def abort(self) -> None:
        self.folder.abort()


class GridSink(VideoSink):
    """A side-by-side video written frame by frame: source | depth | normal | render | output. The maps
    come from a RecordingSource, which forgets each frame's maps once it is written here."""

    def __init__(self, path, fps: float, source_image: np.ndarray, recorder, overwrite: bool = False):
        super().__init__(path, fps, overwrite=overwrite)
        self.source_image, self.recorder = source_image, recorder
        self._tile = None

    def write(self, index: int, frame: np.ndarray) -> None:
        from engine.backends.base import GUIDANCE_TYPES
        from engine.io.images import resize_frames
        h, w = frame.shape[:2]
        if self._tile is None:
            self._tile = resize_frames(self.source_image[None], (w, h))[0]
        maps = self.recorder.take(index)
        tiles = [self._tile] + [resize_frames(maps[t][None], (w, h))[0] for t in GUIDANCE_TYPES] + [frame]
        self.writer.write(np.concatenate(tiles, axis=1))


def display_available() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class PreviewSink(FrameSink):
    """cv2.imshow, else a Tk window; `open_preview` returns None (with the reason) when neither can show."""

    def __init__(self, show, shutdown):
        self._show, self._shutdown = show, shutdown

    def write(self, index: int, frame: np.ndarray) -> None:
        self._show(frame)

    def close(self, interrupted: bool = False) -> None:
        self._shutdown()


def open_preview(title: str = "mprt") -> tuple[PreviewSink | None, str]:
    if not display_available():
        return None, "no display (DISPLAY / WAYLAND_DISPLAY unset): preview skipped"
    try:
        import cv2

        def show(frame):
            cv2.imshow(title, frame[:, :, ::-1])
            cv2.waitKey(1)
        return PreviewSink(show, cv2.destroyAllWindows), "preview: OpenCV window"
    except ImportError:
        pass
    try:
        import tkinter

        from PIL import ImageTk, Image
        root = tkinter.Tk()
        root.title(title)
        label = tkinter.Label(root)
        label.pack()

        def show(frame):
            label.image = ImageTk.PhotoImage(Image.fromarray(frame))
            label.configure(image=label.image)
            root.update()
        return PreviewSink(show, root.destroy), "preview: Tk window"
    except Exception as err:  # no tkinter / cannot connect to the display
        return None, f"preview unavailable ({err}): skipped"


class CollectingSink(FrameSink):
    """Keeps the frames (and their source indices) in memory: for a side-by-side grid, tests, benchmarks."""

    def __init__(self):
        self.frames: list[np.ndarray] = []
        self.indices: list[int] = []

    def write(self, index: int, frame: np.ndarray) -> None:
        self.indices.append(index)
        self.frames.append(frame)

    def stacked(self) -> np.ndarray:
        """(F,H,W,3): the frames in source-index order."""
        return np.stack([self.frames[j] for j in np.argsort(self.indices, kind="stable")])

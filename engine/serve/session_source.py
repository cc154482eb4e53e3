"""A session's guidance source: the newest camera frame -> FLAME parameters (face tracking, or the
built-in motion in "no camera" mode) -> guidance maps, as a live FrameSource for the runtime."""
from __future__ import annotations

import collections
import threading
import time
from typing import Iterator

import numpy as np

from engine.backends.base import GUIDANCE_TYPES
from engine.runtime.sources import FrameSource, GuidanceFrame, slice_params
from engine.serve.inbox import NewestFrame
from engine.serve.latency import LatencyBook

CameraItem = tuple[int, np.ndarray, float, int]  # (frame index, RGB picture, received perf_counter, ms since start)


class BuiltinMotion:
    """'No camera': the built-in head motion, looped in real time, on the portrait's own head constants."""

    def __init__(self, motion, source_code, fps: float = 24.0):
        self.motion, self.source, self.fps = motion, source_code, fps

    def __call__(self, rgb: np.ndarray, timestamp_ms: int):
        from engine.driving import mix_parameters
        k = int(timestamp_ms * self.fps / 1000.0) % self.motion.num_frames
        frame = slice_params(self.motion, k, k + 1)
        return mix_parameters(self.source, frame.pose[:, :3], frame.exp, frame.pose[:, 3:], np.ones(1, bool),
                              model=self.motion.model)

    def close(self) -> None:
        pass


class SessionSource(FrameSource):
    live = True

    def __init__(self, inbox: NewestFrame, to_params, head_model, renderer, book: LatencyBook, size: int,
                 stop=lambda: False):
        self.inbox, self.to_params, self.head_model, self.renderer = inbox, to_params, head_model, renderer
        self.book, self.size, self.stop = book, size, stop
        self.no_face = 0
        self.closed = False
        self._busy = threading.Lock()  # held while a frame is tracked: the tracker is closed only between frames
        self.guides: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()  # index -> render map

    def frames(self) -> Iterator[GuidanceFrame]:
        from engine.guidance.pipeline import render_guidance_maps
        from engine.io.images import resize_frames
        last = None
        while True:
            item = self.inbox.take(wake=self.stop)
            if item is None:
                return
            index, rgb, received, ts_ms = item
            started = time.perf_counter()
            with self._busy:
                if self.closed:
                    return
                params = self.to_params(rgb, ts_ms)
            if params is None:
                self.no_face += 1
                params = last  # hold the last pose; nothing to show before the first face
            if params is None:
                continue
            last = params
            tracked = time.perf_counter()
            maps = render_guidance_maps(params, self.head_model, backend=self.renderer)
            self.book.started(index, received, started, tracked - started, time.perf_counter() - tracked)
            self.guides[index] = resize_frames(maps["render"], (self.size, self.size))[0]
            while len(self.guides) > 64:  # frames dropped inside the runtime are never shown
                self.guides.popitem(last=False)
            yield GuidanceFrame(index, {t: maps[t][0] for t in GUIDANCE_TYPES}, received)

    def close_driver(self) -> None:
        """Close the tracker once no frame is being tracked; later frames end the source."""
        with self._busy:
            self.closed = True
            self.to_params.close()

    def describe(self) -> str:
        return "browser camera (live)"

"""Where guidance frames come from. A FrameSource yields one GuidanceFrame per output frame.

`live` sources are paced by the outside world (webcam, a video played in real time): the runtime
reads them on a thread and keeps only the newest frame when it falls behind. File sources are
read as fast as the runtime consumes them and nothing is dropped.
"""
from __future__ import annotations

import abc
import dataclasses
import threading
import time
from typing import Iterator

import numpy as np

from engine.preprocess import GUIDANCE_TYPES


@dataclasses.dataclass
class GuidanceFrame:
    index: int                   # position in the source
    maps: dict[str, np.ndarray]  # {depth, normal, render}: (H,W,3) uint8
    arrived: float = dataclasses.field(default_factory=time.perf_counter)  # for end-to-end latency


class FrameSource(abc.ABC):
    live: bool = False
    fps: float | None = None

    def __len__(self) -> int:
        """Frame count; raise TypeError if unknown (endless/live)."""
        raise TypeError(f"{type(self).__name__} has no known length")

    @abc.abstractmethod
    def frames(self) -> Iterator[GuidanceFrame]:
        """Frames in order; ends when the source ends. May raise MprtError mid-stream."""

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return type(self).__name__


class MapsSource(FrameSource):
    """In-memory maps {type: (F,H,W,3) uint8}, e.g. a guidance folder read whole."""

    def __init__(self, maps: dict[str, np.ndarray], name: str = "guidance maps", fps: float | None = None):
        self.maps, self.name, self.fps = maps, name, fps

    def __len__(self) -> int:
        return len(self.maps[GUIDANCE_TYPES[0]])

    def frames(self) -> Iterator[GuidanceFrame]:
        for i in range(len(self)):
            yield GuidanceFrame(i, {t: self.maps[t][i] for t in GUIDANCE_TYPES})

    def describe(self) -> str:
        return f"{self.name} ({len(self)} frames)"


class PacedMapsSource(MapsSource):
    """In-memory maps released at `fps` as a camera would (live: the runtime drops stale frames when
    it falls behind). For measuring latency and throughput under real-time input."""
    live = True

    def __init__(self, maps: dict[str, np.ndarray], fps: float, name: str = "paced guidance maps"):
        super().__init__(maps, name, fps)

    def __len__(self) -> int:
        raise TypeError("a live source has no known length")

    def frames(self) -> Iterator[GuidanceFrame]:
        count = len(self.maps[GUIDANCE_TYPES[0]])
        start = time.perf_counter()
        for i in range(count):
            delay = start + i / self.fps - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            yield GuidanceFrame(i, {t: self.maps[t][i] for t in GUIDANCE_TYPES})

    def describe(self) -> str:
        return f"{self.name} (live at {self.fps:g} fps)"


class GuidanceFolderSource(FrameSource):
    """Upstream's layout <dir>/{depth,normal,render}/<frames>, read one frame at a time as the
    runtime asks (memory does not grow with the clip's length)."""

    def __init__(self, folder, max_frames: int | None = None):
        from engine.guidance.folders import list_guidance_folders
        self.folder = folder
        listing = list_guidance_folders(folder)
        self.files = {t: files[:max_frames] for t, files in listing.items()}

    def __len__(self) -> int:
        return len(self.files[GUIDANCE_TYPES[0]])

    def frames(self) -> Iterator[GuidanceFrame]:
        from engine.guidance.folders import read_guidance_image
        shape = None
        for i in range(len(self)):
            maps = {}
            for t in GUIDANCE_TYPES:
                maps[t] = read_guidance_image(self.files[t][i], shape)
                shape = maps[t].shape
            yield GuidanceFrame(i, maps)

    def describe(self) -> str:
        return f"guidance folder {self.folder} ({len(self)} frames)"


def guidance_folder_source(folder, max_frames: int | None = None) -> GuidanceFolderSource:
    return GuidanceFolderSource(folder, max_frames)


class FlameParamsSource(FrameSource):
    """FLAME parameters rendered to guidance maps chunk by chunk as the runtime asks for frames."""

    def __init__(self, params, flame_model, chunk: int = 8, max_frames: int | None = None, name: str = "FLAME params",
                 renderer="reference"):
        """renderer: a name of engine.guidance.pipeline.resolve_backend ("reference", "host", "cuda") or a
        callable RasterInputs -> GuidanceMaps (resolved once here, not per chunk)."""
        from engine.guidance.pipeline import resolve_backend
        params.validate(name)
        self.params, self.flame_model, self.chunk, self.name = params, flame_model, chunk, name
        self.renderer = resolve_backend(renderer)
        self.count = min(params.num_frames, max_frames or params.num_frames)

    def __len__(self) -> int:
        return self.count

    def frames(self) -> Iterator[GuidanceFrame]:
        from engine.guidance.pipeline import render_guidance_maps
        for start in range(0, self.count, self.chunk):
            stop = min(start + self.chunk, self.count)
            maps = render_guidance_maps(slice_params(self.params, start, stop), self.flame_model,
                                        backend=self.renderer)
            for j in range(stop - start):
                yield GuidanceFrame(start + j, {t: maps[t][j] for t in GUIDANCE_TYPES})

    def describe(self) -> str:
        return f"{self.name} ({self.count} frames, head model '{self.flame_model.name}')"


def slice_params(params, start: int, stop: int):
    """The per-frame arrays of frames [start, stop); per-source constants unchanged."""
    valid = None if params.valid is None else params.valid[start:stop]
    return dataclasses.replace(params, exp=params.exp[start:stop], pose=params.pose[start:stop], valid=valid)


class RecordingSource(FrameSource):
    """Passes another source's frames through and keeps their maps until `take(index)` (a streamed
    side-by-side grid): memory holds only the frames in flight, whatever the clip's length."""

    def __init__(self, inner: FrameSource):
        self.inner, self.live, self.fps = inner, inner.live, inner.fps
        self._maps: dict[int, dict[str, np.ndarray]] = {}
        self._lock = threading.Lock()  # frames arrive on the runtime's thread, are taken on the writer's

    def __len__(self) -> int:
        return len(self.inner)

    def frames(self) -> Iterator[GuidanceFrame]:
        for frame in self.inner.frames():
            with self._lock:
                self._maps[frame.index] = frame.maps
            yield frame

    def take(self, index: int) -> dict[str, np.ndarray]:
        """The maps of frame `index`, forgotten here together with those of earlier (dropped) frames."""
        with self._lock:
            for stale in [i for i in self._maps if i < index]:
                del self._maps[stale]
            return self._maps.pop(index)

    def held(self) -> int:
        return len(self._maps)

    def close(self) -> None:
        self.inner.close()

    def describe(self) -> str:
        return self.inner.describe()

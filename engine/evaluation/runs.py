"""One run of the streaming runtime on in-memory guidance maps, frames collected in memory, with
the runtime's own timing report (so speed and quality come from the same run)."""
from __future__ import annotations

import time

import numpy as np

from engine.backends.base import Backend
from engine.runtime.presets import StreamSettings
from engine.runtime.sinks import CollectingSink


def run_runtime(backend: Backend, settings: StreamSettings, reference_u8: np.ndarray,
                maps_u8: dict[str, np.ndarray], size: int, seed: int = 42) -> tuple[np.ndarray, dict, float]:
    """-> (frames (F,size,size,3) uint8, runtime report, wall seconds of the run incl. the identity)."""
    from engine.runtime.runner import StreamRuntime
    from engine.runtime.sources import MapsSource
    t0 = time.perf_counter()
    runtime = StreamRuntime(backend, settings, size, seed=seed)
    runtime.set_identity(reference_u8)
    sink = CollectingSink()
    report = runtime.run(MapsSource(maps_u8, "held-out clip"), [sink])
    seconds = time.perf_counter() - t0
    frames = sink.stacked()
    if len(frames) != len(maps_u8["render"]):
        raise RuntimeError(f"runtime returned {len(frames)} frames for {len(maps_u8['render'])} inputs")
    return frames, report, seconds

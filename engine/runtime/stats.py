"""What the runtime measures: per-stage timings (p50/p95), throughput, end-to-end latency per
frame, queue depth and dropped input frames; a one-line live status and a JSON report."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import time

import numpy as np

from engine.io.atomic import atomic_file


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"count": 0}
    a = np.asarray(seconds) * 1000.0
    return {"count": len(a), "p50_ms": round(float(np.percentile(a, 50)), 3),
            "p95_ms": round(float(np.percentile(a, 95)), 3), "total_s": round(float(a.sum() / 1000), 4)}


@dataclasses.dataclass
class RuntimeStats:
    stages: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    latencies: list[float] = dataclasses.field(default_factory=list)
    queue_depths: list[int] = dataclasses.field(default_factory=list)
    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    started: float = dataclasses.field(default_factory=time.perf_counter)
    first_output: float | None = None
    last_output: float | None = None

    @contextlib.contextmanager
    def stage(self, name: str, sync=None):
        """Time a block; `sync` (the backend's synchronize) runs before the clock stops."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if sync is not None:
                sync()
            self.stages.setdefault(name, []).append(time.perf_counter() - t0)

    def output(self, arrived: float) -> None:
        now = time.perf_counter()
        self.frames_out += 1
        self.latencies.append(now - arrived)
        self.first_output = self.first_output or now
        self.last_output = now

    def fps(self) -> float:
        elapsed = (self.last_output or time.perf_counter()) - self.started
        return self.frames_out / elapsed if elapsed > 0 else 0.0

    def status_line(self, in_flight: int) -> str:
        lat = percentiles_ms(self.latencies[-50:])
        return (f"in {self.frames_in} out {self.frames_out} dropped {self.dropped} | {self.fps():5.2f} fps | "
                f"latency p50 {lat.get('p50_ms', 0):7.1f} ms | in flight {in_flight}")

    def report(self, **context) -> dict:
        wall = time.perf_counter() - self.started
        steady = None
        if self.first_output and self.last_output and self.last_output - self.first_output > 1e-3:
            steady = (self.frames_out - 1) / (self.last_output - self.first_output)  # after the first frame
        return {**context,
                "frames_in": self.frames_in, "frames_out": self.frames_out, "dropped_input_frames": self.dropped,
                "wall_s": round(wall, 4), "fps": round(self.fps(), 4),
                "steady_fps": round(steady, 4) if steady else None,
                "first_frame_s": round(self.first_output - self.started, 4) if self.first_output else None,
                "latency": percentiles_ms(self.latencies),
                "queue_depth": {"max": max(self.queue_depths, default=0),
                                "mean": round(float(np.mean(self.queue_depths)), 3) if self.queue_depths else 0},
                "stages": {k: percentiles_ms(v) for k, v in self.stages.items()}}


class StatusLine:
    """One status line at most every `interval` seconds: rewritten in place on a terminal, one line
    per update elsewhere (only when forced: logs stay quiet by default)."""

    def __init__(self, interval: float = 0.5, stream=None, force: bool = False):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.enabled = force or self.tty
        self.interval, self.last, self.shown = interval, 0.0, ""

    def update(self, text: str, final: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (not final and now - self.last < self.interval) or (final and text == self.shown):
            if final and self.tty and self.shown:
                self.stream.write("\n")
            return
        self.last, self.shown = now, text
        self.stream.write(("\r" + text + ("\n" if final else "")) if self.tty else text + "\n")
        self.stream.flush()


def write_json_report(path, report: dict, overwrite: bool = True) -> None:
    """Whole or not at all (engine.io.atomic); overwrite=False never replaces an existing file."""
    with atomic_file(path, "w", overwrite=overwrite) as fh:
        json.dump(report, fh, indent=1)

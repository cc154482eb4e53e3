"""Per-frame latency of one session, on the server's clock and as the page measured it.

Server side, per frame code: received (decoded from RTP) -> started (taken for tracking: the wait
before it is queueing behind slower work) -> output (handed to the video track; tracking, maps,
guidance encoder, the frames in flight in the sampler, decode). The page reports each displayed
frame's glass-to-glass time (camera capture -> output frame on screen, its own clock) with the code;
joined here, transport = glass-to-glass - server time (both encodes, network, jitter buffers, display).
"""
from __future__ import annotations

import collections
import threading
import time

import numpy as np

KEEP = 300  # frames the percentiles are taken over (the recent past, not the whole session)


def _pct(values) -> dict:
    if not values:
        return {"count": 0}
    a = np.asarray(values, dtype=np.float64)
    return {"count": int(a.size), "p50_ms": round(float(np.percentile(a, 50)), 1),
            "p95_ms": round(float(np.percentile(a, 95)), 1)}


class LatencyBook:
    def __init__(self, keep: int = KEEP):
        self._lock = threading.Lock()
        self._started: collections.OrderedDict[int, tuple] = collections.OrderedDict()
        self._output: collections.OrderedDict[int, dict] = collections.OrderedDict()  # awaiting the page's report
        self.server: collections.deque[dict] = collections.deque(maxlen=keep)
        self.joined: collections.deque[dict] = collections.deque(maxlen=keep)
        self._out_times: collections.deque[float] = collections.deque(maxlen=64)
        self.frames_out = 0
        self.frames_displayed = 0
        self.client: dict = {}

    def started(self, index: int, received: float, started: float, track_s: float, render_s: float) -> None:
        with self._lock:
            self._started[index] = (received, started, track_s, render_s)
            while len(self._started) > 256:  # frames dropped inside the runtime never finish
                self._started.popitem(last=False)

    def finished(self, index: int, now: float | None = None) -> dict | None:
        """The server-side record of an output frame (None when its start was not seen)."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            self.frames_out += 1
            self._out_times.append(now)
            start = self._started.pop(index, None)
            if start is None:
                return None
            received, started, track_s, render_s = start
            rec = {"code": index, "wait_ms": round((started - received) * 1e3, 2),
                   "track_ms": round(track_s * 1e3, 2), "render_ms": round(render_s * 1e3, 2),
                   "compute_ms": round((now - started) * 1e3, 2), "server_ms": round((now - received) * 1e3, 2)}
            self.server.append(rec)
            self._output[index] = rec
            while len(self._output) > 256:
                self._output.popitem(last=False)
            return rec

    def displayed(self, code: int, g2g_ms: float) -> dict | None:
        """The page saw output frame `code` g2g_ms after its camera captured it."""
        if not (0 <= g2g_ms < 60_000):
            return None
        with self._lock:
            rec = self._output.pop(code, None)
            if rec is None:
                return None
            self.frames_displayed += 1
            joined = {**rec, "g2g_ms": round(float(g2g_ms), 2),
                      "transport_ms": round(float(g2g_ms) - rec["server_ms"], 2)}
            self.joined.append(joined)
            return joined

    def fps(self, window_s: float = 2.0) -> float:
        with self._lock:
            now = time.perf_counter()
            recent = [t for t in self._out_times if now - t <= window_s]
        return round((len(recent) - 1) / (recent[-1] - recent[0]), 2) if len(recent) > 1 and recent[-1] > recent[0] else 0.0

    def summary(self) -> dict:
        with self._lock:
            server, joined = list(self.server), list(self.joined)
        out = {"frames_out": self.frames_out, "frames_displayed": self.frames_displayed, "output_fps": self.fps(),
               "glass_to_glass": _pct([r["g2g_ms"] for r in joined]),
               "server": _pct([r["server_ms"] for r in server]),
               "wait": _pct([r["wait_ms"] for r in server]),
               "compute": _pct([r["compute_ms"] for r in server]),
               "track": _pct([r["track_ms"] for r in server]),
               "render": _pct([r["render_ms"] for r in server]),
               "transport": _pct([r["transport_ms"] for r in joined])}
        if joined:  # where the time goes, as shares of the mean glass-to-glass time
            g2g = float(np.mean([r["g2g_ms"] for r in joined]))
            out["share"] = {k: round(float(np.mean([r[f"{k}_ms"] for r in joined])) / g2g, 3)
                            for k in ("wait", "compute", "transport")}
        if self.client:
            out["client"] = dict(self.client)
        return out

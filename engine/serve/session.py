"""One browser's stream: camera inbox -> SessionSource -> StreamRuntime (own thread) -> output frames.

Transport-free: the WebRTC side (rtc.py) calls `push_camera` with decoded frames and receives
stamped output frames through `on_output`; anything else (a batching scheduler, a test) can drive a
session the same way. The session owns its stream state (tracker, sampler queue, latency book) and
holds one reference on the shared identity cache; `close()` frees all of it.
"""
from __future__ import annotations

import secrets
import sys
import threading
import time
from typing import Callable

import numpy as np

from engine.errors import InputError
from engine.runtime.sinks import FrameSink
from engine.runtime.stats import RuntimeStats, percentiles_ms
from engine.serve import framecode
from engine.serve.inbox import NewestFrame, stop_consumer
from engine.serve.latency import LatencyBook
from engine.serve.session_source import BuiltinMotion, SessionSource
from engine.serve.shared import LIVE_PRESETS, SharedModel

DRIVING_MODES = ("camera", "builtin")


class SessionClosed(Exception):
    """Raised into the runtime by the output sink once the session is closed (ends the run fast)."""


def new_session_id() -> str:
    return secrets.token_urlsafe(24)  # 192 random bits: the id is the key to the session's stats


class _OutputSink(FrameSink):
    """Output frame + its guidance render side by side, the input frame's code stamped below."""

    def __init__(self, session: "Session", source: SessionSource):
        self.session, self.source = session, source

    def write(self, index: int, frame: np.ndarray) -> None:
        s = self.session
        if s.closed:
            raise SessionClosed()
        guide = self.source.guides.pop(index, None)
        if guide is None or guide.shape != frame.shape:
            guide = np.zeros_like(frame)
        picture = np.concatenate([guide, frame], axis=1)
        stamped = framecode.stamp(picture, index if index >= 0 else 0)
        if index < 0:  # no code came in: an unreadable strip (no contrast), never a wrong match
            stamped[picture.shape[0]:] = 0
        record = s.book.finished(index) if index >= 0 else None
        s.on_output(stamped, record)
        mirror = s.mirror
        if mirror is not None:  # a virtual camera shows the output alone
            mirror.write(index, frame)


class Session:
    def __init__(self, shared: SharedModel, portrait: np.ndarray, source_code, preset: str = "realtime",
                 driving: str = "camera", on_output: Callable[[np.ndarray, dict | None], None] = lambda f, r: None,
                 camera_fps: float = 30.0):
        if preset not in LIVE_PRESETS:
            raise InputError(f"preset: expected one of {list(LIVE_PRESETS)} for a live session, got '{preset}'")
        if driving not in DRIVING_MODES:
            raise InputError(f"driving: expected one of {list(DRIVING_MODES)}, got '{driving}'")
        if driving == "camera" and shared.driving_encoder is None:
            raise InputError("camera driving is not available: the server runs without --landmarker and "
                             "driving weights (--driving-weights DIR or --random-encoders); use 'no camera'")
        self.id = new_session_id()
        self.shared, self.preset, self.driving, self.on_output = shared, preset, driving, on_output
        self.created = self.last_activity = time.monotonic()
        self.inbox, self.book = NewestFrame(), LatencyBook()
        self.stats: RuntimeStats | None = None
        self.error: str | None = None
        self.closed = False
        self.mirror = None  # a FrameSink that also gets the output (the server's virtual camera)
        self._restart = threading.Event()
        self._unstamped = 0
        self._t0 = time.perf_counter()
        if driving == "camera":
            from engine.runtime.driving_source import DrivingTracker
            self.driver = DrivingTracker.from_parts(source_code, shared.landmarker, shared.driving_encoder,
                                                    fps=camera_fps)
        else:
            self.driver = BuiltinMotion(shared.builtin_motion, source_code)
        try:
            self.identity_key, self.identity = shared.identities.acquire(portrait)
        except BaseException:
            self.driver.close()
            raise
        self.source = SessionSource(self.inbox, self.driver, shared.head_model, shared.renderer, self.book,
                                    shared.size, stop=self._restart.is_set)
        self._thread = threading.Thread(target=self._loop, name=f"mprt-session-{self.id[:6]}", daemon=True)

    def start(self) -> "Session":
        self._thread.start()
        return self

    # -- from the transport ---------------------------------------------------------------------
    def push_camera(self, frame_rgb_u8: np.ndarray) -> None:
        """A decoded camera frame with the page's code strip below it (newest kept when behind)."""
        picture, code = framecode.split(frame_rgb_u8)
        if code is None:
            self._unstamped += 1
            code = -self._unstamped  # still driven, just not matched for latency
        now = time.perf_counter()
        self.last_activity = time.monotonic()
        self.inbox.put((code, np.ascontiguousarray(picture), now, int((now - self._t0) * 1000)))

    def set_preset(self, name: str) -> None:
        if name not in LIVE_PRESETS:
            raise InputError(f"preset: expected one of {list(LIVE_PRESETS)}, got '{name}'")
        if name != self.preset:
            self.preset = name
            self._restart.set()  # the source ends, the runtime finishes its frames, a new one starts
            self.inbox.wake()

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    # -- the stream -----------------------------------------------------------------------------
    def _loop(self) -> None:
        from engine.runtime.runner import StreamRuntime
        sh = self.shared
        backend = sh.session_backend()
        try:
            while not self.closed:
                self._restart.clear()
                runtime = StreamRuntime(backend, sh.settings_for(self.preset), sh.size, seed=sh.seed)
                runtime.identity = self.identity  # from the shared cache (reference K/V by image hash)
                self.stats = RuntimeStats()
                runtime.run(self.source, [_OutputSink(self, self.source)], stats=self.stats)
                if not self._restart.is_set():
                    break
        except SessionClosed:
            pass
        except Exception as err:  # reported on the page and in /stats; the session then closes
            self.error = f"{type(err).__name__}: {err}"
            print(f"mprt serve: session {self.id[:6]} stopped: {self.error}", file=sys.stderr)
        finally:
            self.inbox.close()
            if backend is not sh.backend:
                backend.close()  # leave the batcher

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def snapshot(self) -> dict:
        """This session's figures (for its own page and /stats/<its id> only)."""
        stats = self.stats
        stages = {k: percentiles_ms(v[-100:]) for k, v in list(stats.stages.items())} if stats else {}
        return {"session": self.id, "preset": self.preset, "driving": self.driving, "error": self.error,
                "age_s": round(time.monotonic() - self.created, 1),
                "frames_in": self.inbox.received, "dropped_camera": self.inbox.dropped,
                "dropped_guidance": stats.dropped if stats else 0, "no_face": self.source.no_face,
                "unstamped": self._unstamped, "latency": self.book.summary(),
                "stages": {k: v.get("p50_ms") for k, v in stages.items()}}

    def close(self, timeout: float = 10.0) -> None:
        """Stop the stream and free everything this session holds (idempotent; blocks up to `timeout`)."""
        if self.closed:
            return
        self.closed = True
        stop_consumer(self.inbox, self._thread, timeout)
        self.source.close_driver()
        self.shared.identities.release(self.identity_key)
        self.identity = None
        self.source.guides.clear()
        self.on_output = lambda f, r: None

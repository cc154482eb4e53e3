"""One replica of `mprt serve --ray` (a Ray Serve deployment): a loaded backend, the cross-session batcher
and the sessions placed on it. A session's whole state (tracker, sampler queue, identity K/V) lives
here; the ingress only relays camera frames in and output frames out (engine/serve/ray_ingress.py).

One replica per GPU (`num_gpus=1`), CPU replicas where there is none. Admission: at most
`max_sessions` sessions; an `open` beyond that is refused with a message (the ingress tries another
replica, then answers busy) - nothing queues. A session whose ingress stops calling for `idle_timeout_s`
(client or ingress gone) is closed and its state freed.
"""
from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any, Callable

import numpy as np

OUTPUT_KEEP = 4  # output frames kept for the ingress between two exchanges (newest; older are dropped)


class _Hosted:
    """A session on this replica and the outputs it made since the ingress last asked."""

    def __init__(self, session):
        self.session = session
        self.last_call = time.monotonic()
        self._cond = threading.Condition()
        self._outputs: list[tuple[np.ndarray, dict | None]] = []
        self.outputs_dropped = 0

    def collect(self, frame: np.ndarray, record: dict | None) -> None:  # the session's on_output
        with self._cond:
            self._outputs.append((frame, record))
            if len(self._outputs) > OUTPUT_KEEP:
                self._outputs.pop(0)
                self.outputs_dropped += 1
            self._cond.notify_all()

    def take(self, wait_s: float) -> list[tuple[np.ndarray, dict | None]]:
        with self._cond:
            if not self._outputs and self.session.running:
                self._cond.wait(wait_s)
            out, self._outputs = self._outputs, []
            return out


def replica_id() -> str:
    try:
        from ray import serve
        return serve.get_replica_context().replica_id.unique_id
    except Exception:  # noqa: BLE001 - outside Ray Serve (unit tests)
        return "local"


class StreamReplica:
    """The deployment's class. `make_shared()` builds the SharedModel (backend, batcher, renderer, encoders)
    in the replica's process; `batching` = (max batch, latency budget in s) adds a batcher if it has none."""

    def __init__(self, make_shared: Callable[[], Any], max_sessions: int, batching: tuple[int, float] | None = None,
                 idle_timeout_s: float = 15.0):
        self.shared = make_shared()
        if self.shared.batcher is None and batching is not None and batching[0] > 1:
            from engine.runtime.batcher import CrossSessionBatcher
            self.shared.batcher = CrossSessionBatcher(self.shared.backend, *batching)
        self.max_sessions, self.idle_timeout_s = max_sessions, idle_timeout_s
        self.id = replica_id()
        self.hosted: dict[str, _Hosted] = {}
        self.refused = 0
        self.closed_idle = 0
        self._starting = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._janitor, name="mprt-replica-janitor", daemon=True).start()

    # -- Ray Serve hooks -----------------------------------------------------------------------------
    def record_routing_stats(self) -> dict:
        return {"sessions": len(self.hosted)}

    def check_health(self) -> None:
        batcher = self.shared.batcher
        if batcher is not None and not batcher.alive:
            raise RuntimeError("the batcher's worker stopped")

    # -- sessions ----------------------------------------------------------------------------------
    def info(self, replica: str | None = None) -> dict:
        sh = self.shared
        return {"replica": self.id, "model": sh.description, "size": sh.size, "max_sessions": self.max_sessions,
                "sessions": len(self.hosted), "camera_driving": sh.driving_encoder is not None}

    async def open(self, portrait: np.ndarray | None, source_code, preset: str, driving: str,
                   replica: str | None = None, exclude=()) -> dict:
        """Start a session here -> {"session", "replica"} or {"refused": message, "replica"}."""
        from engine.serve.session import Session
        with self._lock:
            if len(self.hosted) + self._starting >= self.max_sessions:
                self.refused += 1
                return {"refused": f"replica {self.id[:8]} is full ({self.max_sessions} session(s))",
                        "replica": self.id}
            self._starting += 1  # hold the slot during the (slow) start
        sh = self.shared
        try:
            if portrait is None:
                portrait, source_code = sh.builtin_portrait, sh.builtin_source
            session = await asyncio.to_thread(Session, sh, portrait, source_code, preset, driving)
        finally:
            with self._lock:
                self._starting -= 1
        hosted = _Hosted(session)
        session.on_output = hosted.collect
        with self._lock:
            self.hosted[session.id] = hosted
        session.start()
        return {"session": session.id, "replica": self.id}

    async def exchange(self, session_id: str, frame: np.ndarray | None, replica: str | None = None,
                       wait_s: float = 0.1, preset: str | None = None, snapshot: bool = False) -> dict:
        """Hand in the newest camera frame; get the output frames made since the last call (waiting up
        to `wait_s` for one). A session not here answers "reconnect"."""
        hosted = self.hosted.get(session_id)
        if hosted is None:
            return {"reconnect": f"session {session_id[:6]} is not on replica {self.id[:8]} (replica restarted "
                                 "or session expired): reconnect", "replica": self.id}
        hosted.last_call = time.monotonic()
        s = hosted.session
        if preset is not None:
            s.set_preset(preset)
        if frame is not None:
            s.push_camera(frame)
        else:
            s.touch()
        outputs = await asyncio.to_thread(hosted.take, wait_s)
        reply = {"outputs": outputs, "error": s.error, "running": s.running, "replica": self.id}
        if snapshot:
            reply["snapshot"] = {**s.snapshot(), "replica": self.id, "outputs_dropped": hosted.outputs_dropped}
        return reply

    async def close(self, session_id: str, replica: str | None = None) -> bool:
        with self._lock:
            hosted = self.hosted.pop(session_id, None)
        if hosted is None:
            return False
        await asyncio.to_thread(hosted.session.close)
        return True

    def stats(self, replica: str | None = None) -> dict:
        return {"replica": self.id, "sessions": len(self.hosted),
                "max_sessions": self.max_sessions, "refused": self.refused, "closed_idle": self.closed_idle,
                "batcher": self.shared.batcher.stats.summary() if self.shared.batcher else None}

    def _janitor(self, period_s: float = 1.0) -> None:
        """Close sessions nobody asks for any more (client or ingress vanished): frees their state."""
        while True:
            time.sleep(period_s)
            now = time.monotonic()
            for sid, hosted in list(self.hosted.items()):
                if now - hosted.last_call > self.idle_timeout_s:
                    with self._lock:
                        self.hosted.pop(sid, None)
                    self.closed_idle += 1
                    print(f"mprt replica {self.id[:8]}: session {sid[:6]} closed (no call for "
                          f"{self.idle_timeout_s:.0f} s)", file=sys.stderr)
                    hosted.session.close()

    def __del__(self):
        for hosted in list(self.hosted.values()):
            hosted.session.close()

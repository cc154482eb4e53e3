"""The ingress side of `mprt serve --ray`: sessions that live on Ray Serve replicas.

`RemoteSession` has the interface of engine.serve.session.Session (push_camera, on_output, set_preset,
touch, snapshot, close, ...), so the web app and its WebRTC glue drive it unchanged; its stream runs on
the replica the session was placed on (engine/serve/ray_replica.py), and every call for it is routed
there (engine/serve/ray_router.py). A relay thread hands the newest camera frame to the replica and
brings back the output frames made since (one call in flight per session; camera frames that arrive
meanwhile replace each other, counted as dropped, so nothing queues on the way).

When the replica dies or no longer knows the session, the page gets a "reconnect" notice and the session
is opened again on another replica (same portrait, preset and driving; the stream restarts there).
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Callable

import numpy as np

from engine.serve.inbox import NewestFrame, stop_consumer
from engine.serve.latency import LatencyBook
from engine.serve.sessions import Busy

SNAPSHOT_PERIOD_S = 0.5
CALL_TIMEOUT_S = 60.0
REPLACE_WITHIN_S = 120.0  # how long a session whose replica died waits for room on another


class Refused(Busy):
    """No replica took the session (all full): the message says so (the page gets HTTP 503)."""


def _ray_failure(err: BaseException) -> bool:
    """A call failed because its replica is gone or unreachable (not because of our input)."""
    try:
        from ray import exceptions as rx
    except ImportError:
        return False
    return isinstance(err, (rx.RayActorError, rx.ActorUnavailableError, rx.GetTimeoutError, TimeoutError))


class RayPlacer:
    """Opens sessions on the deployment's replicas: the router prefers the emptiest; a full replica
    refuses and the next one is tried, up to `attempts` replicas."""

    def __init__(self, handle, attempts: int = 4):
        self.handle, self.attempts = handle, attempts
        self.refused_total = 0

    def open(self, portrait, source_code, preset: str, driving: str, avoid=()) -> dict:
        exclude, last = list(avoid), None
        for _ in range(self.attempts):
            reply = self.handle.open.remote(portrait, source_code, preset, driving, replica=None,
                                            exclude=exclude).result(timeout_s=CALL_TIMEOUT_S)
            if "session" in reply:
                return reply
            last = reply["refused"]
            exclude.append(reply["replica"])
        self.refused_total += 1
        raise Refused(f"busy: every replica is full ({last}); try again later")

    def call(self, method: str, *args, replica: str, **kwargs):
        return getattr(self.handle, method).remote(*args, replica=replica, **kwargs).result(timeout_s=CALL_TIMEOUT_S)


class RemoteSession:
    def __init__(self, placer: RayPlacer, portrait: np.ndarray | None, source_code, preset: str = "realtime",
                 driving: str = "camera", on_output: Callable[[np.ndarray, dict | None], None] = lambda f, r: None):
        self.placer, self.portrait, self.source_code = placer, portrait, source_code
        self.preset, self.driving, self.on_output = preset, driving, on_output
        self.created = self.last_activity = time.monotonic()
        self.inbox, self.book = NewestFrame(), LatencyBook()
        self.error: str | None = None
        self.notice: str | None = None
        self.closed = False
        self.mirror = None
        self.reconnects = 0
        self._received: dict[int, float] = {}  # frame code -> arrival at the ingress
        self._unstamped = 0
        self._preset_change: str | None = None
        self._snapshot: dict = {}
        placed = placer.open(portrait, source_code, preset, driving)
        # The page knows the session by its first id; calls use its id on the current replica.
        self.id = self._remote_id = placed["session"]
        self.replica = placed["replica"]
        self._thread = threading.Thread(target=self._relay, name=f"mprt-relay-{self.id[:6]}", daemon=True)

    def start(self) -> "RemoteSession":
        self._thread.start()
        return self

    # -- from the transport (same as Session) --------------------------------------------------------
    def push_camera(self, frame_rgb_u8: np.ndarray) -> None:
        from engine.serve import framecode
        code = framecode.split(frame_rgb_u8)[1]
        now = time.perf_counter()
        if code is None:
            self._unstamped += 1
        else:
            self._received[code] = now
            while len(self._received) > 512:
                self._received.pop(next(iter(self._received)))
        self.last_activity = time.monotonic()
        self.inbox.put(frame_rgb_u8)

    def set_preset(self, name: str) -> None:
        from engine.errors import InputError
        from engine.serve.shared import LIVE_PRESETS
        if name not in LIVE_PRESETS:
            raise InputError(f"preset: expected one of {list(LIVE_PRESETS)}, got '{name}'")
        self.preset = self._preset_change = name

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    # -- the relay ------------------------------------------------------------------------------------
    def _relay(self) -> None:
        next_snapshot = 0.0
        try:
            while not self.closed:
                frame = self.inbox.take(wake=lambda: self.closed)
                if self.closed:
                    break
                want = time.monotonic() >= next_snapshot
                preset, self._preset_change = self._preset_change, None
                try:
                    reply = self.placer.call("exchange", self._remote_id, frame, replica=self.replica, preset=preset,
                                             snapshot=want)
                except Exception as err:  # noqa: BLE001 - sorted below
                    if not _ray_failure(err):
                        raise
                    reply = {"reconnect": f"replica {self.replica[:8]} is unreachable ({type(err).__name__})"}
                if "reconnect" in reply:
                    self._replace(reply["reconnect"])
                    continue
                if want:
                    self._snapshot, next_snapshot = reply.get("snapshot", {}), time.monotonic() + SNAPSHOT_PERIOD_S
                for picture, record in reply["outputs"]:
                    self._deliver(picture, record)
                if reply.get("error") and not reply.get("running"):
                    self.error = reply["error"]
                    break
        except Exception as err:  # noqa: BLE001 - reported on the page and in /stats
            self.error = f"{type(err).__name__}: {err}"
            print(f"mprt serve: session {self.id[:6]} stopped: {self.error}", file=sys.stderr)

    def _replace(self, why: str) -> None:
        """The replica lost the session: tell the page, then open it again elsewhere."""
        old = self.replica
        self.notice = f"reconnect: {why}; moving the session to another replica"
        print(f"mprt serve: session {self.id[:6]}: {self.notice}", file=sys.stderr)
        end = time.monotonic() + REPLACE_WITHIN_S
        while True:  # the cluster may be starting a replacement replica: retry for a while, then give up
            try:
                placed = self.placer.open(self.portrait, self.source_code, self.preset, self.driving, avoid=[old])
                break
            except Exception as err:  # noqa: BLE001 - full, or the cluster still rerouting: retry those
                if not (isinstance(err, Busy) or _ray_failure(err)) or self.closed or time.monotonic() > end:
                    raise
                time.sleep(1.0)
        self._remote_id, self.replica = placed["session"], placed["replica"]
        self.reconnects += 1
        self.notice = f"reconnected on replica {self.replica[:8]} (the previous one went away)"

    def _deliver(self, picture: np.ndarray, record: dict | None) -> None:
        """An output frame: re-time its record on the ingress's clock (arrival here -> output here)."""
        local = None
        if record is not None:
            received = self._received.pop(record["code"], None)
            if received is not None:
                started = received + record["wait_ms"] / 1e3
                self.book.started(record["code"], received, started, record["track_ms"] / 1e3,
                                  record["render_ms"] / 1e3)
                local = self.book.finished(record["code"])
        else:
            self.book.finished(-1)
        self.on_output(picture, local)
        if self.mirror is not None:
            self.mirror.write(record["code"] if record else -1, picture)

    # -- figures and end ------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        snap = dict(self._snapshot)
        snap.update({"session": self.id, "preset": self.preset, "driving": self.driving, "error": self.error,
                     "age_s": round(time.monotonic() - self.created, 1), "replica": self.replica,
                     "reconnects": self.reconnects, "notice": self.notice,
                     "frames_in": self.inbox.received, "dropped_relay": self.inbox.dropped,
                     "unstamped": self._unstamped, "latency": self.book.summary()})
        return snap

    def close(self, timeout: float = 10.0) -> None:
        if self.closed:
            return
        self.closed = True
        stop_consumer(self.inbox, self._thread, timeout)
        try:
            self.placer.call("close", self._remote_id, replica=self.replica)
        except Exception:  # noqa: BLE001 - the replica may be gone; its janitor frees the state then
            pass
        self.on_output = lambda f, r: None

"""Cross-session batching: the UNet calls of several streams gathered into one `Backend.denoise_batch` call.

Each stream (session) keeps its own sampler, identity (reference K/V), guidance features and per-frame
timesteps. Its sampler calls `denoise` on a `SessionBackend` exactly as it would on the backend; the
call becomes a request in the batcher's queue and blocks until its rows come back. A worker thread, each
tick, takes the oldest request plus every waiting request of the same shape (frames, h, w), up to
`max_batch` samples, and runs them as one call. Before a call it waits for more requests only while all
of these hold:
  * fewer than `max_batch` samples of that shape are waiting,
  * some registered session has no request waiting (else no one can add to the batch),
  * the oldest request has waited less than `budget_s`,
so a session is never held past the budget to fill a batch. A session has at most one request
outstanding (its sampler waits for the result), so the queue never holds more than one request per
session: how many sessions there are is the server's admission decision, not the batcher's.

    batcher = CrossSessionBatcher(backend, max_batch=8, budget_s=0.02)
    session = batcher.session()                    # a Backend for one stream
    runtime = StreamRuntime(session, settings, size) ...   # as with the plain backend
    session.close(); batcher.close()
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import threading
import time
from concurrent.futures import Future
from typing import Any, Sequence

import numpy as np

from engine.backends.base import Backend
from engine.errors import InputError, MprtError


class BatcherClosed(MprtError):
    """The batcher stopped (server shutting down or replica going away) while a request waited."""


@dataclasses.dataclass
class _Request:
    session: int
    sample: np.ndarray        # (B,4,F,h,w)
    timesteps: np.ndarray     # (B,F)
    guidance: Sequence[Any]   # F handles, shared by the B rows
    identity: Any
    use_reference: np.ndarray  # (B,)
    arrived: float
    future: Future = dataclasses.field(default_factory=Future)

    @property
    def key(self) -> tuple[int, ...]:
        return self.sample.shape[1:]

    @property
    def rows(self) -> int:
        return self.sample.shape[0]


class BatcherStats:
    """Per-call sample counts, queue waits and call times (for reports and benchmarks)."""

    def __init__(self, keep: int = 4096):
        self.samples: collections.deque[int] = collections.deque(maxlen=keep)
        self.waits_s: collections.deque[float] = collections.deque(maxlen=keep)
        self.calls_s: collections.deque[float] = collections.deque(maxlen=keep)
        self.calls = 0
        self.requests = 0

    def summary(self) -> dict:
        def pct(values, q):
            return float(np.percentile(list(values), q)) if values else None
        return {"calls": self.calls, "requests": self.requests,
                "samples_per_call_mean": float(np.mean(self.samples)) if self.samples else None,
                "samples_per_call_max": max(self.samples) if self.samples else None,
                "queue_wait_ms_p50": _ms(pct(self.waits_s, 50)), "queue_wait_ms_p95": _ms(pct(self.waits_s, 95)),
                "call_ms_p50": _ms(pct(self.calls_s, 50)), "call_ms_p95": _ms(pct(self.calls_s, 95))}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


class CrossSessionBatcher:
    def __init__(self, backend: Backend, max_batch: int = 8, budget_s: float = 0.02):
        if max_batch < 1:
            raise InputError(f"max batch: expected >= 1, got {max_batch}")
        if budget_s < 0:
            raise InputError(f"latency budget: expected >= 0 seconds, got {budget_s}")
        self.backend, self.max_batch, self.budget_s = backend, max_batch, budget_s
        # Backends that cannot overlap calls (one CUDA stream) get every call serialised through this lock.
        self.call_lock = contextlib.nullcontext() if backend.info.concurrent_calls else threading.Lock()
        self.stats = BatcherStats()
        self._queue: list[_Request] = []
        self._sessions: set[int] = set()
        self._ids = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._loop, name="mprt-batcher", daemon=True)
        self._worker.start()

    # -- sessions -------------------------------------------------------------------------------------------
    def session(self) -> "SessionBackend":
        with self._cond:
            if self._closed:
                raise BatcherClosed("the batcher is closed")
            sid = next(self._ids)
            self._sessions.add(sid)
            return SessionBackend(self, sid)

    def _leave(self, sid: int) -> None:
        with self._cond:
            self._sessions.discard(sid)
            self._cond.notify_all()  # the batch may no longer need to wait for this session

    @property
    def alive(self) -> bool:
        return self._worker.is_alive()

    @property
    def sessions(self) -> int:
        with self._cond:
            return len(self._sessions)

    def submit(self, sid: int, sample, timesteps, guidance, identity, use_reference) -> Future:
        req = _Request(sid, np.asarray(sample, np.float32), np.asarray(timesteps), list(guidance), identity,
                       np.asarray(use_reference, bool).reshape(-1), time.monotonic())
        if req.timesteps.shape != req.sample.shape[:1] + req.sample.shape[2:3] or len(req.guidance) != req.key[1]:
            raise InputError(f"denoise request: sample {req.sample.shape}, timesteps {req.timesteps.shape} and "
                             f"{len(req.guidance)} guidance frames disagree")
        with self._cond:
            if self._closed:
                raise BatcherClosed("the batcher is closed")
            self._queue.append(req)
            self._cond.notify_all()
        return req.future

    def close(self) -> None:
        """Stop the worker; requests still waiting fail with BatcherClosed."""
        with self._cond:
            self._closed = True
            waiting, self._queue = self._queue, []
            self._cond.notify_all()
        for req in waiting:
            req.future.set_exception(BatcherClosed("the batcher closed before this request ran"))
        if self._worker is not threading.current_thread():
            self._worker.join()

    # -- worker ---------------------------------------------------------------------------------------------
    def _take(self) -> list[_Request] | None:
        with self._cond:
            while True:
                if self._closed:
                    return None
                if not self._queue:
                    self._cond.wait()
                    continue
                oldest = self._queue[0]
                group = [r for r in self._queue if r.key == oldest.key]
                waiting = {r.session for r in self._queue}
                wait = oldest.arrived + self.budget_s - time.monotonic()
                if (sum(r.rows for r in group) >= self.max_batch or self._sessions <= waiting or wait <= 0):
                    break
                self._cond.wait(wait)
            take, rows = [], 0
            for r in group:
                if take and rows + r.rows > self.max_batch:
                    break
                take.append(r)
                rows += r.rows
            taken = {id(r) for r in take}
            self._queue = [r for r in self._queue if id(r) not in taken]
            return take

    def _loop(self) -> None:
        try:
            while (batch := self._take()) is not None:
                self._serve(batch)
        finally:  # also if the worker itself failed: nobody may wait forever
            self.close()

    def _serve(self, batch: list[_Request]) -> None:
        start = time.monotonic()
        self.stats.waits_s.extend(start - r.arrived for r in batch)
        try:
            outputs = self._run(batch)
        except Exception as err:  # noqa: BLE001 - one bad request must not fail the others: rerun them alone
            outputs = [self._run_alone(r) for r in batch] if len(batch) > 1 else [err]
        self.stats.calls_s.append(time.monotonic() - start)
        self.stats.calls += 1
        self.stats.requests += len(batch)
        self.stats.samples.append(sum(r.rows for r in batch))
        for req, out in zip(batch, outputs):
            if isinstance(out, BaseException):
                req.future.set_exception(out)
            else:
                req.future.set_result(out)

    def _run_alone(self, req: _Request):
        try:
            return self._run([req])[0]
        except Exception as err:  # noqa: BLE001 - handed to the waiting session
            return err

    def _run(self, batch: list[_Request]) -> list[np.ndarray]:
        with self.call_lock:
            if len(batch) == 1:  # exactly the backend's own call
                r = batch[0]
                return [self.backend.denoise(r.sample, r.timesteps, r.guidance, r.identity, r.use_reference)]
            guidance = [r.guidance for r in batch for _ in range(r.rows)]
            identities = [r.identity for r in batch for _ in range(r.rows)]
            v = self.backend.denoise_batch(np.concatenate([r.sample for r in batch]),
                                           np.concatenate([r.timesteps for r in batch]), guidance, identities,
                                           np.concatenate([r.use_reference for r in batch]))
        bounds = np.cumsum([0] + [r.rows for r in batch])
        return [v[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


class SessionBackend(Backend):
    """One stream's view of the shared backend: `denoise` goes through the batcher, every other call
    straight to the backend (serialised with the batcher's calls where the backend needs that)."""

    def __init__(self, batcher: CrossSessionBatcher, sid: int):
        self.batcher, self.sid, self.info = batcher, sid, batcher.backend.info
        self._open = True

    def denoise(self, sample, timesteps, guidance, identity, use_reference) -> np.ndarray:
        return self.batcher.submit(self.sid, sample, timesteps, guidance, identity, use_reference).result()

    def encode_reference(self, image_rgb_u8, size):
        with self.batcher.call_lock:
            return self.batcher.backend.encode_reference(image_rgb_u8, size)

    def encode_guidance(self, maps_u8):
        with self.batcher.call_lock:
            return self.batcher.backend.encode_guidance(maps_u8)

    def decode(self, latents):
        with self.batcher.call_lock:
            return self.batcher.backend.decode(latents)

    def synchronize(self) -> None:
        with self.batcher.call_lock:
            self.batcher.backend.synchronize()

    def close(self) -> None:
        """Leave the batcher (the shared backend stays open)."""
        if self._open:
            self._open = False
            self.batcher._leave(self.sid)

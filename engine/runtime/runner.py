"""The streaming runtime: source -> guidance features (once per frame) -> sampler -> VAE decode (once
per finished frame) -> sinks, with the identity's reference K/V computed once and cached.

    runtime = StreamRuntime(backend, preset_settings("realtime"), size=512)
    runtime.set_identity(portrait_rgb_u8)
    report = runtime.run(source, [VideoSink("out.mp4", 24)], status=StatusLine())
"""
from __future__ import annotations

import collections
import hashlib
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterable

import numpy as np

from engine.backends.base import Backend
from engine.errors import InputError, MprtError
from engine.preprocess import GUIDANCE_TYPES
from engine.runtime.latest import LatestOnly
from engine.runtime.modes import MODES
from engine.runtime.noise import ClipNoise, FrameNoise, clip_noise_like_offline
from engine.runtime.presets import StreamSettings, live_presets
from engine.runtime.sinks import FrameSink
from engine.runtime.sources import FrameSource, GuidanceFrame
from engine.runtime.stats import RuntimeStats, StatusLine


class _TimedBackend:
    """The backend with its calls timed per stage (after a device synchronize)."""

    def __init__(self, backend: Backend, stats: RuntimeStats):
        self._b, self._stats = backend, stats

    def denoise(self, *args):
        with self._stats.stage("unet", self._b.synchronize):
            return self._b.denoise(*args)

    def __getattr__(self, name):
        return getattr(self._b, name)


class StreamRuntime:
    def __init__(self, backend: Backend, settings: StreamSettings, size: int, seed: int = 42):
        self.backend, self.settings, self.size, self.seed = backend, settings.validate(), size, seed
        if size % backend.info.scale_factor:
            raise InputError(f"--size: {size} must be a multiple of {backend.info.scale_factor}")
        self._identities: dict[str, Any] = {}  # sha1(image) + size -> reference K/V
        self.identity = None

    def set_identity(self, image_rgb_u8: np.ndarray) -> bool:
        """Reference features + K/V for this portrait, computed once per identity. True if cached."""
        digest = hashlib.sha1(np.ascontiguousarray(image_rgb_u8).tobytes()).hexdigest()
        key = f"{digest}-{image_rgb_u8.shape}-{self.size}"
        cached = key in self._identities
        if not cached:
            self._identities[key] = self.backend.encode_reference(image_rgb_u8, (self.size, self.size))
        self.identity = self._identities[key]
        return cached

    def noise_for(self, source: FrameSource):
        """A finite clip gets the offline path's noise tensor (same frames -> same result as
        `animate_offline`); an endless one per-frame noise from (seed, frame)."""
        info = self.backend.info
        try:
            frames = len(source)
        except TypeError:
            frames = None
        if frames is not None:
            try:
                return clip_noise_like_offline(frames, self.size, info.latent_channels, info.scale_factor, self.seed)
            except ImportError:  # torch-free deployment: still deterministic, not offline-identical
                pass
        h = self.size // info.scale_factor
        return FrameNoise(self.seed, (info.latent_channels, h, h))

    def run(self, source: FrameSource, sinks: Iterable[FrameSink], status: StatusLine | None = None,
            noise: ClipNoise | FrameNoise | None = None, stats: RuntimeStats | None = None) -> dict:
        """`stats`: pass one to watch the run while it goes (a server's live overlay); else a new one."""
        if self.identity is None:
            raise InputError("no identity: call set_identity(portrait) before run()")
        if source.live and not self.settings.is_causal:
            raise InputError(f"mode '{self.settings.mode}' needs the whole clip; a live source needs a streaming "
                             f"preset: --preset {' or '.join(live_presets())}")
        sinks = list(sinks)
        stats = stats or RuntimeStats()
        backend = _TimedBackend(self.backend, stats)
        mode = MODES[self.settings.mode]
        progress = {"progress": status.update} if status and mode.reports_progress else {}
        sampler = mode(backend, self.identity, self.settings, noise or self.noise_for(source), **progress)
        frames = LatestOnly(source.frames()) if source.live else source.frames()
        batch = 1 if source.live else mode.batch(self.settings)
        run = _Run(self, backend, sampler, sinks, stats, status)
        error = None
        try:
            pending: list[GuidanceFrame] = []
            iterator = iter(frames)
            while True:
                try:
                    with stats.stage("source"):
                        frame = next(iterator)
                except StopIteration:
                    break
                except Exception as err:  # the source failed mid-stream (camera gone, corrupt file): end cleanly
                    detail = str(err) if isinstance(err, MprtError) else f"{type(err).__name__}: {err}"
                    error = f"source stopped after {stats.frames_in} frames: {detail}"
                    break
                stats.frames_in += 1
                pending.append(frame)
                if len(pending) >= batch:
                    run.admit(pending)
                    pending = []
                stats.dropped = getattr(frames, "dropped", 0)
            run.admit(pending)
            run.emit(sampler.finish())
            run.outputs.drain()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (engine.cli): keep what was written, a valid shorter output
            run.outputs.stop()
            close_sinks(sinks, interrupted=True)
            raise
        except BaseException:
            run.outputs.stop()
            abort_sinks(sinks)
            raise
        finally:
            run.outputs.stop()
            if isinstance(frames, LatestOnly):
                frames.close()
            source.close()
        close_sinks(sinks, interrupted=error is not None)
        if status:
            status.update(stats.status_line(0), final=True)
        if error:
            print(f"mprt: {error}; the output holds the {stats.frames_out} frames made so far", file=sys.stderr)
        report = stats.report(backend=vars(self.backend.info), settings=vars(self.settings), size=self.size,
                              source=source.describe(), source_error=error,
                              camera_dropped_frames=getattr(source, "camera_dropped", None))
        if "decode" in report["stages"]:
            report["stages"]["decode"]["decoder"] = getattr(self.backend.info, "decoder", "vae")  # which decoder ran
        return report


def close_sinks(sinks: list[FrameSink], interrupted: bool = False) -> None:
    """Close every sink; if one fails (disk full, a name taken meanwhile), abort the ones not yet
    closed so no temporary output is left behind, then raise the error."""
    for i, sink in enumerate(sinks):
        try:
            sink.close(interrupted=interrupted)
        except BaseException:
            abort_sinks(sinks[i + 1:])
            raise


def abort_sinks(sinks: list[FrameSink]) -> None:
    """Abort every sink, even when one of them fails to."""
    for sink in sinks:
        try:
            sink.abort()
        except Exception as err:  # keep cleaning up; the run's own error is the one reported
            print(f"mprt: cleaning up an output failed: {err}", file=sys.stderr)


class _Run:
    """State of one run: arrival times by sequence number, and the encode / hand-to-outputs stages."""

    def __init__(self, rt: StreamRuntime, backend, sampler, sinks, stats: RuntimeStats, status):
        self.rt, self.backend, self.sampler, self.stats = rt, backend, sampler, stats
        self.seq = 0
        self.arrived: dict[int, tuple[int, float]] = {}  # seq -> (source index, arrival time)
        status_fn = (lambda: status.update(stats.status_line(sampler.in_flight()))) if status else None
        self.outputs = _Outputs(backend, sinks, stats, status_fn, threaded=backend.info.concurrent_calls)

    def admit(self, frames: list[GuidanceFrame]) -> None:
        if not frames:
            return
        from engine.io.images import resize_frames
        size = (self.rt.size, self.rt.size)
        with self.stats.stage("guidance_encode", self.backend.synchronize):
            maps = {t: resize_frames(np.stack([f.maps[t] for f in frames]), size) for t in GUIDANCE_TYPES}
            features = self.backend.encode_guidance(maps)
        for frame, feature in zip(frames, features):
            self.arrived[self.seq] = (frame.index, frame.arrived)
            finished = self.sampler.push(self.seq, feature)
            self.seq += 1
            self.stats.queue_depths.append(self.sampler.in_flight())
            self.emit(finished)

    def emit(self, finished: list[tuple[int, np.ndarray]]) -> None:
        if finished:
            self.outputs.submit([(*self.arrived.pop(seq), latent) for seq, latent in finished])


class _Outputs:
    """VAE decode + sink writes of finished frames, in order. With a backend that allows concurrent
    calls they run on one worker thread, overlapping the next UNet call (at most `max_pending`
    batches queued, so a slow decoder throttles the sampler instead of piling up latency)."""

    def __init__(self, backend, sinks, stats: RuntimeStats, status_fn, threaded: bool, max_pending: int = 2):
        self.backend, self.sinks, self.stats, self.status_fn = backend, sinks, stats, status_fn
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="mprt-decode") if threaded else None
        self.pending: collections.deque[Future] = collections.deque()
        self.max_pending = max_pending

    def submit(self, items: list[tuple[int, float, np.ndarray]]) -> None:
        if self.pool is None:
            self._work(items)
            return
        self.pending.append(self.pool.submit(self._work, items))
        while self.pending and (len(self.pending) > self.max_pending or self.pending[0].done()):
            self.pending.popleft().result()  # re-raises a decode/write error here

    def _work(self, items) -> None:
        with self.stats.stage("decode", self.backend.synchronize):
            images = self.backend.decode(np.stack([latent for _, _, latent in items]))
        with self.stats.stage("write"):
            for (index, arrived, _), image in zip(items, images):
                for sink in self.sinks:
                    sink.write(index, image)
                self.stats.output(arrived)
        if self.status_fn:
            self.status_fn()

    def drain(self) -> None:
        while self.pending:
            self.pending.popleft().result()

    def stop(self) -> None:
        """Cancel queued work and wait for the running one (before sinks are closed or aborted)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

"""Cross-session batcher (engine/runtime/batcher.py): per-session results equal each session run alone
(tiny torch model, latents within 1e-5), and the batching rules (max batch, latency budget, shapes,
failures, shutdown) on a frame-local stand-in backend."""
import threading
import time

import numpy as np
import pytest

from engine.runtime.batcher import BatcherClosed, CrossSessionBatcher
from engine.runtime.noise import FrameNoise
from engine.runtime.presets import preset_settings
from engine.runtime.stream_batch import StreamBatchSampler
from helpers.runtime_fakes import FrameLocalBackend


def run_stream(backend, identity, features, noise, settings):
    sampler = StreamBatchSampler(backend, identity, settings, noise)
    out = []
    for seq, feature in enumerate(features):
        out += sampler.push(seq, feature)
    return out + sampler.finish()


def run_sessions_batched(backend, streams, settings, **batcher_args):
    """Every stream on its own thread through one batcher; -> (outputs per stream, batcher stats)."""
    batcher = CrossSessionBatcher(backend, **batcher_args)
    sessions = [batcher.session() for _ in streams]
    results, errors = [None] * len(streams), []

    def worker(i):
        try:
            identity, features, noise = streams[i]
            results[i] = run_stream(sessions[i], identity, features, noise, settings)
        except BaseException as err:  # noqa: BLE001 - reported by the test
            errors.append(err)
        finally:
            sessions[i].close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(streams))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    batcher.close()
    assert not errors, errors
    return results, batcher.stats


@pytest.mark.parametrize("overrides,lengths", [(dict(steps=3, frames_per_stage=2, cfg_steps=0), (5, 5, 4)),
                                               (dict(steps=2, frames_per_stage=1, cfg_steps=1, guidance_scale=2.5),
                                                (3, 3, 2))])
def test_batched_sessions_equal_each_session_alone_tiny_model(tiny_model, overrides, lengths):
    """Three streams with different portraits, guidance and noise through one batcher (torch
    denoise_batch with per-sample reference K/V) == each stream alone on the backend, within 1e-5."""
    from engine.backends.torch_backend import TorchBackend
    backend = TorchBackend(tiny_model)
    settings = preset_settings("realtime", **overrides)
    rng = np.random.default_rng(0)
    size = tiny_model.config.image_size
    streams = []
    for i, frames in enumerate(lengths):
        portrait = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        maps = {t: rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8) for t in ("depth", "normal", "render")}
        streams.append((backend.encode_reference(portrait, (size, size)), backend.encode_guidance(maps),
                        FrameNoise(seed=10 + i, shape=(4, size // 8, size // 8))))
    alone = [run_stream(backend, *s, settings) for s in streams]
    batched, stats = run_sessions_batched(backend, streams, settings, max_batch=8, budget_s=30.0)
    assert stats.summary()["samples_per_call_max"] >= 3, "the three streams never shared a UNet call"
    for a, b in zip(alone, batched):
        assert [seq for seq, _ in a] == [seq for seq, _ in b]
        for (_, xa), (_, xb) in zip(a, b):
            np.testing.assert_allclose(xb, xa, atol=1e-5, rtol=0)


class RecordingBackend(FrameLocalBackend):
    """Frame-local backend that records the sample count of every call and can be told to fail."""

    def __init__(self, fail_identity=None, delay_s=0.0):
        super().__init__()
        self.batch_calls: list[int] = []
        self.fail_identity, self.delay_s = fail_identity, delay_s

    def denoise(self, sample, timesteps, guidance, identity, use_reference):
        if identity == self.fail_identity:
            raise ValueError("bad identity")
        time.sleep(self.delay_s)
        return super().denoise(sample, timesteps, guidance, identity, use_reference)

    def denoise_batch(self, sample, timesteps, guidance, identities, use_reference):
        self.batch_calls.append(len(sample))
        return super().denoise_batch(sample, timesteps, guidance, identities, use_reference)


def fake_streams(n, frames=7):
    return [(0.1 * (i + 1), [0.05 * ((i + k) % 4) for k in range(frames)], FrameNoise(seed=i, shape=(4, 2, 2)))
            for i in range(n)]


def test_fake_backend_results_equal_alone_and_max_batch_is_kept():
    settings = preset_settings("realtime", steps=3, frames_per_stage=1, cfg_steps=1, guidance_scale=2.0)
    streams = fake_streams(5)
    alone = [run_stream(FrameLocalBackend(), *s, settings) for s in streams]
    backend = RecordingBackend(delay_s=0.002)
    batched, stats = run_sessions_batched(backend, streams, settings, max_batch=2, budget_s=5.0)
    assert backend.batch_calls and max(backend.batch_calls) == 2
    assert stats.summary()["samples_per_call_max"] == 2
    for a, b in zip(alone, batched):
        np.testing.assert_allclose(np.stack([x for _, x in b]), np.stack([x for _, x in a]), atol=1e-6, rtol=0)


def test_a_lone_request_is_not_held_past_the_budget():
    backend = RecordingBackend()
    batcher = CrossSessionBatcher(backend, max_batch=8, budget_s=0.3)
    lone, _idle = batcher.session(), batcher.session()  # the idle session never submits
    x = np.zeros((1, 4, 2, 2, 2), np.float32)
    start = time.monotonic()
    lone.denoise(x, np.array([[999, 500]]), [0.1, 0.2], 0.5, np.array([True]))
    waited = time.monotonic() - start
    batcher.close()
    assert 0.25 <= waited < 0.3 + 5.0, waited  # held for (about) the budget, then run alone
    assert backend.batch_calls == [] and backend.calls == [(1, 2)]


def test_no_wait_once_every_session_has_a_request():
    backend = RecordingBackend()
    batcher = CrossSessionBatcher(backend, max_batch=8, budget_s=60.0)
    only = batcher.session()
    x = np.zeros((1, 4, 1, 2, 2), np.float32)
    start = time.monotonic()
    only.denoise(x, np.array([[999]]), [0.1], 0.5, np.array([True]))
    assert time.monotonic() - start < 10.0  # not the 60 s budget: nobody else could join
    batcher.close()


def test_different_shapes_run_in_separate_calls_oldest_first():
    backend = RecordingBackend()
    batcher = CrossSessionBatcher(backend, max_batch=8, budget_s=0.5)  # b then waits 0.5 s for a and c
    a, b, c = batcher.session(), batcher.session(), batcher.session()
    futures = [batcher.submit(a.sid, np.zeros((1, 4, 2, 2, 2), np.float32), np.array([[9, 5]]), [0.1, 0.2], 0.5,
                              np.array([True])),
               batcher.submit(b.sid, np.zeros((1, 4, 3, 2, 2), np.float32), np.array([[9, 5, 1]]), [0.1] * 3, 0.2,
                              np.array([True])),
               batcher.submit(c.sid, np.ones((1, 4, 2, 2, 2), np.float32), np.array([[9, 5]]), [0.3, 0.2], 0.7,
                              np.array([True]))]
    outs = [f.result(timeout=30) for f in futures]
    batcher.close()
    assert [o.shape[2] for o in outs] == [2, 3, 2]
    assert backend.batch_calls == [2]  # a + c together, b alone (the backend's own denoise)
    assert backend.calls[-1] == (1, 3)


def test_one_failing_request_does_not_fail_the_others():
    backend = RecordingBackend(fail_identity=0.2)
    batcher = CrossSessionBatcher(backend, max_batch=8, budget_s=60.0)
    good, bad = batcher.session(), batcher.session()
    x = np.zeros((1, 4, 1, 2, 2), np.float32)
    f_good = batcher.submit(good.sid, x, np.array([[999]]), [0.1], 0.5, np.array([True]))
    f_bad = batcher.submit(bad.sid, x, np.array([[999]]), [0.1], 0.2, np.array([True]))
    assert f_good.result(timeout=30).shape == x.shape
    with pytest.raises(ValueError, match="bad identity"):
        f_bad.result(timeout=30)
    batcher.close()


def test_close_fails_waiting_requests_and_refuses_new_ones():
    backend = RecordingBackend()
    batcher = CrossSessionBatcher(backend, max_batch=8, budget_s=60.0)
    a, _b = batcher.session(), batcher.session()
    x = np.zeros((1, 4, 1, 2, 2), np.float32)
    future = batcher.submit(a.sid, x, np.array([[999]]), [0.1], 0.5, np.array([True]))  # waits for _b
    batcher.close()
    with pytest.raises(BatcherClosed):
        future.result(timeout=30)
    with pytest.raises(BatcherClosed):
        a.denoise(x, np.array([[999]]), [0.1], 0.5, np.array([True]))
    with pytest.raises(BatcherClosed):
        batcher.session()


def test_a_closed_session_no_longer_holds_a_batch():
    backend = RecordingBackend()
    batcher = CrossSessionBatcher(backend, max_batch=8, budget_s=60.0)
    a, b = batcher.session(), batcher.session()
    x = np.zeros((1, 4, 1, 2, 2), np.float32)
    future = batcher.submit(a.sid, x, np.array([[999]]), [0.1], 0.5, np.array([True]))
    time.sleep(0.05)
    assert not future.done()  # waiting for b (budget 60 s)
    b.close()
    assert future.result(timeout=30).shape == x.shape
    batcher.close()

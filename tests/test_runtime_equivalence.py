"""The runtime's `quality` preset reproduces upstream's offline sampler (engine.sampling.offline) on
a finite clip with the same noise, on the tiny random model: latents to 1e-4 absolute, decoded
frames to within 1 level (8-bit truncation of values that differ by float rounding). Also the
faster presets run end to end and stay finite."""
import numpy as np
import pytest
import torch

from engine.backends.torch_backend import TorchBackend
from engine.runtime.presets import preset_settings
from engine.runtime.runner import StreamRuntime
from engine.runtime.sinks import CollectingSink
from engine.runtime.sources import MapsSource

pytestmark = pytest.mark.slow  # the tiny model through every mode and the offline loop

SIZE, FRAMES = 128, 8


@pytest.fixture(scope="module")
def tiny():
    from engine.model import MagicPortraitModel
    from engine.weights.tiny import ensure_tiny_weights
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks on 2 shared cores: 2 threads oversubscribe (5-10x slower)
    yield MagicPortraitModel.from_weights(ensure_tiny_weights())
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def clip():
    rng = np.random.default_rng(0)
    maps = {t: rng.integers(0, 256, (FRAMES, SIZE, SIZE, 3), dtype=np.uint8) for t in ("depth", "normal", "render")}
    return rng.integers(0, 256, (80, 72, 3), dtype=np.uint8), maps


def test_quality_preset_equals_offline_sampler(tiny, clip):
    from engine.offline import initial_noise
    from engine.sampling.offline import OfflineSettings, sample_offline
    source, maps = clip
    # 4-frame windows over 8 frames: several windows, overlaps and wrap-around are exercised.
    offline = OfflineSettings(steps=3, guidance_scale=3.5, window=4, overlap=1)
    ref_kv = tiny.reference_kv(tiny.encode_reference(source, (SIZE, SIZE)))
    expected = sample_offline(tiny.denoising_unet, tiny.text_embedding, ref_kv, tiny.encode_guidance(maps),
                               initial_noise(FRAMES, SIZE, tiny, 42), offline)
    expected_frames = tiny.decode(expected)

    class Recording(TorchBackend):  # keeps the latents it decodes
        latents = []

        def decode(self, latents):
            self.latents.append(latents)
            return super().decode(latents)
    backend = Recording(tiny)
    runtime = StreamRuntime(backend, preset_settings("quality", steps=3, window=4, overlap=1), SIZE, seed=42)
    runtime.set_identity(source)
    out = CollectingSink()
    report = runtime.run(MapsSource(maps), [out])
    assert out.indices == list(range(FRAMES))
    got = np.stack(out.frames)
    diff = np.abs(got.astype(int) - expected_frames.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (diff.max(), (diff > 0).mean())
    assert report["frames_out"] == FRAMES and report["stages"]["unet"]["count"] == 3 * 3  # steps x windows
    latents = np.concatenate(backend.latents).transpose(1, 0, 2, 3)  # (4, F, h, w)
    np.testing.assert_allclose(latents, expected[0].numpy(), atol=1e-4, rtol=0)


def test_identity_is_computed_once(tiny, clip):
    source, _ = clip
    runtime = StreamRuntime(TorchBackend(tiny), preset_settings("realtime"), SIZE)
    assert runtime.set_identity(source) is False
    first = runtime.identity
    assert runtime.set_identity(source) is True and runtime.identity is first


@pytest.mark.parametrize("preset", ["balanced", "realtime"])
def test_streaming_presets_run_end_to_end(tiny, clip, preset):
    source, maps = clip
    runtime = StreamRuntime(TorchBackend(tiny), preset_settings(preset, steps=2), SIZE)
    runtime.set_identity(source)
    out = CollectingSink()
    report = runtime.run(MapsSource({t: m[:6] for t, m in maps.items()}), [out])
    assert out.indices == list(range(6)) and report["dropped_input_frames"] == 0
    frames = np.stack(out.frames)
    assert frames.shape == (6, SIZE, SIZE, 3) and frames.std() > 1.0
    assert report["latency"]["count"] == 6 and report["stages"]["decode"]["count"] >= 1

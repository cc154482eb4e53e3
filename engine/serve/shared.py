"""What every session shares: one loaded backend, the guidance renderer, the driving encoders, the
identity cache and the built-in portrait. Built once by `mprt serve` (engine/cli/serve.py)."""
from __future__ import annotations

import dataclasses
import threading
from typing import Any, Callable, Sequence

import numpy as np

from engine.backends.base import Backend
from engine.serve.identities import IdentityCache

LIVE_PRESETS = ("realtime", "balanced")  # the causal presets: `quality` needs the whole clip


class SerializedBackend(Backend):
    """A backend whose calls may not overlap (one CUDA stream, TensorRT contexts with fixed buffers):
    sessions take turns per call. CPU backends that allow concurrent calls are used as they are."""

    def __init__(self, inner: Backend):
        self.inner, self.info = inner, inner.info
        self._lock = threading.RLock()

    def encode_reference(self, image_rgb_u8, size):
        with self._lock:
            return self.inner.encode_reference(image_rgb_u8, size)

    def encode_guidance(self, maps_u8):
        with self._lock:
            return self.inner.encode_guidance(maps_u8)

    def denoise(self, sample, timesteps, guidance: Sequence[Any], identity, use_reference):
        with self._lock:
            return self.inner.denoise(sample, timesteps, guidance, identity, use_reference)

    def denoise_batch(self, sample, timesteps, guidance, identities, use_reference):
        with self._lock:
            return self.inner.denoise_batch(sample, timesteps, guidance, identities, use_reference)

    def decode(self, latents):
        with self._lock:
            return self.inner.decode(latents)

    def synchronize(self) -> None:
        self.inner.synchronize()

    def close(self) -> None:
        self.inner.close()


def share_backend(backend: Backend) -> Backend:
    return backend if backend.info.concurrent_calls else SerializedBackend(backend)


class SerializedRenderer:
    """The guidance renderer, one call at a time (the CUDA kernel's module lives in one context)."""

    def __init__(self, renderer: Callable):
        self._renderer, self._lock = renderer, threading.Lock()

    def __call__(self, inputs):
        with self._lock:
            return self._renderer(inputs)


@dataclasses.dataclass
class SharedModel:
    backend: Backend                      # shared (share_backend) by every session's runtime
    size: int                             # output size (the model's own unless --size)
    settings_for: Callable[[str], Any]    # preset name -> StreamSettings (server-wide overrides applied)
    head_model: Any                       # FLAME-format head the maps are rendered with
    renderer: Callable                    # RasterInputs -> GuidanceMaps (resolved once)
    landmarker: str | None                # MediaPipe face_landmarker.task (None: camera driving unavailable)
    encoders: Any                         # engine.driving.EncoderPair (None: camera driving unavailable)
    builtin_portrait: np.ndarray          # the portrait used when none is uploaded
    builtin_source: Any                   # its SourceCode (shape, light, camera, crop)
    builtin_motion: Any                   # FlameParams of the "no camera" motion (looped)
    description: str = ""                 # model / backend, shown on the page and in /stats
    random_encoders: bool = False
    seed: int = 42
    batcher: Any = None                   # engine.runtime.batcher.CrossSessionBatcher over `backend`, or None
    identities: IdentityCache = dataclasses.field(init=False)
    driving_encoder: Any = dataclasses.field(init=False, default=None)

    def __post_init__(self):
        size = (self.size, self.size)
        self.identities = IdentityCache(lambda image: self.backend.encode_reference(image, size))
        if self.encoders is not None:
            from engine.driving import DrivingEncoder
            self.driving_encoder = DrivingEncoder(self.encoders)  # inference only: safe to share across threads

    def session_backend(self) -> Backend:
        """What one session's runtime calls: its own view of the batcher (its UNet calls batched with the
        other sessions'), or the shared backend when batching is off."""
        return self.batcher.session() if self.batcher is not None else self.backend

    def source_code(self, image_rgb_u8: np.ndarray, name: str):
        """The portrait's FLAME constants (DECA on its face); InputError when it shows no face."""
        from engine.driving import FaceTracker, FaceTrackerConfig
        from engine.driving.source_code import encode_source_image
        if self.landmarker is None:
            return self.builtin_source
        with FaceTracker(FaceTrackerConfig(self.landmarker, mode="image")) as tracker:
            return encode_source_image(image_rgb_u8, tracker, self.encoders, name=name)


def builtin_inputs(motion_frames: int = 96):
    """The built-in portrait (a render of the synthetic head, as `mprt demo` uses), its exact head
    constants (it is rendered from them) and the built-in motion for "no camera"."""
    from engine.driving.source_code import SourceCode
    from engine.flame.synthetic import synthetic_head
    from engine.guidance.demo_motion import demo_flame_params
    from engine.guidance.pipeline import render_guidance_maps
    from engine.runtime.sources import slice_params
    motion = demo_flame_params(motion_frames)
    portrait = render_guidance_maps(slice_params(motion, 0, 1), synthetic_head())["render"][0]
    code = SourceCode(shape=motion.shape, tex=motion.tex, light=motion.light, cam=motion.cam, crop=motion.crop)
    return portrait, code, motion

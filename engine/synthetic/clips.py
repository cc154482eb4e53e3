"""Render a synthetic clip: ground-truth frames, guidance maps, masks and a reference image.

Guidance maps are rendered exactly as the engine renders them at run time (spec guidance_maps.md:
512² raster, 8-bit quantiser, then the runtime's resize to the model size); the ground truth is
the same raster with the identity's detailed albedo, composited on its background and
area-averaged down to the model size (anti-aliased edges).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from engine.flame.camera import OrthoCamera
from engine.flame.lbs import flame_lbs
from engine.guidance.quantize import maps_to_u8_frames
from engine.guidance.raster_inputs import GuidanceMaps, prepare_raster_inputs
from engine.io.images import resize_frames
from engine.synthetic.appearance import Identity, base_head
from engine.synthetic.motion import Motion

RASTER_SIZE = 512  # the spec's render size; everything is rendered here, then resized


@dataclasses.dataclass
class Clip:
    """Everything at `size`: uint8 frames (F,S,S,3), maps per type (F,S,S,3), mask (F,S,S) in
    0..255 (head coverage), reference (S,S,3) and its mask (S,S)."""

    frames: np.ndarray
    maps: dict[str, np.ndarray]
    mask: np.ndarray
    reference: np.ndarray
    reference_mask: np.ndarray
    identity: int
    motion: int

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"frames": self.frames, "mask": self.mask, "reference": self.reference,
               "reference_mask": self.reference_mask,
               "ids": np.array([self.identity, self.motion], np.int64)}
        out.update({f"map_{k}": v for k, v in self.maps.items()})
        return out

    def resized(self, size: int) -> "Clip":
        """The clip at a smaller `size` dividing the current one: frames, references and masks by
        box averaging (the same as rendering at `size`: box filters compose), maps as the runtime
        resizes guidance maps (engine.io.images.resize_frames)."""
        if size == self.frames.shape[1]:
            return self
        box = lambda x: _round_u8(_area_down(x.astype(np.float32), size))  # noqa: E731
        return Clip(box(self.frames), {k: resize_frames(v, (size, size)) for k, v in self.maps.items()},
                    box(self.mask[..., None])[..., 0], box(self.reference[None])[0],
                    box(self.reference_mask[None, ..., None])[0, ..., 0], self.identity, self.motion)

    @classmethod
    def from_arrays(cls, a) -> "Clip":
        maps = {k: a[f"map_{k}"] for k in ("depth", "normal", "render")}
        ids = a["ids"]
        return cls(a["frames"], maps, a["mask"], a["reference"], a["reference_mask"], int(ids[0]), int(ids[1]))


def _raster(identity: Identity, motion: Motion, albedo: np.ndarray, renderer) -> GuidanceMaps:
    model, _, _ = base_head()
    verts = flame_lbs(model, identity.shape, motion.exp, motion.pose).verts
    topo = model.topology
    out = []
    for i in range(motion.num_frames):  # one camera per frame (the head drifts in the frame)
        cam = OrthoCamera.from_params(motion.cam[i], motion.crop, RASTER_SIZE)
        inputs = prepare_raster_inputs(verts[i:i + 1], cam, topo.faces, topo.uv_faces, topo.uvs, albedo,
                                       identity.light, RASTER_SIZE, RASTER_SIZE)
        out.append(renderer(inputs))
    return GuidanceMaps(*(np.concatenate([getattr(m, f.name) for m in out])
                          for f in dataclasses.fields(GuidanceMaps)))


def _round_u8(x: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(x, 0, 255) + 0.5).astype(np.uint8)


def _area_down(img: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W, C) float -> (N, size, size, C) by box averaging (H a multiple of size)."""
    n, h, w, c = img.shape
    f = h // size
    return img.reshape(n, size, f, size, f, c).mean(axis=(2, 4))


def composite(identity: Identity, maps: GuidanceMaps, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Shaded detailed head over the identity's background -> (F,S,S,3) uint8, mask (F,S,S) uint8."""
    rgb = np.clip(maps.render.transpose(0, 2, 3, 1), 0, 1)
    alpha = maps.alpha.transpose(0, 2, 3, 1)
    img = rgb * alpha + identity.background[None] * (1 - alpha)
    frames = _area_down(img, size)
    mask = _area_down(alpha, size)[..., 0]
    return (np.floor(frames * 255 + 0.5).astype(np.uint8), np.floor(mask * 255 + 0.5).astype(np.uint8))


def render_clip(identity: Identity, motion: Motion, reference: Motion, size: int = 128,
                renderer=None) -> Clip:
    """Render one clip at `size` (a divisor of 512). `renderer`: RasterInputs -> GuidanceMaps
    (default: the guidance kernel's host build, else the CPU reference)."""
    if RASTER_SIZE % size:
        raise ValueError(f"size {size} must divide {RASTER_SIZE}")
    renderer = renderer or default_renderer()
    guide = maps_to_u8_frames(_raster(identity, motion, identity.plain_albedo, renderer))
    maps = {k: resize_frames(v, (size, size)) for k, v in guide.items()}
    frames, mask = composite(identity, _raster(identity, motion, identity.detail_albedo, renderer), size)
    ref, ref_mask = render_portrait(identity, reference, size, renderer)
    return Clip(frames, maps, mask, ref[0], ref_mask[0], identity.seed, motion.seed)


def render_portrait(identity: Identity, pose: Motion, size: int, renderer=None) -> tuple[np.ndarray, np.ndarray]:
    """The identity as a photo would show it (detailed texture on its background) in each frame of
    `pose`: (F,S,S,3) uint8 and its head mask (F,S,S)."""
    renderer = renderer or default_renderer()
    return composite(identity, _raster(identity, pose, identity.detail_albedo, renderer), size)


def default_renderer():
    try:
        from engine.guidance.kernel_host import host_kernel_backend
        return host_kernel_backend()
    except Exception:  # no C++ compiler: the reference computes the same maps, slower
        from engine.guidance.reference_renderer import render_reference
        return render_reference

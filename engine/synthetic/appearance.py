"""Synthetic identities: head shape, detailed albedo, hair or cap, background and light.

Two albedos per identity: the *detailed* one (freckles, spots or face paint, hair or a cap, brows,
lips, eye colour) gives the ground-truth frames and the reference image; the *low-detail* one —
the synthetic head's plain albedo tinted to the identity's mean skin tone, like a FLAME texture
fit — gives the "render" guidance map. So only the reference can tell the model the detail.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from engine.flame.face_frame import FaceFrame, face_frame_from_eyes, gaussian, smoothstep
from engine.flame.model import FlameModel
from engine.flame.synthetic import EYE_MID, synthetic_head
from engine.flame.synthetic_texture import SKIN, bake_albedo, default_sh_light

SKIN_TONES = np.array([[0.96, 0.80, 0.69], [0.90, 0.70, 0.58], [0.80, 0.60, 0.50],
                       [0.65, 0.45, 0.34], [0.48, 0.32, 0.23], [0.34, 0.22, 0.16]])
HAIR_COLOURS = np.array([[0.08, 0.06, 0.05], [0.25, 0.16, 0.09], [0.55, 0.38, 0.20],
                         [0.85, 0.72, 0.45], [0.55, 0.15, 0.07], [0.70, 0.70, 0.72]])
PATTERNS = ("freckles", "spots", "stripes", "plain")
BACKGROUNDS = ("solid", "gradient", "checks", "stripes")


@dataclasses.dataclass(frozen=True)
class Identity:
    """One synthetic person. Albedos are (3, 256, 256) float32 in the head's UV layout."""

    seed: int
    shape: np.ndarray  # (100,) FLAME-format shape coefficients
    detail_albedo: np.ndarray
    plain_albedo: np.ndarray
    light: np.ndarray  # (9, 3) SH
    background: np.ndarray  # (512, 512, 3) float32 in [0, 1]
    description: str
    background_kind: str  # solid / gradient / checks / stripes: how hard the background is to reproduce


@functools.lru_cache(maxsize=1)
def base_head() -> tuple[FlameModel, FaceFrame, np.ndarray]:
    """The procedural synthetic head, its face frame and its (rest) vertices."""
    from engine.flame.procedural_head import procedural_head
    model = synthetic_head()
    head = procedural_head()
    verts = model.v_template.astype(np.float64)
    frame = face_frame_from_eyes(verts, head.eyeball_mask, None, model.f)
    return model, frame, verts


def make_identity(seed: int) -> Identity:
    rng = np.random.default_rng([7, seed])
    model, frame, verts = base_head()
    shape = np.zeros(100, np.float32)
    shape[:3] = rng.uniform(-1.6, 1.6, 3)
    shape[3:30] = rng.normal(0, 1.0, 27)
    skin = _jitter(rng, SKIN_TONES[rng.integers(len(SKIN_TONES))], 0.04)
    hair = _jitter(rng, HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))], 0.03)
    cap = rng.random() < 0.35
    cap_colour = rng.uniform(0.1, 0.95, 3)
    look = dict(skin=skin, hair=cap_colour if cap else hair, brows=hair * 0.8,
                lips=_jitter(rng, np.array([0.72, 0.33, 0.35]) * (0.6 + 0.5 * skin.mean()), 0.05),
                iris=rng.uniform(0.05, 0.6, 3), hairline=rng.uniform(0.55, 1.1) if not cap else 0.6,
                brow_width=rng.uniform(0.08, 0.2))
    colours = _vertex_colours(frame, verts, look)
    detail = bake_albedo(colours, model.topology.faces, model.topology.uvs, model.topology.uv_faces)
    skin_mask = bake_albedo(_skin_weight(frame, verts, look)[:, None].repeat(3, 1), model.topology.faces,
                            model.topology.uvs, model.topology.uv_faces)[0]
    pattern = PATTERNS[rng.integers(len(PATTERNS))]
    detail = _add_pattern(rng, detail, skin_mask, pattern, skin)
    if cap:
        detail = _add_cap_band(rng, detail, model, frame, verts, cap_colour)
    plain = (model.albedo * (skin / SKIN)[:, None, None]).astype(np.float32)
    light = default_sh_light()
    light[0] *= rng.uniform(0.85, 1.1)
    light[1:4] += rng.normal(0, 0.12, (3, 1)).astype(np.float32)
    background, bg_kind = random_background(rng)
    desc = (f"identity {seed}: skin {np.round(skin, 2).tolist()}, {'cap' if cap else 'hair'}, "
            f"{pattern} skin, {bg_kind} background")
    return Identity(seed, shape, np.clip(detail, 0, 1).astype(np.float32), np.clip(plain, 0, 1),
                    light.astype(np.float32), background, desc, bg_kind)


def _jitter(rng, colour: np.ndarray, amount: float) -> np.ndarray:
    return np.clip(colour + rng.normal(0, amount, 3), 0.02, 0.98)


def _skin_weight(frame: FaceFrame, verts: np.ndarray, look) -> np.ndarray:
    p = frame.local(verts)
    hair = np.maximum(smoothstep(look["hairline"], look["hairline"] + 0.5, p[:, 1]),
                      smoothstep(-0.9, -1.5, p[:, 2]) * smoothstep(-1.8, -0.8, p[:, 1]))
    eyes = (frame.eye_left | frame.eye_right).astype(float)
    return (1 - hair) * (1 - eyes)


def _vertex_colours(frame: FaceFrame, verts: np.ndarray, look) -> np.ndarray:
    p = frame.local(verts)
    dx, dy, dz = p[:, 0], p[:, 1], p[:, 2]
    front = smoothstep(-0.6, 0.2, dz)
    col = np.tile(look["skin"], (len(p), 1))
    blush = gaussian((np.abs(dx) - 1.0) ** 2 + (dy + 0.5) ** 2, 0.35) * front
    col = col * (1 - 0.2 * blush[:, None]) + np.array([0.85, 0.40, 0.40]) * 0.2 * blush[:, None]
    hair = 1 - _skin_weight(frame, verts, look) - (frame.eye_left | frame.eye_right)
    col = col * (1 - hair[:, None]) + look["hair"] * hair[:, None]
    brows = gaussian((dy - 0.55) ** 2 / look["brow_width"] + (np.abs(dx) - 0.55) ** 2 / 4, 0.15) * front
    col = col * (1 - 0.85 * brows[:, None]) + look["brows"] * 0.85 * brows[:, None]
    lips = gaussian((dy - frame.mouth_dy) ** 2 + dx**2 / 5, 0.09) * front
    col = col * (1 - lips[:, None]) + look["lips"] * lips[:, None]
    for mask in (frame.eye_left, frame.eye_right):
        centre = verts[mask].mean(0)
        radius = np.linalg.norm(verts[mask] - centre, axis=1).max()
        facing = (verts[mask, 2] - centre[2]) / radius
        eye = np.tile([0.92, 0.91, 0.88], (mask.sum(), 1))
        eye[facing > 0.72] = look["iris"]
        eye[facing > 0.92] = 0.05
        col[mask] = eye
    return col.astype(np.float32)


def _add_pattern(rng, tex: np.ndarray, skin_mask: np.ndarray, pattern: str, skin: np.ndarray) -> np.ndarray:
    """High-frequency skin detail in texture space (only where the texel is skin)."""
    size = tex.shape[1]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    amount = np.zeros((size, size), np.float32)
    colour = skin * 0.55
    if pattern in ("freckles", "spots"):
        count, radius = (260, (1.0, 2.2)) if pattern == "freckles" else (28, (3.5, 7.0))
        for cx, cy, r in zip(rng.uniform(0, size, count), rng.uniform(0, size, count),
                             rng.uniform(*radius, count)):
            amount = np.maximum(amount, np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))
        if pattern == "spots":
            colour = rng.uniform(0.1, 0.9, 3)
    elif pattern == "stripes":
        angle, period = rng.uniform(0, np.pi), rng.uniform(9, 18)
        wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
        amount = smoothstep(0.3, 0.7, wave).astype(np.float32) * 0.8
        colour = rng.uniform(0.05, 0.95, 3)
    weight = (amount * skin_mask)[None]
    return tex * (1 - weight) + colour[:, None, None] * weight


def _add_cap_band(rng, tex, model, frame, verts, cap_colour) -> np.ndarray:
    """A contrasting band round the cap's rim (texture only: the guidance cannot see it)."""
    p = frame.local(verts)
    band = (smoothstep(0.7, 0.85, p[:, 1]) * smoothstep(1.1, 0.95, p[:, 1]))[:, None].repeat(3, 1)
    baked = bake_albedo(band.astype(np.float32), model.topology.faces, model.topology.uvs,
                        model.topology.uv_faces)
    trim = 1 - cap_colour if rng.random() < 0.5 else np.full(3, 0.95)
    return tex * (1 - baked) + trim[:, None, None] * baked


def random_background(rng, size: int = 512) -> tuple[np.ndarray, str]:
    """A solid, gradient, checked or striped background (size,size,3) float32 in [0,1] and its kind."""
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    a, b = rng.uniform(0.05, 0.95, 3), rng.uniform(0.05, 0.95, 3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == "solid":
        t = np.zeros_like(xx)
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        t = np.clip(0.5 + (xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle), 0, 1)
    elif kind == "checks":
        n = rng.integers(3, 8)
        t = ((np.floor(xx * n) + np.floor(yy * n)) % 2).astype(np.float32)
    else:
        n, angle = rng.integers(3, 9), rng.uniform(0, np.pi)
        t = (np.floor((xx * np.cos(angle) + yy * np.sin(angle)) * n) % 2).astype(np.float32)
    img = a[None, None] * (1 - t[..., None]) + b[None, None] * t[..., None]
    return img.astype(np.float32), kind


__all__ = ["Identity", "make_identity", "base_head", "random_background", "EYE_MID"]

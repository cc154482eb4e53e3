"""Procedural albedo (3x256x256) and default SH light for the synthetic head.

Colours are rules on face-relative positions (skin, hair, brows, lips, eyes), baked into the
mesh's UV layout with the reference rasteriser, then dilated so bilinear fetches at UV-island
borders never see empty texels.
"""
from __future__ import annotations

import numpy as np

from engine.flame.face_frame import FaceFrame, gaussian, smoothstep

TEXTURE_SIZE = 256
SKIN = np.array([0.80, 0.60, 0.50])
HAIR = np.array([0.20, 0.13, 0.09])
LIPS = np.array([0.72, 0.33, 0.33])
SCLERA = np.array([0.92, 0.91, 0.88])
IRIS = np.array([0.30, 0.20, 0.12])


def default_sh_light() -> np.ndarray:
    """(9, 3) SH light: bright ambient, key light from above-front (DECA's [band, rgb])."""
    light = np.zeros((9, 3), np.float32)
    light[0] = [2.7, 2.65, 2.6]
    light[1] = -0.08  # x
    light[2] = 0.18  # y: from above
    light[3] = 0.30  # z: from the front
    light[8] = -0.08
    return light


def vertex_colours(frame: FaceFrame, verts: np.ndarray) -> np.ndarray:
    p = frame.local(verts)
    dx, dy, dz = p[:, 0], p[:, 1], p[:, 2]
    front = smoothstep(-0.6, 0.2, dz)
    col = np.tile(SKIN, (len(p), 1))
    blush = gaussian((np.abs(dx) - 1.0) ** 2 + (dy + 0.5) ** 2, 0.35) * front
    col = col * (1 - 0.15 * blush[:, None]) + np.array([0.85, 0.45, 0.42]) * 0.15 * blush[:, None]
    hair = np.maximum(smoothstep(1.1, 1.7, dy), smoothstep(-0.9, -1.5, dz) * smoothstep(-1.8, -0.8, dy))
    col = col * (1 - hair[:, None]) + HAIR * hair[:, None]
    brows = gaussian((dy - 0.55) ** 2 / 0.25 + (np.abs(dx) - 0.55) ** 2 / 4, 0.15) * front
    col = col * (1 - 0.8 * brows[:, None]) + HAIR * 0.8 * brows[:, None]
    lips = gaussian((dy - frame.mouth_dy) ** 2 + dx**2 / 5, 0.09) * front
    col = col * (1 - lips[:, None]) + LIPS * lips[:, None]
    for mask in (frame.eye_left, frame.eye_right):
        centre = verts[mask].mean(0)
        radius = np.linalg.norm(verts[mask] - centre, axis=1).max()
        facing = (verts[mask, 2] - centre[2]) / radius
        eye = np.tile(SCLERA, (mask.sum(), 1))
        eye[facing > 0.72] = IRIS
        eye[facing > 0.92] = 0.05
        col[mask] = eye
    return col.astype(np.float32)


def bake_albedo(colours: np.ndarray, faces: np.ndarray, uvs: np.ndarray, uv_faces: np.ndarray,
                size: int = TEXTURE_SIZE) -> np.ndarray:
    """Per-vertex colours -> (3, size, size) texture in the mesh's UV layout."""
    from engine.mesh.raster import interpolate, rasterize

    # texel (row r, col c) centre is uv ((c + .5)/S, 1 - (r + .5)/S): in the rasteriser's
    # pytorch3d space that is x = 1 - 2u, y = 2v - 1.
    uv_verts = np.stack([1 - 2 * uvs[:, 0], 2 * uvs[:, 1] - 1, np.ones(len(uvs))], -1).astype(np.float32)
    uv_colour = np.zeros((len(uvs), 3), np.float32)
    uv_colour[uv_faces.reshape(-1)] = colours[faces.reshape(-1)]
    p2f, bary = rasterize(uv_verts, uv_faces, size, size)
    tex = np.zeros((size, size, 3), np.float32)
    covered = p2f >= 0
    tex[covered] = interpolate(uv_colour, uv_faces[p2f[covered]], bary[covered])
    tex, covered = _dilate(tex, covered, steps=4)
    tex[~covered] = SKIN
    return np.ascontiguousarray(tex.transpose(2, 0, 1))


def _dilate(tex: np.ndarray, covered: np.ndarray, steps: int):
    for _ in range(steps):
        acc = np.zeros_like(tex)
        cnt = np.zeros(covered.shape, np.float32)
        for sy, sx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            acc += np.roll(tex * covered[..., None], (sy, sx), axis=(0, 1))
            cnt += np.roll(covered, (sy, sx), axis=(0, 1))
        grow = ~covered & (cnt > 0)
        tex[grow] = acc[grow] / cnt[grow, None]
        covered = covered | grow
    return tex, covered

"""Per-vertex attributes the rasteriser interpolates: normals (spec §4.4) and depth (§4.3)."""
from __future__ import annotations

import numpy as np


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(B, V, 3) area-weighted vertex normals: sum of un-normalised face crosses, then
    F.normalize(eps=1e-6) like DECA's util.vertex_normals."""
    verts = np.asarray(verts, np.float32)
    batch, nv = verts.shape[:2]
    tri = verts[:, faces]  # (B, T, 3, 3)
    cross = np.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0]).astype(np.float32)
    out = np.zeros((batch, nv, 3), np.float32)
    for corner in range(3):
        idx = faces[:, corner]
        for ch in range(3):
            out[:, :, ch] += np.stack(
                [np.bincount(idx, weights=cross[b, :, ch], minlength=nv) for b in range(batch)]
            ).astype(np.float32)
    norm = np.linalg.norm(out, axis=-1, keepdims=True)
    return (out / np.maximum(norm, np.float32(1e-6))).astype(np.float32)


def vertex_depth(z_t: np.ndarray) -> np.ndarray:
    """(B, V) d_v = (z_max - z_t) / (z_max - z_min) per frame: nearest vertex 1, farthest 0."""
    z_t = np.asarray(z_t, np.float32)
    z_max = z_t.max(axis=-1, keepdims=True)
    z_min = z_t.min(axis=-1, keepdims=True)
    return ((z_max - z_t) / (z_max - z_min)).astype(np.float32)

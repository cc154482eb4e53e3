"""Face-relative coordinates shared by the synthetic rig and its texture.

Positions are expressed in units of the inter-eye distance u around the eye midpoint E, so the
same region rules fit the procedural head and the head_template.obj topology.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FaceFrame:
    eye_mid: np.ndarray  # (3,)
    unit: float  # inter-eye distance (m)
    mouth_dy: float  # mouth line, in units below the eyes (negative)
    eye_left: np.ndarray  # (V,) bool, subject's left eyeball (x > 0)
    eye_right: np.ndarray  # (V,) bool

    def local(self, verts: np.ndarray) -> np.ndarray:
        return (np.asarray(verts, np.float64) - self.eye_mid) / self.unit


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """0 at edge0, 1 at edge1 (either order), cubic in between."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def gaussian(d2: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * d2 / (sigma * sigma))


def face_frame_from_eyes(verts: np.ndarray, eyeball_mask: np.ndarray, mouth_dy: float | None,
                         faces: np.ndarray | None = None) -> FaceFrame:
    """Eye centres from the eyeball vertices; mouth line given, or found from the mouth's
    boundary loop in `faces`."""
    verts = np.asarray(verts, np.float64)
    left = eyeball_mask & (verts[:, 0] > 0)
    right = eyeball_mask & (verts[:, 0] < 0)
    if not left.any() or not right.any():
        raise ValueError("synthetic rig: need eyeball vertices on both sides (x > 0 and x < 0)")
    cl, cr = verts[left].mean(0), verts[right].mean(0)
    mid, unit = (cl + cr) / 2, float(np.linalg.norm(cl - cr))
    if mouth_dy is None:
        mouth_dy = _mouth_line_from_boundary(verts, faces, eyeball_mask, mid, unit)
    return FaceFrame(mid, unit, float(mouth_dy), left, right)


def _mouth_line_from_boundary(verts, faces, eyeball_mask, mid, unit) -> float:
    """FLAME-like meshes are open at the mouth: the boundary loop between nose and chin, in front
    of the eyes' plane, marks where the lips meet."""
    if faces is None:
        raise ValueError("synthetic rig: faces are needed to find the mouth line")
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    boundary = np.zeros(len(verts), bool)
    boundary[uniq[counts == 1].reshape(-1)] = True
    local = (verts - mid) / unit
    lips = boundary & ~eyeball_mask & (np.abs(local[:, 0]) < 0.3) & (local[:, 2] > -0.5)
    lips &= (local[:, 1] > -1.6) & (local[:, 1] < -0.6)
    if not lips.any():
        raise ValueError("synthetic rig: no open mouth boundary found between nose and chin")
    # midway between the inner upper lip and the inner lower lip at the middle of the mouth
    return float((local[lips, 1].min() + local[lips, 1].max()) / 2)

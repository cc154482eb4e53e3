"""A procedural head mesh (no third-party data): rows of ellipse cross-sections from the neck up,
a nose / brow / chin profile, a mouth slit (so the jaw can open) and two eyeballs, with UVs.

Units are metres in FLAME's frame (y up, z toward the viewer). Used when no
`head_template.obj` is given; the synthetic rig (synthetic.py) works on either topology.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.flame.obj_mesh import ObjMesh

N_COLS = 72  # vertices around each cross-section
EYE_CENTRES = np.array([[0.031, 0.02, 0.062], [-0.031, 0.02, 0.062]], np.float32)
EYE_RADIUS = 0.0115
MOUTH_Y = -0.043
MOUTH_HALF_ANGLE = 0.42  # radians of the slit either side of the front


@dataclass(frozen=True)
class ProceduralHead:
    mesh: ObjMesh
    eyeball_mask: np.ndarray  # (V,) bool


def _smooth_max(a, b, k=0.012):
    return 0.5 * (a + b + np.sqrt((a - b) ** 2 + k * k))


def _profile(y: np.ndarray):
    """Cross-section half widths rx, rz and centre z at height y."""
    skull = np.clip(1 - ((y - 0.0) / 0.122) ** 2, 0, None)
    head_rx = 0.079 * np.sqrt(skull)
    head_rz = 0.098 * np.sqrt(skull)
    neck_r = np.where(y < -0.06, 0.052, 0.0)
    rx = _smooth_max(head_rx, neck_r)
    rz = _smooth_max(head_rz, neck_r)
    zc = -0.005 - 0.015 * np.clip((-0.06 - y) / 0.04, 0, 1)
    return rx, rz, zc


def _front_relief(y: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Outward offset on the face side: nose, brows, lips, chin; eye sockets inward."""
    front = np.clip(np.cos(phi), 0, None)
    side = np.sin(phi)
    g = lambda c, s: np.exp(-0.5 * ((y - c) / s) ** 2)  # noqa: E731
    nose = 0.028 * g(-0.012, 0.016) * np.exp(-0.5 * (side / 0.11) ** 2)
    brow = 0.006 * g(0.038, 0.008) * np.exp(-0.5 * (side / 0.5) ** 2)
    lips = 0.008 * g(MOUTH_Y, 0.011) * np.exp(-0.5 * (side / 0.3) ** 2)
    chin = 0.008 * g(-0.085, 0.012) * np.exp(-0.5 * (side / 0.3) ** 2)
    sockets = -0.008 * g(0.02, 0.012) * np.exp(-0.5 * ((np.abs(side) - 0.38) / 0.14) ** 2)
    return (nose + brow + lips + chin + sockets) * front ** 2


def _sphere(centre, radius, n_lat=8, n_lon=12):
    theta = np.linspace(0, np.pi, n_lat + 1)[1:-1]
    phi = np.arange(n_lon) * 2 * np.pi / n_lon
    t, p = np.meshgrid(theta, phi, indexing="ij")
    pts = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], -1).reshape(-1, 3)
    verts = np.concatenate([[[0, 1, 0]], pts, [[0, -1, 0]]]) * radius + centre
    faces = []
    ring = lambda i, j: 1 + i * n_lon + (j % n_lon)  # noqa: E731
    for j in range(n_lon):
        faces.append([0, ring(0, j + 1), ring(0, j)])
        faces.append([len(verts) - 1, ring(n_lat - 2, j), ring(n_lat - 2, j + 1)])
        for i in range(n_lat - 2):
            a, b, c, d = ring(i, j), ring(i, j + 1), ring(i + 1, j), ring(i + 1, j + 1)
            faces += [[a, b, d], [a, d, c]]
    return verts.astype(np.float32), np.array(faces, np.int32)


def procedural_head() -> ProceduralHead:
    # rows bottom -> top; the mouth slit lies between two rows 4 mm apart (lower lip, upper lip)
    ys = np.concatenate([np.linspace(-0.19, MOUTH_Y - 0.002, 30), np.linspace(MOUTH_Y + 0.002, 0.119, 36)])
    n_rows = len(ys)
    lower_lip_row = 29
    phi = np.arange(N_COLS) * 2 * np.pi / N_COLS
    yy, pp = np.meshgrid(ys, phi, indexing="ij")
    rx, rz, zc = _profile(yy)
    radial_z = rz + _front_relief(yy, pp)
    verts = np.stack([rx * np.sin(pp), yy, zc + radial_z * np.cos(pp)], -1).reshape(-1, 3)
    top_pole = np.array([[0.0, 0.1225, -0.005]])
    verts = np.concatenate([verts, top_pole])
    idx = lambda r, c: r * N_COLS + (c % N_COLS)  # noqa: E731
    uv_idx = lambda r, c: r * (N_COLS + 1) + c  # noqa: E731 (seam column duplicated in UV)
    faces, uv_faces = [], []
    for r in range(n_rows - 1):
        for c in range(N_COLS):
            ang = min(phi[c], 2 * np.pi - phi[c])
            ang2 = min(phi[(c + 1) % N_COLS], 2 * np.pi - phi[(c + 1) % N_COLS])
            if r == lower_lip_row and max(ang, ang2) <= MOUTH_HALF_ANGLE:
                continue  # mouth slit: no faces between the lips
            a, b, cc, d = idx(r, c), idx(r, c + 1), idx(r + 1, c), idx(r + 1, c + 1)
            ua, ub, uc, ud = uv_idx(r, c), uv_idx(r, c + 1), uv_idx(r + 1, c), uv_idx(r + 1, c + 1)
            # winding chosen so (v1 - v0) x (v2 - v0) points outward
            faces += [[a, b, d], [a, d, cc]]
            uv_faces += [[ua, ub, ud], [ua, ud, uc]]
    pole = len(verts) - 1
    pole_uv0 = n_rows * (N_COLS + 1)
    for c in range(N_COLS):
        r = n_rows - 1
        faces.append([idx(r, c), idx(r, c + 1), pole])
        uv_faces.append([uv_idx(r, c), uv_idx(r, c + 1), pole_uv0 + c])
    v_head = 0.01 + 0.77 * (ys - ys[0]) / (ys[-1] - ys[0])
    u_head = 0.01 + 0.98 * np.arange(N_COLS + 1) / N_COLS
    uu, vv = np.meshgrid(u_head, v_head)
    uvs = [np.stack([uu, vv], -1).reshape(-1, 2),
           np.stack([(u_head[:-1] + u_head[1:]) / 2, np.full(N_COLS, 0.785)], -1)]

    faces, uv_faces = np.array(faces, np.int32), np.array(uv_faces, np.int32)
    n_head = len(verts)
    eye_mask = [np.zeros(n_head, bool)]
    all_verts = [verts.astype(np.float32)]
    for e, centre in enumerate(EYE_CENTRES):
        sv, sf = _sphere(centre, EYE_RADIUS)
        base_v = sum(len(v) for v in all_verts)
        base_uv = sum(len(u) for u in uvs)
        # eyeball UVs: a planar front projection into their own corner of the texture
        rel = (sv - centre) / EYE_RADIUS
        uvs.append(np.stack([0.05 + 0.4 * e + 0.2 * (rel[:, 0] + 1), 0.82 + 0.08 * (rel[:, 1] + 1)], -1))
        faces = np.concatenate([faces, sf + base_v])
        uv_faces = np.concatenate([uv_faces, sf + base_uv])
        all_verts.append(sv)
        eye_mask.append(np.ones(len(sv), bool))
    mesh = ObjMesh(
        verts=np.concatenate(all_verts).astype(np.float32),
        uvs=np.concatenate(uvs).astype(np.float32),
        faces=faces.astype(np.int32),
        uv_faces=uv_faces.astype(np.int32),
    )
    return ProceduralHead(mesh, np.concatenate(eye_mask))

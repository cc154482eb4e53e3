"""A small synthetic scene in the raster-input contract, for kernel tests and benchmarks where
no FLAME mesh is at hand: a UV sphere "head" with an interpenetrating "nose" sphere, rotated per
frame, spherical UVs, a random albedo and SH light. Exercises overlap (z-test), both windings,
silhouettes and texture filtering."""
from __future__ import annotations

import numpy as np

from engine.mesh.attributes import vertex_depth, vertex_normals
from engine.guidance.raster_inputs import RasterInputs


def uv_sphere(n_lat: int, n_lon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit sphere: verts (V,3), faces (T,3) outward-wound, uvs (V,2) from longitude/latitude."""
    lat = np.linspace(0.0, np.pi, n_lat + 1)
    lon = np.linspace(0.0, 2.0 * np.pi, n_lon + 1)  # seam duplicated so uvs stay continuous
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    verts = np.stack([np.sin(la) * np.sin(lo), np.cos(la), np.sin(la) * np.cos(lo)], -1).reshape(-1, 3)
    uvs = np.stack([lo / (2.0 * np.pi), 1.0 - la / np.pi], -1).reshape(-1, 2)
    idx = np.arange((n_lat + 1) * (n_lon + 1)).reshape(n_lat + 1, n_lon + 1)
    a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
    c, d = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    faces = np.concatenate([np.stack([a, c, b], -1), np.stack([b, c, d], -1)])
    return verts, faces, uvs


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


def scene_from_mesh(verts: np.ndarray, faces: np.ndarray, uv_faces: np.ndarray, uvs: np.ndarray,
                    batch: int = 2, height: int = 64, width: int = 64, seed: int = 0,
                    tex_size: int = 256) -> RasterInputs:
    """B randomly rotated / shifted, unit-orthographic views of a mesh (centred, scaled to ~0.75 of
    the frame), with per-frame SH light and a random albedo."""
    rng = np.random.default_rng(seed)
    verts = np.asarray(verts, np.float64)
    verts = verts - (verts.max(0) + verts.min(0)) / 2.0
    verts = verts * (0.75 / np.abs(verts).max())
    faces = np.ascontiguousarray(faces, np.int32)
    v_ndc, v_nrm, v_dep, sh = [], [], [], []
    for _ in range(batch):
        rot = _rotation(*rng.uniform(-0.6, 0.6, size=3))
        world = verts @ rot.T + np.array([*rng.uniform(-0.15, 0.15, size=2), 0.0])
        # Unit orthographic camera: X_s = X, Y_s = -Y, z_t = -Z (spec §3); pytorch3d space
        # negates the screen xy (§4.2) and shifts z to min 20 (§3.6).
        z_t = -world[:, 2]
        v_ndc.append(np.stack([-world[:, 0], world[:, 1], z_t - z_t.min() + 20.0], -1))
        v_nrm.append(vertex_normals(world[None], faces)[0])
        v_dep.append(vertex_depth(z_t[None])[0])
        light = rng.normal(0.0, 0.25, size=(9, 3))
        light[0] += 2.5
        sh.append(light)
    albedo = rng.uniform(0.1, 0.9, size=(3, tex_size, tex_size))
    return RasterInputs(
        verts_ndc=np.asarray(v_ndc, np.float32),
        vert_normals=np.asarray(v_nrm, np.float32),
        vert_depth=np.asarray(v_dep, np.float32),
        faces=faces,
        uv_faces=np.ascontiguousarray(uv_faces, np.int32),
        uvs=np.ascontiguousarray(uvs, np.float32),
        albedo=albedo.astype(np.float32),
        sh_light=np.asarray(sh, np.float32),
        height=height,
        width=width,
    )


def make_demo_scene(batch: int = 2, height: int = 64, width: int = 64, seed: int = 0,
                    n_lat: int = 24, n_lon: int = 32, tex_size: int = 256) -> RasterInputs:
    """B frames of the head-and-nose scene; per-frame rotation and light, shared albedo."""
    head_v, head_f, head_uv = uv_sphere(n_lat, n_lon)
    nose_v, nose_f, nose_uv = uv_sphere(max(n_lat // 3, 4), max(n_lon // 3, 6))
    head_v = head_v * np.array([0.55, 0.7, 0.55])
    nose_v = nose_v * 0.18 + np.array([0.05, -0.05, 0.5])
    verts = np.concatenate([head_v, nose_v])
    faces = np.concatenate([head_f, nose_f + len(head_v)])
    uvs = np.concatenate([head_uv, nose_uv * 0.5])
    return scene_from_mesh(verts, faces, faces, uvs, batch, height, width, seed, tex_size)

"""Small hand-built RasterInputs scenes for the reference renderer tests."""
from __future__ import annotations

import numpy as np

from engine.guidance.raster_inputs import RasterInputs

F32 = np.float32


def scene(verts_ndc, faces, *, normals=None, depth=None, uvs=None, uv_faces=None, albedo=None,
          light=None, size=64) -> RasterInputs:
    verts_ndc = np.asarray(verts_ndc, F32)
    nv = len(verts_ndc)
    faces = np.asarray(faces, np.int32)
    if normals is None:
        normals = np.tile(np.array([0, 0, 1], F32), (nv, 1))
    if depth is None:
        depth = np.full(nv, 0.5, F32)
    if uvs is None:
        uvs = np.full((nv, 2), 0.5, F32)
        uv_faces = faces
    if albedo is None:
        albedo = np.full((3, 256, 256), 0.5, F32)
    if light is None:
        light = np.zeros((9, 3), F32)
        light[0] = 1.0
    return RasterInputs(
        verts_ndc=verts_ndc[None], vert_normals=np.asarray(normals, F32)[None],
        vert_depth=np.asarray(depth, F32)[None], faces=faces,
        uv_faces=np.asarray(uv_faces, np.int32), uvs=np.asarray(uvs, F32),
        albedo=np.asarray(albedo, F32), sh_light=np.asarray(light, F32)[None],
        height=size, width=size,
    )


def quad(x0, y0, x1, y1, z):
    """Two triangles covering [x0, x1] x [y0, y1] at depth z (pytorch3d space)."""
    verts = [[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]]
    return verts, [[0, 1, 2], [0, 2, 3]]


def uv_sphere(n_lat=48, n_lon=96, radius=0.8, z_centre=20.0):
    """Sphere in pytorch3d space facing the viewer (-z is toward the viewer); returns verts,
    faces and the outward unit normals in 'world' convention (n_z > 0 toward the viewer)."""
    theta = np.linspace(0, np.pi, n_lat + 1)
    phi = np.linspace(0, 2 * np.pi, n_lon, endpoint=False) + 0.01  # no edge exactly on a pixel diagonal
    t, p = np.meshgrid(theta, phi, indexing="ij")
    unit = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    verts = np.stack([unit[:, 0] * radius, unit[:, 1] * radius, z_centre - unit[:, 2] * radius], -1)
    idx = lambda i, j: i * n_lon + (j % n_lon)  # noqa: E731
    faces = []
    for i in range(n_lat):
        for j in range(n_lon):
            faces += [[idx(i, j), idx(i + 1, j), idx(i + 1, j + 1)], [idx(i, j), idx(i + 1, j + 1), idx(i, j + 1)]]
    return verts.astype(F32), np.array(faces, np.int32), unit.astype(F32)

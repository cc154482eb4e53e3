"""Minimal Wavefront .obj reader for head meshes: positions, UVs, triangle v/vt indices."""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np

from engine.errors import InputError


@dataclass(frozen=True)
class ObjMesh:
    verts: np.ndarray  # (V, 3) float32
    uvs: np.ndarray  # (U, 2) float32
    faces: np.ndarray  # (T, 3) int32
    uv_faces: np.ndarray  # (T, 3) int32


def read_obj(path) -> ObjMesh:
    """Read triangles 'f a/ta b/tb c/tc' (normals ignored); every face must carry UV indices."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise InputError(f"mesh file not found: {path}")
    verts, uvs, faces, uv_faces = [], [], [], []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                if parts[0] == "v":
                    verts.append([float(p) for p in parts[1:4]])
                elif parts[0] == "vt":
                    uvs.append([float(p) for p in parts[1:3]])
                elif parts[0] == "f":
                    if len(parts) != 4:
                        raise ValueError("only triangles are supported")
                    corners = [p.split("/") for p in parts[1:]]
                    faces.append([int(c[0]) - 1 for c in corners])
                    uv_faces.append([int(c[1]) - 1 for c in corners])
            except (ValueError, IndexError) as err:
                raise InputError(f"{path}:{lineno}: cannot parse '{line.strip()}' ({err})") from err
    if not verts or not faces or not uvs:
        raise InputError(f"{path}: expected vertices, UVs ('vt') and faces, found "
                         f"{len(verts)} v, {len(uvs)} vt, {len(faces)} f")
    mesh = ObjMesh(np.array(verts, np.float32), np.array(uvs, np.float32),
                   np.array(faces, np.int32), np.array(uv_faces, np.int32))
    if mesh.faces.min() < 0 or mesh.faces.max() >= len(verts):
        raise InputError(f"{path}: face vertex index out of range 1..{len(verts)}")
    if mesh.uv_faces.min() < 0 or mesh.uv_faces.max() >= len(uvs):
        raise InputError(f"{path}: face UV index out of range 1..{len(uvs)}")
    return mesh

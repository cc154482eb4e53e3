"""The shipped stand-in for FLAME: a synthetic FLAME-format head generated in code.

`synthetic_head()` builds a procedural head (procedural_head.py); `synthetic_head(obj_path)` rigs
the topology of an .obj such as DECA's head_template.obj (5023 v / 5118 vt / 9976 f; its
eyeballs are vertices >= 3931). Either way the result has FLAME's keys and shapes (shapedirs with
400 columns, posedirs 36, 5 joints), so it goes through the same loader and LBS. It is labelled
"synthetic" everywhere: it is not FLAME and carries none of FLAME's data.
"""
from __future__ import annotations

import pathlib

import numpy as np

from engine.flame.face_frame import face_frame_from_eyes
from engine.flame.model import FLAME_PARENTS, FlameModel, RenderTopology
from engine.flame.obj_mesh import ObjMesh, read_obj
from engine.flame.synthetic_rig import blendshapes, joint_regressor, pose_correctives, skinning_weights
from engine.flame.synthetic_texture import bake_albedo, default_sh_light, vertex_colours

SYNTHETIC_NAME = "synthetic head (not FLAME)"
FLAME_EYEBALL_START = 3931  # FLAME topology: vertices from here on are the two eyeballs (spec §2)
# Place every topology's eye midpoint where the procedural head has it (FLAME-like metres).
EYE_MID = np.array([0.0, 0.02, 0.062])


def synthetic_head(obj_path=None, seed: int = 0) -> FlameModel:
    """Build the synthetic FLAME-format model (procedural topology, or that of `obj_path`)."""
    from engine.flame.procedural_head import procedural_head

    if obj_path is None:
        head = procedural_head()
        mesh, eyes = head.mesh, head.eyeball_mask
        name = SYNTHETIC_NAME
    else:
        mesh = read_obj(obj_path)
        eyes = np.arange(len(mesh.verts)) >= FLAME_EYEBALL_START
        if len(mesh.verts) <= FLAME_EYEBALL_START:
            raise ValueError(f"{obj_path}: expected FLAME topology (5023 vertices, eyeballs from "
                             f"{FLAME_EYEBALL_START}), got {len(mesh.verts)} vertices")
        name = f"{SYNTHETIC_NAME} on {pathlib.Path(obj_path).name} topology"
    return rig_mesh(mesh, eyes, name, seed)


def rig_mesh(mesh: ObjMesh, eyeball_mask: np.ndarray, name: str, seed: int = 0) -> FlameModel:
    from engine.mesh.attributes import vertex_normals

    verts = mesh.verts.astype(np.float64)
    frame = face_frame_from_eyes(verts, eyeball_mask, None, mesh.faces)
    verts = verts - frame.eye_mid + EYE_MID
    frame = face_frame_from_eyes(verts, eyeball_mask, frame.mouth_dy)
    normals = vertex_normals(verts[None].astype(np.float32), mesh.faces)[0].astype(np.float64)
    weights = skinning_weights(frame, verts)
    albedo = bake_albedo(vertex_colours(frame, verts), mesh.faces, mesh.uvs, mesh.uv_faces)
    return FlameModel(
        v_template=verts.astype(np.float32),
        shapedirs=blendshapes(frame, verts, normals, weights, seed),
        posedirs=pose_correctives(frame, verts, normals, weights, seed + 1),
        J_regressor=joint_regressor(frame, verts),
        weights=weights,
        parents=FLAME_PARENTS,
        f=mesh.faces.astype(np.int32),
        name=name,
        topology=RenderTopology(mesh.faces.astype(np.int32), mesh.uv_faces.astype(np.int32),
                                mesh.uvs.astype(np.float32)),
        albedo=albedo.astype(np.float32),
        default_light=default_sh_light(),
    )

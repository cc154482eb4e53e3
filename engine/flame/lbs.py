"""FLAME linear blend skinning in float32 numpy, batched (spec guidance_maps.md §2).

full_pose = [global, neck = 0, jaw, left eye = 0, right eye = 0]; the global rotation pivots about
the shaped root joint J_0 (rotation about the rest joints), exactly as upstream's `lbs`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.flame.model import NUM_EXPR, NUM_JOINTS, NUM_SHAPE, FlameModel


@dataclass(frozen=True)
class LbsOutput:
    verts: np.ndarray  # (B, V, 3) posed vertices, FLAME world space
    joints: np.ndarray  # (B, 5, 3) posed joint positions
    rest_joints: np.ndarray  # (B, 5, 3) J = J_regressor . v_shaped


def rodrigues(rot_vecs: np.ndarray) -> np.ndarray:
    """(N, 3) axis-angle -> (N, 3, 3); theta = |r + 1e-8| like upstream (no 0/0 at r = 0)."""
    r = np.asarray(rot_vecs, np.float32).reshape(-1, 3)
    angle = np.linalg.norm(r + np.float32(1e-8), axis=1, keepdims=True).astype(np.float32)
    k = r / angle
    cos, sin = np.cos(angle)[:, :, None], np.sin(angle)[:, :, None]
    zeros = np.zeros(len(r), np.float32)
    kx, ky, kz = k[:, 0], k[:, 1], k[:, 2]
    K = np.stack([zeros, -kz, ky, kz, zeros, -kx, -ky, kx, zeros], axis=1).reshape(-1, 3, 3)
    eye = np.eye(3, dtype=np.float32)[None]
    return (eye + sin * K + (1 - cos) * (K @ K)).astype(np.float32)


def full_pose_from_flame_pose(pose: np.ndarray) -> np.ndarray:
    """(B, 6) [global | jaw] axis-angle -> (B, 5, 3) with neck and eyes zero (spec §2)."""
    pose = np.asarray(pose, np.float32).reshape(-1, 6)
    full = np.zeros((len(pose), NUM_JOINTS, 3), np.float32)
    full[:, 0] = pose[:, :3]
    full[:, 2] = pose[:, 3:]
    return full


def _batch(x, width: int, batch: int, name: str) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.ndim == 1:
        x = np.broadcast_to(x, (batch, x.shape[0]))
    if x.shape != (batch, width):
        raise ValueError(f"{name}: expected ({batch}, {width}) or ({width},), got {x.shape}")
    return x


def flame_lbs(model: FlameModel, shape, exp, pose) -> LbsOutput:
    """Pose the model. shape (100,)|(B,100), exp (B,50), pose (B,6) = [global | jaw]."""
    pose = np.asarray(pose, np.float32).reshape(-1, 6)
    batch = len(pose)
    betas = np.concatenate(
        [_batch(shape, NUM_SHAPE, batch, "shape"), _batch(exp, NUM_EXPR, batch, "exp")], axis=1
    )
    basis = model.blendshapes()  # (V, 3, 150)
    nv = model.num_verts
    v_shaped = model.v_template[None] + np.einsum("bl,vcl->bvc", betas, basis).astype(np.float32)
    rest_joints = np.einsum("jv,bvc->bjc", model.J_regressor, v_shaped).astype(np.float32)

    rot = rodrigues(full_pose_from_flame_pose(pose).reshape(-1, 3)).reshape(batch, NUM_JOINTS, 3, 3)
    pose_feature = (rot[:, 1:] - np.eye(3, dtype=np.float32)).reshape(batch, -1)  # (B, 36)
    posedirs = model.posedirs.reshape(nv * 3, 36).T  # (36, 3V) as upstream registers it
    v_posed = v_shaped + (pose_feature @ posedirs).reshape(batch, nv, 3)

    world, posed_joints = _rigid_chain(rot, rest_joints, model.parents)
    blend = np.einsum("vj,bjrc->bvrc", model.weights, world).astype(np.float32)  # (B, V, 4, 4)
    verts = np.einsum("bvrc,bvc->bvr", blend[..., :3, :3], v_posed) + blend[..., :3, 3]
    return LbsOutput(verts.astype(np.float32), posed_joints, rest_joints)


def _rigid_chain(rot: np.ndarray, joints: np.ndarray, parents) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint world transforms relative to the rest pose, and posed joint positions."""
    batch = rot.shape[0]
    local = np.zeros((batch, NUM_JOINTS, 4, 4), np.float32)
    local[:, :, :3, :3] = rot
    local[:, :, 3, 3] = 1
    rel = joints.copy()
    for j in range(1, NUM_JOINTS):
        rel[:, j] = joints[:, j] - joints[:, parents[j]]
    local[:, :, :3, 3] = rel
    chain = [local[:, 0]]
    for j in range(1, NUM_JOINTS):
        chain.append(chain[parents[j]] @ local[:, j])
    glob = np.stack(chain, axis=1)
    posed_joints = glob[:, :, :3, 3].copy()
    # A_j: rotate about the rest joint: translation t_j - R_j . J_j (spec §2 step 5).
    glob[:, :, :3, 3] -= np.einsum("bjrc,bjc->bjr", glob[:, :, :3, :3], joints)
    return glob, posed_joints

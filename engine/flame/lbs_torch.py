"""FLAME LBS in torch (same steps as lbs.py, spec §2), for GPU batches and ONNX export."""
from __future__ import annotations

import torch

from engine.flame.model import NUM_EXPR, NUM_JOINTS, NUM_SHAPE, FlameModel


class FlameLbs(torch.nn.Module):
    """Buffers hold the model; forward(shape (B,100), exp (B,50), pose (B,6)) -> verts (B,V,3)."""

    def __init__(self, model: FlameModel):
        super().__init__()
        nv = model.num_verts
        self.parents = tuple(model.parents)
        self.register_buffer("v_template", torch.from_numpy(model.v_template.copy()))
        self.register_buffer("basis", torch.from_numpy(model.blendshapes().reshape(nv * 3, -1).copy()))
        self.register_buffer("posedirs", torch.from_numpy(model.posedirs.reshape(nv * 3, 36).T.copy()))
        self.register_buffer("J_regressor", torch.from_numpy(model.J_regressor.copy()))
        self.register_buffer("weights", torch.from_numpy(model.weights.copy()))

    @staticmethod
    def rodrigues(r: torch.Tensor) -> torch.Tensor:
        angle = torch.norm(r + 1e-8, dim=1, keepdim=True)  # as upstream: no 0/0 at r = 0
        k = r / angle
        cos, sin = torch.cos(angle)[:, :, None], torch.sin(angle)[:, :, None]
        zeros = torch.zeros_like(k[:, 0])
        K = torch.stack([zeros, -k[:, 2], k[:, 1], k[:, 2], zeros, -k[:, 0], -k[:, 1], k[:, 0], zeros],
                        dim=1).view(-1, 3, 3)
        eye = torch.eye(3, dtype=r.dtype, device=r.device)[None]
        return eye + sin * K + (1 - cos) * torch.bmm(K, K)

    def forward(self, shape: torch.Tensor, exp: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        batch = pose.shape[0]
        nv = self.v_template.shape[0]
        betas = torch.cat([shape.expand(batch, NUM_SHAPE), exp.expand(batch, NUM_EXPR)], dim=1)
        v_shaped = self.v_template[None] + (betas @ self.basis.T).view(batch, nv, 3)
        joints = torch.einsum("jv,bvc->bjc", self.J_regressor, v_shaped)
        zeros = torch.zeros_like(pose[:, :3])
        full = torch.stack([pose[:, :3], zeros, pose[:, 3:], zeros, zeros], dim=1)
        rot = self.rodrigues(full.reshape(-1, 3)).view(batch, NUM_JOINTS, 3, 3)
        eye = torch.eye(3, dtype=pose.dtype, device=pose.device)
        feature = (rot[:, 1:] - eye).reshape(batch, -1)
        v_posed = v_shaped + (feature @ self.posedirs).view(batch, nv, 3)
        rel = [joints[:, 0]] + [joints[:, j] - joints[:, self.parents[j]] for j in range(1, NUM_JOINTS)]
        bottom = torch.tensor([0, 0, 0, 1], dtype=pose.dtype, device=pose.device).expand(batch, 1, 4)
        chain = []
        for j in range(NUM_JOINTS):
            local = torch.cat([torch.cat([rot[:, j], rel[j][:, :, None]], dim=2), bottom], dim=1)
            chain.append(local if j == 0 else chain[self.parents[j]] @ local)
        glob = torch.stack(chain, dim=1)
        # rotate about the rest joints: translation t_j - R_j J_j (spec §2 step 5)
        trans = glob[:, :, :3, 3] - torch.einsum("bjrc,bjc->bjr", glob[:, :, :3, :3], joints)
        blend_r = torch.einsum("vj,bjrc->bvrc", self.weights, glob[:, :, :3, :3])
        blend_t = torch.einsum("vj,bjr->bvr", self.weights, trans)
        return torch.einsum("bvrc,bvc->bvr", blend_r, v_posed) + blend_t

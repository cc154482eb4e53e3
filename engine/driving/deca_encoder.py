"""DECA's coarse encoder `E_flame` (ResNet-50 -> 2048 -> FC1024 -> ReLU -> FC236), guidance_maps.md §1.3.

Loaded from the released `deca_model.tar` (a torch.save dict with 'E_flame', 'E_detail',
'D_detail'); only 'E_flame' is read. Input: the 224x224 crop, RGB in [0, 1], no mean/std.
"""
from __future__ import annotations

import os
import torch
from torch import nn

from engine.driving.checkpoints import load_strict, load_torch_file, strip_prefix
from engine.driving.resnet50 import ResNet50Trunk
from engine.errors import CheckpointError

DECA_FILE = "deca_model.tar"


class DecaParamLayout:
    """Slices of the 236-vector in DECA's `cfg.model.param_list` order (constants)."""

    shape = slice(0, 100)
    tex = slice(100, 150)
    exp = slice(150, 200)
    pose = slice(200, 206)  # [global axis-angle | jaw axis-angle]
    cam = slice(206, 209)  # (s, tx, ty)
    light = slice(209, 236)  # 9 SH bands x RGB
    total = 236


DECA_LAYOUT = DecaParamLayout()


class DecaCoarseEncoder(nn.Module):
    """`E_flame`: crop (B,3,224,224) in [0,1] -> raw parameters (B,236)."""

    def __init__(self, n_params: int = DECA_LAYOUT.total):
        super().__init__()
        self.encoder = ResNet50Trunk()
        self.layers = nn.Sequential(nn.Linear(2048, 1024), nn.ReLU(), nn.Linear(1024, n_params))

    def forward(self, crop: torch.Tensor) -> torch.Tensor:
        return self.layers(self.encoder(crop))


def split_deca_params(params: torch.Tensor) -> dict[str, torch.Tensor]:
    """(B,236) -> shape, tex, exp, pose, cam, light (light as (B,9,3))."""
    out = {name: params[:, getattr(DECA_LAYOUT, name)] for name in ("shape", "tex", "exp", "pose", "cam")}
    out["light"] = params[:, DECA_LAYOUT.light].reshape(-1, 9, 3)
    return out


def load_deca_coarse_encoder(path: str | os.PathLike) -> DecaCoarseEncoder:
    """Build `E_flame` with the weights of `deca_model.tar` (eval mode, CPU, float32)."""
    checkpoint = load_torch_file(path, "DECA")
    if "E_flame" not in checkpoint:
        raise CheckpointError(
            f"DECA file {os.fspath(path)} has no 'E_flame' entry (found: {', '.join(map(str, list(checkpoint)[:6]))}); "
            f"expected DECA's released {DECA_FILE}"
        )
    state = checkpoint["E_flame"]
    if not isinstance(state, dict):
        raise CheckpointError(f"DECA file {os.fspath(path)}: 'E_flame' is a {type(state).__name__}, expected a state dict")
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = strip_prefix(state, "module.")
    model = DecaCoarseEncoder()
    load_strict(model, state, f"DECA file {os.fspath(path)} ['E_flame']")
    return model.eval()

"""Helpers shared by the tests/test_driving_*.py files: random-but-well-scaled encoder weights and
writers for files in the released DECA/SMIRK formats."""
from __future__ import annotations

import pathlib

import torch
from torch import nn

LANDMARKER = "assets/models/face_landmarker.task"
MEDIA = "assets/media"


def randomize_(module: nn.Module, seed: int) -> nn.Module:
    """Random weights and BatchNorm statistics that keep activations O(1) through deep nets."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.0, generator=gen)
                m.bias.normal_(0.0, 0.1, generator=gen)
                m.running_mean.normal_(0.0, 0.1, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0.0, (1.0 / fan_in) ** 0.5, generator=gen)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.1, generator=gen)
    return module.eval()


def write_deca_tar(path: pathlib.Path, e_flame: nn.Module, legacy: bool = False) -> pathlib.Path:
    """DECA's deca_model.tar layout: torch.save dict of state dicts (E_detail/D_detail are stand-ins).
    `legacy`: PyTorch's pre-1.6 (non-zip) serialization, which older releases may use."""
    torch.save({"E_flame": e_flame.state_dict(), "E_detail": {"layers.0.weight": torch.zeros(2, 2)},
                "D_detail": {"conv.weight": torch.zeros(1)}}, path, _use_new_zipfile_serialization=not legacy)
    return path


def write_smirk_pt(path: pathlib.Path, expression_encoder: nn.Module) -> pathlib.Path:
    """SMIRK_em1.pt layout: one flat state dict holding encoder (all three) and generator keys."""
    state = {f"smirk_encoder.expression_encoder.{k}": v for k, v in expression_encoder.state_dict().items()}
    state["smirk_encoder.pose_encoder.pose_cam_layers.0.weight"] = torch.zeros(6, 576)
    state["smirk_encoder.shape_encoder.shape_layers.0.weight"] = torch.zeros(300, 1280)
    state["smirk_generator.encoder.0.weight"] = torch.zeros(4, 4)
    torch.save(state, path)
    return path

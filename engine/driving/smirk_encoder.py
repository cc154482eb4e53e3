"""SMIRK's expression encoder (MobileNetV3-large-minimal -> pool -> FC55), guidance_maps.md §1.5.

Loaded from the released `SMIRK_em1.pt` (flat state dict; keys `smirk_encoder.expression_encoder.*`).
SMIRK's pose and shape encoders are in the file too but never run: the maps use only exp and jaw.
Input: the 224x224 SMIRK crop, RGB in [0, 1], no mean/std.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from engine.driving.checkpoints import load_strict, load_torch_file, strip_prefix
from engine.driving.mobilenetv3 import MobileNetV3LargeMinimalFeatures
from engine.errors import CheckpointError

SMIRK_FILE = "SMIRK_em1.pt"
SMIRK_EXPRESSION_PREFIX = "smirk_encoder.expression_encoder."
N_EXP = 50


class SmirkExpressionEncoder(nn.Module):
    """Crop (B,3,224,224) in [0,1] -> raw outputs (B,55) = exp 50 | eyelids 2 | jaw 3."""

    def __init__(self, n_exp: int = N_EXP):
        super().__init__()
        self.encoder = MobileNetV3LargeMinimalFeatures()
        self.expression_layers = nn.Sequential(nn.Linear(self.encoder.out_features, n_exp + 2 + 3))

    def forward(self, crop: torch.Tensor) -> torch.Tensor:
        features = self.encoder(crop).mean(dim=(2, 3))
        return self.expression_layers(features)


def smirk_exp_and_jaw(raw: torch.Tensor, n_exp: int = N_EXP) -> tuple[torch.Tensor, torch.Tensor]:
    """SMIRK's output activations: exp raw; jaw = [relu(p52), clamp(p53,±0.2), clamp(p54,±0.2)].

    Eyelids (clamp(p50:52, 0, 1)) are ignored upstream (guidance_maps.md §1.5), so not computed.
    """
    exp = raw[:, :n_exp]
    jaw = torch.cat(
        [F.relu(raw[:, n_exp + 2 : n_exp + 3]), torch.clamp(raw[:, n_exp + 3 : n_exp + 5], -0.2, 0.2)], dim=1
    )
    return exp, jaw


def load_smirk_expression_encoder(path: str | os.PathLike) -> SmirkExpressionEncoder:
    """Build SMIRK's expression encoder with the weights of `SMIRK_em1.pt` (eval mode, CPU)."""
    checkpoint = load_torch_file(path, "SMIRK")
    state = strip_prefix(checkpoint, SMIRK_EXPRESSION_PREFIX)
    if not state:
        raise CheckpointError(
            f"SMIRK file {os.fspath(path)} has no '{SMIRK_EXPRESSION_PREFIX}*' keys; expected SMIRK's released {SMIRK_FILE}"
        )
    model = SmirkExpressionEncoder()
    load_strict(model, state, f"SMIRK file {os.fspath(path)} [{SMIRK_EXPRESSION_PREFIX}*]")
    return model.eval()

"""Stages 1-2: the image stage and the motion stage, with upstream's objective.

v-prediction on the zero-SNR linear-beta schedule (engine.sampling.ddim, the one the samplers
use), timesteps uniform over the 1000 training steps, one per sample. The reference is dropped
(use_reference = False) for a share of the samples: at inference CFG's unconditional half runs the
denoising UNet without the reference, with the same text and guidance (networks.md (b).6).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from engine.networks.config import GUIDANCE_TYPES
from engine.networks.denoising_unet import DenoisingUNet3D
from engine.networks.guidance_encoder import GuidanceEncoderSet
from engine.networks.reference_unet import ReferenceUNet
from engine.sampling.ddim import DDIMSchedule

REFERENCE_DROP = 0.1  # share of samples trained without the reference (for CFG)


@dataclasses.dataclass
class Networks:
    reference_unet: ReferenceUNet
    denoising_unet: DenoisingUNet3D
    guidance_encoders: GuidanceEncoderSet
    text: torch.Tensor  # (1, 77, D), fixed

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"reference_unet": self.reference_unet, "denoising_unet": self.denoising_unet,
                "guidance_encoders": self.guidance_encoders}


def init_for_training(nets: Networks) -> None:
    """Zero the last layer of every guidance encoder and motion module, as Champ / AnimateDiff do:
    both start as no-ops, so the image stage trains an ordinary reference-conditioned UNet."""
    for enc in nets.guidance_encoders.encoders.values():
        torch.nn.init.zeros_(enc.conv_out.weight)
        torch.nn.init.zeros_(enc.conv_out.bias)
    for name, module in nets.denoising_unet.named_modules():
        if name.endswith("temporal_transformer"):
            torch.nn.init.zeros_(module.proj_out.weight)
            torch.nn.init.zeros_(module.proj_out.bias)


def motion_parameters(unet: DenoisingUNet3D) -> list[torch.nn.Parameter]:
    return [p for n, p in unet.named_parameters() if "motion_modules." in n]


def image_parameters(nets: Networks) -> list[torch.nn.Parameter]:
    spatial = [p for n, p in nets.denoising_unet.named_parameters() if "motion_modules." not in n]
    return spatial + list(nets.reference_unet.parameters()) + list(nets.guidance_encoders.parameters())


class Objective:
    def __init__(self, device):
        self.alphas_cumprod = torch.from_numpy(DDIMSchedule().alphas_cumprod).to(device)

    def loss(self, nets: Networks, latents: torch.Tensor, ref_latents: torch.Tensor,
             maps: dict[str, torch.Tensor], rng: np.random.Generator, drop: float = REFERENCE_DROP) -> torch.Tensor:
        """latents (B,4,F,h,w) scaled; ref_latents (B,4,h,w); maps per type (B*F,3,H,W) in [0,1]."""
        b, _, f, h, w = latents.shape
        device = latents.device
        t = torch.from_numpy(rng.integers(0, len(self.alphas_cumprod), size=b)).to(device)
        ab = self.alphas_cumprod[t].reshape(b, 1, 1, 1, 1)
        noise = torch.from_numpy(rng.standard_normal(latents.shape, dtype=np.float32)).to(device)
        noisy = ab.sqrt() * latents + (1 - ab).sqrt() * noise
        target = ab.sqrt() * noise - (1 - ab).sqrt() * latents
        features = nets.reference_unet(ref_latents, nets.text)
        kv = nets.denoising_unet.project_reference(features)  # (B, L, C): the UNet spreads it over frames
        keep = torch.from_numpy(rng.random(b) >= drop).to(device)
        guidance = nets.guidance_encoders(*(maps[k] for k in GUIDANCE_TYPES))
        guidance = guidance.reshape(b, f, *guidance.shape[1:]).transpose(1, 2)
        pred = nets.denoising_unet(noisy, t, nets.text, guidance, kv, use_reference=keep)
        return F.mse_loss(pred, target)

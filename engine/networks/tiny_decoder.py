"""Tiny latent decoder in TAESD's layout (madebyollin/taesd, MIT; the architecture as published):
convolutions and ReLUs only, the input soft-clamped by tanh(x / 3) * 3, three nearest x2 upsamplings.

    0 clamp | 1 conv(4 -> w) | 2 ReLU | 3-5 Block x3 | 6 up | 7 conv (no bias) | 8-10 Block x3 | 11 up |
    12 conv | 13-15 Block x3 | 16 up | 17 conv | 18 Block | 19 conv(w -> 3)
    Block: ReLU(conv3x3 -> ReLU -> conv3x3 -> ReLU -> conv3x3  +  x)

The module's state-dict keys are TAESD's own (`taesd_decoder.pth` / `.safetensors`: "1.weight",
"3.conv.0.weight", ...); diffusers' AutoencoderTiny stores the same tensors as "decoder.layers.{i-1}.*".
Input: the UNet's latents (SD latents x 0.18215, as TAESD takes them); output: image in [0, 1]
(the VaeDecoder contract), width w = 64 for TAESD, smaller for a model's own distilled decoder.
"""
from __future__ import annotations

import torch
from torch import nn

BLOCKS = (3, 3, 3, 1)  # Blocks per stage; an upsampling + conv between stages


class Clamp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1))
        self.skip = nn.Identity()
        self.fuse = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.conv(x) + self.skip(x))


class TinyDecoder(nn.Sequential):
    def __init__(self, latent_channels: int = 4, width: int = 64):
        layers: list[nn.Module] = [Clamp(), nn.Conv2d(latent_channels, width, 3, padding=1), nn.ReLU()]
        for stage, count in enumerate(BLOCKS):
            layers += [Block(width) for _ in range(count)]
            if stage < len(BLOCKS) - 1:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, width, 3, padding=1, bias=False)]
        layers.append(nn.Conv2d(width, 3, 3, padding=1))
        super().__init__(*layers)
        self.latent_channels, self.width = latent_channels, width

    @property
    def scale_factor(self) -> int:
        return 2 ** (len(BLOCKS) - 1)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """(N, 4, h, w) UNet latents -> (N, 3, 8h, 8w) image in [0, 1]."""
        return super().forward(latents).clamp(0, 1)


def diffusers_to_taesd_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """AutoencoderTiny's "decoder.layers.{i}.*" -> TAESD's "{i+1}.*" (TAESD has the clamp at index 0)."""
    out = {}
    for key, value in sd.items():
        if key.startswith("decoder.layers."):
            index, rest = key[len("decoder.layers."):].split(".", 1)
            out[f"{int(index) + 1}.{rest}"] = value
    return out


def taesd_to_diffusers_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in sd.items():
        index, rest = key.split(".", 1)
        out[f"decoder.layers.{int(index) - 1}.{rest}"] = value
    return out

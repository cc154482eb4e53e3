"""VAE: sd-vae-ft-mse (diffusers AutoencoderKL) with upstream's pre/post-processing (networks.md (d)).

`VaeEncoder` / `VaeDecoder` are the exportable halves: image in [-1,1] -> scaled latent mean, and
scaled latent -> image in [0,1].
"""
from __future__ import annotations

import pathlib

import torch
from torch import nn

from engine.errors import CheckpointError


def load_autoencoder(folder: pathlib.Path):
    from diffusers import AutoencoderKL
    from diffusers.utils import logging as diffusers_logging
    diffusers_logging.set_verbosity_error()  # no advice about optional packages on every load
    try:
        return AutoencoderKL.from_pretrained(str(folder), local_files_only=True).eval()
    except Exception as err:
        raise CheckpointError(f"{folder}: cannot load the VAE ({type(err).__name__}: {err})") from None


class VaeEncoder(nn.Module):
    """Image (N,3,H,W) in [-1,1] -> latent_dist.mean x scale (no sampling, networks.md (d))."""

    def __init__(self, autoencoder, scale: float):
        super().__init__()
        self.encoder, self.quant_conv, self.scale = autoencoder.encoder, autoencoder.quant_conv, scale

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        moments = self.quant_conv(self.encoder(image))
        return moments[:, : moments.shape[1] // 2] * self.scale


class VaeDecoder(nn.Module):
    """Scaled latent (N,4,h,w) -> image (N,3,H,W) in [0,1]: (x/2 + 0.5).clamp(0, 1)."""

    def __init__(self, autoencoder, scale: float):
        super().__init__()
        self.decoder, self.post_quant_conv, self.scale = autoencoder.decoder, autoencoder.post_quant_conv, scale

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        image = self.decoder(self.post_quant_conv(latents / self.scale))
        return (image / 2 + 0.5).clamp(0, 1)

"""Reference UNet: SD1.5 UNet2D without output head that returns the 16 reference features.

networks.md (b): run once per identity at timestep 0 on the reference latents; each
BasicTransformerBlock's norm1 output (the input of its self-attention) is a reference feature,
rounded to fp16 as upstream's bank update does ((b).4). Work after the last feature is dead and skipped.
"""
from __future__ import annotations

import torch

from engine.networks.config import UNetConfig
from engine.networks.transformer import SpatialTransformer
from engine.networks.unet_body import UNetBody


class ReferenceUNet(UNetBody):
    # SD1.5 checkpoint keys with no counterpart here (upstream deletes the output head).
    IGNORED_KEY_PREFIXES = ("conv_norm_out.", "conv_out.")

    def __init__(self, cfg: UNetConfig):
        super().__init__(cfg, motion=None)

    def forward(self, ref_latents: torch.Tensor, text: torch.Tensor) -> list[torch.Tensor]:
        """ref_latents (R,4,h,w), text (R or 1, 77, D) -> 16 features (R, h_l*w_l, C_l), fp16-rounded."""
        rows = ref_latents.shape[0]
        text = text.expand(rows, -1, -1)
        temb = self.time_embed(torch.zeros(rows, device=ref_latents.device))
        features: list[torch.Tensor] = []
        last = len(self.transformer_names()) - 1

        def write(index: int, transformer: SpatialTransformer, x: torch.Tensor) -> torch.Tensor:
            if index == last:
                features.append(transformer.reference_feature_only(x))
                return x
            x, feature = transformer(x, text)
            features.append(feature)
            return x

        self.run(self.conv_in(ref_latents), temb, frames=1, transform=write, stop_after_transformer=last)
        # Rounded to fp16 like upstream's bank (networks.md (b).4); kept in the compute dtype.
        return [f.to(torch.float16).to(f.dtype) for f in features]


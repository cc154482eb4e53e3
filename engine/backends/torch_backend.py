"""Backend on the torch networks (CPU or CUDA, float32 or float16): engine.model.MagicPortraitModel."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from engine.backends.base import Backend, BackendInfo
from engine.preprocess import GUIDANCE_TYPES


class TorchBackend(Backend):
    def __init__(self, model):
        self.model = model
        self.info = BackendInfo(name="torch", device=str(model.device), precision=str(model.dtype).split(".")[-1],
                                latent_channels=model.config.unet.in_channels,
                                scale_factor=model.latent_scale_factor,
                                max_frames=model.config.motion.max_frames,
                                # CPU: decode on a second core while the UNet runs; CUDA serialises anyway
                                concurrent_calls=model.device.type == "cpu",
                                image_size=model.config.image_size, denoiser=model.denoiser,
                                decoder=model.decoder_name, guidance_scale=model.config.guidance_scale)

    @classmethod
    def from_weights(cls, root, device: str = "cpu", dtype: torch.dtype = torch.float32) -> "TorchBackend":
        from engine.model import MagicPortraitModel
        return cls(MagicPortraitModel.from_weights(root, device=device, dtype=dtype))

    @classmethod
    def open(cls, request) -> "TorchBackend":
        """registry opener: request.weights (None = the built-in model, else the tiny random one; announced)."""
        import sys

        from engine.errors import InputError
        from engine.weights.builtin import default_weights
        device = request.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if request.precision == "fp16" and device == "cpu":
            raise InputError("fp16: half precision needs a GPU device (got device cpu)")
        dtype = torch.float16 if request.precision == "fp16" else torch.float32
        given = bool(request.weights)
        root = request.weights if given else default_weights()[0]
        from engine.model import MagicPortraitModel
        model = MagicPortraitModel.from_weights(root, device=device, dtype=dtype)
        if given:
            print(model.report.summary(), file=sys.stderr)
        model.use_variants(request.student, request.decoder)
        return cls(model)

    @torch.no_grad()
    def encode_reference(self, image_rgb_u8: np.ndarray, size: tuple[int, int]):
        return self.model.reference_kv(self.model.encode_reference(image_rgb_u8, size))

    @torch.no_grad()
    def encode_guidance(self, maps_u8: dict[str, np.ndarray]) -> list[torch.Tensor]:
        features = self.model.encode_guidance({t: maps_u8[t] for t in GUIDANCE_TYPES})  # checked there; (1,C0,F,h,w)
        return list(features[0].unbind(1))  # F views of (C0,h,w)

    @torch.no_grad()
    def denoise(self, sample: np.ndarray, timesteps: np.ndarray, guidance: Sequence[torch.Tensor], identity,
                use_reference: np.ndarray) -> np.ndarray:
        m = self.model
        x = torch.from_numpy(np.ascontiguousarray(sample)).to(m.device, m.dtype)
        t = torch.from_numpy(np.ascontiguousarray(timesteps, np.int64)).to(m.device)
        g = torch.stack(list(guidance), dim=1)[None]
        keep = torch.from_numpy(np.asarray(use_reference, bool)).to(m.device)
        v = m.denoising_unet(x, t, m.text_embedding, g, identity, keep)
        return v.float().cpu().numpy()

    @torch.no_grad()
    def denoise_batch(self, sample: np.ndarray, timesteps: np.ndarray, guidance: Sequence[Sequence[torch.Tensor]],
                      identities: Sequence, use_reference: np.ndarray) -> np.ndarray:
        m = self.model
        x = torch.from_numpy(np.ascontiguousarray(sample)).to(m.device, m.dtype)
        t = torch.from_numpy(np.ascontiguousarray(timesteps, np.int64)).to(m.device)
        g = torch.stack([torch.stack(list(frames), dim=1) for frames in guidance])  # (S,C0,F,h,w)
        keep = torch.from_numpy(np.asarray(use_reference, bool)).to(m.device)
        if all(i is identities[0] for i in identities):
            kv = identities[0]  # one identity: (1,L,C) broadcast, as in denoise
        else:  # per-sample K/V, (S,L,C) per block
            kv = [(torch.cat([i[b][0] for i in identities]), torch.cat([i[b][1] for i in identities]))
                  for b in range(len(identities[0]))]
        v = m.denoising_unet(x, t, m.text_embedding, g, kv, keep)
        return v.float().cpu().numpy()

    @torch.no_grad()
    def decode(self, latents: np.ndarray) -> np.ndarray:
        m = self.model
        x = torch.from_numpy(np.ascontiguousarray(latents)).to(m.device, m.dtype)
        return m.decode(x.transpose(0, 1)[None])

    def synchronize(self) -> None:
        if self.model.device.type == "cuda":
            torch.cuda.synchronize(self.model.device)

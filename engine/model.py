"""All networks of one MagicPortrait model, loaded from upstream's on-disk layout.

The Python API at the latent level (used by the CLI, the streaming runtime, tests and scripts):

    model = MagicPortraitModel.from_weights("pretrained_weights", device="cuda", dtype=torch.float16)
    ref_latents = model.encode_reference(portrait_rgb_u8)            # (1,4,h,w)
    ref_kv = model.reference_kv(ref_latents)                         # once per identity
    guidance = model.encode_guidance(maps_u8)                        # (1,C0,F,h,w), once per frame
    latents = sample_offline(model, ref_kv, guidance, noise)         # engine.sampling.offline
    frames = model.decode(latents)                                   # (F,H,W,3) uint8
"""
from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import torch

from engine.networks.config import ModelConfig
from engine.networks.denoising_unet import DenoisingUNet3D
from engine.networks.guidance_encoder import GuidanceEncoderSet
from engine.networks.reference_unet import ReferenceUNet
from engine.networks.text_embedding import load_or_compute_text_embedding
from engine.networks.transformer import ReferenceKV
from engine.networks.vae import VaeDecoder, VaeEncoder, load_autoencoder
from engine.preprocess import GUIDANCE_TYPES, check_maps, reference_image
from engine.weights.layout import WeightsLayout
from engine.weights.load import (LoadReport, load_denoising_unet, load_guidance_encoders, load_model_config,
                                 load_reference_unet)
from engine.weights.torch_file import check_finite


@dataclasses.dataclass
class MagicPortraitModel:
    config: ModelConfig
    reference_unet: ReferenceUNet
    denoising_unet: DenoisingUNet3D
    guidance_encoders: GuidanceEncoderSet
    vae_encoder: VaeEncoder
    vae_decoder: VaeDecoder
    text_embedding: torch.Tensor  # (1, 77, D)
    report: LoadReport
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32
    tiny_decoder: torch.nn.Module | None = None  # a TAESD-format decoder used instead of the VAE's
    decoder_name: str = "vae"
    denoiser: str = "teacher"  # or a distilled student's description (engine.weights.student.use_student)
    root: pathlib.Path | None = None  # the weights folder (where 'auto' looks for student/ and tiny_decoder/)

    @classmethod
    def from_weights(cls, root: str | pathlib.Path, device: str | torch.device = "cpu",
                     dtype: torch.dtype = torch.float32) -> "MagicPortraitModel":
        layout = WeightsLayout.discover(root)
        config = load_model_config(layout)
        report = LoadReport()
        autoencoder = load_autoencoder(layout.vae_dir)
        check_finite(autoencoder.state_dict(), f"{layout.vae_dir} (VAE)")
        text_embedding = load_or_compute_text_embedding(layout.text_embedding, layout.sd15_dir)
        check_finite({"text_embedding": text_embedding}, str(layout.text_embedding))
        model = cls(
            config=config,
            reference_unet=load_reference_unet(layout, config, report),
            denoising_unet=load_denoising_unet(layout, config, report),
            guidance_encoders=load_guidance_encoders(layout, config, report),
            vae_encoder=VaeEncoder(autoencoder, config.latent_scale),
            vae_decoder=VaeDecoder(autoencoder, config.latent_scale),
            text_embedding=text_embedding,
            report=report,
            root=pathlib.Path(root),
        )
        return model.to(device, dtype)

    def to(self, device, dtype) -> "MagicPortraitModel":
        self.device, self.dtype = torch.device(device), dtype
        for net in self.networks():
            net.to(device=self.device, dtype=dtype).eval().requires_grad_(False)
        self.text_embedding = self.text_embedding.to(self.device, dtype)
        return self

    def networks(self) -> list[torch.nn.Module]:
        return [self.reference_unet, self.denoising_unet, self.guidance_encoders, self.vae_encoder,
                self.vae_decoder] + ([self.tiny_decoder] if self.tiny_decoder is not None else [])

    def set_decoder(self, net: torch.nn.Module | None, name: str) -> None:
        """Decode with `net` (latents -> [0,1] images, like VaeDecoder) instead of the VAE; None: the VAE."""
        self.tiny_decoder = net.to(self.device, self.dtype).eval().requires_grad_(False) if net is not None else None
        self.decoder_name = name if net is not None else "vae"

    def use_variants(self, student: str | None = None, decoder: str | None = None) -> None:
        """--student (None / 'none': the teacher; 'auto': ROOT/student/student.safetensors if present; a
        file) and --decoder (None / 'vae'; 'auto': ROOT/tiny_decoder if present; 'taesd:DIR')."""
        from engine.weights.student import resolve_student, use_student
        from engine.weights.tiny_decoder import decoder_module, find_tiny_decoder, parse_decoder_option
        path = resolve_student(student, self.root)
        if path is not None:
            use_student(self, path)
        kind, folder = parse_decoder_option(decoder)
        if kind == "auto":
            folder = find_tiny_decoder(self.root)
        net, name, _ = decoder_module("taesd" if folder else "vae", folder)
        self.set_decoder(net, name)

    @property
    def decoder(self) -> torch.nn.Module:
        """The decoder `decode` runs: the tiny decoder if one is set, else the VAE's."""
        return self.tiny_decoder if self.tiny_decoder is not None else self.vae_decoder

    @property
    def latent_scale_factor(self) -> int:
        return self.config.vae_downscale

    # -- identity (once per source image) ---------------------------------------------------------
    @torch.no_grad()
    def encode_reference(self, image_rgb_u8: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
        """Upstream's VaeImageProcessor (engine.preprocess.reference_image), then VAE mean x scale."""
        x = torch.from_numpy(reference_image(image_rgb_u8, size))
        return self.vae_encoder(x.to(self.device, self.dtype))

    @torch.no_grad()
    def reference_kv(self, ref_latents: torch.Tensor) -> list[ReferenceKV]:
        features = self.reference_unet(ref_latents, self.text_embedding)
        return self.denoising_unet.project_reference(features)

    # -- guidance (once per frame) ----------------------------------------------------------------
    @torch.no_grad()
    def encode_guidance(self, maps_u8: dict[str, np.ndarray], batch: int = 16) -> torch.Tensor:
        """Per type (F,H,W,3) uint8 maps -> summed features (1, C0, F, h, w). No resize: maps must
        already be at the output size (upstream's bicubic resize is a no-op at 512²)."""
        frames = check_maps(maps_u8, self.latent_scale_factor)
        out = []
        for start in range(0, frames, batch):
            per_type = [torch.from_numpy(maps_u8[t][start:start + batch]).to(self.device).permute(0, 3, 1, 2)
                        .to(self.dtype) / 255.0 for t in GUIDANCE_TYPES]
            out.append(self.guidance_encoders(*per_type))
        return torch.cat(out).transpose(0, 1).unsqueeze(0)

    # -- output ------------------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, latents: torch.Tensor, batch: int | None = None) -> np.ndarray:
        """(1,4,F,h,w) -> (F,H,W,3) uint8: the VAE one frame at a time like upstream (its activations at
        512 px are large); a tiny decoder all frames in one call (small activations; per-call overhead
        is most of its cost at small sizes)."""
        frames = latents[0].transpose(0, 1)
        if batch is None:
            batch = 1 if self.tiny_decoder is None else frames.shape[0]
        images = [self.decoder(frames[i:i + batch]) for i in range(0, frames.shape[0], batch)]
        x = torch.cat(images).permute(0, 2, 3, 1).float().cpu().numpy()
        return (x * 255).astype(np.uint8)  # truncation, as upstream's save_videos_grid


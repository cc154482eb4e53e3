"""`mprt distill-decoder`: a tiny TAESD-layout decoder trained to reproduce a model's own VAE decoder.

Inputs are the VAE-encoder latents of the model's images (ground-truth frames and portraits of the
clips), jittered with a little Gaussian noise so the decoder also sees latents the UNet produces
rather than only encoder means; targets are what the VAE decoder makes of exactly those latents.
Loss: L1 + MSE on [0, 1] images. Afterwards both decoders are compared on held-out images (PSNR
against the VAE and against the images themselves, and time per frame on this machine).
"""
from __future__ import annotations

import dataclasses
import sys
import time

import numpy as np
import torch

from engine.networks.tiny_decoder import TinyDecoder


@dataclasses.dataclass(frozen=True)
class DecoderDistillConfig:
    steps: int = 8000            # 2000 followed v8's sharper VAE decoder 3.6 dB less closely
    batch: int = 16
    lr: float = 1e-3
    width: int = 16              # TAESD uses 64 for SD's VAE; the small model's VAE is ~10x cheaper than SD's
    latent_jitter: float = 0.1   # noise std, relative to the latents' std
    heldout: float = 0.1         # share of images kept out of training for the comparison
    seed: int = 0

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


@torch.no_grad()
def encode_images(model, images_u8: np.ndarray, batch: int = 16) -> torch.Tensor:
    """(N,H,W,3) uint8 -> (N,4,h,w) scaled latent means (the UNet's latent space), on the CPU."""
    out = []
    for i in range(0, len(images_u8), batch):
        x = torch.from_numpy(images_u8[i:i + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1
        out.append(model.vae_encoder(x.to(model.device, model.dtype)).float().cpu())
    return torch.cat(out)


def time_per_frame(net: torch.nn.Module, latents: torch.Tensor, repeats: int = 3) -> float:
    """Best-of-`repeats` seconds per frame decoding `latents` in one batch."""
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            net(latents)
            if latents.is_cuda:
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
    return best / len(latents)


class DecoderDistiller:
    def __init__(self, model, images_u8: np.ndarray, config: DecoderDistillConfig):
        self.model, self.config = model, config
        rng = np.random.default_rng(config.seed)
        order = rng.permutation(len(images_u8))
        n_held = max(1, int(round(len(images_u8) * config.heldout))) if len(images_u8) > 1 else 0
        self.heldout_images = images_u8[order[:n_held]]
        self.train_latents = encode_images(model, images_u8[order[n_held:]] if n_held else images_u8)
        self.heldout_latents = encode_images(model, self.heldout_images) if n_held else self.train_latents[:1]
        self.scale = float(self.train_latents.std())
        torch.manual_seed(config.seed)
        self.net = TinyDecoder(self.train_latents.shape[1], config.width).to(model.device).train()
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr)
        self.step = 0

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        c, m = self.config, self.model
        gen = torch.Generator().manual_seed(c.seed * 1_000_003 + step)
        idx = torch.randint(len(self.train_latents), (c.batch,), generator=gen)
        z = self.train_latents[idx]
        sigma = torch.rand(c.batch, 1, 1, 1, generator=gen) * c.latent_jitter * self.scale
        z = (z + sigma * torch.randn(z.shape, generator=gen)).to(m.device)
        with torch.no_grad():
            target = m.vae_decoder(z.to(m.dtype)).float()
        return z, target

    def train(self, progress: bool = True) -> list[float]:
        from tqdm import tqdm
        c, losses, smooth = self.config, [], None
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, c.steps)
        with tqdm(total=c.steps, desc="distill-decoder", unit="step", disable=not progress, file=sys.stderr) as bar:
            for step in range(c.steps):
                z, target = self.batch(step)
                out = torch.nn.Sequential.forward(self.net, z)  # unclamped: gradients everywhere
                loss = (out - target).abs().mean() + ((out - target) ** 2).mean()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                schedule.step()
                losses.append(float(loss.detach()))
                smooth = losses[-1] if smooth is None else 0.9 * smooth + 0.1 * losses[-1]
                bar.set_postfix(loss=f"{smooth:.4g}")
                bar.update(1)
        self.step = c.steps
        self.net.eval().requires_grad_(False)
        return losses

    @torch.no_grad()
    def compare(self) -> dict:
        """Tiny decoder vs the VAE decoder on the held-out images: quality and speed (same device)."""
        m = self.model
        z = self.heldout_latents.to(m.device, m.dtype)
        vae, tiny = m.vae_decoder(z).float(), self.net(z.float())
        truth = torch.from_numpy(self.heldout_images).permute(0, 3, 1, 2).float().to(m.device) / 255
        return {"heldout_images": len(z), "psnr_tiny_vs_vae_db": round(psnr(tiny, vae), 2),
                "psnr_vae_vs_images_db": round(psnr(vae, truth), 2),
                "psnr_tiny_vs_images_db": round(psnr(tiny, truth), 2),
                "vae_ms_per_frame": round(1000 * time_per_frame(m.vae_decoder, z), 3),
                "tiny_ms_per_frame": round(1000 * time_per_frame(self.net, z.float()), 3),
                "device": str(m.device), "threads": torch.get_num_threads()}

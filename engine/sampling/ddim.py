"""DDIM as upstream configures it (networks.md (d)): linear betas, zero-terminal-SNR rescale,
trailing spacing, v-prediction, eta 0, set_alpha_to_one. Timesteps may be given per frame.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch


@dataclasses.dataclass(frozen=True)
class DDIMConfig:
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012


def _zero_snr_betas(betas: torch.Tensor) -> torch.Tensor:
    """Rescale so that alpha_bar[T-1] = 0 exactly while alpha_bar[0] is kept (Lin et al. 2023)."""
    sqrt_ab = torch.cumprod(1.0 - betas, dim=0).sqrt()
    first, last = sqrt_ab[0].clone(), sqrt_ab[-1].clone()
    sqrt_ab = (sqrt_ab - last) * (first / (first - last))
    ab = sqrt_ab ** 2
    alphas = torch.cat([ab[0:1], ab[1:] / ab[:-1]])
    return 1.0 - alphas


class DDIMSchedule:
    def __init__(self, config: DDIMConfig = DDIMConfig()):
        self.config = config
        # float32 like the reference implementation, so schedules agree to the bit.
        betas = torch.linspace(config.beta_start, config.beta_end, config.num_train_timesteps, dtype=torch.float32)
        self.alphas_cumprod = torch.cumprod(1.0 - _zero_snr_betas(betas), dim=0)
        self.final_alpha_cumprod = torch.tensor(1.0)  # set_alpha_to_one

    def timesteps(self, num_steps: int) -> list[int]:
        """Trailing spacing: round(T - k*T/N) - 1, e.g. 999, 949, …, 49 for N = 20."""
        if not 1 <= num_steps <= self.config.num_train_timesteps:
            raise ValueError(f"num_steps must be in 1..{self.config.num_train_timesteps}, got {num_steps}")
        t = np.round(np.arange(self.config.num_train_timesteps, 0, -self.config.num_train_timesteps / num_steps))
        return [int(x) - 1 for x in t]

    def previous_timestep(self, t: torch.Tensor | int, num_steps: int):
        """diffusers' rule prev = t - T // N (not "the next scheduled t")."""
        return t - self.config.num_train_timesteps // num_steps

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        """alpha_bar at integer timesteps; t < 0 means 'after the last step' (= 1)."""
        t = torch.as_tensor(t)
        table = torch.cat([self.alphas_cumprod, self.final_alpha_cumprod.reshape(1)])
        return table[torch.where(t < 0, torch.full_like(t, len(self.alphas_cumprod)), t).long()]

    def step(self, v: torch.Tensor, t, x: torch.Tensor, t_prev) -> torch.Tensor:
        """One deterministic DDIM step for v-prediction. t / t_prev: scalars or per-frame (F,) tensors
        for latents laid out (B, C, F, h, w)."""
        a_t = self._per_frame(self.alpha_bar(t), x)
        a_prev = self._per_frame(self.alpha_bar(t_prev), x)
        x0 = a_t.sqrt() * x - (1 - a_t).sqrt() * v
        eps = a_t.sqrt() * v + (1 - a_t).sqrt() * x
        return a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps

    def predict_x0(self, v: torch.Tensor, t, x: torch.Tensor) -> torch.Tensor:
        a_t = self._per_frame(self.alpha_bar(t), x)
        return a_t.sqrt() * x - (1 - a_t).sqrt() * v

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t) -> torch.Tensor:
        a_t = self._per_frame(self.alpha_bar(t), x0)
        return a_t.sqrt() * x0 + (1 - a_t).sqrt() * noise

    @staticmethod
    def _per_frame(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        a = a.to(device=x.device, dtype=x.dtype)
        if a.ndim == 0:
            return a
        return a.reshape(1, 1, -1, 1, 1)  # (F,) over the frame axis of (B, C, F, h, w)

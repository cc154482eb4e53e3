"""DDIM as upstream configures it (networks.md (d)): linear betas, zero-terminal-SNR rescale,
trailing spacing, v-prediction, eta 0, set_alpha_to_one. Timesteps may be given per frame.

numpy only, so the torch-free runtime (TensorRT path) and the torch samplers share one schedule;
`step` works on numpy arrays and on torch tensors alike.
"""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class DDIMConfig:
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012


def _zero_snr_alphas_cumprod(config: DDIMConfig) -> np.ndarray:
    """alpha_bar after rescaling to zero terminal SNR (Lin et al. 2023): alpha_bar[T-1] = 0 exactly,
    alpha_bar[0] kept. Computed in float64, stored in float32 (within 5e-7 of diffusers' float32)."""
    betas = np.linspace(config.beta_start, config.beta_end, config.num_train_timesteps, dtype=np.float64)
    sqrt_ab = np.sqrt(np.cumprod(1.0 - betas))
    first, last = sqrt_ab[0], sqrt_ab[-1]
    sqrt_ab = (sqrt_ab - last) * (first / (first - last))
    ab = sqrt_ab ** 2
    alphas = np.concatenate([ab[:1], ab[1:] / ab[:-1]])
    return np.cumprod(alphas).astype(np.float32)


class DDIMSchedule:
    def __init__(self, config: DDIMConfig = DDIMConfig()):
        self.config = config
        self.alphas_cumprod = _zero_snr_alphas_cumprod(config)
        # One entry past the end: alpha_bar "after the last step" = 1 (set_alpha_to_one), for t < 0.
        self._table = np.concatenate([self.alphas_cumprod, np.ones(1, np.float32)])

    def timesteps(self, num_steps: int) -> list[int]:
        """Trailing spacing: round(T - k*T/N) - 1, e.g. 999, 949, …, 49 for N = 20."""
        n_train = self.config.num_train_timesteps
        if not 1 <= num_steps <= n_train:
            raise ValueError(f"num_steps must be in 1..{n_train}, got {num_steps}")
        return [int(x) - 1 for x in np.round(np.arange(n_train, 0, -n_train / num_steps))]

    def previous_timestep(self, t, num_steps: int):
        """diffusers' rule prev = t - T // N (not "the next scheduled t")."""
        return t - self.config.num_train_timesteps // num_steps

    def alpha_bar(self, t) -> np.ndarray:
        """alpha_bar at integer timesteps (scalar or array); t < 0 means 'after the last step' (= 1)."""
        t = np.asarray(t.cpu() if hasattr(t, "cpu") else t, dtype=np.int64)
        return self._table[np.where(t < 0, len(self.alphas_cumprod), t)]

    def step(self, v, t, x, t_prev):
        """One deterministic DDIM step for v-prediction on latents laid out (B, C, F, h, w) — numpy
        arrays or torch tensors. t / t_prev: scalars, or per-frame (F,) for one timestep per frame."""
        a_t, a_prev = self._coefficient(t, x), self._coefficient(t_prev, x)
        x0 = a_t ** 0.5 * x - (1 - a_t) ** 0.5 * v
        eps = a_t ** 0.5 * v + (1 - a_t) ** 0.5 * x
        return a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps

    def _coefficient(self, t, x):
        a = self.alpha_bar(t)
        a = a if a.ndim == 0 else a.reshape(1, 1, -1, 1, 1)  # (F,) over the frame axis
        if isinstance(x, np.ndarray):
            return a.astype(x.dtype)
        import torch  # only reached with torch tensors
        return torch.as_tensor(a, dtype=x.dtype, device=x.device)


SCHEDULER = DDIMSchedule

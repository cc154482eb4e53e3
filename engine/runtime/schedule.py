"""DDIM (v-prediction, zero-terminal-SNR, trailing; networks.md (d)) in numpy, so the streaming
runtime needs no torch (the TensorRT path). Twin of engine.sampling.ddim.DDIMSchedule; float32
throughout like it, checked against it in tests/test_runtime_schedule.py."""
from __future__ import annotations

import numpy as np

TRAIN_STEPS = 1000
BETA_START, BETA_END = 0.00085, 0.012


def _alphas_cumprod() -> np.ndarray:
    betas = np.linspace(BETA_START, BETA_END, TRAIN_STEPS, dtype=np.float64).astype(np.float32)
    sqrt_ab = np.sqrt(np.cumprod(1.0 - betas, dtype=np.float32))
    first, last = sqrt_ab[0], sqrt_ab[-1]
    sqrt_ab = (sqrt_ab - last) * (first / (first - last))  # Lin et al. 2023: alpha_bar[T-1] = 0
    ab = sqrt_ab ** 2
    alphas = np.concatenate([ab[:1], ab[1:] / ab[:-1]])
    return np.cumprod(alphas, dtype=np.float32)


class NumpyDDIM:
    def __init__(self):
        # Last entry: alpha_bar "after the final step" = 1 (set_alpha_to_one), indexed by t = -1.
        self.table = np.concatenate([_alphas_cumprod(), np.ones(1, np.float32)])

    @staticmethod
    def timesteps(num_steps: int) -> list[int]:
        """Trailing spacing: round(T - k*T/N) - 1."""
        if not 1 <= num_steps <= TRAIN_STEPS:
            raise ValueError(f"num_steps must be in 1..{TRAIN_STEPS}, got {num_steps}")
        return [int(x) - 1 for x in np.round(np.arange(TRAIN_STEPS, 0, -TRAIN_STEPS / num_steps))]

    @staticmethod
    def previous_timestep(t, num_steps: int):
        """diffusers' rule prev = t - T // N."""
        return np.asarray(t) - TRAIN_STEPS // num_steps

    def alpha_bar(self, t) -> np.ndarray:
        t = np.asarray(t, dtype=np.int64)
        return self.table[np.where(t < 0, TRAIN_STEPS, t)]

    def step(self, v: np.ndarray, t, x: np.ndarray, t_prev) -> np.ndarray:
        """x, v (B,C,F,h,w); t, t_prev: scalars or per-frame (F,)."""
        a_t, a_prev = self._per_frame(self.alpha_bar(t)), self._per_frame(self.alpha_bar(t_prev))
        x0 = np.sqrt(a_t) * x - np.sqrt(1 - a_t) * v
        eps = np.sqrt(a_t) * v + np.sqrt(1 - a_t) * x
        return (np.sqrt(a_prev) * x0 + np.sqrt(1 - a_prev) * eps).astype(np.float32, copy=False)

    @staticmethod
    def _per_frame(a: np.ndarray) -> np.ndarray:
        return a if a.ndim == 0 else a.reshape(1, 1, -1, 1, 1)

"""Consistency multistep scheduler (LCM-style) for a distilled student, on the teacher's schedule:
linear betas rescaled to zero terminal SNR, v-prediction, trailing timesteps (schedulers/ddim.py).
Selected with `scheduler="lcm"` (--scheduler lcm); the realtime preset takes it with a student.

The student is a consistency function f(x_t, t) -> x0 parameterised with LCM's boundary condition
(Luo et al. 2023, after Song et al. 2023):

    f(x, t) = c_skip(t) * x + c_out(t) * x0_hat,   x0_hat = sqrt(ab_t) x - sqrt(1 - ab_t) v
    c_skip(t) = s_d^2 / ((t k)^2 + s_d^2),  c_out(t) = t k / sqrt((t k)^2 + s_d^2),  s_d = 0.5, k = 10

so f(x, 0) = x exactly. Sampling with N in {1, 2, 4, ...} steps at the trailing timesteps: each step
predicts x0 = f(x_t, t), then moves to the next timestep t' = t - T // N:
  - `noise` given: x_t' = sqrt(ab_t') x0 + sqrt(1 - ab_t') noise   (LCM: fresh noise each step);
  - no noise: the noise estimate of this step is re-used (deterministic, TCD with gamma = 0), so a
    streaming sampler needs no extra random numbers and the same input gives the same frame.
After the last step (t' < 0, ab = 1) the result is x0 itself.

numpy only (the torch-free runtime uses it); `step` also takes torch tensors, like DDIMSchedule.step.
"""
from __future__ import annotations

import numpy as np

from engine.sampling.schedulers.ddim import DDIMSchedule

SIGMA_DATA = 0.5
TIMESTEP_SCALING = 10.0


def boundary_scalings(t) -> tuple[np.ndarray, np.ndarray]:
    """LCM's (c_skip, c_out) at integer timesteps t (scalar or array; t < 0 counts as 0)."""
    t = np.maximum(np.asarray(t.cpu() if hasattr(t, "cpu") else t, dtype=np.float64), 0.0) * TIMESTEP_SCALING
    c_skip = SIGMA_DATA ** 2 / (t ** 2 + SIGMA_DATA ** 2)
    c_out = t / np.sqrt(t ** 2 + SIGMA_DATA ** 2)
    return c_skip.astype(np.float32), c_out.astype(np.float32)


def consistency_x0(v, x, a_t, c_skip, c_out):
    """f(x, t) from the v-prediction, with ab_t, c_skip, c_out already broadcast to x (numpy or torch)."""
    return c_skip * x + c_out * (a_t ** 0.5 * x - (1 - a_t) ** 0.5 * v)


def renoise(x0, x, a_t, a_prev, noise=None):
    """x0 moved to the level ab_prev with `noise`, or with the noise x0 implies in x at ab_t."""
    if noise is None:
        rest = 1 - a_t
        rest = rest.clamp(min=1e-12) if hasattr(rest, "clamp") else np.maximum(rest, 1e-12)
        noise = (x - a_t ** 0.5 * x0) / rest ** 0.5  # at t = T-1 (ab = 0) this is x itself
    return a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * noise


class ConsistencySchedule(DDIMSchedule):
    """Same alphas, timesteps and `previous_timestep` rule as DDIM; `step` is the consistency step."""

    def denoise(self, v, t, x):
        """The consistency function's output f(x, t) for the model's v-prediction (numpy or torch)."""
        c_skip, c_out = (self._as(c, x) for c in boundary_scalings(t))
        return consistency_x0(v, x, self._coefficient(t, x), c_skip, c_out)

    def step(self, v, t, x, t_prev, noise=None):
        """One consistency step from t to t_prev (per-frame (F,) timesteps allowed, as DDIMSchedule.step)."""
        x0 = self.denoise(v, t, x)
        return renoise(x0, x, self._coefficient(t, x), self._coefficient(t_prev, x), noise)

    @staticmethod
    def _as(c: np.ndarray, x):
        c = c if c.ndim == 0 else c.reshape(1, 1, -1, 1, 1)
        if isinstance(x, np.ndarray):
            return c.astype(x.dtype)
        import torch
        return torch.as_tensor(c, dtype=x.dtype, device=x.device)


SCHEDULER = ConsistencySchedule

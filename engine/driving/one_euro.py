"""One-Euro filter (Casiez et al., CHI 2012) for live pose/expression parameters.

Off by default: upstream applies no temporal smoothing (guidance_maps.md §5), so offline output
stays upstream-equivalent unless the user asks for it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroConfig:
    min_cutoff_hz: float = 1.0  # cutoff at rest: lower = smoother, more lag
    beta: float = 0.05  # cutoff growth with speed: higher = less lag on fast motion
    derivative_cutoff_hz: float = 1.0


def _alpha(cutoff_hz: float, dt: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters a vector signal sample by sample; each component has its own adaptive cutoff."""

    def __init__(self, config: OneEuroConfig = OneEuroConfig()):
        self.config = config
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t_seconds: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or t_seconds <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t_seconds
            return x.copy()
        dt = t_seconds - self._t
        dx = (x - self._x) / dt
        a_d = _alpha(self.config.derivative_cutoff_hz, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        cutoff = self.config.min_cutoff_hz + self.config.beta * np.abs(self._dx)
        tau = 1.0 / (2.0 * np.pi * cutoff)
        a = 1.0 / (1.0 + tau / dt)
        self._x = a * x + (1 - a) * self._x
        self._t = t_seconds
        return self._x.copy()


def smooth_sequence(values: np.ndarray, fps: float, config: OneEuroConfig = OneEuroConfig()) -> np.ndarray:
    """Apply a fresh One-Euro filter along axis 0 of (F, D) values sampled at `fps`."""
    filt = OneEuroFilter(config)
    return np.stack([filt(v, i / fps) for i, v in enumerate(np.asarray(values, dtype=np.float64))]).astype(values.dtype)

"""The consistency-distillation objective (LCM / MCM) with CFG folded into the teacher's step, on
the runtime's conditions: one timestep per frame, windows cut from clips.

For a window of clean latents x0 and noise e, every frame f gets a teacher-grid index i_f (the
quality sampler's 20 trailing DDIM timesteps tau_0 = 999 > ... > tau_19 = 49):
    x_t     = sqrt(ab(tau)) x0 + sqrt(1 - ab(tau)) e                         (per frame)
    x_prev  = DDIM step of the teacher, CFG "with vs without reference" at scale w, tau -> tau - 50
    target  = f_ema(x_prev, tau - 50)       (= x_prev itself after the last step: c_skip(0) = 1)
    loss    = pseudo-Huber(f_student(x_t, tau) - target)  +  data_weight * mean((f_student(x_t, tau) - x0)^2)
where f is engine.sampling.schedulers.lcm's boundary-conditioned x0. The teacher is evaluated the way
it was trained and is sampled: the whole window at one noise level (one call per distinct level in
the window, frames of that level taken from it); student and EMA target see the window as the
runtime gives it — all frames at one level ("clip": clip and windowed modes), or stages of frames at
staggered levels ("stream": stream-batch mode, oldest frames least noisy).

The second term (`data_weight`; 0 turns it off, `mprt distill` uses 16) anchors the student to the
data: the consistency term alone only asks f to agree with itself along the teacher's trajectories,
and a finite run drifts from the teacher it started as; squared error to x0 pulls f towards
E[x0 | x_t], the estimate that maximises PSNR, which is what the teacher's own v-prediction training fits.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, ContextManager

import numpy as np
import torch

from engine.sampling.schedulers.lcm import boundary_scalings, consistency_x0
from engine.sampling.schedulers.ddim import DDIMSchedule

TIMESTEP_MODES = ("clip", "stream", "mixed")


@dataclasses.dataclass
class Window:
    x0: torch.Tensor                   # (1, 4, W, h, w)
    guidance: torch.Tensor             # (1, C0, W, h, w)
    ref_features: list[torch.Tensor]   # 16 x (1, L, C)
    step_index: np.ndarray             # (W,) teacher-grid index per frame
    noise: torch.Tensor                # (1, 4, W, h, w)

    def to(self, device) -> "Window":
        return Window(self.x0.to(device), self.guidance.to(device), [f.to(device) for f in self.ref_features],
                      self.step_index, self.noise.to(device))


def step_indices(rng: np.random.Generator, frames: int, mode: str, grid: int, stream_steps=(2, 4)) -> np.ndarray:
    """Teacher-grid index per frame. stream: K stages (K from `stream_steps`), stage j of K (oldest first)
    at (K-1-j) * grid/K + r with one shared offset r — r = 0 is exactly the K-step student's grid."""
    if mode == "mixed":
        mode = "clip" if rng.random() < 0.5 else "stream"
    if mode == "clip":
        return np.full(frames, rng.integers(grid))
    k = int(rng.choice([s for s in stream_steps if s <= frames] or [1]))
    stride = grid // k
    r = rng.integers(stride)
    out = np.empty(frames, np.int64)
    for j, stage in enumerate(np.array_split(np.arange(frames), k)):
        out[stage] = (k - 1 - j) * stride + r
    return out


def pseudo_huber(diff: torch.Tensor, c: float) -> torch.Tensor:
    return (torch.sqrt(diff.float() ** 2 + c * c) - c).mean()


# A denoiser call: (x (B,4,W,h,w), t (B,W) long, guidance, ref_features, use_reference (B,) bool) -> v
Denoise = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, list, torch.Tensor], torch.Tensor]


@dataclasses.dataclass
class Objective:
    student: Denoise                              # the trained network
    teacher: Denoise                              # frozen (adapters off / a frozen copy)
    ema_target: Callable[[], ContextManager]      # context in which `student` runs with the EMA weights
    guidance_scale: float = 3.5
    teacher_steps: int = 20
    huber_c: float = 1e-3
    data_weight: float = 0.0                      # weight of the squared error to x0 (0: pure distillation)
    schedule: DDIMSchedule = dataclasses.field(default_factory=DDIMSchedule)

    def __post_init__(self):
        self.grid = np.array(self.schedule.timesteps(self.teacher_steps))
        self.terms: dict[str, float] = {}         # the last loss's parts, for progress display

    def _alpha(self, t: np.ndarray, like: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.schedule.alpha_bar(t), dtype=like.dtype, device=like.device).reshape(1, 1, -1, 1, 1)

    def _scalings(self, t: np.ndarray, like: torch.Tensor):
        return [torch.as_tensor(c, dtype=like.dtype, device=like.device).reshape(1, 1, -1, 1, 1)
                for c in boundary_scalings(t)]

    def _timesteps(self, t: np.ndarray, like: torch.Tensor, rows: int = 1) -> torch.Tensor:
        return torch.as_tensor(np.maximum(t, 0), device=like.device).reshape(1, -1).expand(rows, -1)

    @torch.no_grad()
    def teacher_step(self, w: Window) -> torch.Tensor:
        """x_prev per frame: one CFG teacher call per distinct level, the whole window at that level."""
        tau = self.grid[w.step_index]
        x_prev = torch.empty_like(w.x0)
        cfg = self.guidance_scale > 1.0
        keep = torch.tensor([False, True] if cfg else [True], device=w.x0.device)
        for level in np.unique(tau):
            a = float(self.schedule.alpha_bar(level))
            x = a ** 0.5 * w.x0 + (1 - a) ** 0.5 * w.noise
            rows = len(keep)
            t = self._timesteps(np.full(len(tau), level), x, rows)
            v = self.teacher(x.expand(rows, -1, -1, -1, -1), t, w.guidance, w.ref_features, keep).float()
            if cfg:
                v = v[0:1] + self.guidance_scale * (v[1:2] - v[0:1])
            step = self.schedule.step(v, int(level), x.float(), int(self.schedule.previous_timestep(level, self.teacher_steps)))
            sel = torch.as_tensor(tau == level, device=x.device)
            x_prev[:, :, sel] = step[:, :, sel].to(x_prev.dtype)
        return x_prev

    def loss(self, w: Window) -> torch.Tensor:
        tau = self.grid[w.step_index]
        tau_prev = self.schedule.previous_timestep(tau, self.teacher_steps)
        keep = torch.tensor([True], device=w.x0.device)
        a_t = self._alpha(tau, w.x0)
        x_t = a_t ** 0.5 * w.x0 + (1 - a_t) ** 0.5 * w.noise
        x_prev = self.teacher_step(w)
        with torch.no_grad(), self.ema_target():
            v_ema = self.student(x_prev, self._timesteps(tau_prev, x_prev), w.guidance, w.ref_features, keep).float()
            target = consistency_x0(v_ema, x_prev, self._alpha(tau_prev, x_prev), *self._scalings(tau_prev, x_prev))
        v = self.student(x_t, self._timesteps(tau, x_t), w.guidance, w.ref_features, keep).float()
        pred = consistency_x0(v, x_t, a_t, *self._scalings(tau, x_t))
        loss = pseudo_huber(pred - target, self.huber_c)
        self.terms = {"consistency": float(loss.detach())}
        if self.data_weight:
            data = ((pred - w.x0.float()) ** 2).mean()
            self.terms["data"] = float(data.detach())
            loss = loss + self.data_weight * data
        return loss

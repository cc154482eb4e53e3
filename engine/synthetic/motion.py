"""Synthetic motions: smooth random trajectories of head pose, jaw, expression and framing.

Ranges are wide enough that copying the reference is wrong: yaw up to ±45°, pitch ±20°, roll
±10°, the jaw from shut to open, the named expression fields of the synthetic rig, and the head's
scale and place in the frame (DECA camera s, tx, ty) drifting within the clip.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from engine.guidance.demo_motion import DEMO_CAM, DEMO_CROP, demo_flame_params

YAW, PITCH, ROLL, JAW = np.radians(45), np.radians(20), np.radians(10), 0.32
NAMED_EXPRESSIONS = 10  # columns of the synthetic rig with a named, region-based field


@dataclasses.dataclass(frozen=True)
class Motion:
    seed: int
    pose: np.ndarray  # (F, 6) global axis-angle | jaw axis-angle
    exp: np.ndarray  # (F, 50)
    cam: np.ndarray  # (F, 3) DECA camera (s, tx, ty) per frame
    crop: np.ndarray  # (3,) crop (x0, y0, size) in source-512 pixels

    @property
    def num_frames(self) -> int:
        return int(self.pose.shape[0])

    def frame(self, i: int) -> "Motion":
        return Motion(self.seed, self.pose[i:i + 1], self.exp[i:i + 1], self.cam[i:i + 1], self.crop)


def smooth_curve(rng, frames: int, amplitude: float, speed: float = 1.0) -> np.ndarray:
    """A random smooth curve in [-amplitude, amplitude]: three random sinusoids, normalised."""
    t = np.arange(frames, dtype=np.float64) / 24.0  # seconds at 24 fps
    out = np.zeros(frames)
    for k in range(3):
        freq = rng.uniform(0.15, 0.6) * speed * (k + 1) ** 0.5
        out += rng.normal() / (k + 1) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    peak = np.abs(out).max()
    # Scale to a random share of the full range, so some clips use all of it.
    return out / max(peak, 1e-9) * amplitude * rng.uniform(0.5, 1.0)


def make_motion(seed: int, frames: int) -> Motion:
    rng = np.random.default_rng([11, seed])
    pose = np.zeros((frames, 6))
    yaw_centre = rng.uniform(-0.4, 0.4) * YAW
    pose[:, 1] = np.clip(yaw_centre + smooth_curve(rng, frames, YAW), -YAW, YAW)
    pose[:, 0] = smooth_curve(rng, frames, PITCH)
    pose[:, 2] = smooth_curve(rng, frames, ROLL)
    pose[:, 3] = np.clip(JAW * (0.5 + smooth_curve(rng, frames, 0.8)), 0, JAW)
    exp = np.zeros((frames, 50))
    for col in range(1, NAMED_EXPRESSIONS):
        if rng.random() < 0.5:
            exp[:, col] = np.clip(smooth_curve(rng, frames, 1.6), 0, None)
    cam = np.zeros((frames, 3))
    cam[:, 0] = rng.uniform(7.0, 10.5) * (1 + smooth_curve(rng, frames, 0.08, 0.5))
    cam[:, 1] = rng.uniform(-0.045, 0.045) + smooth_curve(rng, frames, 0.02, 0.5)
    cam[:, 2] = rng.uniform(-0.035, 0.04) + smooth_curve(rng, frames, 0.02, 0.5)
    return Motion(seed, pose.astype(np.float32), exp.astype(np.float32), cam.astype(np.float32),
                  np.array(DEMO_CROP, np.float32))


def demo_motion(frames: int) -> Motion:
    """The built-in demo motion (turn, nod, jaw, smile) as a Motion at the demo framing."""
    params = demo_flame_params(frames)
    cam = np.tile(np.array(DEMO_CAM, np.float32), (frames, 1))
    return Motion(-1, params.pose, params.exp, cam, params.crop)


def reference_pose(rng) -> Motion:
    """One frame in a moderate pose with a light expression: the identity's reference image."""
    pose = np.zeros((1, 6), np.float32)
    pose[0, 1] = rng.uniform(-0.6, 0.6) * YAW
    pose[0, 0] = rng.uniform(-0.4, 0.4) * PITCH
    pose[0, 3] = rng.uniform(0, 0.3) * JAW
    exp = np.zeros((1, 50), np.float32)
    exp[0, 1] = rng.uniform(0, 1.0)  # a smile or not
    cam = np.array([[rng.uniform(7.5, 10.0), rng.uniform(-0.03, 0.03), rng.uniform(-0.02, 0.03)]],
                   np.float32)
    return Motion(-2, pose, exp, cam, np.array(DEMO_CROP, np.float32))

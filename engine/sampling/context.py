"""Upstream's context windows (networks.md (d), Context windows): uniform schedule, stride 1,
windows of `size` frames starting every size - overlap frames, wrapping around modulo F."""
from __future__ import annotations


def context_windows(num_frames: int, size: int = 12, overlap: int = 1) -> list[list[int]]:
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must be in 0..{size - 1}, got {overlap}")
    if num_frames <= size:
        return [list(range(num_frames))]
    step = size - overlap
    return [[(start + j) % num_frames for j in range(size)] for start in range(0, num_frames, step)]

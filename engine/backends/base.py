"""The small interface every inference backend implements (torch, ONNX Runtime, TensorRT).

Latents and predictions cross it as float32 numpy arrays (the runtime's DDIM math is numpy, so a
backend may be torch-free); identity and guidance features stay opaque handles owned by the backend
(device memory), computed once per identity / once per frame. No torch import here.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, Sequence

import numpy as np

# Pre/post-processing is engine/preprocess.py; these names are part of the backends' interface too.
from engine.preprocess import (GUIDANCE_TYPES, check_maps, image_to_u8, maps_to_float,  # noqa: F401
                               read_text_embedding, reference_image)


@dataclasses.dataclass(frozen=True)
class BackendInfo:
    name: str               # "torch", "onnxruntime", "tensorrt"
    device: str             # e.g. "cpu", "cuda:0", "CPUExecutionProvider"
    precision: str          # "float32" / "float16"
    latent_channels: int = 4
    scale_factor: int = 8   # image pixels per latent pixel
    max_frames: int = 32    # longest window the denoiser accepts
    concurrent_calls: bool = False  # decode may run on another thread during denoise (not on one CUDA stream)
    image_size: int = 512   # the square output size the model / graphs were made for
    denoiser: str = "teacher"  # or the distilled student's description (engine.weights.student)
    decoder: str = "vae"       # or the tiny decoder's ("taesd:DIR (width N)")
    guidance_scale: float = 3.5  # the CFG scale the model was made for (its magicportrait.json; upstream 3.5)


class Backend(abc.ABC):
    """One loaded model on one device. Handles returned here are only valid for this backend."""

    info: BackendInfo

    @abc.abstractmethod
    def encode_reference(self, image_rgb_u8: np.ndarray, size: tuple[int, int]) -> Any:
        """Portrait (H,W,3) uint8 -> identity handle (the reference self-attention K/V), once per identity."""

    @abc.abstractmethod
    def encode_guidance(self, maps_u8: dict[str, np.ndarray]) -> list[Any]:
        """{depth, normal, render}: (F,H,W,3) uint8 at the output size -> F per-frame feature handles."""

    @abc.abstractmethod
    def denoise(self, sample: np.ndarray, timesteps: np.ndarray, guidance: Sequence[Any], identity: Any,
                use_reference: np.ndarray) -> np.ndarray:
        """sample (B,4,F,h,w) float32; timesteps (B,F) int (one per frame); guidance: F handles; use_reference
        (B,) bool (False = CFG's unconditional row, run without reference). Returns v (B,4,F,h,w) float32."""

    def denoise_batch(self, sample: np.ndarray, timesteps: np.ndarray, guidance: Sequence[Sequence[Any]],
                      identities: Sequence[Any], use_reference: np.ndarray) -> np.ndarray:
        """Several streams in one call: sample (S,4,F,h,w), timesteps (S,F), guidance[s] the F handles of
        sample s, identities[s] its identity handle, use_reference (S,). Returns v (S,4,F,h,w).
        Sample s must get what `denoise` gives it alone. This default runs them one by one; backends whose
        networks take per-sample guidance and reference K/V override it with one call."""
        return np.concatenate([self.denoise(sample[s:s + 1], timesteps[s:s + 1], guidance[s], identities[s],
                                            use_reference[s:s + 1]) for s in range(len(sample))])

    @abc.abstractmethod
    def decode(self, latents: np.ndarray) -> np.ndarray:
        """latents (F,4,h,w) float32 -> (F,H,W,3) uint8 (truncated like upstream's save_videos_grid)."""

    def synchronize(self) -> None:
        """Wait for queued device work (so stage timings are real). CPU backends: nothing to do."""

    def close(self) -> None:
        """Release device resources."""

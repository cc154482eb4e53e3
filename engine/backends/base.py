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

GUIDANCE_TYPES = ("depth", "normal", "render")  # summed in this order (networks.md (c))


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

    @abc.abstractmethod
    def decode(self, latents: np.ndarray) -> np.ndarray:
        """latents (F,4,h,w) float32 -> (F,H,W,3) uint8 (truncated like upstream's save_videos_grid)."""

    def synchronize(self) -> None:
        """Wait for queued device work (so stage timings are real). CPU backends: nothing to do."""

    def close(self) -> None:
        """Release device resources."""


def check_maps(maps_u8: dict[str, np.ndarray], scale_factor: int) -> int:
    """Validate per-type (F,H,W,3) uint8 maps of one shape; returns F."""
    from engine.errors import InputError
    missing = [t for t in GUIDANCE_TYPES if t not in maps_u8]
    if missing:
        raise InputError(f"guidance maps: missing type(s) {missing}; expected {list(GUIDANCE_TYPES)}")
    first = maps_u8[GUIDANCE_TYPES[0]].shape
    for t in GUIDANCE_TYPES:
        m = maps_u8[t]
        if m.ndim != 4 or m.shape[3] != 3 or m.shape != first or m.dtype != np.uint8:
            raise InputError(f"guidance maps: every type must be (F,H,W,3) uint8 of one shape; "
                             f"got {t} {m.shape} {m.dtype}")
    if first[1] % scale_factor or first[2] % scale_factor:
        raise InputError(f"guidance maps: size {first[2]}x{first[1]} must be a multiple of {scale_factor}")
    return first[0]


# -- numpy pre/post-processing shared by the graph backends (ONNX Runtime, TensorRT) ---------------
def reference_image(image_rgb_u8: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Upstream's VaeImageProcessor: Lanczos resize to (W,H), [0,255] -> [-1,1]; -> (1,3,H,W) float32."""
    from PIL import Image

    from engine.errors import InputError
    if image_rgb_u8.ndim != 3 or image_rgb_u8.shape[2] != 3 or image_rgb_u8.dtype != np.uint8:
        raise InputError(f"reference image: expected (H,W,3) uint8 RGB, got {image_rgb_u8.shape} {image_rgb_u8.dtype}")
    img = np.asarray(Image.fromarray(image_rgb_u8).resize(size, Image.LANCZOS), dtype=np.float32)
    return (img / 255.0 * 2 - 1).transpose(2, 0, 1)[None].astype(np.float32)


def maps_to_float(maps_u8: dict[str, np.ndarray], dtype) -> dict[str, np.ndarray]:
    """(F,H,W,3) uint8 -> (F,3,H,W) in [0,1], the guidance encoder's input."""
    return {t: (maps_u8[t].transpose(0, 3, 1, 2).astype(np.float32) / 255.0).astype(dtype) for t in GUIDANCE_TYPES}


def image_to_u8(image: np.ndarray) -> np.ndarray:
    """VAE decoder output (F,3,H,W) in [0,1] -> (F,H,W,3) uint8, truncating like upstream."""
    return (np.clip(image.astype(np.float32), 0, 1).transpose(0, 2, 3, 1) * 255).astype(np.uint8)


TEXT_EMBEDDING_FILE = "text_embedding.safetensors"  # beside the weights (engine.networks.text_embedding)


def read_text_embedding(weights_dir) -> np.ndarray:
    """The cached (1,77,D) text embedding of a weights folder, without torch (safetensors.numpy)."""
    import pathlib

    from safetensors.numpy import load_file

    from engine.errors import CheckpointError
    path = pathlib.Path(weights_dir) / TEXT_EMBEDDING_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: not found; the graph backends read the text embedding from the weights "
                              "folder (run the torch backend once with --weights to create it)")
    emb = load_file(str(path)).get("text_embedding")
    if emb is None or emb.ndim != 3:
        raise CheckpointError(f"{path}: expected a tensor 'text_embedding' of shape (1, 77, D)")
    return emb.astype(np.float32)

"""The numpy side of the model's inputs and outputs, shared by the torch model and every backend
(torch-free): guidance map types and checks, the reference image, map and image conversions, and
the cached text embedding.
"""
from __future__ import annotations

import pathlib

import numpy as np

from engine.errors import CheckpointError, InputError

GUIDANCE_TYPES = ("depth", "normal", "render")  # the guidance encoders' summation order (networks.md (c))
TEXT_EMBEDDING_FILE = "text_embedding.safetensors"  # the fixed prompt's CLIP embedding, beside the weights
TEXT_EMBEDDING_KEY = "text_embedding"


def check_maps(maps_u8: dict[str, np.ndarray], scale_factor: int) -> int:
    """Validate per-type (F,H,W,3) uint8 maps of one shape, H and W multiples of scale_factor; returns F."""
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


def reference_image(image_rgb_u8: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Upstream's VaeImageProcessor: Lanczos resize to (W,H), [0,255] -> [-1,1]; -> (1,3,H,W) float32."""
    from PIL import Image
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


def read_text_embedding(path) -> np.ndarray:
    """The cached (1,77,D) text embedding: a .safetensors file, or a weights folder holding one."""
    from safetensors.numpy import load_file
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / TEXT_EMBEDDING_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: not found; the graph backends read the text embedding from the weights "
                              "folder (run the torch backend once with --weights to create it)")
    try:
        emb = load_file(str(path)).get(TEXT_EMBEDDING_KEY)
    except Exception as err:
        raise CheckpointError(f"{path}: cannot read the cached text embedding ({err})") from None
    if emb is None or emb.ndim != 3:
        raise CheckpointError(f"{path}: expected a tensor '{TEXT_EMBEDDING_KEY}' of shape (1, 77, D)")
    return emb.astype(np.float32)

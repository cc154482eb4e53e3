"""What the guidance kernel writes: the output spec (dtype, quantised or raw, depth channels) and
the maps it returns. Default layouts follow the raster-input contract (GuidanceMaps) for raw
output and the guidance encoders' input (per-frame NCHW, 3 channels each, q(x)/255) otherwise."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import InputError
from engine.guidance.raster_inputs import GuidanceMaps

_DTYPES = {np.dtype(np.float32): False, np.dtype(np.float16): True}


@dataclass(frozen=True)
class KernelOutputSpec:
    """dtype float32|float16; quantize: q(x) = floor(clamp(x*255+0.5, 0, 255))/255 (spec §4.6)
    on depth/normal/render; depth_channels 1 (raw) or 3 (replicated like upstream's saved
    images); with_validation adds pix_to_face (B,H,W) int32 and bary (B,H,W,3) float32."""

    dtype: np.dtype = np.dtype(np.float32)
    quantize: bool = True
    depth_channels: int = 3
    with_alpha: bool = True
    with_validation: bool = False

    def __post_init__(self) -> None:
        dtype = np.dtype(self.dtype)
        if dtype not in _DTYPES:
            raise InputError(f"out_dtype: expected float32 or float16, got {dtype}")
        object.__setattr__(self, "dtype", dtype)
        if self.depth_channels not in (1, 3):
            raise InputError(f"depth_channels: expected 1 or 3, got {self.depth_channels}")

    @property
    def half(self) -> bool:
        return _DTYPES[self.dtype]

    @classmethod
    def make(cls, out_dtype=np.float32, quantize: bool = True, depth_channels: int | None = None,
             with_validation: bool = False) -> "KernelOutputSpec":
        """Encoder layout when quantised (depth x3), contract layout when raw (depth x1)."""
        if depth_channels is None:
            depth_channels = 3 if quantize else 1
        return cls(np.dtype(out_dtype), bool(quantize), depth_channels, True, with_validation)

    def shapes(self, batch: int, height: int, width: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Shape and dtype of every buffer the kernel writes, by target name."""
        maps = {
            "depth": ((batch, self.depth_channels, height, width), self.dtype),
            "normal": ((batch, 3, height, width), self.dtype),
            "render": ((batch, 3, height, width), self.dtype),
        }
        if self.with_alpha:
            maps["alpha"] = ((batch, 1, height, width), self.dtype)
        if self.with_validation:
            maps["pix_to_face"] = ((batch, height, width), np.dtype(np.int32))
            maps["bary"] = ((batch, height, width, 3), np.dtype(np.float32))
        return maps


@dataclass(frozen=True)
class KernelMaps:
    """Kernel output on the host (numpy); alpha / pix_to_face / bary are None when not requested."""

    depth: np.ndarray
    normal: np.ndarray
    render: np.ndarray
    alpha: np.ndarray | None = None
    pix_to_face: np.ndarray | None = None
    bary: np.ndarray | None = None

    def to_guidance_maps(self) -> GuidanceMaps:
        """As the reference renderer's GuidanceMaps (needs a raw float32 run with validation)."""
        if self.pix_to_face is None or self.bary is None or self.alpha is None:
            raise InputError("to_guidance_maps: render with with_validation=True to get pix_to_face/bary")
        return GuidanceMaps(
            depth=self.depth[:, :1].astype(np.float32),
            normal=self.normal.astype(np.float32),
            render=self.render.astype(np.float32),
            alpha=self.alpha.astype(np.float32),
            pix_to_face=self.pix_to_face,
            bary=self.bary,
        )


def allocate_host_maps(spec: KernelOutputSpec, batch: int, height: int, width: int) -> dict[str, np.ndarray]:
    return {
        name: np.empty(shape, dtype=dtype)
        for name, (shape, dtype) in spec.shapes(batch, height, width).items()
    }

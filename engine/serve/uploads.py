"""Portrait uploads: size and decoded-pixel limits, the type sniffed from the bytes (never the name
or the declared content type), then the same conversion as every image the engine reads from disk
(EXIF orientation, 16-bit samples, transparency: engine.io.images), no larger than needed."""
from __future__ import annotations

import dataclasses
import io

import numpy as np

from engine.errors import InputError
from engine.io.images import MIN_SIDE, WHITE, to_rgb_u8

# Leading bytes of the formats accepted (all PIL reads natively, none runs code or fetches URLs).
SIGNATURES = {"JPEG": (b"\xff\xd8\xff",), "PNG": (b"\x89PNG\r\n\x1a\n",)}


@dataclasses.dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = 8 << 20       # 8 MiB
    max_pixels: int = 24_000_000   # decoded width x height (checked from the header, before decoding)
    max_side: int = 1024           # larger portraits are scaled down (the networks use 512 at most)


class UploadError(InputError):
    """A refused upload; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def sniff(data: bytes) -> str | None:
    """'JPEG', 'PNG', 'WEBP' from the leading bytes, else None."""
    for name, heads in SIGNATURES.items():
        if any(data.startswith(h) for h in heads):
            return name
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def decode_portrait(data: bytes, limits: UploadLimits = UploadLimits()) -> np.ndarray:
    """Upload bytes -> (H,W,3) uint8 RGB, upright. Raises UploadError (413 / 415 / 400)."""
    from PIL import Image, ImageOps, UnidentifiedImageError
    if len(data) > limits.max_bytes:
        raise UploadError(f"portrait upload: {len(data) / 2**20:.1f} MiB is over the "
                          f"{limits.max_bytes / 2**20:.0f} MiB limit", 413)
    kind = sniff(data)
    if kind is None:
        raise UploadError("portrait upload: not a JPEG, PNG or WebP image (judged by its content, "
                          "not its name)", 415)
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as img:
            w, h = img.size
            if w * h > limits.max_pixels:
                raise UploadError(f"portrait upload: {w}x{h} pixels is over the {limits.max_pixels:,} pixel limit",
                                  413)
            if min(w, h) < MIN_SIDE:
                raise UploadError(f"portrait upload: {w}x{h} is too small (at least {MIN_SIDE}x{MIN_SIDE})", 400)
            img.draft("RGB", (limits.max_side, limits.max_side))  # JPEG: decode at a reduced scale when large
            upright = ImageOps.exif_transpose(img)  # EXIF orientation: as the camera held it
            rgb = Image.fromarray(to_rgb_u8(upright, WHITE, "portrait upload"))  # as from disk (bounded: max_pixels)
            rgb.thumbnail((limits.max_side, limits.max_side), Image.LANCZOS)  # no-op when small enough
            return np.asarray(rgb, dtype=np.uint8).copy()
    except UploadError:
        raise
    except InputError as err:  # a sample format the converter refuses
        raise UploadError(str(err), 400) from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise UploadError(f"portrait upload: a {kind} header but not a readable image ({err})", 400) from None

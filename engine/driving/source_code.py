"""Source-side parameters (computed once per source image, guidance_maps.md §1.7 and §8):
DECA shape/tex/light/cam and the crop of the source resized to 512x512. Cached to a small .npz
keyed on the image bytes and the encoder identity."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, fields

import numpy as np
import torch

from engine.driving.crops import deca_crop, resize_for_deca
from engine.driving.deca_encoder import split_deca_params
from engine.driving.encoder_weights import EncoderPair
from engine.driving.face_tracker import FaceTracker
from engine.errors import InputError
from engine.io.atomic import atomic_file

CACHE_FORMAT_VERSION = "1"


@dataclass(frozen=True)
class SourceCode:
    shape: np.ndarray  # (100,)
    tex: np.ndarray  # (50,)
    light: np.ndarray  # (9, 3) SH band x RGB
    cam: np.ndarray  # (3,) = (s, tx, ty)
    crop: np.ndarray  # (3,) = (x0, y0, size) in source-512 pixels


def encode_source_image(image_rgb_u8: np.ndarray, tracker: FaceTracker, encoders: EncoderPair,
                        name: str = "source image") -> SourceCode:
    """MediaPipe landmarks (68-point subset) -> DECA crop of the 512 image -> E_flame (§1.2, §1.3)."""
    track = tracker.track(image_rgb_u8)
    if track is None:
        raise InputError(f"no face found in {name}; the source portrait must show a face")
    image512 = resize_for_deca(image_rgb_u8)
    crop = torch.from_numpy(deca_crop(image512, track.deca_box))[None]
    with torch.inference_mode():
        code = split_deca_params(encoders.deca(crop).double())
    box = track.deca_box
    return SourceCode(
        shape=code["shape"][0].numpy(), tex=code["tex"][0].numpy(), light=code["light"][0].numpy(),
        cam=code["cam"][0].numpy(), crop=np.array([box.x0, box.y0, float(box.size)]),
    )


def source_cache_key(image_path: str, encoders: EncoderPair, tracker_model: str) -> str:
    digest = hashlib.sha256()
    with open(image_path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    digest.update(f"|{encoders.identity}|{os.path.basename(tracker_model)}|v{CACHE_FORMAT_VERSION}".encode())
    return digest.hexdigest()[:32]


def load_cached_source(cache_dir: str, key: str) -> SourceCode | None:
    path = os.path.join(cache_dir, f"source-{key}.npz")
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path) as data:
            return SourceCode(**{f.name: data[f.name] for f in fields(SourceCode)})
    except (OSError, KeyError, ValueError):
        return None  # unreadable cache entry: recompute and overwrite it


def save_cached_source(cache_dir: str, key: str, code: SourceCode) -> str:
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, f"source-{key}.npz")
    with atomic_file(path) as f:
        np.savez(f, **{fl.name: getattr(code, fl.name) for fl in fields(SourceCode)})
    return path

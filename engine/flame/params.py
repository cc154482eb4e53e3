"""FLAME parameters file (.npz) for a driven sequence: what `mprt render-guidance` reads.

Per source (constant over the video; spec guidance_maps.md §1.7):
  shape (100,)  identity coefficients        tex (50,)  texture-space coefficients
  light (9, 3)  SH light [band, rgb]         cam (3,)   DECA orthographic camera (s, tx, ty)
  crop (3,)     (x0, y0, size): the source's square crop in source-512 pixels (k = 223/size)
Per frame (F frames):
  exp (F, 50)   expression coefficients      pose (F, 6) [global axis-angle | jaw axis-angle]
Optional: valid (F,) bool (False where the tracker found no face; the frame still holds usable
parameters, e.g. carried over), model: a string naming the head model the parameters are for.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np

from engine.errors import InputError
from engine.io.atomic import atomic_file
from engine.io.npz import load_npz

SOURCE_SHAPES = {"shape": (100,), "tex": (50,), "light": (9, 3), "cam": (3,), "crop": (3,)}
FRAME_WIDTHS = {"exp": 50, "pose": 6}


@dataclass(frozen=True)
class FlameParams:
    shape: np.ndarray
    tex: np.ndarray
    light: np.ndarray
    cam: np.ndarray
    crop: np.ndarray
    exp: np.ndarray
    pose: np.ndarray
    valid: np.ndarray | None = None
    model: str | None = None

    @property
    def num_frames(self) -> int:
        return int(self.exp.shape[0])

    def validate(self, source: str = "FlameParams") -> None:
        """Raise InputError naming `source` and the offending key."""
        for key, shape in SOURCE_SHAPES.items():
            _check(source, key, getattr(self, key), shape)
        n = np.shape(self.exp)[0] if np.ndim(self.exp) == 2 else None
        for key, width in FRAME_WIDTHS.items():
            _check(source, key, getattr(self, key), (n if n is not None else "F", width))
        if n == 0:
            raise InputError(f"{source}: exp/pose hold no frames (F = 0)")
        if self.valid is not None:
            _check(source, "valid", self.valid, (n,))
        if float(np.asarray(self.crop)[2]) <= 0:
            raise InputError(f"{source}: crop size (crop[2]) must be > 0, got {self.crop[2]}")
        if float(np.asarray(self.cam)[0]) <= 0:  # scale 0 projects the head to a point: empty maps
            raise InputError(f"{source}: camera scale (cam[0]) must be > 0, got {self.cam[0]}")

    @classmethod
    def load(cls, path) -> "FlameParams":
        path = pathlib.Path(path)
        arrays = load_npz(path, "FLAME params file")
        missing = [k for k in (*SOURCE_SHAPES, *FRAME_WIDTHS) if k not in arrays]
        if missing:
            raise InputError(f"{path}: missing key(s) {missing}; expected shape, tex, light, cam, "
                             "crop, exp, pose (see `mprt render-guidance --help`)")
        try:
            fields = {k: arrays[k].astype(np.float32) for k in (*SOURCE_SHAPES, *FRAME_WIDTHS)}
        except (ValueError, TypeError) as err:
            raise InputError(f"{path}: a parameter is not numeric ({err})") from None
        valid = arrays["valid"].astype(bool) if "valid" in arrays else None
        model = str(arrays["model"]) if "model" in arrays else None
        params = cls(**fields, valid=valid, model=model)
        params.validate(str(path))
        return params

    def save(self, path, overwrite: bool = False) -> None:
        """Write the .npz whole or not at all; refuses to replace a file unless overwrite."""
        path = pathlib.Path(path)
        self.validate(str(path))
        if path.exists() and not overwrite:
            raise InputError(f"{path} exists; pass --overwrite to replace it")
        arrays = {k: np.asarray(getattr(self, k), np.float32) for k in (*SOURCE_SHAPES, *FRAME_WIDTHS)}
        if self.valid is not None:
            arrays["valid"] = np.asarray(self.valid, bool)
        if self.model is not None:
            arrays["model"] = np.array(self.model)
        with atomic_file(path, overwrite=overwrite) as fh:
            np.savez(fh, **arrays)

    def frames(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        return self.exp[start:stop], self.pose[start:stop]


def _check(source: str, key: str, value, shape) -> None:
    actual = np.shape(value)
    ok = len(actual) == len(shape) and all(s == "F" or a == s for a, s in zip(actual, shape))
    if not ok:
        raise InputError(f"{source}: '{key}' has shape {actual}, expected {shape}")
    if np.asarray(value).dtype != bool and not np.all(np.isfinite(np.asarray(value, np.float64))):
        raise InputError(f"{source}: '{key}' contains NaN or infinite values")

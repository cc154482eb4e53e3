"""Training clips for distillation: a small protocol and a folder reader.

A clip is anything with
    .name       str (optional)
    .reference  (H, W, 3) uint8   the portrait
    .maps       {'depth','normal','render'}: (F, H, W, 3) uint8 guidance maps
    .frames     (F, H, W, 3) uint8 ground-truth frames, or None (then the teacher's own samples are the data)
An iterable of clips is the data set (the synthetic-people generator's clips fit it as they are).

On disk (`--data DIR`): a synthetic-people dataset (`DIR/dataset.json`, engine.synthetic.dataset; its
`train` split by default), or one sub-folder per clip in upstream's guidance layout plus the portrait
and optional frames:
    DIR/<clip>/reference.(png|jpg)   DIR/<clip>/{depth,normal,render}/*.png   DIR/<clip>/frames/*.png
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Iterable, Protocol

import numpy as np

from engine.errors import InputError
from engine.networks.config import GUIDANCE_TYPES


class ClipLike(Protocol):
    reference: np.ndarray
    maps: dict[str, np.ndarray]
    frames: np.ndarray | None


@dataclasses.dataclass
class Clip:
    name: str
    reference: np.ndarray
    maps: dict[str, np.ndarray]
    frames: np.ndarray | None = None


def check_clip(clip: ClipLike) -> int:
    """Validate one clip's arrays; returns its frame count. One clear line on a mismatch."""
    name = clip_name(clip)
    ref = clip.reference
    if ref.ndim != 3 or ref.shape[2] != 3 or ref.dtype != np.uint8:
        raise InputError(f"clip {name}: reference must be (H,W,3) uint8, got {ref.shape} {ref.dtype}")
    missing = [t for t in GUIDANCE_TYPES if t not in clip.maps]
    if missing:
        raise InputError(f"clip {name}: guidance maps {missing} missing; expected {list(GUIDANCE_TYPES)}")
    shape = clip.maps["depth"].shape
    for t in GUIDANCE_TYPES:
        m = clip.maps[t]
        if m.ndim != 4 or m.shape != shape or m.shape[3] != 3 or m.dtype != np.uint8:
            raise InputError(f"clip {name}: guidance maps must be (F,H,W,3) uint8 of one shape; {t} is {m.shape} {m.dtype}")
    frames = getattr(clip, "frames", None)
    if frames is not None and (frames.shape != shape or frames.dtype != np.uint8):
        raise InputError(f"clip {name}: frames {frames.shape} {frames.dtype} must match the maps {shape} uint8")
    return shape[0]


def clip_name(clip, index: int | None = None) -> str:
    name = getattr(clip, "name", None)
    if name is None and hasattr(clip, "identity"):
        name = f"identity {clip.identity} motion {clip.motion}"
    return name or f"clip {index if index is not None else '?'}"


def read_clip_folder(root: str | pathlib.Path, split: str = "train", background_variants: int = 0) -> list[ClipLike]:
    """A synthetic dataset's `split` (each clip also over `background_variants` new backgrounds, as
    `mprt train` sees it), or every clip sub-folder of `root` (sorted by name)."""
    from engine.guidance.folders import list_frames, read_guidance_folders
    from engine.io.images import read_rgb_image
    root = pathlib.Path(root)
    if not root.is_dir():
        raise InputError(f"--data {root}: folder not found (expected a synthetic dataset with dataset.json, or one "
                         "sub-folder per clip with reference.png and depth/ normal/ render/ [frames/])")
    if (root / "dataset.json").is_file():
        from engine.synthetic.backgrounds import with_new_backgrounds
        from engine.synthetic.dataset import load_split, read_spec
        clips = load_split(root, split)
        return as_clip_list(with_new_backgrounds(clips, background_variants, read_spec(root).seed))
    clips = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        refs = sorted(folder.glob("reference.*"))
        if not refs:
            raise InputError(f"{folder}: no reference.png / reference.jpg (the clip's portrait)")
        maps = read_guidance_folders(folder)
        frames = None
        if (folder / "frames").is_dir():
            frames = np.stack([read_rgb_image(p) for p in list_frames(folder / "frames")])
        clip = Clip(folder.name, read_rgb_image(refs[0]), maps, frames)
        check_clip(clip)
        clips.append(clip)
    if not clips:
        raise InputError(f"--data {root}: no clip sub-folders in it")
    return clips


def clip_images(clips: Iterable[ClipLike], size: int, require_frames: bool = False) -> np.ndarray:
    """Every clip's ground-truth frames (else, unless `require_frames`, its render maps) and its portrait,
    at size x size: (N,size,size,3) uint8, the images a decoder learns from."""
    from engine.io.images import resize_frames
    images = []
    for i, clip in enumerate(clips):
        truth = getattr(clip, "frames", None)
        if truth is None and require_frames:
            raise InputError(f"clip {clip_name(clip, i)}: no ground-truth frames (a clip folder needs frames/)")
        images += [resize_frames(truth if truth is not None else clip.maps["render"], (size, size)),
                   resize_frames(clip.reference[None], (size, size))]
    return np.concatenate(images)


def as_clip_list(clips: Iterable[ClipLike]) -> list[ClipLike]:
    out = list(clips)
    if not out:
        raise InputError("distillation data: no clips")
    for clip in out:
        check_clip(clip)
    return out


def builtin_clips(count: int = 2, frames: int = 12, size: int = 128, renderer: str = "auto") -> list[Clip]:
    """Clips of the synthetic head (not FLAME) doing the demo motion, rendered once and cut into `count`
    clips; the portrait is the head's first render. No ground-truth frames: the teacher's samples are
    the data. For tests and for trying the machinery without a data set."""
    from engine.guidance.pipeline import demo_flame_params, render_guidance_maps, synthetic_head
    from engine.io.images import resize_frames
    maps = render_guidance_maps(demo_flame_params(count * frames), synthetic_head(), backend=renderer)
    maps = {t: resize_frames(m, (size, size)) for t, m in maps.items()}
    return [Clip(f"builtin-{i}", maps["render"][i * frames], {t: m[i * frames:(i + 1) * frames] for t, m in maps.items()})
            for i in range(count)]

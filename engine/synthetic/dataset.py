"""A synthetic-people dataset on disk: one .npz per clip, split by identity *and* by motion.

Train clips pair train identities with train motions; held-out clips pair held-out identities
with held-out motions (seeds from disjoint ranges), so a held-out score measures both kinds of
generalisation. Building is resumable (finished clips are kept) and deterministic from the spec.
"""
from __future__ import annotations

import dataclasses
import json
import multiprocessing
import pathlib
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from engine.errors import InputError
from engine.io.atomic import atomic_file
from engine.synthetic.appearance import make_identity
from engine.synthetic.clips import Clip, render_clip
from engine.synthetic.motion import make_motion, reference_pose

HELDOUT_SEED_BASE = 100_000  # held-out identity / motion seeds start here: disjoint from train
SPEC_FILE = "dataset.json"


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    seed: int = 0
    train_identities: int = 96
    train_motions: int = 64
    clips_per_identity: int = 2
    heldout_identities: int = 6
    heldout_motions: int = 6
    frames: int = 16
    size: int = 128

    def clips(self, split: str) -> list[tuple[int, int, int]]:
        """(identity seed, motion seed, reference seed) per clip of `split`."""
        rng = np.random.default_rng([self.seed, 0 if split == "train" else 1])
        if split == "train":
            out = [(i, int(rng.integers(self.train_motions)), i * 10 + k)
                   for i in range(self.train_identities) for k in range(self.clips_per_identity)]
        elif split == "heldout":
            base = HELDOUT_SEED_BASE
            out = [(base + i, base + (i + k) % self.heldout_motions, base + i * 10 + k)
                   for i in range(self.heldout_identities) for k in range(2)]
        else:
            raise InputError(f"unknown split '{split}': expected train or heldout")
        return [(i, m + self.seed * 1_000_000, r) for i, m, r in out]


def _clip_path(root: pathlib.Path, split: str, index: int) -> pathlib.Path:
    return root / split / f"clip_{index:05d}.npz"


def _render_in_memory(job) -> Clip:
    (ident, motion, ref), frames, render_size, size = job
    clip = render_clip(make_identity(ident), make_motion(motion, frames),
                       reference_pose(np.random.default_rng([5, ref])), render_size)
    return clip.resized(size)


def _render_pool(workers: int) -> ProcessPoolExecutor:
    # spawn, not fork: a process that has run torch (OpenMP) forks children that can hang in it
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def _render_one(job) -> None:
    root, split, index, seeds, frames, size = job
    clip = _render_in_memory((seeds, frames, size, size))
    path = _clip_path(root, split, index)
    with atomic_file(path) as fh:
        np.savez(fh, **clip.arrays())


def build_dataset(root, spec: DatasetSpec, workers: int = 1, progress=None) -> pathlib.Path:
    """Render every clip of `spec` into `root` (kept clips are not re-rendered)."""
    root = pathlib.Path(root)
    existing = root / SPEC_FILE
    if existing.exists() and json.loads(existing.read_text()) != dataclasses.asdict(spec):
        raise InputError(f"{root}: holds a dataset of another spec ({existing}); choose another folder")
    for split in ("train", "heldout"):
        (root / split).mkdir(parents=True, exist_ok=True)
    with atomic_file(existing, mode="w") as fh:
        fh.write(json.dumps(dataclasses.asdict(spec), indent=1))
    jobs = [(root, split, i, c, spec.frames, spec.size)
            for split in ("heldout", "train") for i, c in enumerate(spec.clips(split))
            if not _clip_path(root, split, i).exists()]
    total = sum(len(spec.clips(s)) for s in ("train", "heldout"))
    done = total - len(jobs)
    if workers > 1 and jobs:
        with _render_pool(workers) as pool:
            for _ in pool.map(_render_one, jobs):
                done += 1
                if progress:
                    progress(done, total)
    else:
        for job in jobs:
            _render_one(job)
            done += 1
            if progress:
                progress(done, total)
    return root


def read_spec(root) -> DatasetSpec:
    path = pathlib.Path(root) / SPEC_FILE
    if not path.exists():
        raise InputError(f"{root}: not a synthetic dataset (no {SPEC_FILE}; build one with `mprt train`)")
    return DatasetSpec(**json.loads(path.read_text()))


def load_split(root, split: str) -> list[Clip]:
    root = pathlib.Path(root)
    spec = read_spec(root)
    clips = []
    for i in range(len(spec.clips(split))):
        path = _clip_path(root, split, i)
        if not path.exists():
            raise InputError(f"{path}: missing clip (the dataset is incomplete: rebuild it)")
        with np.load(path) as data:
            clips.append(Clip.from_arrays(data))
    return clips


def render_split(spec: DatasetSpec, split: str, size: int | None = None, limit: int | None = None,
                 workers: int = 1) -> list[Clip]:
    """Render a split's clips in memory (no files), at `size` (default spec.size) — e.g. the
    held-out clips for a benchmark. Same pixels as `build_dataset` + `load_split` + `resized`."""
    jobs = [(c, spec.frames, spec.size, size or spec.size) for c in spec.clips(split)[:limit]]
    if workers > 1 and len(jobs) > 1:
        with _render_pool(workers) as pool:
            return list(pool.map(_render_in_memory, jobs))
    return [_render_in_memory(job) for job in jobs]


def background(identity_seed: int, size: int) -> np.ndarray:
    """The identity's known background (size,size,3) float in [0,1], box-averaged like the frames."""
    from engine.synthetic.clips import _area_down
    return _area_down(make_identity(identity_seed).background[None], size)[0]

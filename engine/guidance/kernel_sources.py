"""Where the guidance-map kernel sources and their built artifacts live, and the key naming them.

Artifacts (host library, fatbin) carry a key derived from the source files in their file name, so a
library built from older sources is never loaded by mistake. CMakeLists.txt computes the same key
(sha256 over the per-file sha256 hex digests, in KERNEL_SOURCE_FILES order, first 16 hex chars).
"""
from __future__ import annotations

import os
import pathlib
import sys

from engine.cache import cache_path, files_key
from engine.guidance.kernel_errors import KernelBuildError

KERNEL_SOURCE_FILES = ("guidance_raster_math.cuh", "guidance_raster.cu", "guidance_raster_host.cpp")
HEADER_NAME = "guidance_raster_math.cuh"
CUDA_SOURCE_NAME = "guidance_raster.cu"
HOST_SOURCE_NAME = "guidance_raster_host.cpp"

# A directory holding prebuilt artifacts (e.g. a CMake build's `kernels/`); artifacts built on the
# fly go under the cache root (engine/cache.py, $MPRT_CACHE_DIR).
ENV_KERNEL_DIR = "MPRT_KERNEL_DIR"


def kernels_dir() -> pathlib.Path:
    """The repository's kernels/ directory (the engine is used from a checkout / editable install)."""
    path = pathlib.Path(__file__).resolve().parents[2] / "kernels"
    if not (path / HEADER_NAME).is_file():
        raise KernelBuildError(
            f"guidance kernel sources not found: expected {path / HEADER_NAME} "
            "(install magicportrait-rt from a source checkout, e.g. `pip install -e .`)"
        )
    return path


def read_source(name: str) -> str:
    return (kernels_dir() / name).read_text(encoding="utf-8")


def source_key() -> str:
    """16 hex chars identifying the kernel sources (same recipe as CMakeLists.txt)."""
    return files_key([kernels_dir() / name for name in KERNEL_SOURCE_FILES])


def host_library_name(key: str) -> str:
    suffix = ".dylib" if sys.platform == "darwin" else ".so"
    return f"libmprt_guidance_host-{key}{suffix}"


def fatbin_name(key: str) -> str:
    return f"mprt_guidance-{key}.fatbin"


def prebuilt_dirs() -> list[pathlib.Path]:
    """Directories searched for prebuilt artifacts: $MPRT_KERNEL_DIR, then <repo>/build/kernels."""
    dirs = []
    if os.environ.get(ENV_KERNEL_DIR):
        dirs.append(pathlib.Path(os.environ[ENV_KERNEL_DIR]))
    dirs.append(kernels_dir().parent / "build" / "kernels")
    return dirs


def find_prebuilt(file_name: str) -> pathlib.Path | None:
    for directory in prebuilt_dirs():
        candidate = directory / file_name
        if candidate.is_file():
            return candidate
    return None


def cache_dir(key: str) -> pathlib.Path:
    """Per-source-key cache directory for artifacts built at run time (under engine.cache's root)."""
    return cache_path("kernels", key)

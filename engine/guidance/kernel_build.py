"""Builds (or finds) the CPU host build of the guidance kernel: a shared library compiled from
kernels/guidance_raster_host.cpp, which runs the same __host__ __device__ math as the CUDA kernel.

Lookup order: a prebuilt library named for the current source key (CMake build dir or
$MPRT_KERNEL_DIR), then the per-key cache dir, else compile it there with the system C++ compiler
($CXX, c++, g++, clang++). Works from a fresh clone with only a C++ compiler.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

from engine.guidance.kernel_errors import KernelBuildError
from engine.io.atomic import atomic_path
from engine.guidance.kernel_sources import (
    HOST_SOURCE_NAME,
    cache_dir,
    find_prebuilt,
    host_library_name,
    kernels_dir,
    source_key,
)

# FMA contraction off: host, GPU (--fmad=false) and the numpy reference round identically.
HOST_CXX_FLAGS = ("-O3", "-std=c++14", "-shared", "-fPIC", "-ffp-contract=off")
OPENMP_FLAG = "-fopenmp"


def find_cxx_compiler() -> str | None:
    candidates = [os.environ.get("CXX"), "c++", "g++", "clang++"]
    for name in candidates:
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _compile(cxx: str, source: pathlib.Path, output: pathlib.Path, openmp: bool) -> None:
    flags = list(HOST_CXX_FLAGS) + ([OPENMP_FLAG] if openmp else [])
    cmd = [cxx, *flags, "-I", str(source.parent), "-o", str(output), str(source)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise KernelBuildError(
            f"compiling {source} failed ({' '.join(cmd)}):\n{proc.stderr.strip()[-2000:]}"
        )


def build_host_library(output_dir: pathlib.Path, key: str | None = None) -> pathlib.Path:
    """Compiles the host library into output_dir (written whole: engine.io.atomic.atomic_path)."""
    cxx = find_cxx_compiler()
    if cxx is None:
        raise KernelBuildError(
            "no C++ compiler found to build the guidance kernel's host library "
            "(set $CXX or install g++/clang++; or build it with CMake and set $MPRT_KERNEL_DIR)"
        )
    key = key or source_key()
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / host_library_name(key)
    source = kernels_dir() / HOST_SOURCE_NAME
    with atomic_path(target) as tmp:
        try:
            _compile(cxx, source, tmp, openmp=True)
        except KernelBuildError:
            _compile(cxx, source, tmp, openmp=False)  # a compiler without OpenMP: serial loops
    return target


def host_library_path() -> pathlib.Path:
    """Path of a host library built from the current sources, building it if needed."""
    key = source_key()
    prebuilt = find_prebuilt(host_library_name(key))
    if prebuilt is not None:
        return prebuilt
    cached = cache_dir(key) / host_library_name(key)
    if cached.is_file():
        return cached
    return build_host_library(cache_dir(key), key)

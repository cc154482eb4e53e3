"""Run-time compilation of the CUDA guidance kernel with NVRTC (cuda-python), no GPU needed.

Produces a CUBIN (or PTX) for one architecture from kernels/guidance_raster.cu with the header
passed in memory; results are cached per source key and architecture. Needs
`pip install cuda-python nvidia-cuda-nvrtc` (the `cuda` extra).
"""
from __future__ import annotations

import re

from engine import cuda_python
from engine.guidance.kernel_errors import KernelBuildError
from engine.guidance.kernel_sources import (
    CUDA_SOURCE_NAME,
    HEADER_NAME,
    cache_dir,
    read_source,
    source_key,
)
from engine.io.atomic import atomic_file

# --fmad=false: no FMA contraction, so the GPU rounds like the host build and the reference.
NVRTC_OPTIONS = ("--fmad=false", "-DNDEBUG")
_ARCH_RE = re.compile(r"^(sm|compute)_(\d{2,3}[a-z]?)$")


def load_nvrtc():
    """The cuda-python NVRTC binding module."""
    return cuda_python.load("nvrtc", KernelBuildError, "NVRTC is not installed: pip install cuda-python "
                            "nvidia-cuda-nvrtc (or install magicportrait-rt[cuda])")


def _call(nvrtc, what: str, result):
    """An NVRTC call's values; KernelBuildError naming the status otherwise."""
    return cuda_python.unwrap(result, f"NVRTC {what}", KernelBuildError)


def nvrtc_version() -> tuple[int, int]:
    """(major, minor) of the loadable libnvrtc; KernelBuildError when it can't be loaded."""
    nvrtc = load_nvrtc()
    try:
        return tuple(_call(nvrtc, "version query", nvrtc.nvrtcVersion()))
    except RuntimeError as err:  # cuda-python raises when libnvrtc itself can't be found/loaded
        raise KernelBuildError(f"cannot load libnvrtc: {err}") from None


def compile_guidance_kernel(arch: str = "sm_87") -> bytes:
    """Compiles the guidance kernel for `arch` ('sm_87' -> CUBIN, 'compute_87' -> PTX)."""
    match = _ARCH_RE.match(arch)
    if not match:
        raise KernelBuildError(f"arch: expected like 'sm_87' or 'compute_90', got {arch!r}")
    want_ptx = match.group(1) == "compute"
    nvrtc_version()  # a clear error first if libnvrtc is missing
    nvrtc = load_nvrtc()
    prog = _call(
        nvrtc,
        "program creation",
        nvrtc.nvrtcCreateProgram(
            read_source(CUDA_SOURCE_NAME).encode(),
            CUDA_SOURCE_NAME.encode(),
            1,
            [read_source(HEADER_NAME).encode()],
            [HEADER_NAME.encode()],
        ),
    )
    try:
        options = [f"--gpu-architecture={arch}".encode()] + [o.encode() for o in NVRTC_OPTIONS]
        (status,) = nvrtc.nvrtcCompileProgram(prog, len(options), options)
        if status != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            size = _call(nvrtc, "log size", nvrtc.nvrtcGetProgramLogSize(prog))
            log = b" " * size
            nvrtc.nvrtcGetProgramLog(prog, log)
            raise KernelBuildError(
                f"NVRTC could not compile {CUDA_SOURCE_NAME} for {arch} ({status.name}):\n"
                + log.decode(errors="replace").strip()[-3000:]
            )
        getter = (nvrtc.nvrtcGetPTXSize, nvrtc.nvrtcGetPTX) if want_ptx else (
            nvrtc.nvrtcGetCUBINSize, nvrtc.nvrtcGetCUBIN)
        size = _call(nvrtc, "output size", getter[0](prog))
        image = b" " * size
        _call(nvrtc, "output fetch", (*getter[1](prog, image), None))
        return image
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


def cached_guidance_kernel(arch: str) -> bytes:
    """compile_guidance_kernel(arch), cached on disk per source key (written whole)."""
    key = source_key()
    suffix = "ptx" if arch.startswith("compute") else "cubin"
    path = cache_dir(key) / f"mprt_guidance-{key}-{arch}.{suffix}"
    if path.is_file():
        return path.read_bytes()
    image = compile_guidance_kernel(arch)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        f.write(image)
    return image

"""The guidance kernel's CPU host build, called through ctypes: the same per-triangle / per-pixel
code as the CUDA kernel (kernels/guidance_raster_math.cuh), so CI can test the kernel's math
without a GPU. Also a usable CPU fallback renderer."""
from __future__ import annotations

import ctypes
import pathlib
from dataclasses import dataclass

import numpy as np

from engine.guidance.kernel_abi import (
    GuidanceTargetsStruct,
    RasterSceneStruct,
    make_scene_struct,
    make_targets_struct,
)
from engine.guidance.kernel_build import host_library_path
from engine.guidance.kernel_errors import KernelBuildError
from engine.guidance.kernel_inputs import checked_raster_inputs, scene_arrays, scene_dims
from engine.guidance.kernel_outputs import KernelMaps, KernelOutputSpec, allocate_host_maps
from engine.guidance.raster_inputs import RasterInputs


@dataclass(frozen=True)
class HostKernel:
    """A loaded host library (load once, call many times)."""

    library: ctypes.CDLL
    path: pathlib.Path

    @classmethod
    def load(cls, path: pathlib.Path | None = None) -> "HostKernel":
        path = path or host_library_path()
        try:
            lib = ctypes.CDLL(str(path))
        except OSError as err:
            raise KernelBuildError(f"cannot load the guidance host library {path}: {err}") from None
        lib.mprt_guidance_render_host.restype = ctypes.c_int
        lib.mprt_guidance_render_host.argtypes = [
            ctypes.POINTER(RasterSceneStruct),
            ctypes.POINTER(GuidanceTargetsStruct),
        ]
        scene_size, targets_size = ctypes.c_longlong(), ctypes.c_longlong()
        lib.mprt_guidance_abi_sizes(ctypes.byref(scene_size), ctypes.byref(targets_size))
        expected = (ctypes.sizeof(RasterSceneStruct), ctypes.sizeof(GuidanceTargetsStruct))
        if (scene_size.value, targets_size.value) != expected:
            raise KernelBuildError(
                f"{path}: ABI struct sizes {(scene_size.value, targets_size.value)} differ from the "
                f"Python mirror {expected} (kernel_abi.py out of date with the header)"
            )
        return cls(lib, path)

    def render(self, inputs: RasterInputs, spec: KernelOutputSpec) -> KernelMaps:
        inputs = checked_raster_inputs(inputs)
        arrays = scene_arrays(inputs)
        scene = make_scene_struct({k: a.ctypes.data for k, a in arrays.items()}, **scene_dims(inputs))
        maps = allocate_host_maps(spec, inputs.batch_size, inputs.height, inputs.width)
        targets = make_targets_struct({k: a.ctypes.data for k, a in maps.items()}, spec)
        status = self.library.mprt_guidance_render_host(ctypes.byref(scene), ctypes.byref(targets))
        if status != 0:
            raise MemoryError(f"guidance host kernel: z-buffer allocation failed (status {status})")
        return KernelMaps(**maps)


def render_guidance_host(
    inputs: RasterInputs,
    out_dtype=np.float32,
    quantize: bool = True,
    depth_channels: int | None = None,
    with_validation: bool = False,
    kernel: HostKernel | None = None,
) -> KernelMaps:
    """Renders depth/normal/render/alpha for the batch with the kernel's host build (CPU).

    quantize=True gives the encoders' input (q(x)/255, depth replicated to 3 channels);
    quantize=False the raw contract maps (depth 1 channel). Builds the library on first use.
    """
    spec = KernelOutputSpec.make(out_dtype, quantize, depth_channels, with_validation)
    return (kernel or HostKernel.load()).render(inputs, spec)


def host_kernel_backend(kernel: HostKernel | None = None):
    """A `RasterInputs -> GuidanceMaps` renderer (the pipeline's backend interface,
    pipeline.render_guidance_maps(..., backend=...)) running the kernel's host build."""
    kernel = kernel or HostKernel.load()
    spec = KernelOutputSpec.make(np.float32, quantize=False, with_validation=True)
    return lambda inputs: kernel.render(inputs, spec).to_guidance_maps()

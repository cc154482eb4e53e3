"""The CUDA guidance kernel through the CUDA driver API (cuda-python); no torch needed.

`CudaGuidanceKernel.load()` loads the prebuilt fatbin named for the current sources (CMake build,
see kernel_sources.py) or compiles the kernel for the GPU's architecture with NVRTC; `launch()`
runs both passes on caller-owned device pointers in a given stream; `render()` /
`render_guidance_cuda()` is the simple path with device buffers managed inside.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import cuda_python
from engine.guidance.kernel_abi import (
    GuidanceTargetsStruct,
    RasterSceneStruct,
    make_scene_struct,
    make_targets_struct,
)
from engine.guidance.kernel_errors import CudaUnavailableError, KernelBuildError
from engine.guidance.kernel_inputs import checked_raster_inputs, scene_arrays, scene_dims
from engine.guidance.kernel_nvrtc import cached_guidance_kernel
from engine.guidance.kernel_outputs import KernelMaps, KernelOutputSpec, allocate_host_maps
from engine.guidance.kernel_sources import fatbin_name, find_prebuilt, source_key
from engine.guidance.raster_inputs import RasterInputs

THREADS_PER_BLOCK = 256
VISIBILITY_KERNEL = b"mprt_guidance_visibility"
RESOLVE_KERNEL = b"mprt_guidance_resolve"


def load_driver():
    """cuda-python's driver binding."""
    return cuda_python.load("driver", CudaUnavailableError, "CUDA guidance kernel: needs cuda-python: pip install "
                            "cuda-python (or install magicportrait-rt[cuda])")


def _check(driver, what: str, result):
    """A driver call's values; CudaUnavailableError with the CUDA error name otherwise."""
    def describe(status) -> str:
        name = driver.cuGetErrorName(status)[1]
        return name.decode() if isinstance(name, bytes) else str(name)
    return cuda_python.unwrap(result, f"CUDA guidance kernel: {what}", CudaUnavailableError, describe)


def _init_device(driver, ordinal: int):
    """cuInit + the device's primary context (the one torch shares), made current."""
    try:
        status, = driver.cuInit(0)
    except RuntimeError as err:  # cuda-python raises when libcuda (the driver) can't be loaded
        raise CudaUnavailableError(
            f"CUDA guidance kernel: no NVIDIA driver found (libcuda could not be loaded): {err}"
        ) from None
    if status == driver.CUresult.CUDA_ERROR_NO_DEVICE:
        raise CudaUnavailableError("CUDA guidance kernel: no GPU found (cuInit: CUDA_ERROR_NO_DEVICE)")
    _check(driver, "cuInit", (status,))
    count = _check(driver, "device count", driver.cuDeviceGetCount())
    if not 0 <= ordinal < count:
        raise CudaUnavailableError(f"CUDA guidance kernel: device {ordinal} requested, {count} present")
    device = _check(driver, "cuDeviceGet", driver.cuDeviceGet(ordinal))
    context = _check(driver, "primary context", driver.cuDevicePrimaryCtxRetain(device))
    _check(driver, "cuCtxSetCurrent", driver.cuCtxSetCurrent(context))
    attr = driver.CUdevice_attribute
    major = _check(driver, "cc query", driver.cuDeviceGetAttribute(
        attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device))
    minor = _check(driver, "cc query", driver.cuDeviceGetAttribute(
        attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device))
    return device, context, f"sm_{major}{minor}"


def _stream(driver, stream: Any):
    """None/0 -> default stream; an int handle (e.g. torch's stream.cuda_stream) or a CUstream."""
    if stream is None:
        return driver.CUstream(0)
    if isinstance(stream, driver.CUstream):
        return stream
    return driver.CUstream(int(stream))


def _image_pointer(image: bytes) -> int:
    """Host address of a module image's bytes (no copy): the caller keeps `image` referenced
    while the driver call reads it."""
    return ctypes.cast(ctypes.c_char_p(image), ctypes.c_void_p).value


def _blocks(n: int) -> int:
    return max(1, (n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK)


@dataclass
class CudaGuidanceKernel:
    """The kernel module loaded into device `ordinal`'s primary context."""

    driver: Any
    ordinal: int
    device: Any
    context: Any
    module: Any
    visibility: Any
    resolve: Any
    origin: str  # where the code came from: prebuilt fatbin path or "nvrtc sm_XY"

    @classmethod
    def load(cls, ordinal: int = 0, allow_prebuilt: bool = True) -> "CudaGuidanceKernel":
        driver = load_driver()
        device, context, arch = _init_device(driver, ordinal)
        module, origin = None, None
        prebuilt = find_prebuilt(fatbin_name(source_key())) if allow_prebuilt else None
        if prebuilt is not None:
            fatbin = prebuilt.read_bytes()  # keep referenced: the driver reads it via its address
            status, loaded = driver.cuModuleLoadData(_image_pointer(fatbin))
            if status == driver.CUresult.CUDA_SUCCESS:
                module, origin = loaded, str(prebuilt)
        if module is None:  # no fatbin, or none with code for this GPU: compile for it
            try:
                image = cached_guidance_kernel(arch)
            except KernelBuildError as err:
                raise CudaUnavailableError(
                    f"CUDA guidance kernel: cannot build it for {arch}: {err}") from None
            module = _check(driver, f"loading the NVRTC {arch} cubin",
                            driver.cuModuleLoadData(_image_pointer(image)))
            origin = f"nvrtc {arch}"
        visibility = _check(driver, "kernel lookup", driver.cuModuleGetFunction(module, VISIBILITY_KERNEL))
        resolve = _check(driver, "kernel lookup", driver.cuModuleGetFunction(module, RESOLVE_KERNEL))
        return cls(driver, ordinal, device, context, module, visibility, resolve, origin)

    def launch(self, scene: RasterSceneStruct, targets: GuidanceTargetsStruct, zbuf_ptr: int,
               stream: Any = None) -> None:
        """Enqueues z-buffer clear, visibility and resolve on `stream` (asynchronous).

        scene/targets hold *device* pointers (kernel_abi.make_scene_struct/make_targets_struct);
        zbuf_ptr: device buffer of 2*batch*height*width uint64, main then depth pass (scratch, cleared here)."""
        d = self.driver
        hstream = _stream(d, stream)
        pixels = scene.batch * scene.height * scene.width
        _check(d, "z-buffer clear", d.cuMemsetD8Async(zbuf_ptr, 0xFF, 2 * pixels * 8, hstream))
        zbuf = ctypes.c_uint64(zbuf_ptr)
        vis_args = (ctypes.c_void_p * 2)(ctypes.addressof(scene), ctypes.addressof(zbuf))
        _check(d, "visibility launch", d.cuLaunchKernel(
            self.visibility, _blocks(scene.batch * scene.num_faces), 1, 1, THREADS_PER_BLOCK, 1, 1,
            0, hstream, ctypes.addressof(vis_args), 0))
        res_args = (ctypes.c_void_p * 3)(
            ctypes.addressof(scene), ctypes.addressof(targets), ctypes.addressof(zbuf))
        _check(d, "resolve launch", d.cuLaunchKernel(
            self.resolve, _blocks(pixels), 1, 1, THREADS_PER_BLOCK, 1, 1,
            0, hstream, ctypes.addressof(res_args), 0))

    def render(self, inputs: RasterInputs, spec: KernelOutputSpec, stream: Any = None) -> KernelMaps:
        """Simple path: uploads `inputs`, renders, downloads the maps (synchronises `stream`)."""
        batch = DeviceBatch.upload(self, inputs, spec, stream)
        try:
            batch.run(stream)
            return batch.download(stream)
        finally:
            batch.free()

    def close(self) -> None:
        """Unloads the module and releases the primary context reference."""
        if self.module is not None:
            self.driver.cuModuleUnload(self.module)
            self.driver.cuDevicePrimaryCtxRelease(self.device)
            self.module = None


@dataclass
class DeviceBatch:
    """Device copies of one RasterInputs batch with output and z-buffer buffers: upload once,
    `run()` as often as needed (benchmarks), `download()` the maps, `free()`."""

    kernel: CudaGuidanceKernel
    scene: RasterSceneStruct
    targets: GuidanceTargetsStruct
    buffers: dict
    host_out: dict

    @classmethod
    def upload(cls, kernel: CudaGuidanceKernel, inputs: RasterInputs, spec: KernelOutputSpec,
               stream: Any = None) -> "DeviceBatch":
        d = kernel.driver
        inputs = checked_raster_inputs(inputs)
        _check(d, "cuCtxSetCurrent", d.cuCtxSetCurrent(kernel.context))
        hstream = _stream(d, stream)
        host_in = scene_arrays(inputs)
        host_out = allocate_host_maps(spec, inputs.batch_size, inputs.height, inputs.width)
        sizes = {k: a.nbytes for k, a in {**host_in, **host_out}.items()}
        sizes["zbuf"] = 2 * inputs.batch_size * inputs.height * inputs.width * 8  # main + depth pass
        buffers: dict[str, Any] = {}
        try:
            for name, nbytes in sizes.items():
                buffers[name] = _check(d, f"allocating {name}", d.cuMemAlloc(max(nbytes, 1)))
            for name, arr in host_in.items():
                _check(d, f"upload {name}", d.cuMemcpyHtoDAsync(
                    buffers[name], arr.ctypes.data, arr.nbytes, hstream))
            _check(d, "stream synchronize", d.cuStreamSynchronize(hstream))  # host_in may go
        except BaseException:
            for ptr in buffers.values():
                d.cuMemFree(ptr)
            raise
        scene = make_scene_struct({k: int(buffers[k]) for k in host_in}, **scene_dims(inputs))
        targets = make_targets_struct({k: int(buffers[k]) for k in host_out}, spec)
        return cls(kernel, scene, targets, buffers, host_out)

    def run(self, stream: Any = None) -> None:
        self.kernel.launch(self.scene, self.targets, int(self.buffers["zbuf"]), stream)

    def download(self, stream: Any = None) -> KernelMaps:
        d = self.kernel.driver
        hstream = _stream(d, stream)
        for name, arr in self.host_out.items():
            _check(d, f"download {name}", d.cuMemcpyDtoHAsync(
                arr.ctypes.data, self.buffers[name], arr.nbytes, hstream))
        _check(d, "stream synchronize", d.cuStreamSynchronize(hstream))
        return KernelMaps(**{k: a.copy() for k, a in self.host_out.items()})

    def free(self) -> None:
        for ptr in self.buffers.values():
            self.kernel.driver.cuMemFree(ptr)
        self.buffers = {}


def render_guidance_cuda(
    inputs: RasterInputs,
    out_dtype=np.float32,
    quantize: bool = True,
    stream: Any = None,
    depth_channels: int | None = None,
    with_validation: bool = False,
    kernel: CudaGuidanceKernel | None = None,
) -> KernelMaps:
    """Renders the batch on the GPU; same outputs as render_guidance_host (see there).

    Pass a loaded `kernel` to avoid re-loading the module per call."""
    spec = KernelOutputSpec.make(out_dtype, quantize, depth_channels, with_validation)
    own = kernel is None
    kernel = kernel or CudaGuidanceKernel.load()
    try:
        return kernel.render(inputs, spec, stream)
    finally:
        if own:
            kernel.close()


def cuda_kernel_backend(kernel: CudaGuidanceKernel | None = None):
    """A `RasterInputs -> GuidanceMaps` renderer (pipeline backend interface) on the GPU."""
    kernel = kernel or CudaGuidanceKernel.load()
    spec = KernelOutputSpec.make(np.float32, quantize=False, with_validation=True)
    return lambda inputs: kernel.render(inputs, spec).to_guidance_maps()

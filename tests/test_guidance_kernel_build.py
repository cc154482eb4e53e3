"""Building the guidance kernel: on-the-fly host build, CMake (host library + nvcc fatbin), NVRTC
CUBINs for sm_87 / sm_90, and the CUDA kernel itself on a GPU where one exists."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from engine.cache import ENV_CACHE_DIR
from engine.guidance import kernel_sources
from engine.guidance.kernel_build import build_host_library, find_cxx_compiler, host_library_path
from helpers.kernel_demo_scene import make_demo_scene
from engine.guidance.kernel_errors import CudaUnavailableError, KernelBuildError
from engine.guidance.kernel_host import HostKernel, render_guidance_host

ELF_MAGIC = b"\x7fELF"


def _need_cxx():
    if find_cxx_compiler() is None:
        pytest.skip("no C++ compiler on PATH (c++/g++/clang++)")


def test_host_library_builds_into_a_fresh_cache_and_is_reused(tmp_path, monkeypatch):
    _need_cxx()
    monkeypatch.setenv(ENV_CACHE_DIR, str(tmp_path))
    monkeypatch.setattr(kernel_sources, "prebuilt_dirs", lambda: [tmp_path / "no-prebuilt-here"])
    key = kernel_sources.source_key()
    path = host_library_path()
    assert path == tmp_path / "kernels" / key / kernel_sources.host_library_name(key)
    stamp = path.stat().st_mtime_ns
    assert host_library_path() == path and path.stat().st_mtime_ns == stamp  # cached, not rebuilt
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left behind
    HostKernel.load(path)


def test_source_key_follows_the_sources(tmp_path, monkeypatch):
    for name in kernel_sources.KERNEL_SOURCE_FILES:
        shutil.copy(kernel_sources.kernels_dir() / name, tmp_path / name)
    (tmp_path / kernel_sources.HEADER_NAME).touch()
    monkeypatch.setattr(kernel_sources, "kernels_dir", lambda: tmp_path)
    key = kernel_sources.source_key()
    assert re.fullmatch(r"[0-9a-f]{16}", key)
    with open(tmp_path / kernel_sources.HEADER_NAME, "a") as f:
        f.write("\n// edited\n")
    assert kernel_sources.source_key() != key


def test_compile_errors_are_reported_with_the_compiler_output(tmp_path, monkeypatch):
    _need_cxx()
    (tmp_path / kernel_sources.HOST_SOURCE_NAME).write_text("this is not C++\n")
    (tmp_path / kernel_sources.HEADER_NAME).write_text("\n")
    monkeypatch.setattr("engine.guidance.kernel_build.kernels_dir", lambda: tmp_path)
    with pytest.raises(KernelBuildError, match="compiling .*guidance_raster_host.cpp failed"):
        build_host_library(tmp_path / "out", key="deadbeef")
    assert not any((tmp_path / "out").iterdir())  # nothing half-written


def test_cmake_builds_host_library_and_fatbin_named_by_source_key(tmp_path):
    if shutil.which("cmake") is None:
        pytest.skip("cmake not on PATH")
    _need_cxx()
    nvcc = shutil.which("nvcc") or (shutil.which("/usr/local/cuda/bin/nvcc"))
    build = tmp_path / "build"
    root = kernel_sources.kernels_dir().parent
    # One architecture keeps the test short; the real build does sm_80/86/87/89/90 (+PTX).
    configure = subprocess.run(
        ["cmake", "-S", str(root), "-B", str(build), "-DMPRT_CUDA_ARCHS=87"],
        capture_output=True, text=True)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    key = kernel_sources.source_key()
    assert f"source key {key}" in configure.stdout
    if nvcc is None:
        assert "nvcc not found" in configure.stdout
    result = subprocess.run(["cmake", "--build", str(build), "-j", "2"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    lib = build / "kernels" / kernel_sources.host_library_name(key)
    assert lib.is_file()
    # The CMake-built library computes the same maps as the on-the-fly build.
    scene = make_demo_scene(batch=1, height=48, width=48, seed=7)
    a = render_guidance_host(scene, quantize=False, kernel=HostKernel.load(lib))
    b = render_guidance_host(scene, quantize=False)
    for name in ("depth", "normal", "render", "alpha"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    fatbin = build / "kernels" / kernel_sources.fatbin_name(key)
    if nvcc is None:
        pytest.skip("no nvcc: CMake built only the host library (checked above)")
    assert fatbin.is_file()
    assert fatbin.read_bytes().count(ELF_MAGIC) == 1  # one SASS image: sm_87 (PTX rides along)


def test_cmake_without_nvcc_says_so_and_builds_the_host_library(tmp_path):
    if shutil.which("cmake") is None:
        pytest.skip("cmake not on PATH")
    _need_cxx()
    build = tmp_path / "build"
    root = kernel_sources.kernels_dir().parent
    configure = subprocess.run(
        ["cmake", "-S", str(root), "-B", str(build), f"-DMPRT_NVCC={tmp_path / 'no-nvcc'}"],
        capture_output=True, text=True)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    assert "nvcc not found: building only the host library" in configure.stdout
    result = subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    key = kernel_sources.source_key()
    assert (build / "kernels" / kernel_sources.host_library_name(key)).is_file()
    assert not (build / "kernels" / kernel_sources.fatbin_name(key)).exists()


# ---------------------------------------------------------------------------------------------
# NVRTC (compiles without a GPU)

@pytest.fixture(scope="module")
def nvrtc_ok():
    from engine.guidance.kernel_nvrtc import nvrtc_version

    try:
        return nvrtc_version()
    except KernelBuildError as err:
        pytest.skip(f"NVRTC unavailable: {err}")


@pytest.mark.parametrize("arch", ["sm_87", "sm_90"])
def test_nvrtc_compiles_cubin(nvrtc_ok, arch):
    from engine.guidance.kernel_nvrtc import compile_guidance_kernel

    cubin = compile_guidance_kernel(arch)
    assert cubin[:4] == ELF_MAGIC
    assert b"mprt_guidance_visibility" in cubin and b"mprt_guidance_resolve" in cubin


def test_nvrtc_ptx_has_no_fused_multiply_add(nvrtc_ok):
    """--fmad=false: the GPU must round like the host build and the reference (no contraction)."""
    from engine.guidance.kernel_nvrtc import compile_guidance_kernel

    ptx = compile_guidance_kernel("compute_90").decode(errors="replace")
    assert set(re.findall(r"\.entry (\w+)", ptx)) == {"mprt_guidance_visibility", "mprt_guidance_resolve"}
    assert "atom.global.min.u64" in ptx  # the packed depth|face z-test
    assert "fma.rn.f32" not in ptx
    assert "div.approx" not in ptx and "div.full" not in ptx  # IEEE division as on the host


def test_nvrtc_rejects_a_malformed_arch(nvrtc_ok):
    from engine.guidance.kernel_nvrtc import compile_guidance_kernel

    with pytest.raises(KernelBuildError, match="arch"):
        compile_guidance_kernel("hopper")


# ---------------------------------------------------------------------------------------------
# CUDA kernel on a GPU

def _cuda_kernel_or_reason():
    from engine.guidance.kernel_cuda import CudaGuidanceKernel

    try:
        return CudaGuidanceKernel.load(), None
    except CudaUnavailableError as err:
        return None, str(err)


def test_without_gpu_the_error_is_clear():
    kernel, reason = _cuda_kernel_or_reason()
    if kernel is not None:
        kernel.close()
        pytest.skip("a GPU is present: the no-GPU error path can't be exercised here")
    from engine.guidance.kernel_cuda import render_guidance_cuda

    with pytest.raises(CudaUnavailableError) as info:
        render_guidance_cuda(make_demo_scene(batch=1, height=16, width=16))
    assert str(info.value).startswith("CUDA guidance kernel: ")


@pytest.mark.parametrize("dtype,quantize", [(np.float32, False), (np.float32, True), (np.float16, True)])
def test_gpu_kernel_matches_host_build(dtype, quantize):
    kernel, reason = _cuda_kernel_or_reason()
    if kernel is None:
        pytest.skip(f"no usable GPU for the CUDA kernel: {reason}")
    try:
        scene = make_demo_scene(batch=3, height=128, width=128, seed=11)
        gpu = kernel.render(scene, _spec(dtype, quantize))
        host = HostKernel.load().render(scene, _spec(dtype, quantize))
    finally:
        kernel.close()
    # Same code, same float32 operation order, no FMA: expected bit-identical; the stated
    # tolerance is the reference's (<= 1 LSB after q), asserted on top of exact coverage.
    assert np.array_equal(gpu.pix_to_face, host.pix_to_face)
    for name in ("depth", "normal", "render", "alpha"):
        g, h = getattr(gpu, name).astype(np.float64), getattr(host, name).astype(np.float64)
        assert np.abs(g - h).max() <= (1.0 / 255 if quantize else 1e-6), name


def _spec(dtype, quantize):
    from engine.guidance.kernel_outputs import KernelOutputSpec

    return KernelOutputSpec.make(dtype, quantize, with_validation=True)

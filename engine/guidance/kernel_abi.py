"""ctypes mirrors of the kernel's ABI structs (kernels/guidance_raster_math.cuh: RasterScene,
GuidanceTargets), filled with host pointers (host build) or device pointers (CUDA kernel)."""
from __future__ import annotations

import ctypes
from typing import Mapping

from engine.guidance.kernel_outputs import KernelOutputSpec

_c_int = ctypes.c_int
_ptr = ctypes.c_void_p

SCENE_ARRAYS = ("verts", "normals", "vdepth", "faces", "uv_faces", "uvs", "albedo", "sh", "depth_z")
TARGET_ARRAYS = ("depth", "normal", "render", "alpha", "pix_to_face", "bary")


class RasterSceneStruct(ctypes.Structure):
    _fields_ = [(name, _ptr) for name in SCENE_ARRAYS] + [
        (name, _c_int)
        for name in (
            "batch", "num_verts", "num_faces", "num_uvs", "height", "width", "tex_h", "tex_w"
        )
    ]


class GuidanceTargetsStruct(ctypes.Structure):
    _fields_ = [(name, _ptr) for name in TARGET_ARRAYS] + [
        ("depth_channels", _c_int),
        ("half", _c_int),
        ("quantize", _c_int),
    ]


def make_scene_struct(
    pointers: Mapping[str, int],
    *,
    batch: int,
    num_verts: int,
    num_faces: int,
    num_uvs: int,
    height: int,
    width: int,
    tex_h: int,
    tex_w: int,
) -> RasterSceneStruct:
    """pointers: address of each array in SCENE_ARRAYS (contract layouts, C-contiguous); depth_z may be
    absent or None (the depth map then comes from the main visibility pass)."""
    return RasterSceneStruct(
        *(pointers[name] if name != "depth_z" else pointers.get(name) for name in SCENE_ARRAYS),
        batch, num_verts, num_faces, num_uvs, height, width, tex_h, tex_w,
    )


def make_targets_struct(pointers: Mapping[str, int | None], spec: KernelOutputSpec) -> GuidanceTargetsStruct:
    """pointers: address per TARGET_ARRAYS name; alpha / pix_to_face / bary may be absent (None)."""
    return GuidanceTargetsStruct(
        *(pointers.get(name) for name in TARGET_ARRAYS),
        spec.depth_channels,
        int(spec.half),
        int(spec.quantize),
    )

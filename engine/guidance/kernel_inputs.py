"""Checks a RasterInputs batch before it reaches the kernel: a bad shape, dtype or an index out of
range must be a clear InputError, never an out-of-bounds read inside the kernel."""
from __future__ import annotations

import numpy as np

from engine.errors import InputError
from engine.guidance.raster_inputs import RasterInputs

_INT32_MAX = 2**31 - 1


def _check_index_range(name: str, index: np.ndarray, count: int, what: str) -> None:
    if index.size and (int(index.min()) < 0 or int(index.max()) >= count):
        raise InputError(
            f"RasterInputs.{name}: indices must lie in [0, {count}) ({what}), "
            f"got range [{int(index.min())}, {int(index.max())}]"
        )


def checked_raster_inputs(inputs: RasterInputs) -> RasterInputs:
    """Validates `inputs` against the contract; returns it with C-contiguous arrays."""
    try:
        inputs.validate()
    except ValueError as err:
        raise InputError(str(err)) from None
    if inputs.height <= 0 or inputs.width <= 0:
        raise InputError(f"RasterInputs.height/width: expected positive, got {inputs.height}x{inputs.width}")
    b, v = inputs.verts_ndc.shape[:2]
    if b == 0:
        raise InputError("RasterInputs.verts_ndc: empty batch (B = 0)")
    _check_index_range("faces", inputs.faces, v, "number of vertices")
    _check_index_range("uv_faces", inputs.uv_faces, inputs.uvs.shape[0], "number of uvs")
    if b * v * 3 > _INT32_MAX or b * inputs.height * inputs.width * 3 > _INT32_MAX:
        raise InputError(
            f"RasterInputs: batch {b} x {v} vertices at {inputs.height}x{inputs.width} is too large "
            "for one kernel call; split the batch"
        )
    fields = {
        name: np.ascontiguousarray(getattr(inputs, name))
        for name in ("verts_ndc", "vert_normals", "vert_depth", "faces", "uv_faces", "uvs",
                     "albedo", "sh_light")
    }
    depth_z = None if inputs.depth_z is None else np.ascontiguousarray(inputs.depth_z)
    return RasterInputs(**fields, depth_z=depth_z, height=int(inputs.height), width=int(inputs.width))


def scene_arrays(inputs: RasterInputs) -> dict[str, np.ndarray]:
    """The contract arrays under the kernel ABI's names (kernel_abi.SCENE_ARRAYS); depth_z only if set."""
    arrays = {
        "verts": inputs.verts_ndc,
        "normals": inputs.vert_normals,
        "vdepth": inputs.vert_depth,
        "faces": inputs.faces,
        "uv_faces": inputs.uv_faces,
        "uvs": inputs.uvs,
        "albedo": inputs.albedo,
        "sh": inputs.sh_light,
    }
    if inputs.depth_z is not None:
        arrays["depth_z"] = inputs.depth_z
    return arrays


def scene_dims(inputs: RasterInputs) -> dict[str, int]:
    """Sizes for kernel_abi.make_scene_struct."""
    b, v = inputs.verts_ndc.shape[:2]
    return {
        "batch": int(b),
        "num_verts": int(v),
        "num_faces": int(inputs.faces.shape[0]),
        "num_uvs": int(inputs.uvs.shape[0]),
        "height": int(inputs.height),
        "width": int(inputs.width),
        "tex_h": int(inputs.albedo.shape[1]),
        "tex_w": int(inputs.albedo.shape[2]),
    }

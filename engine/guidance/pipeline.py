"""FLAME params -> guidance maps (spec guidance_maps.md §1.7-§4): LBS, camera, raster, quantise.

`render_guidance_maps` is the user-facing entry; `build_raster_inputs` exposes the contract
inputs of any frame range, for fast-path backends and their comparisons with the reference.
"""
from __future__ import annotations

from typing import Callable, Union

import numpy as np

from engine.errors import InputError
from engine.flame.camera import OrthoCamera
from engine.flame.lbs import flame_lbs
from engine.flame.model import FlameModel
from engine.flame.params import FlameParams
from engine.guidance.quantize import maps_to_u8_frames
from engine.guidance.raster_inputs import GuidanceMaps, RasterInputs, prepare_raster_inputs

Renderer = Callable[[RasterInputs], GuidanceMaps]
PLAIN_SKIN = np.array([0.80, 0.60, 0.50], np.float32)  # albedo when a model brings none
IMAGE_SIZE = 512


def default_albedo(flame_model: FlameModel) -> np.ndarray:
    """The model's own albedo (synthetic head), else a uniform skin tone (3, 256, 256)."""
    if flame_model.albedo is not None:
        return flame_model.albedo
    return np.broadcast_to(PLAIN_SKIN[:, None, None], (3, 256, 256)).copy()


def build_raster_inputs(params: FlameParams, flame_model: FlameModel, albedo: np.ndarray,
                        start: int, stop: int) -> RasterInputs:
    """RasterInputs for frames [start, stop): source constants + per-frame exp / pose."""
    if flame_model.topology is None:
        raise InputError(f"head model '{flame_model.name}' has no render topology (faces + UVs): "
                         "give DECA's head_template.obj with --head-obj")
    exp, pose = params.frames(start, stop)
    verts = flame_lbs(flame_model, params.shape, exp, pose).verts
    camera = OrthoCamera.from_params(params.cam, params.crop, IMAGE_SIZE)
    topo = flame_model.topology
    return prepare_raster_inputs(verts, camera, topo.faces, topo.uv_faces, topo.uvs, albedo,
                                 params.light, IMAGE_SIZE, IMAGE_SIZE)


BACKENDS = ("auto", "reference", "host", "cuda")  # CPU reference; the fused kernel's host build / GPU


def resolve_backend(backend: Union[str, Renderer]) -> Renderer:
    """A renderer by name (see BACKENDS), or any callable RasterInputs -> GuidanceMaps.

    "auto" takes the fastest that works here: the CUDA kernel, else its host build (bit-identical to
    the reference on the test scenes), else the reference; it says which on stderr.
    """
    if callable(backend):
        return backend
    if backend == "auto":
        return _fastest_available()
    if backend == "reference":
        from engine.guidance.reference_renderer import render_reference

        return render_reference
    if backend == "host":
        from engine.guidance.kernel_host import host_kernel_backend

        return host_kernel_backend()
    if backend == "cuda":
        from engine.guidance.kernel_cuda import cuda_kernel_backend

        return cuda_kernel_backend()
    raise InputError(f"unknown guidance backend '{backend}': expected one of {BACKENDS} or a "
                     "callable RasterInputs -> GuidanceMaps")


def _fastest_available() -> Renderer:
    import sys

    from engine.errors import MprtError
    skipped = []
    for name in ("cuda", "host"):
        try:
            renderer = resolve_backend(name)
        except (MprtError, ImportError, OSError) as err:
            skipped.append(f"{name}: {str(err).splitlines()[0].split(' (')[0][:100]}")
            continue
        print(f"guidance renderer: {name} kernel" + (f" (skipped {'; '.join(skipped)})" if skipped else ""),
              file=sys.stderr)
        return renderer
    print(f"guidance renderer: CPU reference (skipped {'; '.join(skipped)})", file=sys.stderr)
    return resolve_backend("reference")


def render_guidance_maps(params: FlameParams, flame_model: FlameModel, albedo: np.ndarray | None = None,
                         batch_size: int = 8, backend: Union[str, Renderer] = "reference",
                         progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray]:
    """Render every frame: {'depth','normal','render'} -> (F, 512, 512, 3) uint8 (upstream's
    saved-image form). albedo (3, 256, 256) RGB; default: see `default_albedo`."""
    params.validate()
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    renderer = resolve_backend(backend)
    albedo = default_albedo(flame_model) if albedo is None else np.asarray(albedo, np.float32)
    if albedo.shape != (3, 256, 256):
        raise InputError(f"albedo has shape {albedo.shape}, expected (3, 256, 256)")
    n = params.num_frames
    out = {k: np.zeros((n, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8) for k in ("depth", "normal", "render")}
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        frames = maps_to_u8_frames(renderer(build_raster_inputs(params, flame_model, albedo, start, stop)))
        for key, value in frames.items():
            out[key][start:stop] = value
        if progress is not None:
            progress(stop, n)
    return out


# Public names the demo / animate commands use, importable from here in one place.
from engine.flame.synthetic import synthetic_head  # noqa: E402
from engine.guidance.demo_motion import demo_flame_params  # noqa: E402

__all__ = ["render_guidance_maps", "build_raster_inputs", "default_albedo", "resolve_backend",
           "synthetic_head", "demo_flame_params"]

"""CPU reference renderer: defines what every fast path (CUDA kernel, host build) must compute.

Implements spec guidance_maps.md §4 / §7 in float32 numpy, in the contract's operation order:
rasterisation in pytorch3d's conventions (engine/mesh/raster.py); bilinear align_corners=False
albedo fetch; 2nd-order SH shading.
Two visibility passes as upstream (§7): depth from its own pass at z_t - min + 10, normal and render
from the pass at +20 (engine.mesh.raster.rasterize with depth_z).
"""
from __future__ import annotations

import numpy as np

from engine.guidance.raster_inputs import GuidanceMaps, RasterInputs
from engine.mesh.raster import interpolate, pixel_centres, rasterize  # noqa: F401  (pixel_centres: tests use it from here)

F32 = np.float32
SH_CONSTANTS = np.array(
    [0.28209479, 1.02332671, 1.02332671, 1.02332671, 0.85808553, 0.85808553, 0.85808553,
     0.42904277, 0.24770796],
    dtype=F32,
)  # spec §4.5


def sample_albedo(albedo: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear fetch, align_corners=False, zero padding: texel (u*W - 0.5, (1-v)*H - 0.5).

    albedo (3, H, W), uv (P, 2) -> (P, 3). Weights as torch grid_sample forms them.
    """
    _, th, tw = albedo.shape
    ix = uv[:, 0] * F32(tw) - F32(0.5)
    iy = (F32(1) - uv[:, 1]) * F32(th) - F32(0.5)
    ix0, iy0 = np.floor(ix), np.floor(iy)
    ix1, iy1 = ix0 + F32(1), iy0 + F32(1)
    taps = (
        (ix0, iy0, (ix1 - ix) * (iy1 - iy)),
        (ix1, iy0, (ix - ix0) * (iy1 - iy)),
        (ix0, iy1, (ix1 - ix) * (iy - iy0)),
        (ix1, iy1, (ix - ix0) * (iy - iy0)),
    )
    out = np.zeros((len(uv), 3), F32)
    for tx, ty, weight in taps:
        ok = (tx >= 0) & (tx < tw) & (ty >= 0) & (ty < th)
        xi = np.where(ok, tx, 0).astype(np.int64)
        yi = np.where(ok, ty, 0).astype(np.int64)
        val = albedo[:, yi, xi].T  # (P, 3)
        out += np.where(ok[:, None], weight[:, None] * val, F32(0))
    return out


def sh_shading(normals: np.ndarray, light: np.ndarray) -> np.ndarray:
    """(P, 3) normals (not re-normalised), light (9, 3) -> (P, 3): sum_k L[k, ch] basis_k."""
    nx, ny, nz = normals[:, 0], normals[:, 1], normals[:, 2]
    basis = (
        np.ones_like(nx), nx, ny, nz, nx * ny, nx * nz, ny * nz, nx * nx - ny * ny,
        F32(3) * (nz * nz) - F32(1),
    )
    out = np.zeros((len(normals), 3), F32)
    for k, b in enumerate(basis):
        out += light[k][None, :] * (b * SH_CONSTANTS[k])[:, None]
    return out


def render_reference(inputs: RasterInputs) -> GuidanceMaps:
    """Rasterise and shade every frame of `inputs` (spec §4): the reference output."""
    inputs.validate()
    b, h, w = inputs.batch_size, inputs.height, inputs.width
    depth = np.zeros((b, 1, h, w), F32)
    normal = np.zeros((b, 3, h, w), F32)
    render = np.zeros((b, 3, h, w), F32)
    alpha = np.zeros((b, 1, h, w), F32)
    p2f = np.full((b, h, w), -1, np.int32)
    bary = np.zeros((b, h, w, 3), F32)
    for i in range(b):
        if inputs.depth_z is None:
            p2f[i], bary[i] = rasterize(inputs.verts_ndc[i], inputs.faces, h, w)
            d_p2f, d_bary = p2f[i], bary[i]
        else:
            (p2f[i], bary[i]), (d_p2f, d_bary) = rasterize(inputs.verts_ndc[i], inputs.faces, h, w,
                                                           inputs.depth_z[i])
        d_rows, d_cols = np.nonzero(d_p2f >= 0)
        d = interpolate(inputs.vert_depth[i][:, None], inputs.faces[d_p2f[d_rows, d_cols]],
                        d_bary[d_rows, d_cols])
        depth[i, 0, d_rows, d_cols] = d[:, 0]
        rows, cols = np.nonzero(p2f[i] >= 0)
        face = p2f[i, rows, cols]
        wts = bary[i, rows, cols]
        n = interpolate(inputs.vert_normals[i], inputs.faces[face], wts)
        uv = interpolate(inputs.uvs, inputs.uv_faces[face], wts)
        rgb = sample_albedo(inputs.albedo, uv) * sh_shading(n, inputs.sh_light[i])
        normal[i][:, rows, cols] = n.T
        render[i][:, rows, cols] = rgb.T
        alpha[i, 0, rows, cols] = 1
    return GuidanceMaps(depth, normal, render, alpha, p2f, bary)

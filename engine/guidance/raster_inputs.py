"""The raster-input contract shared by the CPU reference renderer and the CUDA kernel.

`RasterInputs` is everything a rasteriser needs for a batch of frames, already in pytorch3d space
(spec guidance_maps.md §4.2); `GuidanceMaps` is what it returns (§7). Both the reference renderer
and the kernel consume/produce exactly these, so they can be compared field by field.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RasterInputs:
    """One batch of B frames of one mesh topology, float32 numpy.

    verts_ndc:    (B, V, 3) pytorch3d-space coords: x = -X_s, y = -Y_s (§4.2 negated screen NDC),
                  z = (z_t - min(z_t) + 10) + 10 per frame, in float32 as upstream's
                  two in-place +10s (§3.6). Smaller z = nearer.
    vert_normals: (B, V, 3) world-space area-weighted, normalised vertex normals (§4.4).
    vert_depth:   (B, V) per-vertex depth value in [0, 1], nearest = 1 (§4.3).
    faces:        (T, 3) int32 vertex indices (head_template.obj order).
    uv_faces:     (T, 3) int32 indices into `uvs`.
    uvs:          (U, 2) float32 (u, v) as in the obj (v up).
    albedo:       (3, 256, 256) float32 RGB albedo of the source (§4.5), shared by the batch.
    sh_light:     (B, 9, 3) float32 SH coefficients [band, rgb].
    depth_z:      (B, V) float32 z of the depth map's own visibility pass, z_t - min(z_t) + 10 (§7:
                  upstream rasterises depth at +10, normal and render at +20; the winners differ
                  on tiny triangles). None: the depth map comes from the main pass (test scenes).
    """

    verts_ndc: np.ndarray
    vert_normals: np.ndarray
    vert_depth: np.ndarray
    faces: np.ndarray
    uv_faces: np.ndarray
    uvs: np.ndarray
    albedo: np.ndarray
    sh_light: np.ndarray
    depth_z: np.ndarray | None = None
    height: int = 512
    width: int = 512

    @property
    def batch_size(self) -> int:
        return int(self.verts_ndc.shape[0])

    def validate(self) -> None:
        """Raise ValueError naming the field whose shape or dtype breaks the contract."""
        b, v = self.verts_ndc.shape[:2]
        t = self.faces.shape[0]
        expected = {
            "verts_ndc": ((b, v, 3), np.float32),
            "vert_normals": ((b, v, 3), np.float32),
            "vert_depth": ((b, v), np.float32),
            "faces": ((t, 3), np.int32),
            "uv_faces": ((t, 3), np.int32),
            "uvs": ((self.uvs.shape[0], 2), np.float32),
            "albedo": ((3, self.albedo.shape[1], self.albedo.shape[2]), np.float32),
            "sh_light": ((b, 9, 3), np.float32),
        }
        if self.depth_z is not None:
            expected["depth_z"] = ((b, v), np.float32)
        for name, (shape, dtype) in expected.items():
            arr = getattr(self, name)
            if arr.shape != shape or arr.dtype != dtype:
                raise ValueError(
                    f"RasterInputs.{name}: expected {shape} {np.dtype(dtype).name}, "
                    f"got {arr.shape} {arr.dtype}"
                )


@dataclass(frozen=True)
class GuidanceMaps:
    """Rasteriser output for B frames, NCHW float32, background exactly 0 (spec §7).

    depth (B,1,H,W) in [0,1]; normal (B,3,H,W) raw interpolated normals; render (B,3,H,W)
    unclamped albedo*SH; alpha (B,1,H,W) 0/1; pix_to_face (B,H,W) int32, -1 = background;
    bary (B,H,W,3) float32 raw barycentrics, 0 on background.
    """

    depth: np.ndarray
    normal: np.ndarray
    render: np.ndarray
    alpha: np.ndarray
    pix_to_face: np.ndarray
    bary: np.ndarray


def prepare_raster_inputs(
    verts_world: np.ndarray,
    camera,
    faces: np.ndarray,
    uv_faces: np.ndarray,
    uvs: np.ndarray,
    albedo: np.ndarray,
    sh_light: np.ndarray,
    height: int = 512,
    width: int = 512,
) -> RasterInputs:
    """Posed FLAME vertices (B, V, 3) + camera (engine.flame.camera.OrthoCamera) -> RasterInputs.

    sh_light may be (9, 3) (shared) or (B, 9, 3).
    """
    from engine.mesh.attributes import vertex_depth, vertex_normals

    verts_world = np.asarray(verts_world, np.float32)
    batch = verts_world.shape[0]
    faces = np.ascontiguousarray(faces, np.int32)
    _, _, z_t = camera.to_image_pixels(verts_world)
    light = np.asarray(sh_light, np.float32)
    if light.shape == (9, 3):
        light = np.broadcast_to(light, (batch, 9, 3))
    inputs = RasterInputs(
        verts_ndc=camera.to_raster_space(verts_world),
        vert_normals=vertex_normals(verts_world, faces),
        vert_depth=vertex_depth(z_t),
        faces=faces,
        uv_faces=np.ascontiguousarray(uv_faces, np.int32),
        uvs=np.ascontiguousarray(uvs, np.float32),
        albedo=np.ascontiguousarray(albedo, np.float32),
        sh_light=np.ascontiguousarray(light, np.float32),
        depth_z=camera.depth_pass_z(verts_world),
        height=int(height),
        width=int(width),
    )
    inputs.validate()
    return inputs

"""DECA's orthographic camera + crop transform into the source's 512x512 frame (spec §3).

cam = (s, tx, ty) and crop = (x0, y0, size) in source-512 pixels, k = 223/size (crop tform).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CROP_POINTS_SCALE = 224.0  # transform_points scales crop coords by 224/2 ... (spec §3.3)
CROP_TFORM_EXTENT = 223.0  # ... while the crop tform maps onto 0..223: upstream's 224/223 quirk


@dataclass(frozen=True)
class OrthoCamera:
    scale: float  # s
    tx: float
    ty: float
    crop_x0: float
    crop_y0: float
    crop_size: float
    image_size: int = 512

    @classmethod
    def from_params(cls, cam, crop, image_size: int = 512) -> "OrthoCamera":
        s, tx, ty = (float(v) for v in np.asarray(cam).reshape(3))
        x0, y0, size = (float(v) for v in np.asarray(crop).reshape(3))
        return cls(s, tx, ty, x0, y0, size, image_size)

    def to_image_pixels(self, verts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World verts (..., 3) -> image px x, y (source 512 frame, y down) and z_t = -s*Z."""
        v = np.asarray(verts, np.float32)
        s = np.float32(self.scale)
        half = np.float32(CROP_POINTS_SCALE / 2)
        inv_k = np.float32(self.crop_size / CROP_TFORM_EXTENT)
        px = s * (v[..., 0] + np.float32(self.tx))  # batch_orth_proj
        py = -(s * (v[..., 1] + np.float32(self.ty)))  # y and z negated after projection
        z_t = -(s * v[..., 2])
        u = (px + 1) * half  # crop pixels (x 112, note 224 != 223)
        w = (py + 1) * half
        x = u * inv_k + np.float32(self.crop_x0)
        y = w * inv_k + np.float32(self.crop_y0)
        return x.astype(np.float32), y.astype(np.float32), z_t.astype(np.float32)

    def to_raster_space(self, verts: np.ndarray) -> np.ndarray:
        """World verts (B, V, 3) -> pytorch3d-space (B, V, 3) as in RasterInputs.verts_ndc.

        x = -X_s, y = -Y_s with X_s = x/size*2 - 1 (spec §4.2); z = z_t - min(z_t) + 10 + 10 per
        frame: render_depth adds 10 in place, forward adds another 10 (spec §3.6).
        """
        x, y, _ = self.to_image_pixels(verts)
        n = np.float32(self.image_size)
        xs = x / n * 2 - 1
        ys = y / n * 2 - 1
        z = self.depth_pass_z(verts) + np.float32(10)
        return np.stack([-xs, -ys, z], axis=-1).astype(np.float32)

    def depth_pass_z(self, verts: np.ndarray) -> np.ndarray:
        """(B, V) z of the depth map's own visibility pass: z_t - min(z_t) + 10 per frame (render_depth's
        in-place +10; the main pass adds another 10, spec §3.6 / §7)."""
        _, _, z_t = self.to_image_pixels(verts)
        return ((z_t - z_t.min(axis=-1, keepdims=True)) + np.float32(10)).astype(np.float32)

"""The two square face crops upstream feeds its encoders (guidance_maps.md §1.2 and §1.5).

Both are a scale + translation mapping the square (x0, y0, size) onto the 224x224 crop's pixel
centres 0..223 (so k = 223/size: the 224/223 quirk of §3 comes from here). Warping uses
skimage exactly as upstream does, so crops match upstream given the same landmarks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CROP_SIZE = 224
DECA_IMAGE_SIZE = 512  # DECA works on the image resized to 512x512 (§1.2 step 1)
DECA_BOX_SCALE = 1.1  # bbox2point('kpt68')
DECA_CROP_SCALE = 1.3  # module constant `scale` of transfer_utils
SMIRK_CROP_SCALE = 1.4


@dataclass(frozen=True)
class CropBox:
    """A square crop: centre (cx, cy) and side `size` in pixels of the image it was found in."""

    cx: float
    cy: float
    size: int

    @property
    def x0(self) -> float:
        return self.cx - self.size / 2

    @property
    def y0(self) -> float:
        return self.cy - self.size / 2

    def tform(self, crop_size: int = CROP_SIZE) -> np.ndarray:
        """3x3 image->crop matrix: x_crop = k (x - x0), k = (crop_size-1)/size (§1.2 step 5)."""
        k = (crop_size - 1) / self.size
        return np.array([[k, 0.0, -k * self.x0], [0.0, k, -k * self.y0], [0.0, 0.0, 1.0]])

    def inside(self, width: int, height: int) -> bool:
        return self.x0 >= 0 and self.y0 >= 0 and self.x0 + self.size <= width and self.y0 + self.size <= height


def _extent(points_xy: np.ndarray) -> tuple[float, float, float, float]:
    x, y = points_xy[:, 0], points_xy[:, 1]
    return float(x.min()), float(x.max()), float(y.min()), float(y.max())


def deca_crop_box(points68_xy: np.ndarray) -> CropBox:
    """DECA's crop from 68 landmarks in the 512x512 image (§1.2 steps 2-4)."""
    left, right, top, bottom = _extent(points68_xy)
    old_size = ((right - left) + (bottom - top)) / 2 * DECA_BOX_SCALE
    return CropBox((left + right) / 2, (top + bottom) / 2, int(old_size * DECA_CROP_SCALE))


def deca_no_face_box(image_size: int = DECA_IMAGE_SIZE) -> CropBox:
    """Upstream's fallback when FAN finds no face: bbox (0, 0, h-1, w-1) as 'kpt68' (§1.2 step 2)."""
    corners = np.array([[0.0, 0.0], [image_size - 1.0, image_size - 1.0]])
    return deca_crop_box(corners)


def smirk_crop_box(points478_xy: np.ndarray) -> CropBox:
    """SMIRK's crop_face(scale=1.4) from all 478 MediaPipe landmarks in frame pixels (§1.5)."""
    left, right, top, bottom = _extent(points478_xy)
    old_size = ((right - left) + (bottom - top)) / 2
    return CropBox(right - (right - left) / 2, bottom - (bottom - top) / 2, int(old_size * SMIRK_CROP_SCALE))


def resize_for_deca(image_u8: np.ndarray) -> np.ndarray:
    """skimage resize to 512x512 with anti-aliasing, x255, truncating uint8 cast (§1.2 step 1)."""
    from skimage.transform import resize

    rgb = _as_rgb(image_u8)
    resized = resize(rgb, (DECA_IMAGE_SIZE, DECA_IMAGE_SIZE), anti_aliasing=True) * 255.0
    return resized.astype(np.uint8)


def _as_rgb(image_u8: np.ndarray) -> np.ndarray:
    if image_u8.ndim == 2:
        return np.repeat(image_u8[:, :, None], 3, axis=2)
    return image_u8[:, :, :3]


def _warp(image: np.ndarray, box: CropBox, preserve_range: bool) -> np.ndarray:
    from skimage.transform import AffineTransform, warp

    tform = AffineTransform(matrix=box.tform())
    return warp(image, tform.inverse, output_shape=(CROP_SIZE, CROP_SIZE), preserve_range=preserve_range)


def deca_crop(image512_u8: np.ndarray, box: CropBox) -> np.ndarray:
    """DECA input: warp(image/255) bilinear, zero padding -> float32 (3,224,224) in [0,1] (§1.2 step 6)."""
    crop = _warp(image512_u8 / 255.0, box, preserve_range=False)
    return np.ascontiguousarray(crop.transpose(2, 0, 1), dtype=np.float32)


def smirk_crop(frame_u8: np.ndarray, box: CropBox | None) -> np.ndarray:
    """SMIRK input: warp(uint8, preserve_range) -> truncating uint8 -> /255 -> float32 (3,224,224).

    Without landmarks upstream resizes the whole frame to 224x224 with cv2's default bilinear
    (§1.5); cv2 comes with mediapipe, so the same call is used here.
    """
    rgb = _as_rgb(frame_u8)
    if box is None:
        import cv2

        crop = cv2.resize(np.ascontiguousarray(rgb), (CROP_SIZE, CROP_SIZE))
    else:
        crop = _warp(rgb, box, preserve_range=True)
    crop = crop.astype(np.uint8).astype(np.float32) / 255.0
    return np.ascontiguousarray(crop.transpose(2, 0, 1))

"""MediaPipe FaceMesh (478 points) -> the 68-point iBUG layout that FAN gives DECA (guidance_maps.md §1.2).

DECA's crop uses only the bounding box of FAN's 68 points (min/max of x and y), so what matters
is that the subset spans the same extremes: the jaw contour (ear to ear, down to the chin) and
the eyebrow tops. Each iBUG point is matched to the MediaPipe mesh vertex at the same anatomical
place (by the canonical face mesh's vertex layout); the contour points are the nearest mesh
vertices on the face outline. How close the resulting boxes are to the SMIRK (all-478) box on
the shared face photos is measured in tests/test_driving_tracking.py and the README section.
"""
from __future__ import annotations

import numpy as np

# iBUG index ranges -> MediaPipe vertex ids.
JAW_0_16 = (162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389)
RIGHT_BROW_17_21 = (71, 63, 105, 66, 107)  # subject's right = image left
LEFT_BROW_22_26 = (336, 296, 334, 293, 301)
NOSE_BRIDGE_27_30 = (168, 197, 5, 4)
NOSE_BASE_31_35 = (75, 97, 2, 326, 305)
RIGHT_EYE_36_41 = (33, 160, 158, 133, 153, 144)
LEFT_EYE_42_47 = (362, 385, 387, 263, 373, 380)
OUTER_LIPS_48_59 = (61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181)
INNER_LIPS_60_67 = (78, 82, 13, 312, 308, 317, 14, 87)

MEDIAPIPE_TO_IBUG68 = np.array(
    JAW_0_16 + RIGHT_BROW_17_21 + LEFT_BROW_22_26 + NOSE_BRIDGE_27_30 + NOSE_BASE_31_35
    + RIGHT_EYE_36_41 + LEFT_EYE_42_47 + OUTER_LIPS_48_59 + INNER_LIPS_60_67,
    dtype=np.int64,
)
assert MEDIAPIPE_TO_IBUG68.shape == (68,)


def ibug68_from_mediapipe(landmarks_478: np.ndarray) -> np.ndarray:
    """(478, C) MediaPipe landmarks -> (68, C) in iBUG order."""
    if landmarks_478.shape[0] != 478:
        raise ValueError(f"expected 478 MediaPipe landmarks, got {landmarks_478.shape[0]}")
    return landmarks_478[MEDIAPIPE_TO_IBUG68]

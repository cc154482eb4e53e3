"""Writing raw video as YUV4MPEG2 (4:2:0): what Chromium's --use-file-for-fake-video-capture plays."""
from __future__ import annotations

from typing import Iterable

import numpy as np


def write_y4m(path, frames_rgb_u8: Iterable[np.ndarray], fps: int) -> int:
    """(H,W,3) uint8 RGB frames (even H and W) -> path; returns the frame count."""
    import av

    from engine.io.atomic import atomic_file
    count = 0
    with atomic_file(path) as f:
        for rgb in frames_rgb_u8:
            h, w = rgb.shape[:2]
            if count == 0:
                f.write(f"YUV4MPEG2 W{w} H{h} F{int(fps)}:1 Ip A1:1 C420jpeg\n".encode())
            yuv = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p")
            f.write(b"FRAME\n" + yuv.to_ndarray().tobytes())
            count += 1
    return count

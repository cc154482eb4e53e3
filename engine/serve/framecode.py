"""A frame number drawn into a strip of pixels below the picture, and read back after video coding.

The page stamps each camera frame before sending it; the server reads the code, carries it with the
frame through tracking, rendering and the runtime, and stamps it again below the output frame made
from it; the page reads it when that frame is displayed. So latency is matched per frame, on pixels,
whatever the transport drops, reorders or re-times. static/app.js implements the same layout.

Layout (a strip of height round(W / CELLS) under a W-wide picture): CELLS equal cells across the
width; cell 0 white and cell 1 black (references for the threshold), cells 2.. carry CODE_BITS bits
of the code then CHECK_BITS of a check (the code's nibbles XOR-ed), most significant bit first,
white = 1. Cells are 16 px wide for a 256 px frame: VP8/H.264 at low bitrates keep them readable.
"""
from __future__ import annotations

import numpy as np

CELLS = 16
CODE_BITS = 10
CHECK_BITS = 4
CODE_MOD = 1 << CODE_BITS  # codes wrap: a frame is matched to the newest stamp of its code
MIN_CONTRAST = 64  # white - black reference levels below this: not a code strip


def _round(x):
    return np.floor(np.asarray(x) + 0.5).astype(int)  # half up, as JavaScript's Math.round


def strip_height(width: int) -> int:
    return max(2, int(_round(width / CELLS)))


def check_bits(code: int) -> int:
    return (code ^ (code >> 4) ^ (code >> 8)) & ((1 << CHECK_BITS) - 1)


def _bits(code: int) -> list[int]:
    word = (code << CHECK_BITS) | check_bits(code)
    n = CODE_BITS + CHECK_BITS
    return [1, 0] + [(word >> (n - 1 - i)) & 1 for i in range(n)]


def stamp(image_rgb_u8: np.ndarray, code: int) -> np.ndarray:
    """(H,W,3) uint8 -> (H + strip, W, 3) with the code's strip below."""
    code %= CODE_MOD
    h, w = image_rgb_u8.shape[:2]
    sh = strip_height(w)
    out = np.zeros((h + sh, w, 3), np.uint8)
    out[:h] = image_rgb_u8
    edges = _round(np.arange(CELLS + 1) * w / CELLS)
    for i, bit in enumerate(_bits(code)):
        out[h:, edges[i]:edges[i + 1]] = 255 * bit
    return out


def split(frame_rgb_u8: np.ndarray) -> tuple[np.ndarray, int | None]:
    """A stamped frame -> (the picture above the strip, its code or None when unreadable)."""
    h_total, w = frame_rgb_u8.shape[:2]
    sh = strip_height(w)
    if h_total <= sh:
        return frame_rgb_u8, None
    return frame_rgb_u8[: h_total - sh], read(frame_rgb_u8[h_total - sh:])


def read(strip_rgb_u8: np.ndarray) -> int | None:
    """The code in a strip (its own rows only), or None (no contrast, failed check)."""
    sh, w = strip_rgb_u8.shape[:2]
    luma = strip_rgb_u8[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    cell_w = w / CELLS
    y0, y1 = int(sh * 0.25), max(int(sh * 0.25) + 1, int(round(sh * 0.75)))
    levels = []
    for i in range(CELLS):  # the middle half of each cell: away from blocking and ringing at the edges
        x0 = int(i * cell_w + cell_w * 0.25)
        x1 = max(x0 + 1, int(round(i * cell_w + cell_w * 0.75)))
        levels.append(float(luma[y0:y1, x0:x1].mean()))
    white, black = levels[0], levels[1]
    if white - black < MIN_CONTRAST:
        return None
    threshold = (white + black) / 2
    word = 0
    for level in levels[2:]:
        word = (word << 1) | int(level > threshold)
    code, check = word >> CHECK_BITS, word & ((1 << CHECK_BITS) - 1)
    return code if check_bits(code) == check else None

"""Triangle rasterisation of one frame on the CPU, in pytorch3d's conventions (guidance_maps.md §4,
§7): pixel centres, edge-function barycentrics with +1e-8 area, strict w > 0 inclusion (both
windings, no culling), min-z wins with lowest-face-id ties, degenerate-area and z < 1e-8 skips;
non-perspective interpolation. Vectorised over (face, pixel-in-bounding-box) candidates, processed
in chunks of faces. The guidance reference renderer and the synthetic head's texture baking use it.
"""
from __future__ import annotations

import numpy as np

F32 = np.float32
EPS = F32(1e-8)
MAX_CANDIDATES = 1 << 21  # pixel candidates per chunk: bounds memory (~100 MB) not results


def pixel_centres(size: int) -> np.ndarray:
    """pytorch3d-space coordinate of pixel centres along one axis: -(((2i + 1) / S) - 1)."""
    i = np.arange(size, dtype=F32)
    return -(((F32(2) * i + F32(1)) / F32(size)) - F32(1))


def edge(px, py, ax, ay, bx, by):
    """E(p; a, b) = (p.x - a.x)(b.y - a.y) - (p.y - a.y)(b.x - a.x), float32, no fusion."""
    return (px - ax) * (by - ay) - (py - ay) * (bx - ax)


def _pixel_range(lo: np.ndarray, hi: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Index range of pixels whose centre may lie in [lo, hi] (pytorch3d coords, descending)."""
    # centre(i) = 1 - (2i + 1)/S  =>  i = (S (1 - x) - 1) / 2 ; a small slack keeps it conservative
    first = np.ceil((size * (1.0 - hi.astype(np.float64)) - 1.0) / 2.0 - 1e-3)
    last = np.floor((size * (1.0 - lo.astype(np.float64)) - 1.0) / 2.0 + 1e-3)
    return np.clip(first, 0, size).astype(np.int64), np.clip(last, -1, size - 1).astype(np.int64)


class _ZPass:
    """One visibility pass's z-buffer: min z wins, lowest face id on exact ties."""

    def __init__(self, pixels: int):
        self.zbuf = np.full(pixels, np.inf, F32)
        self.p2f = np.full(pixels, -1, np.int32)
        self.bary = np.zeros((pixels, 3), F32)

    def offer(self, pix, pz, f, w) -> None:
        order = np.lexsort((f, pz, pix))  # per pixel: nearest first, then lowest face id
        pix, pz, f, w = pix[order], pz[order], f[order], w[order]
        first = np.ones(len(pix), bool)
        first[1:] = pix[1:] != pix[:-1]
        pix, pz, f, w = pix[first], pz[first], f[first], w[first]
        # earlier chunks hold lower face ids: replace only on strictly smaller z
        win = pz < self.zbuf[pix]
        pix = pix[win]
        self.zbuf[pix], self.p2f[pix], self.bary[pix] = pz[win], f[win], w[win]


def rasterize(verts_ndc: np.ndarray, faces: np.ndarray, height: int, width: int, depth_z: np.ndarray | None = None):
    """One frame: (V, 3) pytorch3d-space verts -> pix_to_face (H, W) int32, bary (H, W, 3).

    With depth_z (V,) (the depth pass's z), returns ((p2f, bary) of the main pass, (p2f, bary) of the
    depth pass): same candidates and barycentrics, each pass with its own z-test."""
    tri = verts_ndc[faces].astype(F32)  # (T, 3 corners, 3)
    x0, y0, z0 = tri[:, 0, 0], tri[:, 0, 1], tri[:, 0, 2]
    x1, y1, z1 = tri[:, 1, 0], tri[:, 1, 1], tri[:, 1, 2]
    x2, y2, z2 = tri[:, 2, 0], tri[:, 2, 1], tri[:, 2, 2]
    zd = None if depth_z is None else np.asarray(depth_z, F32)[faces]  # (T, 3)
    area = edge(x2, y2, x0, y0, x1, y1)
    main_ok = tri[:, :, 2].min(axis=1) >= EPS
    depth_ok = main_ok if zd is None else zd.min(axis=1) >= EPS
    usable = (main_ok | depth_ok) & (np.abs(area) > EPS)
    area_e = area + EPS

    c_first, c_last = _pixel_range(tri[:, :, 0].min(1), tri[:, :, 0].max(1), width)
    r_first, r_last = _pixel_range(tri[:, :, 1].min(1), tri[:, :, 1].max(1), height)
    n_cols = np.maximum(c_last - c_first + 1, 0)
    n_rows = np.maximum(r_last - r_first + 1, 0)
    counts = np.where(usable, n_cols * n_rows, 0)

    xs, ys = pixel_centres(width), pixel_centres(height)
    main, depth = _ZPass(height * width), (None if zd is None else _ZPass(height * width))

    for faces_idx in _chunks(counts):
        cnt = counts[faces_idx]
        f = np.repeat(faces_idx, cnt)
        start = np.repeat(np.cumsum(cnt) - cnt, cnt)
        k = np.arange(len(f), dtype=np.int64) - start
        col = c_first[f] + k % n_cols[f]
        row = r_first[f] + k // n_cols[f]
        px, py = xs[col], ys[row]
        ae = area_e[f]
        w0 = edge(px, py, x1[f], y1[f], x2[f], y2[f]) / ae
        w1 = edge(px, py, x2[f], y2[f], x0[f], y0[f]) / ae
        w2 = edge(px, py, x0[f], y0[f], x1[f], y1[f]) / ae
        inside = (w0 > 0) & (w1 > 0) & (w2 > 0)
        if not inside.any():
            continue
        pix = row * width + col
        w = np.stack([w0, w1, w2], axis=1)
        passes = [(main, main_ok, (z0[f], z1[f], z2[f]))]
        if depth is not None:
            passes.append((depth, depth_ok, (zd[f, 0], zd[f, 1], zd[f, 2])))
        for zpass, ok, (za, zb, zc) in passes:
            pz = w0 * za + w1 * zb + w2 * zc
            keep = inside & ok[f] & (pz >= 0)
            if keep.any():
                zpass.offer(pix[keep], pz[keep], f[keep], w[keep])
    shaped = [(p.p2f.reshape(height, width), p.bary.reshape(height, width, 3)) for p in (main, depth) if p]
    return shaped[0] if depth is None else tuple(shaped)


def _chunks(counts: np.ndarray):
    """Consecutive face-index ranges whose candidate counts sum to about MAX_CANDIDATES."""
    nonzero = np.flatnonzero(counts)
    if len(nonzero) == 0:
        return
    csum = np.cumsum(counts[nonzero])
    start = 0
    while start < len(nonzero):
        base = csum[start - 1] if start else 0
        stop = int(np.searchsorted(csum, base + MAX_CANDIDATES, side="right"))
        stop = max(stop, start + 1)
        yield nonzero[start:stop]
        start = stop


def interpolate(attr: np.ndarray, corner_idx: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """sum_i w_i attr[corner_i] for covered pixels: attr (N, C), corner_idx (P, 3), bary (P, 3)."""
    a = attr[corner_idx]  # (P, 3, C)
    w = bary[:, :, None]
    return (w[:, 0] * a[:, 0] + w[:, 1] * a[:, 1]) + w[:, 2] * a[:, 2]

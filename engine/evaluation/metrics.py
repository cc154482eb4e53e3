"""Image metrics against ground truth, numpy only (no downloaded networks). Images are uint8
(F,H,W,3) clips unless stated; errors are in 8-bit levels (0..255).

- PSNR over the whole clip (one MSE), capped at PSNR_CAP dB so identical clips give a finite number.
- SSIM as Wang et al. 2004: Gaussian window sigma 1.5 truncated to 11x11, K1 0.01, K2 0.03, L 255,
  population (co)variances, per channel, averaged over the valid window positions (no padding),
  channels and frames (the same definition as scikit-image's gaussian_weights=True,
  use_sample_covariance=False, which the test checks against).
- Foreground: a pixel whose largest channel differs from the identity's known background by more
  than FG_THRESHOLD levels; ground truth foreground = mask > 127. IoU per frame, averaged
  (a frame where both are empty counts 1). IoU mixes two failures, so both are kept apart too:
  fg_recall = the share of the true head found (a wrong pose misses head), fg_precision = the share of
  the found foreground that is head (background the output did not reproduce is found as foreground).
- Face colour error: per frame, |mean RGB of the output - mean RGB of the ground truth| over the
  ground-truth face (mask > 127), averaged over channels: the identity's tone, not its pose.
- Background error: mean |output - ground truth| over pixels the head never touches (mask == 0).
- Flicker: mean |(out[t+1] - out[t]) - (gt[t+1] - gt[t])|: temporal change the ground truth lacks.
"""
from __future__ import annotations

import numpy as np

PSNR_CAP = 100.0     # dB for identical images (MSE 0)
FG_THRESHOLD = 32    # levels; ground truth scored this way reaches IoU 0.96-0.99 (edge pixels)
SSIM_SIGMA, SSIM_RADIUS = 1.5, 5
SSIM_K1, SSIM_K2, SSIM_L = 0.01, 0.03, 255.0


def _f(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def psnr(out: np.ndarray, gt: np.ndarray) -> float:
    mse = float(np.mean((_f(out) - _f(gt)) ** 2))
    if mse == 0.0:
        return PSNR_CAP
    return min(PSNR_CAP, float(10.0 * np.log10(255.0 ** 2 / mse)))


def l1(out: np.ndarray, gt: np.ndarray) -> float:
    return float(np.mean(np.abs(_f(out) - _f(gt))))


def _gaussian_taps() -> np.ndarray:
    x = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return g / g.sum()


def _filter_valid(img: np.ndarray) -> np.ndarray:
    """Separable Gaussian over axes 1, 2 of (N,H,W,C), 'valid' positions only."""
    taps = _gaussian_taps()
    k = len(taps)
    h, w = img.shape[1] - k + 1, img.shape[2] - k + 1
    rows = sum(taps[i] * img[:, i:i + h] for i in range(k))
    return sum(taps[j] * rows[:, :, j:j + w] for j in range(k))


def ssim(out: np.ndarray, gt: np.ndarray) -> float:
    """Mean SSIM of two (F,H,W,C) or (H,W,C) uint8 images (H, W >= 11)."""
    a, b = _f(out), _f(gt)
    if a.ndim == 3:
        a, b = a[None], b[None]
    c1, c2 = (SSIM_K1 * SSIM_L) ** 2, (SSIM_K2 * SSIM_L) ** 2
    mu_a, mu_b = _filter_valid(a), _filter_valid(b)
    var_a = _filter_valid(a * a) - mu_a ** 2
    var_b = _filter_valid(b * b) - mu_b ** 2
    cov = _filter_valid(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def foreground(frames: np.ndarray, background_rgb01: np.ndarray, threshold: float = FG_THRESHOLD) -> np.ndarray:
    """(F,H,W) bool: pixels differing from the known background (H,W,3 in [0,1]) by > threshold levels."""
    return np.abs(_f(frames) - _f(background_rgb01)[None] * 255.0).max(axis=-1) > threshold


def _masks(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return (a[None], b[None]) if a.ndim == 2 else (a, b)


def _per_frame_share(num: np.ndarray, den: np.ndarray) -> float:
    """Mean over frames of |num| / |den|; 1 where den is empty (nothing to find, nothing found wrongly)."""
    num, den = num.reshape(len(num), -1).sum(1), den.reshape(len(den), -1).sum(1)
    return float(np.mean(np.where(den == 0, 1.0, num / np.maximum(den, 1))))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over frames of |a & b| / |a | b| for (F,H,W) bool masks; 1 where both are empty."""
    a, b = _masks(a, b)
    return _per_frame_share(a & b, a | b)


def mask_recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over frames of |found & truth| / |truth|."""
    found, truth = _masks(found, truth)
    return _per_frame_share(found & truth, truth)


def mask_precision(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over frames of |found & truth| / |found|."""
    found, truth = _masks(found, truth)
    return _per_frame_share(found & truth, found)


def face_colour_error(out: np.ndarray, gt: np.ndarray, mask_u8: np.ndarray) -> float:
    face = np.asarray(mask_u8) > 127
    errs = []
    for o, g, m in zip(_f(out), _f(gt), face):
        if m.any():
            errs.append(np.abs(o[m].mean(0) - g[m].mean(0)).mean())
    return float(np.mean(errs)) if errs else float("nan")


def background_error(out: np.ndarray, gt: np.ndarray, mask_u8: np.ndarray) -> float:
    bg = np.asarray(mask_u8) == 0
    if not bg.any():
        return float("nan")
    return float(np.abs(_f(out) - _f(gt))[bg].mean())


def flicker(out: np.ndarray, gt: np.ndarray) -> float:
    if len(out) < 2:
        return float("nan")
    return float(np.mean(np.abs(np.diff(_f(out), axis=0) - np.diff(_f(gt), axis=0))))


def score_clip(out: np.ndarray, gt: np.ndarray, mask_u8: np.ndarray, background_rgb01: np.ndarray) -> dict:
    """Every metric of one clip: out, gt (F,H,W,3) uint8, mask (F,H,W) uint8, background (H,W,3) [0,1]."""
    if out.shape != gt.shape:
        raise ValueError(f"output {out.shape} and ground truth {gt.shape} differ in shape")
    found, head = foreground(out, background_rgb01), np.asarray(mask_u8) > 127
    return {"psnr_db": psnr(out, gt), "ssim": ssim(out, gt), "l1": l1(out, gt),
            "fg_iou": mask_iou(found, head), "fg_recall": mask_recall(found, head),
            "fg_precision": mask_precision(found, head),
            "face_colour_err": face_colour_error(out, gt, mask_u8),
            "bg_err": background_error(out, gt, mask_u8), "flicker": flicker(out, gt)}


METRICS = ("psnr_db", "ssim", "l1", "fg_iou", "fg_recall", "fg_precision", "face_colour_err", "bg_err", "flicker")

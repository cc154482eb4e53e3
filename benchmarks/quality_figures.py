"""Figures of the quality benchmark: speed vs quality with the Pareto front (matplotlib, else PIL),
and a frame strip reference | guidance | output | ground truth."""
from __future__ import annotations

import pathlib

import numpy as np

from engine.io.atomic import atomic_file

PANELS = (("psnr_db", "PSNR vs ground truth (dB)"), ("fg_iou", "foreground-mask IoU (pose)"))
BASELINES = ("mean image", "copy the render map", "copy the reference")


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both (lower x = faster, higher y = better),
    in order of x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -np.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def pareto_plot(rows: list[dict], path: pathlib.Path) -> pathlib.Path:
    runs = [r for r in rows if r.get("kind") == "model" and r.get("s_per_frame")]
    if not runs:
        return path
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _pil_plot(runs, rows, path)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(12, 4.8))
    markers = {"torch": "o", "onnxruntime": "s", "tensorrt": "^"}
    for ax, (metric, label) in zip(axes, PANELS):
        pts = [(r["s_per_frame"], r[metric]) for r in runs]
        front = pareto_front(pts)
        for i, r in enumerate(runs):
            ax.scatter(*pts[i], marker=markers.get(r["backend"], "x"),
                       color="tab:red" if i in front else "tab:gray", zorder=3)
            ax.annotate(f"{r['variant']}", pts[i], fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.plot(*zip(*[pts[i] for i in front]), color="tab:red", lw=1, label="Pareto front")
        for name, style in zip(BASELINES, (":", "--", "-.")):
            base = next((r for r in rows if r["variant"] == name), None)
            if base is not None and base.get(metric) is not None:
                ax.axhline(base[metric], color="tab:blue", ls=style, lw=1, label=f"{name} (no model)")
        ax.set_xscale("log")
        ax.set_xlabel("s / frame (streaming runtime, this machine; log)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right" if metric == "psnr_db" else "lower left")
    fig.suptitle("Speed vs quality on held-out synthetic people (o torch, s onnxruntime; red: Pareto front)",
                 fontsize=9)
    fig.tight_layout()
    with atomic_file(path) as fh:
        fig.savefig(fh, dpi=110, format="png")
    plt.close(fig)
    return path


def _pil_plot(runs, rows, path: pathlib.Path) -> pathlib.Path:
    """Without matplotlib: one PSNR panel, log-x, dots + front, names beside the dots."""
    from PIL import Image, ImageDraw
    w, h, pad = 900, 500, 60
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    xs = np.log10([r["s_per_frame"] for r in runs])
    ys = np.array([r["psnr_db"] for r in runs])
    lo_x, hi_x = xs.min() - 0.1, xs.max() + 0.1
    lo_y, hi_y = ys.min() - 1, ys.max() + 1
    to = lambda x, y: (pad + (x - lo_x) / (hi_x - lo_x) * (w - 2 * pad),  # noqa: E731
                       h - pad - (y - lo_y) / (hi_y - lo_y) * (h - 2 * pad))
    front = pareto_front(list(zip(xs, ys)))
    d.line([to(xs[i], ys[i]) for i in front], fill="red", width=2)
    for i, r in enumerate(runs):
        x, y = to(xs[i], ys[i])
        d.ellipse([x - 4, y - 4, x + 4, y + 4], fill="red" if i in front else "gray")
        d.text((x + 6, y - 6), r["variant"], fill="black")
    d.text((pad, 10), "PSNR (dB, y) vs log10 s/frame (x); red: Pareto front", fill="black")
    with atomic_file(path) as fh:
        img.save(fh, format="PNG")
    return path


def frame_strip(cases, outputs: dict, path: pathlib.Path, variant: str = "quality", scale: int = 2) -> pathlib.Path:
    """Rows: first and last frame of up to 3 cases; columns: reference | guidance render | output | truth."""
    from PIL import Image, ImageDraw
    rows = []
    for case in cases[:3]:
        out = outputs.get((variant, case.name))
        if out is None:
            continue
        for f in (0, len(out) - 1):
            rows.append(np.concatenate([case.clip.reference, case.clip.maps["render"][f], out[f],
                                        case.clip.frames[f]], axis=1))
    grid = np.concatenate(rows, axis=0)
    img = Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    header = Image.new("RGB", (img.width, 16), "white")
    d = ImageDraw.Draw(header)
    cell = img.width // 4
    for i, name in enumerate(("reference", "guidance (render)", f"output ({variant})", "ground truth")):
        d.text((i * cell + 4, 2), name, fill="black")
    full = Image.new("RGB", (img.width, img.height + 16), "white")
    full.paste(header, (0, 0))
    full.paste(img, (0, 16))
    with atomic_file(path) as fh:
        full.save(fh, format="PNG")
    return path

"""Streaming runtime benchmark: per preset and backend, throughput, latency and stage timings, next
to the upstream-style offline run on the same backend and model size *in the same run* (ratio), and
how far the faster presets are from `quality` (PSNR, same noise) with their frame-to-frame change.

    .venv/bin/python benchmarks/bench_streaming.py                 # tiny model, CPU, torch + onnxruntime
    .venv/bin/python benchmarks/bench_streaming.py --backends torch --frames 12

Writes benchmarks/results/streaming.{json,md} and a plot (streaming.png with matplotlib, else streaming.svg).
Input: the built-in head motion of the synthetic head (real rendered guidance maps), the head render as portrait.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS_DIR, machine_info, write_results  # noqa: E402
from engine.runtime.presets import PRESETS  # noqa: E402
from engine.runtime.sinks import CollectingSink  # noqa: E402


def demo_inputs(frames: int, size: int):
    from engine.flame.synthetic import synthetic_head
    from engine.guidance.demo_motion import demo_flame_params
    from engine.guidance.pipeline import render_guidance_maps
    from engine.io.images import resize_frames
    maps = render_guidance_maps(demo_flame_params(frames), synthetic_head())
    portrait = maps["render"][0]
    return portrait, {t: resize_frames(m, (size, size)) for t, m in maps.items()}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def temporal_change(frames: np.ndarray) -> float:
    """Mean absolute change between consecutive frames (8-bit levels): flicker shows as a larger value."""
    return float(np.mean(np.abs(np.diff(frames.astype(np.int16), axis=0))))


def run_preset(backend, preset: str, portrait, maps, size: int, seed: int, overrides=None, source=None):
    from engine.runtime.presets import preset_settings
    from engine.runtime.runner import StreamRuntime
    from engine.runtime.sources import MapsSource
    runtime = StreamRuntime(backend, preset_settings(preset, **(overrides or {})), size, seed=seed)
    runtime.set_identity(portrait)
    sink = CollectingSink()
    t0 = time.perf_counter()
    report = runtime.run(source if source is not None else MapsSource(maps), [sink])
    return np.stack(sink.frames), report, time.perf_counter() - t0


def offline_torch(model, portrait, maps, size: int, seed: int, steps: int = 20):
    """Upstream's loop as the lead's offline path runs it (engine.offline.animate_offline), end to end."""
    from engine.offline import animate_offline
    from engine.sampling.offline import OfflineSettings
    t0 = time.perf_counter()
    frames = animate_offline(model, portrait, maps, size, OfflineSettings(steps=steps), seed=seed)
    return frames, time.perf_counter() - t0


def warm_up(backend, preset: str, portrait, maps, size: int, seed: int) -> None:
    """The first call of each tensor shape is slow (oneDNN / ORT / cuDNN pick kernels then): run every
    shape of the measured run once — quality with 1 step on the whole clip, the streaming presets on a
    clip just long enough to fill and drain their windows."""
    from engine.runtime.presets import preset_settings
    if preset == "quality":
        run_preset(backend, preset, portrait, maps, size, seed, dict(steps=1))
        return
    s = preset_settings(preset)
    n = 2 * s.window + 1
    run_preset(backend, preset, portrait, {t: m[:n] for t, m in maps.items()}, size, seed)


def make_backends(names, args, model):
    from engine.backends.torch_backend import TorchBackend
    out = {}
    for name in names:
        if name == "torch":
            out[name] = TorchBackend(model)
        elif name == "onnxruntime":
            from engine.preprocess import read_text_embedding
            from engine.backends.ort_backend import OrtBackend
            onnx_dir = args.onnx or export_tiny(model, args.size)
            out[name] = OrtBackend.from_export_dir(onnx_dir, read_text_embedding(args.weights_dir),
                                                   threads=args.threads)
        else:
            raise SystemExit(f"unknown backend {name} (tensorrt runs in benchmarks/gpu_suite.py)")
    return out


def export_tiny(model, size: int) -> str:
    from export.exporter import ExportOptions, export_all

    from engine.graph_specs import AxisRange, ExportPlan
    out = tempfile.mkdtemp(prefix="mprt-bench-onnx-")
    print(f"exporting ONNX graphs to {out} ...", file=sys.stderr)
    export_all(model, ExportPlan(image_size=(size, size), frames=AxisRange(1, 12, 32)), out,
               ExportOptions(slim=False, parity_frames=()), progress=lambda s: None)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backends", default="torch,onnxruntime", help="comma-separated: torch, onnxruntime")
    p.add_argument("--frames", type=int, default=24, help="clip length (default 24)")
    p.add_argument("--size", type=int, default=None, help="output size (default: 128 tiny, 512 with --weights)")
    p.add_argument("--weights", default=None, help="upstream weights folder (default: the tiny random model)")
    p.add_argument("--onnx", default=None, help="an `mprt export` dir for onnxruntime (default: export the tiny model)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads (default 1: stable timings on a shared 2-core machine)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out-dir", default=str(RESULTS_DIR))
    args = p.parse_args(argv)
    import torch

    from engine.model import MagicPortraitModel
    from engine.weights.tiny import TINY_IMAGE_SIZE, ensure_tiny_weights
    torch.set_num_threads(args.threads)
    args.weights_dir = args.weights or ensure_tiny_weights()
    args.size = args.size or (512 if args.weights else TINY_IMAGE_SIZE)
    model = MagicPortraitModel.from_weights(args.weights_dir)
    portrait, maps = demo_inputs(args.frames, args.size)
    backends = make_backends(args.backends.split(","), args, model)

    rows = []
    for name, backend in backends.items():
        results = {}
        if name == "torch":
            offline_torch(model, portrait, maps, args.size, args.seed, steps=1)  # warm-up, same shapes
            frames, seconds = offline_torch(model, portrait, maps, args.size, args.seed)
            results["offline (upstream loop)"] = (frames, None, seconds)
        for preset in PRESETS:
            warm_up(backend, preset, portrait, maps, args.size, args.seed)
            results[preset] = run_preset(backend, preset, portrait, maps, args.size, args.seed)
        base_key = "offline (upstream loop)" if name == "torch" else "quality"
        base_fps = args.frames / results[base_key][2]
        quality = results["quality"][0]
        for label, (frames, report, seconds) in results.items():
            row = {"backend": name, "run": label, "frames": len(frames), "wall_s": round(seconds, 3),
                   "fps": round(len(frames) / seconds, 3),
                   "x_offline": round(len(frames) / seconds / base_fps, 2),
                   "x_offline_steady": round(report["steady_fps"] / base_fps, 2) if report and report["steady_fps"]
                   else None,
                   "psnr_vs_quality_db": round(psnr(frames, quality), 2) if label != "quality" else None,
                   "temporal_change": round(temporal_change(frames), 2)}
            if report:
                s = report["settings"]
                row.update({"mode": s["mode"], "steps": s["steps"],
                            "cfg": "all" if s["cfg_steps"] is None else s["cfg_steps"],
                            "steady_fps": report["steady_fps"], "first_frame_s": report["first_frame_s"],
                            "latency_p50_ms": report["latency"].get("p50_ms"),
                            "latency_p95_ms": report["latency"].get("p95_ms"),
                            "unet_calls": report["stages"]["unet"]["count"],
                            "unet_p50_ms": report["stages"]["unet"]["p50_ms"],
                            "unet_p95_ms": report["stages"]["unet"]["p95_ms"],
                            "guidance_p50_ms": report["stages"]["guidance_encode"]["p50_ms"],
                            "decode_p50_ms": report["stages"]["decode"]["p50_ms"]})
            rows.append(row)
            print(row, file=sys.stderr)
    meta = {**machine_info(), "model": "tiny random" if not args.weights else str(args.weights),
            "size": args.size, "frames": args.frames, "torch_threads": args.threads,
            "input": "built-in head motion of the synthetic head (rendered guidance maps)"}
    notes = ["x_offline: throughput over the upstream-style offline run on the same backend in this run "
             "(torch: engine.offline.animate_offline; onnxruntime: the quality preset, i.e. the same loop); "
             "every run is preceded by an unmeasured warm-up with the same tensor shapes. steady_fps / "
             "x_offline_steady: after the first output frame (a stream's start-up excluded).",
             "psnr_vs_quality_db: PSNR of each run's frames against the quality preset's (same initial noise); "
             "temporal_change: mean |frame[i+1] - frame[i]| in 8-bit levels.",
             "Latency in file mode counts from a frame's arrival at the runtime to its write; quality emits "
             "only after the whole clip, by design.", "Target (CPU, tiny): realtime >= 10x the offline throughput."]
    columns = ["backend", "run", "mode", "steps", "cfg", "fps", "x_offline", "steady_fps", "x_offline_steady",
               "first_frame_s",
               "latency_p50_ms", "latency_p95_ms", "unet_calls", "unet_p50_ms", "guidance_p50_ms", "decode_p50_ms",
               "psnr_vs_quality_db", "temporal_change"]
    out_dir = pathlib.Path(args.out_dir)
    write_results("streaming", "Streaming runtime: presets x backends vs the offline loop", rows, columns, meta,
                  notes, out_dir)
    plot(rows, out_dir)
    return 0


def plot(rows, out_dir: pathlib.Path) -> pathlib.Path:
    labels = [f"{r['backend']}\n{r['run']}" for r in rows]
    values = [r["x_offline"] for r in rows]
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return write_svg_bars(labels, values, out_dir / "streaming.svg")
    fig, ax = plt.subplots(figsize=(max(6, len(rows) * 1.2), 4))
    ax.bar(range(len(rows)), values, color=["#999" if "offline" in l or "quality" in l else "#3a7" for l in labels])
    ax.axhline(10, color="r", ls="--", lw=1, label="realtime target 10x")
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel("throughput / offline throughput")
    ax.legend()
    fig.tight_layout()
    path = out_dir / "streaming.png"
    tmp = out_dir / ".streaming.partial.png"
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)
    return path


def write_svg_bars(labels, values, path: pathlib.Path) -> pathlib.Path:
    w, h, pad = 90 * len(values) + 60, 300, 40
    top = max(max(values), 10) * 1.1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 60}">']
    y10 = h - (h - pad) * 10 / top
    parts.append(f'<line x1="40" x2="{w}" y1="{y10:.1f}" y2="{y10:.1f}" stroke="red" stroke-dasharray="4"/>')
    for i, (label, v) in enumerate(zip(labels, values)):
        bh = (h - pad) * v / top
        x = 50 + 90 * i
        parts.append(f'<rect x="{x}" y="{h - bh:.1f}" width="60" height="{bh:.1f}" fill="#3a7"/>')
        parts.append(f'<text x="{x}" y="{h - bh - 4:.1f}" font-size="11">{v:.1f}x</text>')
        for j, line in enumerate(label.split("\n")):
            parts.append(f'<text x="{x}" y="{h + 15 + 12 * j}" font-size="9">{line}</text>')
    parts.append("</svg>")
    tmp = path.with_name("." + path.name + ".partial")
    tmp.write_text("\n".join(parts))
    tmp.replace(path)
    return path


if __name__ == "__main__":
    sys.exit(main())

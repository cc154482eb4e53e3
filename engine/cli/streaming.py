"""Command-line pieces shared by `mprt animate`, `mprt live` and `mprt demo`: streaming options, the
backend from its options (engine.backends.registry.open_backend), outputs (video / frames folder /
preview / JSON report) and the run itself."""
from __future__ import annotations

import sys

from engine.errors import InputError


def add_stream_options(p, default_preset: str) -> None:
    from engine.cli.arg_types import finite_float, int_at_least, nonnegative_int, positive_int
    from engine.runtime.presets import PRESETS
    from engine.sampling.schedulers import scheduler_names
    g = p.add_argument_group("streaming (preset, then any of these overrides)")
    g.add_argument("--preset", default=default_preset, choices=list(PRESETS),
                   help="; ".join(f"{n}: {p.summary}" for n, p in PRESETS.items()) + f" (default {default_preset})")
    g.add_argument("--scheduler", default=None, choices=scheduler_names(),
                   help="noise scheduler (default: the preset's, ddim)")
    g.add_argument("--steps", type=positive_int, default=None,
                   help="scheduler steps (quality 20; streaming presets 1..20)")
    g.add_argument("--guidance-scale", type=finite_float, default=None,
                   help="CFG scale; <= 1 disables CFG (default: the model's own, its magicportrait.json's "
                   "guidance_scale; 3.5 for MagicPortrait's weights)")
    g.add_argument("--cfg-steps", type=int_at_least(-1), default=None,
                   help="CFG on the first K steps only; -1 = every step (upstream), 0 = never")
    g.add_argument("--context-frames", "--window", dest="window", type=positive_int, default=None,
                   help="window length in frames, <= 32 (quality: context windows, default 12)")
    g.add_argument("--context-overlap", "--overlap", dest="overlap", type=nonnegative_int, default=None,
                   help="frames shared by consecutive windows (quality default 1, balanced 4)")
    g.add_argument("--frames-per-stage", type=positive_int, default=None,
                   help="realtime (stream-batch): frames finished per UNet call (default 2)")
    g.add_argument("--seed", type=nonnegative_int, default=42, help="initial-noise seed (default 42)")
    g.add_argument("--render-backend", choices=("auto", "reference", "host", "cuda"), default="auto",
                   help="guidance-map rasteriser for FLAME / live input: auto (default: the CUDA kernel on an "
                   "NVIDIA GPU, else the fused kernel's host build, else the CPU reference), or one of them")
    b = p.add_argument_group("backend")
    from engine.backends.registry import backend_names
    b.add_argument("--backend", default="torch", choices=backend_names(), help="inference backend (default torch)")
    b.add_argument("--onnx", metavar="DIR", help="onnxruntime: an `mprt export` directory")
    b.add_argument("--engines", metavar="DIR", help="tensorrt: a `mprt build` directory")
    b.add_argument("--triton-url", metavar="URL", help="triton: a Triton server with an `mprt export --triton` "
                   "repository, host:port (HTTP, e.g. localhost:8000) or grpc://host:port")
    b.add_argument("--precision", choices=("fp32", "fp16"), default=None,
                   help="graph precision for onnxruntime/tensorrt (default fp32 / fp16)")
    b.add_argument("--no-cuda-graph", action="store_true", help="tensorrt: do not capture CUDA graphs")
    o = p.add_argument_group("outputs and reporting")
    o.add_argument("--frames-dir", metavar="DIR", help="also write every output frame as PNG into DIR")
    o.add_argument("--preview", action="store_true", help="show frames in a window (skipped without a display)")
    o.add_argument("--report", metavar="JSON", help="write timings (p50/p95 per stage), fps, latency as JSON")
    o.add_argument("--status", action="store_true", help="print the live status line even when not on a terminal")


def stream_settings(args, backend=None):
    import dataclasses

    from engine.runtime.presets import preset_settings
    cfg = None if args.cfg_steps is None or args.cfg_steps < 0 else args.cfg_steps
    settings = preset_settings(args.preset, scheduler=args.scheduler, steps=args.steps,
                               guidance_scale=args.guidance_scale, cfg_steps=cfg,
                               window=args.window, overlap=args.overlap, frames_per_stage=args.frames_per_stage)
    if args.cfg_steps is not None and args.cfg_steps < 0:
        settings = dataclasses.replace(settings, cfg_steps=None).validate()
    if backend is not None:  # a distilled student's sampling, or the model's own CFG scale
        from engine.runtime.presets import settings_for_backend
        settings = settings_for_backend(settings, backend.info, args.scheduler, args.guidance_scale is not None)
    return settings


def build_backend(args):
    """-> (backend, default output size) for --backend and its options (engine.backends.registry)."""
    from engine.backends.registry import open_backend
    precision = ("fp16" if args.fp16 else "fp32") if args.backend == "torch" else args.precision
    if args.backend == "torch" and args.fp16 and args.device == "cpu":
        raise InputError("--fp16: half precision needs a GPU device (got --device cpu)")
    from engine.runtime.presets import PRESETS
    fast = PRESETS[args.preset].prefers_student  # realtime: student and tiny decoder when present
    student = args.student if args.student is not None else ("auto" if fast else None)
    decoder = args.decoder if args.decoder is not None else ("auto" if fast else None)
    backend = open_backend(args.backend, weights=args.weights, onnx=args.onnx, engines=args.engines,
                           device=args.device, precision=precision, cuda_graphs=not args.no_cuda_graph,
                           url=args.triton_url, student=student, decoder=decoder)
    return backend, backend.info.image_size


def open_sinks(args, fps: float, video_path=None) -> list:
    from engine.runtime.runner import abort_sinks
    from engine.runtime.sinks import FolderSink, VideoSink, open_preview
    sinks = []
    try:
        if video_path:
            sinks.append(VideoSink(video_path, fps, overwrite=args.overwrite))
        if args.frames_dir:
            sinks.append(FolderSink(args.frames_dir, overwrite=args.overwrite))
        if args.preview:
            preview, why = open_preview()
            print(why, file=sys.stderr)
            if preview:
                sinks.append(preview)
    except BaseException:
        abort_sinks(sinks)
        raise
    return sinks


def run_stream(args, backend, size: int, portrait, source, sinks, noise=None) -> dict:
    """Identity once, then the stream; prints a summary, writes --report. Returns the report."""
    from engine.runtime.runner import StreamRuntime
    from engine.runtime.stats import StatusLine, write_json_report
    try:  # the sinks are open: a bad setting or portrait must not leave partial outputs behind
        if args.report:
            from engine.io.video_writer import check_output_path
            check_output_path(args.report, args.overwrite)
        settings = stream_settings(args, backend)
        runtime = StreamRuntime(backend, settings, size, seed=args.seed)
        runtime.set_identity(portrait)
    except BaseException:
        from engine.runtime.runner import abort_sinks
        abort_sinks(sinks)
        raise
    print(f"streaming {source.describe()} with preset {args.preset} ({settings.mode}, {settings.steps} "
          f"{settings.scheduler} steps, CFG {'on' if settings.uses_cfg(0) else 'off'}) on {backend.info.name} "
          f"{backend.info.device} {backend.info.precision}; denoiser: {backend.info.denoiser}; decoder: "
          f"{backend.info.decoder}", file=sys.stderr)
    report = runtime.run(source, sinks, StatusLine(force=args.status), noise=noise)
    report["preset"] = args.preset
    lat, unet = report["latency"], report["stages"].get("unet", {})
    print(f"{report['frames_out']} frames in {report['wall_s']:.1f} s: {report['fps']:.2f} fps, latency p50 "
          f"{lat.get('p50_ms', 0):.0f} ms p95 {lat.get('p95_ms', 0):.0f} ms, UNet p50 {unet.get('p50_ms', 0):.0f} ms "
          f"x {unet.get('count', 0)} calls, dropped {report['dropped_input_frames']}", file=sys.stderr)
    if args.report:
        write_json_report(args.report, report, overwrite=args.overwrite)
    return report

"""`mprt animate`: animate a portrait from guidance maps or FLAME parameters through the streaming runtime."""
from __future__ import annotations

import sys

from engine.cli.arg_types import image_size, positive_float, positive_int
from engine.cli.common import add_driving_options, add_model_options, frame_encoder


def register(sub) -> None:
    p = sub.add_parser(
        "animate", help="animate a portrait from guidance maps or FLAME parameters and write a video",
        description="Animate the portrait --source with the motion in --guidance (a folder in upstream's layout, "
        "<dir>/{depth,normal,render}/<frame files> sorted by name) or --flame (a FLAME parameter file, rendered to "
        "guidance maps as the frames are needed), and write an H.264 MP4. The default preset `quality` reproduces "
        "upstream's offline sampling exactly: DDIM (v-prediction, zero-SNR, trailing) 20 steps, classifier-free "
        "guidance 'with vs without reference' on every step, context windows of 12 frames with overlap 1. "
        "`balanced` and `realtime` stream with fewer steps (see --preset).")
    p.add_argument("--source", required=True, help="portrait image (any format PIL reads)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--guidance", metavar="DIR", help="guidance folder (depth/ normal/ render/)")
    src.add_argument("--flame", metavar="PARAMS.npz", help="FLAME parameters (`mprt track` / render-guidance format)")
    src.add_argument("--driving", metavar="VIDEO|DIR",
                     help="driving video or frame folder: tracked (as `mprt track`) against --source, then rendered")
    add_driving_options(p)
    p.add_argument("--head-model", metavar="PATH",
                   help="--flame: FLAME model (generic_model.pkl or .npz); default: the built-in synthetic head")
    p.add_argument("--out", help="output video (.mp4); needed unless --frames-dir is given")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--grid", metavar="PATH", help="also write a side-by-side video: source | maps | output")
    p.add_argument("--max-frames", type=positive_int, default=None, help="use only the first N frames")
    p.add_argument("--size", type=image_size, default=None,
                   help="square output size in pixels, a multiple of 8 (default 512; 128 for the tiny model; "
                   "an export's size)")
    p.add_argument("--fps", type=positive_float, default=24.0, help="output frame rate (default 24)")
    from engine.cli.streaming import add_stream_options
    add_stream_options(p, default_preset="quality")
    add_model_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.cli.outputs import check_run_outputs
    from engine.errors import InputError
    from engine.io.images import read_rgb_image

    if not args.out and not args.frames_dir:
        raise InputError("give --out VIDEO.mp4 and/or --frames-dir DIR")
    check_run_outputs(args, {"--source": args.source, "--flame": args.flame, "--driving": args.driving,
                             "--head-model": args.head_model}, args.size)
    source_image = read_rgb_image(args.source, "--source")
    frames = open_source(args)
    report = stream(args, source_image, frames)
    return 1 if report["source_error"] else 0  # a source that failed mid-stream is a failed run


def open_source(args):
    from engine.runtime.sources import FlameParamsSource, guidance_folder_source
    if args.guidance:
        return guidance_folder_source(args.guidance, args.max_frames)
    if args.driving:
        params, name = track_for_animate(args), f"driving {args.driving}"
    else:
        from engine.flame.params import FlameParams
        params, name = FlameParams.load(args.flame), f"FLAME params {args.flame}"
    return FlameParamsSource(params, load_head_model(args.head_model), max_frames=args.max_frames,
                             name=name, renderer=args.render_backend)


def track_for_animate(args):
    """Driving clip + source portrait -> FLAME parameters, as `mprt track` computes them."""
    from engine.driving.pipeline import TrackingConfig, track_driving_detailed
    if args.random_encoders:
        print("mprt animate: WARNING: --random-encoders: DECA and SMIRK run with RANDOM weights; "
              "the driving motion is meaningless (tests/demos only)", file=sys.stderr)
    result = track_driving_detailed(args.driving, args.source, args.driving_weights, landmarker=args.landmarker,
                                    random_weights=args.random_encoders, frame_encoder=frame_encoder(args),
                                    config=TrackingConfig(max_frames=args.max_frames))
    print(f"tracked {result.frame_count} driving frames ({len(result.no_face_frames)} without a face, held)",
          file=sys.stderr)
    return result.params


def load_head_model(path):
    if path:
        from engine.flame.loaders import load_flame_model
        return load_flame_model(path)
    from engine.flame.synthetic import synthetic_head
    print("note: no --head-model: rendering with the built-in synthetic head (not FLAME)", file=sys.stderr)
    return synthetic_head()


def stream(args, source_image, frames) -> dict:
    """Run `frames` through the runtime into --out / --frames-dir / preview / --grid, all streamed."""
    from engine.cli.streaming import build_backend, open_sinks, run_stream
    from engine.runtime.runner import abort_sinks
    from engine.runtime.sinks import GridSink
    from engine.runtime.sources import RecordingSource
    backend, default = build_backend(args)
    size = args.size or default
    recorder = RecordingSource(frames) if args.grid else frames
    sinks = open_sinks(args, args.fps, args.out)
    if args.grid:
        try:
            sinks.append(GridSink(args.grid, args.fps, source_image, recorder, overwrite=args.overwrite))
        except BaseException:
            abort_sinks(sinks)
            raise
    report = run_stream(args, backend, size, source_image, recorder, sinks)
    if args.out and report["frames_out"]:
        print(f"wrote {report['frames_out']} frames ({size}x{size}) to {args.out}")
    if args.frames_dir and report["frames_out"]:
        print(f"wrote {report['frames_out']} PNG frames to {args.frames_dir}")
    if args.grid and report["frames_out"]:
        print(f"wrote side-by-side grid to {args.grid}")
    return report

"""`mprt animate`: animate a portrait from guidance maps or FLAME parameters through the streaming runtime."""
from __future__ import annotations

import sys

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
    p.add_argument("--max-frames", type=int, default=None, help="use only the first N frames")
    p.add_argument("--size", type=int, default=None,
                   help="square output size in pixels (default 512; 128 for the tiny model; an export's size)")
    p.add_argument("--fps", type=float, default=24.0, help="output frame rate (default 24)")
    from engine.cli.streaming import add_stream_options
    add_stream_options(p, default_preset="quality")
    add_model_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.errors import InputError
    from engine.io.images import read_rgb_image
    from engine.io.video_writer import check_output_path

    if not args.out and not args.frames_dir:
        raise InputError("give --out VIDEO.mp4 and/or --frames-dir DIR")
    for path in (args.out, args.grid):
        if path:
            check_output_path(path, args.overwrite)
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames: expected >= 1, got {args.max_frames}")
    source_image = read_rgb_image(args.source)
    frames = open_source(args)
    stream(args, source_image, frames)
    return 0


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
    """Run `frames` through the runtime into --out / --frames-dir / preview, then the --grid."""
    from engine.cli.streaming import build_backend, open_sinks, run_stream
    from engine.runtime.sinks import CollectingSink
    from engine.runtime.sources import RecordingSource
    backend, default = build_backend(args)
    size = args.size or default
    recorder = RecordingSource(frames) if args.grid else frames
    collected = CollectingSink() if args.grid else None
    sinks = open_sinks(args, args.fps, args.out) + ([collected] if collected else [])
    report = run_stream(args, backend, size, source_image, recorder, sinks)
    if args.out and report["frames_out"]:
        print(f"wrote {report['frames_out']} frames ({size}x{size}) to {args.out}")
    if args.frames_dir and report["frames_out"]:
        print(f"wrote {report['frames_out']} PNG frames to {args.frames_dir}")
    if collected and collected.frames:
        write_grid(args.grid, args.fps, args.overwrite, source_image, recorder.maps, collected)
        print(f"wrote side-by-side grid to {args.grid}")
    return report


def write_grid(path, fps, overwrite, source_image, maps_by_index, collected) -> None:
    import numpy as np

    from engine.io.images import side_by_side
    from engine.io.images import resize_frames
    from engine.io.video_writer import VideoWriter
    out = np.stack(collected.frames)
    n, size = len(out), out.shape[1]
    src = np.repeat(resize_frames(source_image[None], (size, size)), n, axis=0)
    maps = [resize_frames(np.stack([maps_by_index[i][t] for i in collected.indices]), (size, size))
            for t in ("depth", "normal", "render")]
    with VideoWriter(path, fps, overwrite=overwrite) as w:
        for f in side_by_side(src, *maps, out):
            w.write(f)

"""`mprt track`: driving video (or frame folder) + source portrait -> per-frame FLAME parameters."""
from __future__ import annotations

import sys

from engine.cli.arg_types import nonnegative_float, positive_float, positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "track", help="track faces in a driving video and write per-frame FLAME parameters (.npz)",
        description="Track the face in every driving frame (MediaPipe FaceLandmarker), encode the driving "
        "head rotation (DECA E_flame) and expression + jaw (SMIRK), mix them with the source portrait's "
        "shape, texture, light, camera and crop (DECA, computed once and cached), and write the .npz that "
        "`mprt render-guidance` and `mprt animate --flame` read. Needs deca_model.tar and SMIRK_em1.pt in "
        "--weights DIR, or --random-encoders for a demo.")
    p.add_argument("--driving", required=True, metavar="VIDEO|DIR",
                   help="driving video file, or a folder of frame images (taken in name order)")
    p.add_argument("--source", required=True, metavar="IMG", help="source portrait image")
    p.add_argument("--out", required=True, metavar="PARAMS.npz", help="output FLAME parameters file")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--weights", metavar="DIR", default=None,
                   help="folder with deca_model.tar and SMIRK_em1.pt (and optionally face_landmarker.task)")
    p.add_argument("--landmarker", metavar="PATH", default=None,
                   help="MediaPipe face_landmarker.task (default: the one in --weights DIR)")
    p.add_argument("--random-encoders", action="store_true",
                   help="use RANDOM encoder weights (tests/demos only: the parameters are meaningless)")
    p.add_argument("--no-face", choices=("hold", "skip", "upstream"), default="hold",
                   help="frames without a face: hold the last parameters (default), skip them, or do what "
                   "upstream does (encode the whole frame)")
    p.add_argument("--tracker-mode", choices=("video", "image"), default=None,
                   help="MediaPipe mode (default: video for a video file, image for a frame folder)")
    p.add_argument("--max-frames", type=positive_int, default=None, help="use only the first N driving frames")
    p.add_argument("--batch-size", type=positive_int, default=8, help="frames per encoder batch (default 8)")
    p.add_argument("--fps", type=positive_float, default=25.0, help="frame rate of a frame folder (default 25)")
    p.add_argument("--smooth", action="store_true",
                   help="One-Euro smoothing of pose/expression/jaw (off by default: upstream has none)")
    p.add_argument("--smooth-min-cutoff", type=positive_float, default=1.0,
                   help="One-Euro min cutoff in Hz (default 1.0)")
    p.add_argument("--smooth-beta", type=nonnegative_float, default=0.05,
                   help="One-Euro speed coefficient (default 0.05)")
    p.add_argument("--device", default="cpu", help="torch device for the encoders (default cpu)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads for the encoders (default with --device cpu: all cores but one, "
                   "leaving one to the face-tracking worker)")
    p.add_argument("--cache-dir", default=None,
                   help="where source parameters are cached (default $MPRT_CACHE_DIR/sources or "
                   "~/.cache/mprt/sources; '' disables)")
    p.set_defaults(func=run)


PARAMS_BYTES = 1 << 16  # the .npz of a few hundred frames


def run(args) -> int:
    import os

    from engine.driving.one_euro import OneEuroConfig
    from engine.driving.pipeline import TrackingConfig, track_driving_detailed
    from engine.io.destinations import check_distinct, check_output_path

    # before any tracking: the parameters file must be writable where asked
    check_distinct({"--out": args.out}, {"--driving": args.driving, "--source": args.source})
    out = check_output_path(args.out, args.overwrite, "--out", PARAMS_BYTES)
    if args.random_encoders:
        print("mprt track: WARNING: --random-encoders: DECA and SMIRK run with RANDOM weights; "
              "the parameters written are meaningless (tests/demos only)", file=sys.stderr)
    threads = args.threads
    if threads is None and args.device == "cpu":
        threads = max(1, len(os.sched_getaffinity(0)) - 1) if hasattr(os, "sched_getaffinity") \
            else max(1, (os.cpu_count() or 2) - 1)
    smoothing = OneEuroConfig(args.smooth_min_cutoff, args.smooth_beta) if args.smooth else None
    config = TrackingConfig(no_face=args.no_face, tracker_mode=args.tracker_mode, batch_size=args.batch_size,
                            max_frames=args.max_frames, folder_fps=args.fps, smoothing=smoothing,
                            device=args.device, cache_dir=args.cache_dir, torch_threads=threads)
    result = track_driving_detailed(args.driving, args.source, args.weights, landmarker=args.landmarker,
                                    random_weights=args.random_encoders, config=config)
    result.params.save(out, overwrite=args.overwrite)
    missing = result.no_face_frames
    shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
    print(f"mprt track: {result.frame_count} frames, {len(missing)} without a face"
          + (f" ({args.no_face}: {shown})" if missing else "")
          + f"; source {'from cache' if result.source_from_cache else 'encoded'}; wrote {out} "
          f"({result.params.num_frames} frames)")
    return 0

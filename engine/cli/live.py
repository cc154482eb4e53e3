"""`mprt live`: animate a portrait live from a webcam (or a video played in real time)."""
from __future__ import annotations

import sys

from engine.cli.arg_types import image_size, nonnegative_int, positive_float, positive_int
from engine.cli.common import add_driving_options, add_model_options, frame_encoder


def register(sub) -> None:
    p = sub.add_parser(
        "live", help="animate a portrait live from a webcam or a real-time video",
        description="Track the face in a webcam (or in --video FILE, played at its own frame rate as a stand-in for "
        "a camera), turn each frame into FLAME parameters (MediaPipe landmarks + DECA/SMIRK encoders, mixed with "
        "the source's identity), render guidance maps and stream them through the runtime. When the runtime falls "
        "behind, stale input frames are dropped (the newest is kept), so latency stays bounded. Ctrl-C stops "
        "cleanly; --out then holds a valid video of what was shown. Needs a streaming preset (balanced, realtime).")
    p.add_argument("--source", required=True, help="portrait image to animate (any format PIL reads)")
    cam = p.add_mutually_exclusive_group(required=True)
    cam.add_argument("--webcam", type=nonnegative_int, metavar="N", help="camera index (needs opencv-python)")
    cam.add_argument("--video", metavar="FILE", help="a driving video played in real time (for testing)")
    add_driving_options(p)
    p.add_argument("--head-model", metavar="PATH",
                   help="FLAME model (generic_model.pkl or .npz); default: the built-in synthetic head")
    p.add_argument("--out", help="also record the output to this video (.mp4)")
    p.add_argument("--virtual-camera", action="store_true",
                   help="also send the output to a virtual camera for video-call apps (pyvirtualcam: v4l2loopback "
                   "on Linux, OBS Virtual Camera elsewhere; pip install -e '.[virtualcam]')")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--max-frames", type=positive_int, default=None, help="stop after N camera frames")
    p.add_argument("--size", type=image_size, default=None,
                   help="output size, a multiple of 8 (default 512; 128 for the tiny model)")
    p.add_argument("--fps", type=positive_float, default=None,
                   help="frame rate written to --out (default: the input's, or 25)")
    from engine.cli.streaming import add_stream_options
    add_stream_options(p, default_preset="realtime")
    add_model_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.cli.animate import load_head_model
    from engine.cli.outputs import check_run_outputs
    from engine.cli.streaming import build_backend, open_sinks, run_stream, stream_settings
    from engine.driving.pipeline import resolve_landmarker
    from engine.errors import InputError
    from engine.io.images import read_rgb_image
    from engine.runtime.driving_source import DrivingSource, DrivingTracker, video_frames_paced, webcam_frames
    from engine.runtime.presets import live_presets
    from engine.runtime.sinks import display_available

    if not stream_settings(args).is_causal:
        raise InputError(f"--preset {args.preset}: needs the whole clip; live input needs --preset "
                         f"{' or '.join(live_presets())}")
    check_run_outputs(args, {"--source": args.source, "--video": args.video, "--head-model": args.head_model},
                      args.size)
    if not (args.out or args.frames_dir or args.virtual_camera):
        if not display_available():
            raise InputError("no output: there is no display for a preview here; give --out VIDEO.mp4 or "
                             "--frames-dir DIR")
        args.preview = True
    if args.virtual_camera:
        from engine.runtime.virtual_camera import require_pyvirtualcam
        require_pyvirtualcam()  # before the slow loads
    portrait = read_rgb_image(args.source, "--source")
    landmarker = resolve_landmarker(args.landmarker, args.driving_weights)
    if args.video:
        from engine.driving.media import video_fps
        fps = args.fps or video_fps(args.video)
        camera, name = video_frames_paced(args.video, args.max_frames), f"video {args.video} (real-time)"
    else:
        try:
            import cv2  # noqa: F401  (checked before the slow model load)
        except ImportError:
            raise InputError("--webcam needs OpenCV: pip install opencv-python (or use --video FILE)") from None
        fps = args.fps or 25.0
        camera, name = webcam_frames(args.webcam, args.max_frames), f"webcam {args.webcam}"
    tracker = DrivingTracker(args.source, landmarker, args.driving_weights, args.random_encoders, fps=fps,
                             frame_encoder=frame_encoder(args))
    backend, default = build_backend(args)
    source = DrivingSource(camera, tracker, load_head_model(args.head_model), name=name, fps=fps,
                           renderer=args.render_backend)
    virtual = []
    if args.virtual_camera:  # opened first: no device -> a clear error before any output file exists
        from engine.runtime.virtual_camera import VirtualCameraSink
        virtual = [VirtualCameraSink(args.size or default, args.size or default, fps)]
    sinks = open_sinks(args, fps, args.out) + virtual
    try:
        report = run_stream(args, backend, args.size or default, portrait, source, sinks)
    finally:
        tracker.close()
    if report["source_error"]:
        return 1
    if args.out and report["frames_out"]:
        print(f"wrote {report['frames_out']} frames to {args.out}; {report['dropped_input_frames']} stale guidance "
              f"frames and {report['camera_dropped_frames']} camera frames dropped, {source.no_face} without a face",
              file=sys.stderr)
    return 0

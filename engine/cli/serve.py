"""`mprt serve`: the live webcam app in a browser (WebRTC), with measured glass-to-glass latency."""
from __future__ import annotations

import sys

from engine.cli.common import add_driving_options, add_model_options


def register(sub) -> None:
    p = sub.add_parser(
        "serve", help="serve the live webcam app to a browser (WebRTC)",
        description="Serve a web page that sends its camera to this server over WebRTC; each frame is face-tracked, "
        "turned into FLAME parameters and guidance maps and streamed through the runtime, and the animated portrait "
        "comes back as video. The page shows camera | guidance | output with fps, glass-to-glass latency "
        "(measured per frame with a code drawn into the pixels), dropped frames and stage times; /stats gives "
        "the same as JSON. Sessions share one loaded model; each has its own portrait and stream. Binds "
        "127.0.0.1 unless --host says otherwise; any other address needs an access token (generated unless "
        "--token) and --tls-cert/--tls-key or --insecure.")
    n = p.add_argument_group("network and access")
    n.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    n.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 = any free port)")
    n.add_argument("--token", help="access token (>= 16 characters); generated off localhost when not given")
    n.add_argument("--tls-cert", metavar="PEM", help="TLS certificate (with --tls-key): serve https")
    n.add_argument("--tls-key", metavar="PEM", help="TLS private key")
    n.add_argument("--insecure", action="store_true",
                   help="allow plain http off localhost (browsers then refuse the camera: 'no camera' mode only)")
    s = p.add_argument_group("sessions and uploads")
    s.add_argument("--max-sessions", type=int, default=2, help="concurrent sessions; more get HTTP 503 (default 2)")
    s.add_argument("--session-timeout", type=float, default=15.0,
                   help="close a session after this many seconds without a camera frame or message (default 15)")
    s.add_argument("--max-upload-mb", type=float, default=8.0, help="portrait upload size limit in MiB (default 8)")
    s.add_argument("--virtual-camera", action="store_true",
                   help="also send the oldest session's output to a virtual camera (pyvirtualcam: v4l2loopback on "
                   "Linux, OBS Virtual Camera elsewhere; pip install -e '.[virtualcam]')")
    s.add_argument("--max-upload-pixels", type=int, default=24_000_000,
                   help="portrait upload decoded-size limit, width x height (default 24,000,000)")
    add_driving_options(p)
    p.add_argument("--head-model", metavar="PATH",
                   help="FLAME model (generic_model.pkl or .npz); default: the built-in synthetic head")
    p.add_argument("--size", type=int, default=None, help="output size (default: the model's; 128 for the tiny model)")
    from engine.cli.streaming import add_stream_options
    add_stream_options(p, default_preset="realtime")
    add_model_options(p)
    from engine.cli.serve_scale import add_scale_options
    add_scale_options(p)
    p.set_defaults(func=run)


def build_shared(args, open_model: bool = True):
    """Everything sessions share, from the parsed options (slow: loads the model and encoders). Without
    `open_model` (the --ray ingress: the model lives on the replicas) no backend is opened."""
    import argparse

    from engine.cli.animate import load_head_model
    from engine.guidance.pipeline import resolve_backend
    from engine.cli.streaming import build_backend, stream_settings
    from engine.serve.shared import LIVE_PRESETS, SerializedRenderer, SharedModel, builtin_inputs, share_backend

    if args.preset not in LIVE_PRESETS:
        from engine.errors import InputError
        raise InputError(f"--preset {args.preset}: a live server needs a streaming preset: {' or '.join(LIVE_PRESETS)}")
    for name in LIVE_PRESETS:  # every preset the page may pick must be valid with the server's overrides
        stream_settings(argparse.Namespace(**{**vars(args), "preset": name}))
    landmarker, encoders = None, None
    if args.landmarker or args.driving_weights or args.random_encoders:
        from engine.driving import load_encoders, random_encoders
        from engine.driving.pipeline import resolve_landmarker
        landmarker = resolve_landmarker(args.landmarker, args.driving_weights)
        if args.random_encoders:
            print("WARNING: --random-encoders: DECA/SMIRK have RANDOM weights; the tracked motion is meaningless "
                  "(tests and demos only)", file=sys.stderr)
            encoders = random_encoders()
        else:
            encoders = load_encoders(args.driving_weights)
    else:
        print("note: no --landmarker / --driving-weights: camera driving is off; the page offers the built-in "
              "motion ('no camera') only", file=sys.stderr)
    from engine.cli.serve_scale import make_batcher
    backend, default_size, description = None, 0, ""
    if open_model:
        backend, default_size = build_backend(args)  # engine.backends.registry.open_backend, as `mprt demo` does
        info = backend.info
        model = f"weights {args.weights}" if args.weights else "the built-in model"
        description = f"{model} on {info.name} {info.device} {info.precision}"
        backend = share_backend(backend)
    portrait, code, motion = builtin_inputs()
    return SharedModel(
        backend=backend, batcher=make_batcher(args, backend) if backend else None, size=args.size or default_size,
        settings_for=lambda name: stream_settings(argparse.Namespace(**{**vars(args), "preset": name}), backend),
        head_model=load_head_model(args.head_model), renderer=SerializedRenderer(resolve_backend(args.render_backend)),
        landmarker=landmarker, encoders=encoders, builtin_portrait=portrait, builtin_source=code,
        builtin_motion=motion, description=description, random_encoders=bool(args.random_encoders), seed=args.seed)


def run(args) -> int:
    from engine.errors import InputError
    from engine.serve.access import access_policy
    from engine.serve.rtc import _aiortc
    from engine.serve.uploads import UploadLimits

    policy = access_policy(args.host, args.token, args.tls_cert, args.tls_key, args.insecure)
    if args.max_sessions < 1:
        raise InputError(f"--max-sessions: expected >= 1, got {args.max_sessions}")
    if args.session_timeout <= 0:
        raise InputError(f"--session-timeout: expected > 0 seconds, got {args.session_timeout}")
    from engine.cli.serve_scale import check_scale_options, ray_ingress
    check_scale_options(args)
    _aiortc()
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        raise InputError("mprt serve needs aiohttp: pip install -e '.[serve]'") from None
    from engine.serve.app import ServeApp
    from engine.serve.server import run_forever, ssl_context
    tls = ssl_context(args.tls_cert, args.tls_key)
    if args.virtual_camera:
        from engine.runtime.virtual_camera import require_pyvirtualcam
        require_pyvirtualcam()  # before the slow loads
    open_session, max_sessions = None, args.max_sessions
    if args.ray:
        shared, open_session, max_sessions = ray_ingress(args)
    else:
        shared = build_shared(args)
    mirror = None
    if args.virtual_camera:
        from engine.runtime.virtual_camera import VirtualCameraSink
        mirror = VirtualCameraSink(shared.size, shared.size, 25.0)
    limits = UploadLimits(max_bytes=int(args.max_upload_mb * (1 << 20)), max_pixels=args.max_upload_pixels)
    serve = ServeApp(shared, policy, max_sessions=max_sessions, idle_timeout_s=args.session_timeout,
                     limits=limits, mirror=mirror, open_session=open_session)
    print(f"serving {shared.description}, up to {max_sessions} session(s)", file=sys.stderr)
    run_forever(serve, args.port, tls, announce=lambda url: print(f"open {url}", flush=True))
    return 0

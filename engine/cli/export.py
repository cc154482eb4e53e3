"""`mprt export`: every network to ONNX (opset 18), parity-checked in ONNX Runtime against torch."""
from __future__ import annotations

from engine.cli.common import add_variant_options


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="export the networks to ONNX, checked against torch in ONNX Runtime",
        description="Export guidance encoder (three encoders summed), reference net (features, or their "
        "self-attention K/V projected with the denoising UNet's weights), denoising UNet3D, VAE encoder "
        "and decoder to ONNX opset 18 with dynamic frames/batch axes. Each graph is run in ONNX Runtime "
        "(CPU) against the torch module (fp32 tolerance 1e-4 relative, 1e-3 for the fp16-rounded reference "
        "graph; fp16 graphs 2e-2); with --slim, onnxslim's clean-up is kept only where that still holds. Writes "
        "<graph>.<precision>.onnx (+ .data over 2 GB) and export.json, which `mprt build` reads. With --triton DIR "
        "it also writes a Triton Inference Server model repository; with --triton and --onnx or --engines instead "
        "of --weights, only the repository, from an earlier export or build.")
    p.add_argument("--weights", help="model folder in upstream's layout (or mprt make-tiny-weights); required "
                   "unless --triton writes a repository from --onnx / --engines")
    p.add_argument("--out", help="output folder for the ONNX graphs and export.json (required with --weights)")
    p.add_argument("--fp16", action="store_true", help="also write fp16 graphs (converted from the fp32 ones)")
    p.add_argument("--frames", default="1:12:32", help="frames per call MIN:OPT:MAX (default 1:12:32; max 32)")
    p.add_argument("--batch", default="1:2:2", help="UNet batch MIN:OPT:MAX (default 1:2:2; 2 = CFG)")
    p.add_argument("--streams", default=None, metavar="MIN:OPT:MAX",
                   help="also export denoising_unet_streams: the UNet for several streams in one call (each with "
                   "its own guidance, identity and timesteps: the cross-session batcher of mprt serve), with "
                   "this range of streams per call, e.g. 1:4:8; its TensorRT profile and Triton batching follow it")
    p.add_argument("--size", default=None,
                   help="output image size WxH or N, multiples of 64 (default 512, 128 for the tiny model)")
    p.add_argument("--reference", choices=("kv", "features"), default="kv",
                   help="reference graph output and UNet input: projected K/V (default; saves the projection "
                   "every step and frame) or the 16 raw features")
    p.add_argument("--slim", action="store_true",
                   help="onnxslim clean-up (2-3x fewer nodes), kept per graph only where parity still holds; "
                   "off by default: the slimmed UNet needs a much larger TensorRT workspace")
    p.add_argument("--parity-frames", default="1,4,12",
                   help="frame counts of the parity check, comma-separated (default 1,4,12), or 'none'")
    add_variant_options(p, exporting=True)
    p.add_argument("--overwrite", action="store_true", help="replace graphs already in --out")
    d = p.add_mutually_exclusive_group()
    d.add_argument("--driving-weights", metavar="DIR",
                   help="also export the driving encoders (DECA coarse, SMIRK expression) from DIR holding "
                   "deca_model.tar and SMIRK_em1.pt, as graphs like the others (export.json, parity, "
                   "--fp16, `mprt build`)")
    d.add_argument("--random-driving-encoders", action="store_true",
                   help="also export the driving encoders with random weights (for tests and demos)")
    t = p.add_argument_group("Triton Inference Server model repository")
    t.add_argument("--triton", metavar="DIR",
                   help="write a Triton model repository to DIR: one model <graph>_<precision> per graph, its "
                   "config.pbtxt generated from the graph spec, and perf_analyzer input data (after the export "
                   "with --weights, else from --onnx or --engines)")
    t.add_argument("--onnx", metavar="DIR", help="--triton without --weights: an existing `mprt export` folder")
    t.add_argument("--engines", metavar="DIR",
                   help="--triton: TensorRT plans from this `mprt build` folder instead of the ONNX graphs")
    t.add_argument("--triton-instances", type=int, default=1, metavar="N", help="model instances per device (default 1)")
    t.add_argument("--triton-kind", choices=("gpu", "cpu"), default="gpu",
                   help="instance kind (default gpu; cpu serves ONNX models with ONNX Runtime on the CPU)")
    t.add_argument("--triton-queue-delay-us", type=int, default=0, metavar="US",
                   help="dynamic batcher's wait for more requests on the per-frame models (default 0: batch "
                   "only what is already queued)")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.errors import InputError
    if args.weights is None:
        if not args.triton:
            raise InputError("--weights is required (or --triton DIR with --onnx DIR or --engines DIR)")
        if args.out or not (args.onnx or args.engines):
            raise InputError("--triton without --weights: pass --onnx DIR (an `mprt export` folder) or --engines "
                             "DIR (an `mprt build` folder), and no --out")
        return _triton(args, args.onnx)
    if not args.out:
        raise InputError("--out is required with --weights (the folder for the ONNX graphs)")
    if args.onnx:
        raise InputError("--onnx: the repository's source with --triton and no --weights; with --weights "
                         "the graphs are exported to --out")
    if args.triton:  # fail before the long export
        from export.triton_repo import check_target
        _triton_options(args)
        check_target(args.triton, args.overwrite)
    _export(args)
    return _triton(args, args.out) if args.triton else 0


def _triton_options(args):
    from export.triton_config import TritonModelOptions
    return TritonModelOptions(instances=args.triton_instances, kind=args.triton_kind,
                              queue_delay_us=args.triton_queue_delay_us)


def _triton(args, onnx_dir) -> int:
    from export.triton_repo import engine_sources, onnx_sources, write_repository
    options = _triton_options(args)
    sources = engine_sources(args.engines) if args.engines else onnx_sources(onnx_dir)
    models = write_repository(sources, args.triton, options, overwrite=args.overwrite)
    print(f"wrote a Triton model repository of {len(models)} models to {args.triton} "
          f"(tritonserver --model-repository {args.triton}; perf_analyzer commands in mprt_triton.json)")
    return 0


def _export(args) -> None:
    from engine.errors import InputError
    from engine.graph_specs import AxisRange, ExportPlan
    from engine.graphs import denoising_unet_streams
    from engine.model import MagicPortraitModel
    from export.exporter import ExportOptions, export_all

    from engine.io.destinations import check_output_folder
    check_output_folder(args.out, "--out", need_bytes=1 << 20)
    driving = None
    if args.driving_weights or args.random_driving_encoders:  # checked first: fail before the long export
        from engine.driving.encoder_weights import load_encoders, random_encoders
        driving = random_encoders() if args.random_driving_encoders else load_encoders(args.driving_weights)
    model = MagicPortraitModel.from_weights(args.weights)
    model.use_variants(args.student, args.decoder)
    print(f"exporting denoiser: {model.denoiser}; decoder: {model.decoder_name}")
    default = model.config.image_size
    plan = ExportPlan(image_size=_size(args.size, default), frames=AxisRange.parse(args.frames, "--frames"),
                      batch=AxisRange.parse(args.batch, "--batch"),
                      precisions=("fp32", "fp16") if args.fp16 else ("fp32",), reference_mode=args.reference,
                      driving=driving is not None,
                      extra_graphs=(denoising_unet_streams.NAME,) if args.streams else (),
                      streams=AxisRange.parse(args.streams, "--streams") if args.streams else ExportPlan.streams)
    if args.parity_frames.strip().lower() == "none":
        frames = ()
    else:
        try:
            frames = tuple(int(f) for f in args.parity_frames.split(","))
            if min(frames) < 1:
                raise ValueError
        except ValueError:
            raise InputError(f"--parity-frames {args.parity_frames!r}: expected comma-separated integers or 'none'")
    reports = export_all(model, plan, args.out, ExportOptions(slim=args.slim, parity_frames=frames,
                                                              overwrite=args.overwrite), driving=driving)
    print(f"wrote {len(reports)} graphs and export.json to {args.out}"
          + (" (driving encoders with random weights)" if driving is not None and driving.random else ""))


def _size(text: str | None, default: int) -> tuple[int, int]:
    """'WxH' or 'N' -> (H, W)."""
    from engine.errors import InputError
    if text is None:
        return default, default
    parts = text.lower().split("x")
    try:
        w, h = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (None, None)
    except ValueError:
        w = None
    if w is None or min(w, h) <= 0 or w % 64 or h % 64:
        raise InputError(f"--size {text!r}: expected WxH or N, positive multiples of 64 (pixels)")
    return h, w

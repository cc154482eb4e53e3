"""`mprt build`: TensorRT engines (+ manifests) from an `mprt export` folder."""
from __future__ import annotations


def register(sub) -> None:
    from engine.cli.arg_types import int_in, positive_float
    p = sub.add_parser(
        "build", help="build TensorRT engines from exported ONNX graphs",
        description="Build one TensorRT engine per exported graph with an optimisation profile from the "
        "export's frames/batch ranges, a workspace limit and a persistent timing cache, and write beside "
        "each <graph>.<precision>.engine a manifest (.engine.json: I/O names, shapes, dtypes, TensorRT "
        "version, GPU and compute capability, source ONNX hash) that loading checks. Works with NVIDIA's "
        "`tensorrt` (builds for the GPU present) and with `tensorrt_rtx`, which builds without a GPU for "
        "a named --compute-capability.")
    p.add_argument("--onnx", required=True, help="folder written by `mprt export` (with export.json)")
    p.add_argument("--out", required=True, help="output folder for engines, manifests and the timing cache")
    p.add_argument("--backend", choices=("auto", "tensorrt", "tensorrt_rtx"), default="auto",
                   help="TensorRT module (default auto: tensorrt if importable, else tensorrt_rtx)")
    p.add_argument("--compute-capability", default=None,
                   help="target GPU, e.g. 8.9 (tensorrt_rtx only; default: the GPU present)")
    p.add_argument("--precision", default=None, choices=("fp16", "fp32", "fp16,fp32"), metavar="fp16|fp32|fp16,fp32",
                   help="which exported graphs to build (default fp16 if exported, else fp32; fp32 graphs "
                   "get TensorRT's FP16 flag unless --no-fp16)")
    p.add_argument("--graphs", default=None, help="comma-separated graph names (default: all exported)")
    p.add_argument("--workspace-gib", type=positive_float, default=4.0, help="builder workspace limit (default 4 GiB)")
    p.add_argument("--timing-cache", default=None, help="timing cache file (default OUT/timing.cache)")
    p.add_argument("--opt-level", type=int_in(0, 5), default=3, help="builder optimisation level 0-5 (default 3)")
    p.add_argument("--no-fp16", action="store_true", help="no FP16 flag for fp32 graphs (full TensorRT)")
    p.add_argument("--overwrite", action="store_true", help="replace engines already in --out")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.io.destinations import check_output_folder
    from export.trt_build import BuildOptions, build_all
    check_output_folder(args.out, "--out", need_bytes=1 << 20)
    options = BuildOptions(
        backend=args.backend, compute_capability=args.compute_capability,
        precisions=tuple(args.precision.split(",")) if args.precision else None,
        graphs=tuple(g.strip() for g in args.graphs.split(",")) if args.graphs else None,
        workspace_gib=args.workspace_gib, fp16=not args.no_fp16, timing_cache=args.timing_cache,
        optimization_level=args.opt_level, overwrite=args.overwrite)
    manifests = build_all(args.onnx, args.out, options)
    print(f"wrote {len(manifests)} engines with manifests to {args.out}")
    return 0

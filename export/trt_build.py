"""ONNX -> TensorRT engine, with NVIDIA's `tensorrt` or with `tensorrt_rtx` (one API for both).

Torch-free. Per graph: parse the ONNX, one optimisation profile from the graph spec's axis ranges
(frames min/opt/max, batch), a workspace limit, a persistent timing cache (TensorRT; TensorRT-RTX
tunes at run time instead and ignores timing caches), then the engine and its manifest
(engine/engine_manifest.py), each written whole or not at all.

Precision: fp16 graphs are built strongly typed (the graph's types are the engine's). For fp32 graphs
`fp16=True` sets BuilderFlag.FP16 where the module has it (TensorRT); TensorRT-RTX has no such flag and
builds fp32 graphs in fp32 — export with --fp16 for fp16 engines there.

TensorRT-RTX builds without a GPU for a named compute capability (`compute_capability="8.9"`), which
is how CI proves that every graph parses and builds. TensorRT builds for the GPU it runs on.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
import pathlib
import shlex
import subprocess
import time
from typing import Callable

from engine.backends.graph_backend import MODEL_FILE
from engine.engine_manifest import EngineManifest, sha256_file, write_manifest
from engine.errors import InputError, MprtError
from engine.graph_specs import ExportedGraphs, GraphSpec, read_export_manifest
from engine.io.atomic import write_atomic

BACKENDS = ("tensorrt", "tensorrt_rtx")
NUMPY_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT32": "int32", "INT64": "int64",
                "BOOL": "bool", "INT8": "int8", "UINT8": "uint8"}


class EngineBuildError(MprtError):
    """TensorRT could not parse or build a graph."""


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    backend: str = "auto"  # "tensorrt", "tensorrt_rtx", or "auto": tensorrt if importable, else tensorrt_rtx
    compute_capability: str | None = None  # "8.9": required by tensorrt_rtx without a GPU
    precisions: tuple[str, ...] | None = None  # None: fp16 graphs if exported, else fp32
    graphs: tuple[str, ...] | None = None  # None: every graph of the export
    workspace_gib: float = 4.0
    fp16: bool = True
    timing_cache: str | None = None  # None: <out>/timing.cache
    optimization_level: int = 3
    overwrite: bool = False


@dataclasses.dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: str


def import_backend(backend: str):
    """The TensorRT Python module for `backend` ("auto" prefers full TensorRT)."""
    names = BACKENDS if backend == "auto" else (backend,)
    if backend != "auto" and backend not in BACKENDS:
        raise InputError(f"--backend {backend!r}: expected auto, {' or '.join(BACKENDS)}")
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise InputError(f"--backend {backend}: no TensorRT module importable ({', '.join(names)}); install "
                     "`tensorrt` (NVIDIA's index, or JetPack) or `pip install tensorrt-rtx`")


def detect_gpu() -> GpuInfo | None:
    """The first GPU as nvidia-smi reports it, or None (no driver / no GPU)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    line = out.strip().splitlines()[0] if out.strip() else ""
    if "," not in line:
        return None
    name, cc = (s.strip() for s in line.rsplit(",", 1))
    return GpuInfo(name, cc)


def build_all(onnx_dir: str | os.PathLike, out_dir: str | os.PathLike, options: BuildOptions = BuildOptions(),
              progress: Callable[[str], None] = print) -> list[EngineManifest]:
    exported = read_export_manifest(str(onnx_dir))
    specs = select_specs(exported, options)
    trt = import_backend(options.backend)
    target = _target(trt, options)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    existing = [engine_file(s) for s in specs if (out / engine_file(s)).exists()]
    if existing and not options.overwrite:
        raise InputError(f"--out {out}: already holds {existing}; pass --overwrite to replace them")
    cache_path = pathlib.Path(options.timing_cache) if options.timing_cache else out / "timing.cache"
    manifests = []
    for i, spec in enumerate(specs, 1):
        progress(f"[{i}/{len(specs)}] {spec.file_name}: building with {trt.__name__} {trt.__version__} "
                 f"for compute capability {target.compute_capability}")
        m = build_engine(trt, exported, spec, out, target, options, cache_path)
        manifests.append(m)
        progress(f"[{i}/{len(specs)}] {m.engine['file']}: {m.engine['bytes'] / 1e6:.1f} MB in "
                 f"{m.build['seconds']:.1f} s")
    model_file = pathlib.Path(onnx_dir) / MODEL_FILE  # which denoiser / decoder the engines hold
    if model_file.is_file():
        write_atomic(out / MODEL_FILE, model_file.read_bytes())
    return manifests


def engine_file(spec: GraphSpec) -> str:
    return f"{spec.name}.{spec.precision}.engine"


def select_specs(exported: ExportedGraphs, options: BuildOptions) -> list[GraphSpec]:
    have_precisions = {s.precision for s in exported.specs}
    precisions = options.precisions or (("fp16",) if "fp16" in have_precisions else ("fp32",))
    missing = [p for p in precisions if p not in have_precisions]
    if missing:
        raise InputError(f"--precision {','.join(missing)}: the export in {exported.directory} has only "
                         f"{sorted(have_precisions)} (mprt export --fp16 adds fp16 graphs)")
    names = {s.name for s in exported.specs}
    unknown = [g for g in options.graphs or () if g not in names]
    if unknown:
        raise InputError(f"--graphs {','.join(unknown)}: not in this export; it has {sorted(names)}")
    return [s for s in exported.specs if s.precision in precisions and (not options.graphs or s.name in options.graphs)]


def check_onnx_file(exported: ExportedGraphs, spec: GraphSpec) -> pathlib.Path:
    """The ONNX file is there, whole, and the one export.json describes."""
    return pathlib.Path(exported.verified_path(spec))


def build_engine(trt, exported: ExportedGraphs, spec: GraphSpec, out: pathlib.Path, target: GpuInfo,
                 options: BuildOptions, cache_path: pathlib.Path) -> EngineManifest:
    onnx_path = check_onnx_file(exported, spec)
    start = time.perf_counter()
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    strongly_typed = spec.precision == "fp16" or not hasattr(trt.BuilderFlag, "FP16")
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i).desc()) for i in range(parser.num_errors))
        raise EngineBuildError(f"{onnx_path}: TensorRT cannot parse it: {errors}")
    _check_network_io(network, spec, onnx_path)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_gib * (1 << 30)))
    config.builder_optimization_level = options.optimization_level
    fp16_flag = options.fp16 and not strongly_typed
    if fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
        _pin_fp32(trt, network, config, [t.name for t in spec.inputs if t.dtype == "float32"])
    if trt.__name__ == "tensorrt_rtx":
        config.num_compute_capabilities = 1
        config.set_compute_capability(_rtx_capability(trt, target.compute_capability), 0)
        cache = None  # TensorRT-RTX: timing caches are no-ops (it tunes at run time)
    else:
        cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.exists() else b"")
        config.set_timing_cache(cache, False)
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in spec.profile().items():
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"{onnx_path}: TensorRT failed to build an engine (see its log above; a larger "
                               f"--workspace-gib than {options.workspace_gib} may help)")
    engine_path = out / engine_file(spec)
    write_atomic(engine_path, memoryview(serialized))
    if cache is not None:
        write_atomic(cache_path, memoryview(config.get_timing_cache().serialize()))
    seconds = time.perf_counter() - start
    manifest = EngineManifest(
        graph=spec, io=tuple(_network_io(trt, network)),
        tensorrt={"module": trt.__name__, "version": trt.__version__},
        target={"gpu_name": target.name or None, "compute_capability": target.compute_capability},
        onnx={"file": spec.file_name, "sha256": exported.reports[spec.file_name]["sha256"],
              "bytes": exported.reports[spec.file_name]["bytes"]},
        engine={"file": engine_path.name, "bytes": engine_path.stat().st_size, "sha256": sha256_file(engine_path)},
        build={"fp16": spec.precision == "fp16" or fp16_flag, "strongly_typed": strongly_typed,
               "workspace_bytes": int(options.workspace_gib * (1 << 30)), "seconds": round(seconds, 2),
               "optimization_level": options.optimization_level,
               "timing_cache": str(cache_path) if cache is not None else None},
        rebuild_command=rebuild_command(exported.directory, out, trt.__name__, target, spec, options))
    write_manifest(manifest, engine_path)
    return manifest


def rebuild_command(onnx_dir, out: pathlib.Path, backend: str, target: GpuInfo, spec: GraphSpec,
                    options: BuildOptions) -> str:
    args = ["mprt", "build", "--onnx", str(onnx_dir), "--out", str(out), "--backend", backend,
            "--graphs", spec.name, "--precision", spec.precision, "--overwrite"]
    if backend == "tensorrt_rtx":
        args += ["--compute-capability", "<this GPU's, e.g. 8.9>"]
    return " ".join(shlex.quote(a) if not a.startswith("<") else a for a in args)


def _target(trt, options: BuildOptions) -> GpuInfo:
    gpu = detect_gpu()
    if trt.__name__ == "tensorrt_rtx":
        cc = options.compute_capability or (gpu.compute_capability if gpu else None)
        if cc is None:
            raise InputError("--compute-capability: required with tensorrt_rtx when no GPU is visible "
                             "(e.g. 8.9 for Ada, 8.6 for Ampere; Jetson Orin, 8.7, needs JetPack's TensorRT)")
        _rtx_capability(trt, cc)
        name = gpu.name if gpu and gpu.compute_capability == cc else None
        return GpuInfo(name or "", cc)
    if gpu is None:
        raise InputError("--backend tensorrt: no GPU visible (nvidia-smi); full TensorRT builds for the GPU it "
                         "runs on. Use --backend tensorrt_rtx --compute-capability X.Y to build without one")
    if options.compute_capability and options.compute_capability != gpu.compute_capability:
        raise InputError(f"--compute-capability {options.compute_capability}: TensorRT builds for this GPU "
                         f"({gpu.name}, {gpu.compute_capability}) only")
    return gpu


def _rtx_capability(trt, cc: str):
    member = "SM" + cc.replace(".", "")
    supported = [m for m in trt.ComputeCapability.__members__ if m.startswith("SM")]
    if member not in supported:
        raise InputError(f"--compute-capability {cc}: {trt.__name__} {trt.__version__} targets "
                         f"{', '.join(s[2:-1] + '.' + s[-1] for s in supported)}")
    return getattr(trt.ComputeCapability, member)


def fp32_island_layers(trt, network, input_names: list[str]) -> list:
    """Layers fed (transitively) by `input_names` up to the first weight layer: the timestep sinusoid and
    the use_reference comparison, which must stay fp32 (see export/fp16.py for why)."""
    weight_layers = {trt.LayerType.MATRIX_MULTIPLY, trt.LayerType.CONVOLUTION}
    reached, island = set(input_names), []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        inputs = [layer.get_input(j) for j in range(layer.num_inputs)]
        if layer.type in weight_layers or not any(t is not None and t.name in reached for t in inputs):
            continue
        island.append(layer)
        reached.update(layer.get_output(j).name for j in range(layer.num_outputs))
    return island


def _pin_fp32(trt, network, config, fp32_inputs: list[str]) -> None:
    """With the FP16 flag on an fp32 graph, keep the fp32 island in fp32 (TensorRT only: TensorRT-RTX
    is strongly typed and has no FP16 flag)."""
    for layer in fp32_island_layers(trt, network, fp32_inputs):
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            if layer.get_output(j).dtype == trt.float32:
                layer.set_output_type(j, trt.float32)
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)


def _network_io(trt, network):
    for mode, count, get in (("input", network.num_inputs, network.get_input),
                             ("output", network.num_outputs, network.get_output)):
        for i in range(count):
            t = get(i)
            yield {"name": t.name, "mode": mode, "shape": list(t.shape),
                   "dtype": NUMPY_DTYPES.get(t.dtype.name, t.dtype.name.lower())}


def _check_network_io(network, spec: GraphSpec, onnx_path) -> None:
    names = [network.get_input(i).name for i in range(network.num_inputs)]
    if names != spec.input_names:
        raise EngineBuildError(f"{onnx_path}: TensorRT sees inputs {names}, the spec declares {spec.input_names}")

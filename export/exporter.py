"""`mprt export`'s work: every graph of an ExportPlan to ONNX, cleaned up where parity allows, checked.

Writes `<graph>.<precision>.onnx` (+ `.data` over 2 GB) and `export.json` (the plan, every graph's spec,
and per graph: nodes, bytes, sha256, export seconds, whether onnxslim was kept, parity errors). The
engine build and the runtimes read the specs from export.json, so they need neither torch nor weights.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import tempfile
import time
from typing import Callable

from engine.backends.graph_backend import write_model_variants
from engine.engine_manifest import sha256_file
from engine.errors import InputError
from engine.graph_specs import EXPORT_MANIFEST, ExportPlan, GraphSpec, find_spec
from engine.graphs import build_specs, graph_names
from engine.io.atomic import write_atomic
from engine.model import MagicPortraitModel
from export.onnx_export import OPSET, save_graph, to_precision, trace_to_onnx
from export.parity import ParityResult, check_parity, ort_session
from export.wrappers import graph_module

@dataclasses.dataclass
class GraphReport:
    name: str
    precision: str
    file: str
    nodes: int
    bytes: int
    sha256: str
    export_seconds: float
    slimmed: bool
    parity: list[ParityResult]

    @property
    def max_rel_error(self) -> float:
        return max((p.max_rel for p in self.parity), default=float("nan"))

    def to_json(self) -> dict:
        return {"name": self.name, "precision": self.precision, "file": self.file, "nodes": self.nodes,
                "bytes": self.bytes, "sha256": self.sha256, "export_seconds": round(self.export_seconds, 2),
                "slimmed": self.slimmed,
                "parity": [{"axes": p.axes, "max_abs": p.max_abs, "max_rel": p.max_rel,
                            "tolerance": p.tolerance} for p in self.parity]}


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    # onnxslim clean-up, kept only where parity still holds. Off by default: the slimmed tiny UNet fails
    # to build with TensorRT-RTX 1.7 in a 4 GiB workspace (it asks for 4.3 GB) where the traced one builds.
    slim: bool = False
    parity_frames: tuple[int, ...] = (1, 4, 12)  # () skips parity (and then slimming is not kept)
    overwrite: bool = False


def export_all(model: MagicPortraitModel, plan: ExportPlan, out_dir: str | os.PathLike,
               options: ExportOptions = ExportOptions(),
               progress: Callable[[str], None] = print, driving=None, sources=None) -> list[GraphReport]:
    """driving: the driving encoders (engine.driving.encoder_weights.EncoderPair), for plans with
    `driving` set; sources: {SOURCE name: object} for graphs whose networks come from elsewhere."""
    if plan.driving and driving is None:
        raise InputError("export plan includes the driving encoders, but none were given")
    out = pathlib.Path(out_dir)
    specs = build_specs(model.config, plan)
    _prepare_out_dir(out, specs, options.overwrite)
    reports: list[GraphReport] = []
    specs32 = build_specs(model.config, dataclasses.replace(plan, precisions=("fp32",)))  # what is traced
    total = len(specs)
    for name in graph_names(plan):
        spec32 = find_spec(specs32, name, "fp32")
        module = graph_module(model, spec32, driving, sources)
        start = time.perf_counter()
        progress(f"[{len(reports) + 1}/{total}] {name}: tracing")
        proto, slimmed = _traced_and_slimmed(module, spec32, options, progress)
        torch_outputs: dict = {}  # torch references, shared by this graph's precisions
        trace_seconds = time.perf_counter() - start
        for precision in plan.precisions:
            spec = find_spec(specs, name, precision)
            t0 = time.perf_counter()
            graph = to_precision(proto, spec)
            path = out / spec.file_name
            save_graph(graph, path)
            parity = check_parity(ort_session(path), spec, module, options.parity_frames,
                                  torch_outputs=torch_outputs)
            seconds = trace_seconds + time.perf_counter() - t0
            report = GraphReport(name, precision, spec.file_name, len(graph.graph.node), _size(path),
                                 sha256_file(path), seconds, slimmed, parity)
            reports.append(report)
            progress(f"[{len(reports)}/{total}] {spec.file_name}: {report.nodes} nodes, "
                     f"{report.bytes / 1e6:.1f} MB, {seconds:.1f} s, max rel. error "
                     f"{report.max_rel_error:.2e} (tolerance {parity[0].tolerance:g})" if parity else
                     f"[{len(reports)}/{total}] {spec.file_name}: {report.nodes} nodes, "
                     f"{report.bytes / 1e6:.1f} MB, {seconds:.1f} s, parity not checked")
            bad = [p for p in parity if not p.ok]
            if bad:
                raise InputError(f"{path}: ONNX Runtime disagrees with the torch module: max rel. error "
                                 f"{bad[0].max_rel:.3g} > {bad[0].tolerance:g} at {bad[0].axes}")
    write_export_manifest(out, plan, specs, reports)
    write_model_variants(out, model.denoiser, model.decoder_name, model.config.guidance_scale)  # the backends report and enforce it
    return reports


def _traced_and_slimmed(module, spec32: GraphSpec, options: ExportOptions, progress):
    proto = trace_to_onnx(module, spec32)
    if not options.slim or not options.parity_frames:
        return proto, False
    try:
        import onnxslim
    except ImportError:
        progress(f"  {spec32.name}: onnxslim not installed, graph left as traced")
        return proto, False
    slim = onnxslim.slim(proto)
    with tempfile.TemporaryDirectory(prefix="mprt-slim-") as tmp:
        path = pathlib.Path(tmp) / spec32.file_name
        save_graph(slim, path)
        results = check_parity(ort_session(path), spec32, module, options.parity_frames[:1])
    if all(r.ok for r in results):
        return slim, True
    progress(f"  {spec32.name}: onnxslim output fails parity ({results[0].max_rel:.2e}); kept the traced graph")
    return proto, False


def _size(path: pathlib.Path) -> int:
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


def _prepare_out_dir(out: pathlib.Path, specs: list[GraphSpec], overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    existing = [p.name for p in [out / EXPORT_MANIFEST] + [out / s.file_name for s in specs] if p.exists()]
    if existing and not overwrite:
        raise InputError(f"--out {out}: already holds {existing}; pass --overwrite to replace them")


def write_export_manifest(out: pathlib.Path, plan: ExportPlan, specs: list[GraphSpec],
                          reports: list[GraphReport]) -> pathlib.Path:
    data = {"format": 1, "opset": OPSET, "plan": plan.to_json(), "graphs": [s.to_json() for s in specs],
            "reports": [r.to_json() for r in reports]}
    return write_atomic(out / EXPORT_MANIFEST, json.dumps(data, indent=1).encode())

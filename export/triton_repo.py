"""`mprt export --triton DIR`: a Triton Inference Server model repository, one model per graph.

Models come from an `mprt export` folder (ONNX graphs, checked against export.json) or an `mprt build`
folder (TensorRT plans, checked against their manifests); either way the graph spec is the source of
every config.pbtxt (export/triton_config.py). Layout:

    DIR/<graph>_<precision>/config.pbtxt
    DIR/<graph>_<precision>/1/model.onnx | model.plan   (+ the ONNX's external-data file, its name kept)
    DIR/<graph>_<precision>/perf_analyzer_input.json
    DIR/mprt_triton.json    what was written from what, and a perf_analyzer command per model

Triton loads every first-level folder as a model and ignores files at the root. Every file is written
whole or not at all, config.pbtxt after the model file; nothing is replaced without `overwrite`.
Torch-free.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
from typing import Callable

from engine.engine_manifest import check_engine_file, read_manifest
from engine.errors import InputError
from engine.graph_specs import GraphSpec, read_export_manifest
from engine.io.atomic import atomic_file
from engine.triton_models import model_name
from export.triton_config import (MODEL_FILES, TritonModelOptions, config_pbtxt, max_batch_size, perf_batch,
                                  perf_input_data, triton_dims)

REPO_MANIFEST = "mprt_triton.json"
PERF_INPUT = "perf_analyzer_input.json"
VERSION = "1"


@dataclasses.dataclass(frozen=True)
class ModelSource:
    spec: GraphSpec
    kind: str                           # "onnx" or "plan"
    path: pathlib.Path                  # the graph / engine file
    sha256: str
    data: pathlib.Path | None = None    # an ONNX graph's external weights, copied under the same name


def onnx_sources(onnx_dir: str | os.PathLike) -> list[ModelSource]:
    """Every graph of an `mprt export` folder, each file checked against export.json (size, sha256)."""
    from export.trt_build import check_onnx_file
    exported = read_export_manifest(str(onnx_dir))
    out = []
    for spec in exported.specs:
        path = check_onnx_file(exported, spec)
        data = path.with_name(path.name + ".data")
        out.append(ModelSource(spec, "onnx", path, exported.reports[spec.file_name]["sha256"],
                               data if data.exists() else None))
    return out


def engine_sources(engine_dir: str | os.PathLike) -> list[ModelSource]:
    """Every engine of an `mprt build` folder with its manifest; the spec is the manifest's."""
    folder = pathlib.Path(engine_dir)
    if not folder.is_dir():
        raise InputError(f"--engines {folder}: not a directory; expected an `mprt build` output folder")
    out = []
    for manifest_file in sorted(folder.glob("*.engine.json")):
        engine = manifest_file.with_name(manifest_file.name[: -len(".json")])
        manifest = read_manifest(engine)
        check_engine_file(manifest, engine)
        _check_engine_io(manifest, engine)
        out.append(ModelSource(manifest.graph, "plan", engine, manifest.engine["sha256"]))
    if not out:
        raise InputError(f"--engines {folder}: no <graph>.<precision>.engine with its .engine.json manifest")
    return out


def _check_engine_io(manifest, engine: pathlib.Path) -> None:
    """The engine's I/O as TensorRT reported it at build time agrees with the spec the config is made from."""
    spec = manifest.graph
    want = {t.name: (t.dtype, [d if isinstance(d, int) else -1 for d in t.shape]) for t in spec.inputs + spec.outputs}
    have = {io["name"]: (io["dtype"], list(io["shape"])) for io in manifest.io}

    def agrees(name: str) -> bool:  # -1 where TensorRT left an output dim to run time is no disagreement
        (dt, dims), (want_dt, want_dims) = have[name], want[name]
        return dt == want_dt and len(dims) == len(want_dims) and all(h in (w, -1) for h, w in zip(dims, want_dims))

    if set(have) != set(want) or not all(agrees(n) for n in want):
        raise InputError(f"{engine}: engine I/O {have} differs from its graph spec {want}; rebuild with "
                         f"{manifest.rebuild_command}")


def write_repository(sources: list[ModelSource], out_dir: str | os.PathLike,
                     options: TritonModelOptions = TritonModelOptions(), overwrite: bool = False,
                     progress: Callable[[str], None] = print) -> list[dict]:
    """Write the repository; returns one summary per model (also written to mprt_triton.json)."""
    out = pathlib.Path(out_dir)
    names = [model_name(s.spec.name, s.spec.precision) for s in sources]
    if len(set(names)) != len(names):
        raise InputError(f"--triton: two sources for one model in {names}")
    check_target(out, overwrite, tuple(names))
    configs = [config_pbtxt(s.spec, s.kind, options) for s in sources]  # a bad option writes nothing
    out.mkdir(parents=True, exist_ok=True)
    models = []
    for i, (src, name, config) in enumerate(zip(sources, names, configs), 1):
        model_dir = out / name
        version = model_dir / VERSION
        version.mkdir(parents=True, exist_ok=True)
        file_name = MODEL_FILES[src.kind][1]
        keep = {file_name} | ({src.data.name} if src.data else set())
        for stale in _model_files(version):
            if stale.name not in keep:  # e.g. a model.onnx where a model.plan now goes
                stale.unlink()
        _copy(src.path, version / file_name)
        if src.data:
            _copy(src.data, version / src.data.name)
        _write_text(model_dir / PERF_INPUT, json.dumps(perf_input_data(src.spec)))
        _write_text(model_dir / "config.pbtxt", config)
        models.append({"name": name, "graph": src.spec.name, "precision": src.spec.precision, "kind": src.kind,
                       "source": str(src.path), "sha256": src.sha256, "file": f"{VERSION}/{file_name}",
                       "max_batch_size": max_batch_size(src.spec),
                       "inputs": {t.name: triton_dims(src.spec, t.shape) for t in src.spec.inputs},
                       "perf_analyzer": perf_command(out, name, src.spec)})
        progress(f"[{i}/{len(sources)}] {name}: {src.kind} model, max_batch_size {max_batch_size(src.spec)}")
    data = {"format": 1, "instances": options.instances, "kind": options.kind,
            "queue_delay_us": options.queue_delay_us, "models": models}
    _write_text(out / REPO_MANIFEST, json.dumps(data, indent=1))
    return models


def perf_command(out: pathlib.Path, name: str, spec: GraphSpec) -> str:
    """perf_analyzer over gRPC with the model's input data (shapes from the spec's opt points)."""
    return (f"perf_analyzer -m {name} -i grpc -u localhost:8001 --input-data {out / name / PERF_INPUT} "
            f"-b {perf_batch(spec)} --concurrency-range 1:4")


def check_target(out_dir: str | os.PathLike, overwrite: bool, names: tuple[str, ...] = ()) -> None:
    """Refuse a file, or a folder already holding these models or a repository of ours, without
    `overwrite`. Other models in the folder are left alone (a repository may serve more than ours)."""
    out = pathlib.Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--triton {out}: exists and is not a directory")
    existing = [n for n in (*names, REPO_MANIFEST) if (out / n).exists()]
    if existing and not overwrite:
        raise InputError(f"--triton {out}: already holds {existing}; pass --overwrite to replace them")


def _model_files(version: pathlib.Path) -> list[pathlib.Path]:
    return [p for p in version.iterdir() if p.name in ("model.onnx", "model.plan") or p.name.endswith(".onnx.data")]


def _copy(src: pathlib.Path, dst: pathlib.Path) -> None:
    with open(src, "rb") as f, atomic_file(dst) as g:
        shutil.copyfileobj(f, g, 1 << 24)


def _write_text(path: pathlib.Path, text: str) -> None:
    with atomic_file(path, "w") as f:
        f.write(text)

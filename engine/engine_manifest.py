"""TensorRT engine manifests: what an engine was built from and for, checked before it is loaded.

Torch-free (json + hashlib): the TensorRT runtime on a Jetson reads this without torch.

`mprt build` writes `<graph>.<precision>.engine` and beside it `<graph>.<precision>.engine.json`:

    {"format": 1,
     "graph": {GraphSpec.to_json(): name, precision, inputs/outputs (name, dtype, shape with axis
               names), axes {"frames": [min, opt, max], "batch": [...]}},
     "io": [{"name", "mode": "input"|"output", "shape": [-1 for dynamic dims], "dtype"}],
     "profile": {"<input>": [[min shape], [opt shape], [max shape]]},
     "tensorrt": {"module": "tensorrt"|"tensorrt_rtx", "version": "10.x.y"},
     "target": {"gpu_name": str | null, "compute_capability": "8.9"},
     "onnx": {"file": "<name>.<precision>.onnx", "sha256": hex, "bytes": int},
     "engine": {"file": ..., "bytes": int, "sha256": hex},
     "build": {"fp16": bool, "workspace_bytes": int, "seconds": float, "timing_cache": path | null},
     "rebuild_command": "mprt build --onnx DIR --out DIR ..."}

A runtime calls `load_checked(engine_path, RuntimeTarget(...), frames=F, batch=B)` and gets the
manifest back, or an EngineMismatchError whose message says what differs and how to rebuild.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any, Mapping

from engine.errors import MprtError
from engine.graph_specs import GraphSpec
from engine.io.hashing import sha256_file  # noqa: F401  (re-exported: export/ reads it from here)
from engine.io.atomic import write_atomic

FORMAT = 1


class EngineManifestError(MprtError):
    """An engine's manifest is missing or unreadable, or the engine file does not match it."""


class EngineMismatchError(MprtError):
    """The engine was built for another GPU, TensorRT version, ONNX graph or shape range."""


@dataclasses.dataclass(frozen=True)
class RuntimeTarget:
    """What this process would run an engine with."""

    module: str  # "tensorrt" or "tensorrt_rtx"
    version: str
    compute_capability: str  # "8.9"
    gpu_name: str | None = None


@dataclasses.dataclass(frozen=True)
class EngineManifest:
    graph: GraphSpec
    io: tuple[Mapping[str, Any], ...]
    tensorrt: Mapping[str, str]
    target: Mapping[str, Any]
    onnx: Mapping[str, Any]
    engine: Mapping[str, Any]
    build: Mapping[str, Any]
    rebuild_command: str

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "graph": self.graph.to_json(), "io": [dict(x) for x in self.io],
                "profile": {k: [list(s) for s in v] for k, v in self.graph.profile().items()},
                "tensorrt": dict(self.tensorrt), "target": dict(self.target), "onnx": dict(self.onnx),
                "engine": dict(self.engine), "build": dict(self.build), "rebuild_command": self.rebuild_command}

    # Inner keys the checks read: a manifest without one is refused when read, not mid-check.
    REQUIRED = {"tensorrt": ("module", "version"), "target": ("compute_capability",), "onnx": ("sha256",),
                "engine": ("bytes",)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "EngineManifest":
        for section, keys in cls.REQUIRED.items():
            if not isinstance(d[section], Mapping):
                raise TypeError(f"'{section}' is not an object")
            missing = [k for k in keys if k not in d[section]]
            if missing:
                raise KeyError(f"{section}.{missing[0]}")
        return cls(graph=GraphSpec.from_json(d["graph"]), io=tuple(d["io"]), tensorrt=d["tensorrt"],
                   target=d["target"], onnx=d["onnx"], engine=d["engine"], build=d["build"],
                   rebuild_command=str(d["rebuild_command"]))


def manifest_path(engine_path: str | os.PathLike) -> pathlib.Path:
    return pathlib.Path(f"{engine_path}.json")


def write_manifest(manifest: EngineManifest, engine_path: str | os.PathLike) -> pathlib.Path:
    """Write `<engine>.json` whole or not at all."""
    return write_atomic(manifest_path(engine_path), json.dumps(manifest.to_json(), indent=1).encode())


def read_manifest(engine_path: str | os.PathLike) -> EngineManifest:
    path = manifest_path(engine_path)
    if not path.is_file():
        raise EngineManifestError(f"{path}: engine manifest not found (an engine is loaded only with the "
                                  f"manifest `mprt build` writes beside it); rebuild with `mprt build`")
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        return EngineManifest.from_json(data)
    except (ValueError, KeyError, TypeError) as err:
        raise EngineManifestError(f"{path}: not a valid engine manifest ({type(err).__name__}: {err}); "
                                  "rebuild with `mprt build`") from None


def check_engine_file(manifest: EngineManifest, engine_path: str | os.PathLike, full_hash: bool = False) -> None:
    """The engine file exists and has the manifest's size (and hash, if asked)."""
    path = pathlib.Path(engine_path)
    how = f"; rebuild with: {manifest.rebuild_command}"
    if not path.is_file():
        raise EngineManifestError(f"{path}: engine file not found{how}")
    if path.stat().st_size != manifest.engine["bytes"]:
        raise EngineManifestError(f"{path}: {path.stat().st_size} bytes, the manifest says "
                                  f"{manifest.engine['bytes']} (truncated or replaced){how}")
    if full_hash and sha256_file(path) != manifest.engine["sha256"]:
        raise EngineManifestError(f"{path}: content differs from the manifest's sha256{how}")


def check_compatible(manifest: EngineManifest, runtime: RuntimeTarget, axes: Mapping[str, int] | None = None,
                     onnx_path: str | os.PathLike | None = None) -> None:
    """Refuse an engine built for another GPU / TensorRT / ONNX graph, or used outside its profile."""
    name = f"engine {manifest.graph.name}.{manifest.graph.precision}"
    how = f"; rebuild it here with: {manifest.rebuild_command}"
    built = manifest.tensorrt
    if built["module"] != runtime.module:
        raise EngineMismatchError(f"{name} was built with {built['module']}, this runtime uses {runtime.module}{how}")
    if built["version"] != runtime.version:
        raise EngineMismatchError(f"{name} was built with {built['module']} {built['version']}, this runtime "
                                  f"has {runtime.version} (engines are not portable across versions){how}")
    cc = manifest.target["compute_capability"]
    if cc != runtime.compute_capability:
        raise EngineMismatchError(f"{name} targets compute capability {cc} "
                                  f"({manifest.target.get('gpu_name') or 'no GPU named'}), this GPU "
                                  f"({runtime.gpu_name or 'unknown'}) is {runtime.compute_capability}{how}")
    for axis, value in (axes or {}).items():
        r = manifest.graph.axes.get(axis)
        if r is None:
            continue  # static in this graph
        if not r.contains(value):
            raise EngineMismatchError(f"{name}: {axis}={value} is outside the engine's profile "
                                      f"{r.min}..{r.max}; rebuild from an export with a wider range "
                                      f"(mprt export --{axis} MIN:OPT:MAX, then {manifest.rebuild_command})")
    if onnx_path is not None and sha256_file(onnx_path) != manifest.onnx["sha256"]:
        raise EngineMismatchError(f"{name} was built from another ONNX file than {onnx_path} "
                                  f"(sha256 differs){how}")


def load_checked(engine_path: str | os.PathLike, runtime: RuntimeTarget, axes: Mapping[str, int] | None = None,
                 onnx_path: str | os.PathLike | None = None) -> EngineManifest:
    """Read and check an engine's manifest before deserialising the engine. Returns the manifest."""
    manifest = read_manifest(engine_path)
    check_engine_file(manifest, engine_path)
    check_compatible(manifest, runtime, axes, onnx_path)
    return manifest

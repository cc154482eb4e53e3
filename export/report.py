"""Per-graph table of an export (+ its engines): nodes, size, export time, parity error, build time.

    python -m export.report ONNX_DIR ENGINE_DIR benchmarks/results/export   # writes .json and .md
"""
from __future__ import annotations

import json
import pathlib
import platform
import sys

from engine.engine_manifest import read_manifest
from engine.graph_specs import read_export_manifest
from engine.io.atomic import write_atomic


def collect(onnx_dir: str, engine_dir: str | None) -> list[dict]:
    exported = read_export_manifest(onnx_dir)
    rows = []
    for spec in exported.specs:
        r = exported.reports[spec.file_name]
        row = {"graph": spec.name, "precision": spec.precision, "nodes": r["nodes"], "onnx_bytes": r["bytes"],
               "export_seconds": r["export_seconds"],
               "max_rel_error": max((p["max_rel"] for p in r["parity"]), default=None),
               "tolerance": r["parity"][0]["tolerance"] if r["parity"] else None,
               "parity_frames": [p["axes"].get("frames") for p in r["parity"]]}
        engine = pathlib.Path(engine_dir or "") / f"{spec.name}.{spec.precision}.engine"
        if engine_dir and engine.exists():
            m = read_manifest(engine)
            row.update(engine_bytes=m.engine["bytes"], build_seconds=m.build["seconds"],
                       builder=f"{m.tensorrt['module']} {m.tensorrt['version']} SM{m.target['compute_capability']}")
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    head = ("| graph | precision | nodes | ONNX MB | export s | max rel. error (tol.) | engine MB | build s |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|\n")
    lines = [f"| {r['graph']} | {r['precision']} | {r['nodes']} | {r['onnx_bytes'] / 1e6:.1f} | "
             f"{r['export_seconds']:.1f} | {r['max_rel_error']:.1e} ({r['tolerance']:g}) | "
             f"{r.get('engine_bytes', 0) / 1e6:.1f} | {r.get('build_seconds', float('nan')):.1f} |" for r in rows]
    return head + "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    onnx_dir, engine_dir, prefix = argv
    rows = collect(onnx_dir, engine_dir)
    meta = {"machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores", "rows": rows}
    write_atomic(f"{prefix}.json", json.dumps(meta, indent=1).encode())
    title = (f"# Tiny-model export and TensorRT-RTX build ({meta['machine']})\n\n"
             "Export time includes tracing, fp16 conversion and the ONNX Runtime parity run at the listed "
             "frame counts (batch 2); error = max |onnx - torch| / max |torch| against the fp32 torch module.\n\n")
    write_atomic(f"{prefix}.md", (title + markdown(rows)).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

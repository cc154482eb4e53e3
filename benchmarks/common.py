"""Shared benchmark helpers: timing and the result writer (JSON + Markdown table, written whole)."""
from __future__ import annotations

import json
import os
import pathlib
import platform
import time
from typing import Callable, Sequence

from engine.io.atomic import atomic_file

RESULTS_DIR = pathlib.Path(__file__).resolve().parent / "results"


def time_call(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """Best-of-`repeats` wall time of fn() in seconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        # other work on the machine skews CPU timings: record how busy it was
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def _write_whole(path: pathlib.Path, text: str) -> None:
    with atomic_file(path, "w") as f:
        f.write(text)


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_results(name: str, title: str, rows: Sequence[dict], columns: Sequence[str],
                  meta: dict, notes: Sequence[str] = (), out_dir: pathlib.Path = RESULTS_DIR,
                  extra: dict | None = None) -> tuple[pathlib.Path, pathlib.Path]:
    """Writes <out_dir>/<name>.json (meta + rows + extra's keys) and <name>.md (title, notes, table)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{name}.json", out_dir / f"{name}.md"
    _write_whole(json_path, json.dumps({"meta": meta, "rows": list(rows), **(extra or {})}, indent=2) + "\n")
    md = [f"# {title}", ""]
    md += [f"- {k}: {v}" for k, v in meta.items()]
    md += [""] + [f"{n}" for n in notes] + ([""] if notes else [])
    md += [markdown_table(rows, columns), ""]
    _write_whole(md_path, "\n".join(md))
    return json_path, md_path

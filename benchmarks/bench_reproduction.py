"""Training reproducibility: does `mprt train` reproduce the shipped model's quality within noise?

Scores models with the quality benchmark's core rows (the quality / balanced / realtime presets and
`quality CFG 3.5` on torch, with the swapped-input controls and the answers; benchmarks/bench_quality.py)
on the same held-out clips, and one model under several sampling seeds, then writes
benchmarks/results/reproduction.{json,md}:
- per model: the metrics the issue-11 criteria read, and how many of those criteria pass;
- two noises per metric: the range over training runs (models the same command made with different
  `--seed`s) and the range over sampling seeds (one model, other initial noise);
- per metric, whether the reference model (the first --model) lies within the training runs' range
  widened by the sampling range: what "reproduces within noise" means here.

    .venv/bin/python benchmarks/bench_reproduction.py --model shipped=engine/assets/synthetic_heads \\
        --run "seed 0=/work/data/seed0/model" --run "seed 1=/work/data/seed1/model" --sampling-seeds 42,43,44 \\
        --other "v4.1=/work/data/v41"

Each scoring is one bench_quality run (380-390 s for the default 24 cases on 2 CPU threads, alone, stop
21); --work keeps them, and --reuse
takes a run found there instead of repeating it (meta: wall_s of this call, scoring_wall_s of each
scoring run, reused or not). Run alone: the timings are not the point, but a
busy CPU makes it slow.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import RESULTS_DIR, machine_info, markdown_table, write_results  # noqa: E402

VARIANTS = "quality,balanced,realtime,quality CFG 3.5"
METRICS = (("quality", "psnr_db"), ("quality", "fg_iou"), ("quality", "face_colour_err"), ("quality", "bg_err"),
           ("realtime", "psnr_db"), ("realtime", "fg_iou"))


def _named(items: list[str], flag: str) -> list[tuple[str, pathlib.Path]]:
    out = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"{flag}: expected NAME=DIR, got {item!r}")
        if not pathlib.Path(path, "magicportrait.json").is_file():
            raise SystemExit(f"{flag} {name}: {path} is not a trained model folder (no magicportrait.json)")
        out.append((name, pathlib.Path(path)))
    return out


def score(name: str, weights: pathlib.Path, seed: int, args) -> dict:
    """The quality.json of one bench_quality run (reused from --work when asked and present)."""
    out = pathlib.Path(args.work) / f"{re.sub(r'[^A-Za-z0-9]+', '-', name).strip('-')}-seed{seed}"
    result = out / "quality.json"
    if not (args.reuse and result.is_file() and json.loads(result.read_text())["meta"].get("complete")):
        from benchmarks import bench_quality
        print(f"scoring {name} (sampling seed {seed}) ...", file=sys.stderr, flush=True)
        bench_quality.run(["--weights", str(weights), "--variants", VARIANTS, "--backends", "torch",
                           "--threads", str(args.threads), "--seed", str(seed), "--clips", str(args.clips),
                           "--out-dir", str(out)])
    return json.loads(result.read_text())


def summary(result: dict) -> dict:
    rows = {r["variant"]: r for r in result["rows"]}
    out = {f"{v} {m}": rows[v][m] for v, m in METRICS if v in rows and m in rows[v]}
    issue11 = [c for c in result["criteria"] if "control" in c]  # issue 12's verdicts name no control
    out["criteria passed"] = sum(c["pass"] for c in issue11)
    out["criteria"] = len(issue11)
    out["failed"] = [c["criterion"] for c in issue11 if not c["pass"]]
    return out


def spread(values: list[float]) -> float:
    return max(values) - min(values) if values else float("nan")


def verdicts(reference: dict, runs: list[dict], sampling: list[dict]) -> list[dict]:
    """Per metric: the reference's value against the runs' range widened by the sampling range."""
    out = []
    for v, m in METRICS:
        key = f"{v} {m}"
        if key not in reference or not runs:
            continue
        values = [r[key] for r in runs]
        noise = spread([s[key] for s in sampling]) if len(sampling) > 1 else 0.0
        lo, hi = min(values) - noise, max(values) + noise
        out.append({"metric": key, "reference": reference[key], "runs": values, "runs_range": round(spread(values), 4),
                    "sampling_range": round(noise, 4), "band": [round(lo, 4), round(hi, 4)],
                    "within": bool(lo <= reference[key] <= hi)})
    return out


def write(models: list[dict], checks: list[dict], meta: dict, out_dir: pathlib.Path) -> None:
    columns = ["name", "kind", "seed", *(f"{v} {m}" for v, m in METRICS), "criteria passed", "criteria", "failed"]
    rows = [{**m, "failed": "; ".join(m["failed"])} for m in models]
    band = [{**c, "runs": ", ".join(f"{x:.4g}" for x in c["runs"]), "band": f"{c['band'][0]:.4g} .. {c['band'][1]:.4g}",
             "within": "yes" if c["within"] else "NO"} for c in checks]
    notes = ["Rows: the reference model (`kind` reference) under each sampling seed, then every model the "
             "training command made (`kind` training command) under the first seed, then any other model "
             "(`kind` other: shown, not part of the noise). Metrics: "
             "benchmarks/bench_quality.py on the same held-out clips; issue-11 criteria: "
             "engine/evaluation/criteria.py.", "",
             "## Within noise?", "",
             "The reference's value against the training runs' range (same command, other `--seed`s), widened "
             "on both sides by the range over sampling seeds (the reference, other initial noise).", "",
             markdown_table(band, ["metric", "reference", "runs", "runs_range", "sampling_range", "band", "within"]),
             "", "## Models"]
    write_results("reproduction", "Training reproducibility", rows, columns, meta, notes, out_dir,
                  extra={"checks": checks})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, metavar="NAME=DIR",
                   help="the reference model (e.g. the shipped one), scored under every --sampling-seeds")
    p.add_argument("--run", action="append", default=[], metavar="NAME=DIR",
                   help="a model the training command made (repeat: one per training seed)")
    p.add_argument("--other", action="append", default=[], metavar="NAME=DIR",
                   help="a model shown beside them but not part of the noise (e.g. the previously shipped one)")
    p.add_argument("--sampling-seeds", default="42,43,44", help="comma-separated (default 42,43,44; the first "
                   "is the quality benchmark's and the one every --run is scored with)")
    p.add_argument("--clips", type=int, default=24, help="held-out cases (default 24, as the quality benchmark)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", default="/tmp/mprt-reproduction", help="where each scoring run writes")
    p.add_argument("--reuse", action="store_true", help="take complete scoring runs found in --work")
    p.add_argument("--out-dir", default=str(RESULTS_DIR))
    args = p.parse_args(argv)
    (ref_name, ref_dir), = _named([args.model], "--model")
    runs, others = _named(args.run, "--run"), _named(args.other, "--other")
    try:
        seeds = [int(s) for s in args.sampling_seeds.split(",")]
    except ValueError:
        p.error(f"--sampling-seeds: expected comma-separated integers, got {args.sampling_seeds!r}")
    load_before, t0 = [round(x, 2) for x in os.getloadavg()], time.perf_counter()
    models, sampling, scored = [], [], []

    def scored_as(name: str, weights: pathlib.Path, seed: int) -> dict:
        scored.append(score(name, weights, seed, args))
        return summary(scored[-1])

    for seed in seeds:
        sampling.append(scored_as(ref_name, ref_dir, seed))
        models.append({"name": ref_name, "weights": str(ref_dir), "kind": "reference", "seed": seed, **sampling[-1]})
    run_summaries = []
    for name, weights in runs:
        run_summaries.append(scored_as(name, weights, seeds[0]))
        models.append({"name": name, "weights": str(weights), "kind": "training command", "seed": seeds[0],
                       **run_summaries[-1]})
    for name, weights in others:
        models.append({"name": name, "weights": str(weights), "kind": "other", "seed": seeds[0],
                       **scored_as(name, weights, seeds[0])})
    checks = verdicts(sampling[0], run_summaries, sampling)
    meta = {**machine_info(), "threads": args.threads, "load_average_before": load_before,
            "wall_s": round(time.perf_counter() - t0, 1),
            "scoring_wall_s": [r["meta"].get("benchmark_wall_s") for r in scored], "data": scored[0]["meta"]["data"],
            "clips": args.clips, "frames_per_clip": scored[0]["meta"]["frames_per_clip"], "variants": VARIANTS}
    write(models, checks, meta, pathlib.Path(args.out_dir))
    for c in checks:
        print(f"{c['metric']}: {c['reference']:.4g} in {c['band']}: {'yes' if c['within'] else 'NO'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

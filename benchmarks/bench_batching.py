"""Cross-session batching benchmark: N concurrent streams on one backend, their UNet calls gathered by
the batcher (max batch 8) vs served one after another (the same streams, max batch 1: one UNet call per
stream per tick), in the same run: aggregate fps, per-stream fps and latency, samples per UNet call.

    .venv/bin/python benchmarks/bench_batching.py                     # tiny model, 128 px, CPU
    .venv/bin/python benchmarks/bench_batching.py --sessions 1 2 4 8 --frames 16 --device cuda --weights W

Every stream runs the streaming runtime (`realtime` preset) on its own thread over its own portrait
(the built-in head render, slightly varied per stream, so each has its own reference K/V) and the
built-in head motion; file sources (no pacing, nothing dropped), so this measures capacity. Writes
benchmarks/results/batching.{json,md}.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import threading
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS_DIR, machine_info, write_results  # noqa: E402

COLUMNS = ["sessions", "mode", "max_batch", "frames", "wall_s", "aggregate_fps", "per_stream_fps",
           "latency_p50_ms", "latency_p95_ms", "samples_per_call", "unet_calls", "call_p50_ms", "x_sequential"]


class _Drop:
    def write(self, index, frame):
        pass

    def close(self, interrupted=False):
        pass

    def abort(self):
        pass


def run_streams(backend, settings, size: int, portraits, maps, max_batch: int, budget_s: float) -> dict:
    from engine.runtime.batcher import CrossSessionBatcher
    from engine.runtime.runner import StreamRuntime
    from engine.runtime.sources import MapsSource
    batcher = CrossSessionBatcher(backend, max_batch=max_batch, budget_s=budget_s)
    reports, errors = [None] * len(portraits), []

    def stream(i):
        session = batcher.session()
        try:
            rt = StreamRuntime(session, settings, size, seed=100 + i)
            rt.set_identity(portraits[i])
            reports[i] = rt.run(MapsSource(maps), [_Drop()])
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)
        finally:
            session.close()

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(len(portraits))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    batcher.close()
    if errors:
        raise errors[0]
    stats = batcher.stats.summary()
    frames = sum(r["frames_out"] for r in reports)
    return {"frames": frames, "wall_s": round(wall, 2), "aggregate_fps": round(frames / wall, 3),
            "per_stream_fps": round(float(np.mean([r["frames_out"] / wall for r in reports])), 3),
            # per-stream percentiles: the median stream's p50, the worst stream's p95
            "latency_p50_ms": round(float(np.median([r["latency"]["p50_ms"] for r in reports])), 1),
            "latency_p95_ms": round(float(np.max([r["latency"]["p95_ms"] for r in reports])), 1),
            "samples_per_call": round(stats["samples_per_call_mean"], 2), "unet_calls": stats["calls"],
            "call_p50_ms": stats["call_ms_p50"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sessions", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--frames", type=int, default=12, help="frames per stream (default 12)")
    p.add_argument("--weights", default=None, help="upstream weights folder (default: the tiny random model)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--budget-ms", type=float, default=20.0, help="batcher latency budget (default 20 ms)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--out-dir", default=str(RESULTS_DIR))
    args = p.parse_args(argv)
    if any(n < 1 or n > 16 for n in args.sessions) or args.frames < 1:
        raise SystemExit("--sessions: 1..16 each; --frames: >= 1")
    import torch

    from benchmarks.bench_streaming import demo_inputs
    from engine.backends.registry import open_backend
    from engine.runtime.presets import preset_settings
    torch.set_num_threads(args.threads)
    backend = open_backend("torch", weights=args.weights, device=args.device)
    size = backend.info.image_size
    portrait, maps = demo_inputs(args.frames, size)
    settings = preset_settings("realtime")
    rng = np.random.default_rng(0)
    portraits = [np.clip(portrait.astype(np.int16) + rng.integers(-12, 13, portrait.shape), 0, 255).astype(np.uint8)
                 for _ in range(max(args.sessions))]
    run_streams(backend, settings, size, portraits[:2], {t: m[:9] for t, m in maps.items()}, 8, 0.0)  # warm-up
    rows = []
    load_before = machine_info()["load_average_1min"]
    for n in args.sessions:
        results = {}
        for mode, max_batch in (("one after another", 1), ("batched", 8)):
            r = run_streams(backend, settings, size, portraits[:n], maps, max_batch, args.budget_ms / 1000)
            results[mode] = r
            rows.append({"sessions": n, "mode": mode, "max_batch": max_batch, **r})
            print(rows[-1], file=sys.stderr, flush=True)
        rows[-1]["x_sequential"] = round(results["batched"]["aggregate_fps"]
                                         / results["one after another"]["aggregate_fps"], 2)
    meta = {**machine_info(), "load_average_1min_at_start": load_before, "model": args.weights or "tiny random",
            "size": size, "device": args.device, "frames_per_stream": args.frames, "preset": "realtime",
            "torch_threads": args.threads, "budget_ms": args.budget_ms}
    notes = ["Each stream: its own thread, portrait (own reference K/V) and seed; file source (capacity, no "
             "pacing). 'one after another' = the same concurrent streams with max batch 1 (one UNet call per "
             "stream per tick); 'batched' = max batch 8 (one UNet call for every stream whose stage is ready, "
             "per-sample K/V). Latency: a frame's arrival at its runtime -> its output (VAE decoded); p50 of the median stream, p95 of the worst stream.",
             "x_sequential: batched aggregate fps / one-after-another aggregate fps, same run. CPU timings vary "
             "with other load on the machine (load average recorded above)."]
    write_results("batching", "Cross-session batching: N streams on one backend", rows, COLUMNS, meta, notes,
                  pathlib.Path(args.out_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

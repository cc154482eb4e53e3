"""Load benchmark for `mprt serve`: N synthetic WebRTC clients on loopback against one server process
(cross-session batching on or off) and against `--ray` with 1 and 2 replicas.

    .venv/bin/python benchmarks/bench_load.py                              # tiny model, CPU, defaults below
    .venv/bin/python benchmarks/bench_load.py --clients 1 4 8 16 --seconds 30 --modes single ray2 -- --device cuda

Each client (benchmarks/rtc_client.py, aiortc, in a separate process from the server) sends frames of the
shared driving clip at --fps over WebRTC like the page does (frame codes in the pixels), receives the
output track and times every output frame from its send: aggregate and per-stream output fps, latency
p50/p95/p99 (client clock: encode, network, server, decode), drops (camera frames sent in the measured span
that never came back), refusals (HTTP 503 with the server's message) and errors. Everything is bounded:
client count, measured seconds and every wait. Sessions use 'no camera' driving (the built-in motion;
the camera frames still pace the stream), so the CPU goes to the diffusion, not to face tracking.
Writes benchmarks/results/load.{json,md} and load.png (matplotlib) or load.svg.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import RESULTS_DIR, machine_info, write_results  # noqa: E402
from engine.errors import InputError  # noqa: E402

DRIVING = ROOT.parent / "shared" / "assets" / "media" / "driving.mp4"
MODES = {  # name -> (description, extra `mprt serve` options)
    "single-seq": ("one process, sessions one after another (--max-batch 1)", ["--max-batch", "1"]),
    "single": ("one process, cross-session batching (--max-batch 8)", ["--max-batch", "8"]),
    "ray1": ("--ray, 1 replica", ["--ray", "--replicas", "1"]),
    "ray2": ("--ray, 2 replicas", ["--ray", "--replicas", "2"]),
}
COLUMNS = ["mode", "clients", "served", "refused", "errors", "aggregate_fps", "per_stream_fps", "latency_p50_ms",
           "latency_p95_ms", "latency_p99_ms", "latency_drift_ms", "drop_rate", "first_output_s", "load_1min",
           "measured_at"]


# -- client side (a subprocess) ---------------------------------------------------------------------
def client_frames(size: int, count: int = 48) -> list[np.ndarray]:
    from engine.driving.media import iter_video_frames
    from engine.io.images import resize_frames
    frames = [f.rgb for f in iter_video_frames(DRIVING, count)]
    return list(resize_frames(np.stack(frames), (size, size)))


def clients_main(url: str, n: int, fps: float, seconds: float, size: int, out: str) -> None:
    from benchmarks.rtc_client import run_clients
    results = asyncio.run(run_clients(url, n, client_frames(size), fps, seconds))
    with open(out, "w") as f:
        json.dump([r.__dict__ for r in results], f)


# -- server side ------------------------------------------------------------------------------------
def start_server(serve_argv: list[str]):
    """`mprt serve` with these options on a free loopback port, in this process -> (server, max sessions)."""
    from engine.cli import build_parser
    from engine.cli.serve import build_shared
    from engine.cli.serve_scale import check_scale_options, ray_ingress
    from engine.serve.access import access_policy
    from engine.serve.app import ServeApp
    from engine.serve.server import BackgroundServer
    args = build_parser().parse_args(["serve", "--port", "0", *serve_argv])
    check_scale_options(args)
    open_session, max_sessions = None, args.max_sessions
    if args.ray:
        shared, open_session, max_sessions = ray_ingress(args)
    else:
        shared = build_shared(args)
    app = ServeApp(shared, access_policy("127.0.0.1", None, None, None, False), max_sessions=max_sessions,
                   idle_timeout_s=args.session_timeout, open_session=open_session)
    return BackgroundServer(app).__enter__(), shared


def run_clients_process(url: str, n: int, fps: float, seconds: float, size: int, timeout: float) -> list[dict]:
    out = pathlib.Path(f"/tmp/mprt-load-{os.getpid()}-{n}.json")
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--client-run", url, str(n), str(fps),
           str(seconds), str(size), str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run(cmd, check=True, timeout=timeout, env=env)
    results = json.loads(out.read_text())
    out.unlink()
    return results


def latency_drift_ms(latencies_ms: list[float]) -> float | None:
    """Median latency of a stream's last third minus its first third: ~0 when the server keeps up or
    drops frames, growing with the run when a queue grows."""
    third = len(latencies_ms) // 3
    if third < 2:
        return None
    return float(np.median(latencies_ms[-third:]) - np.median(latencies_ms[:third]))


def summarize(mode: str, n: int, results: list[dict]) -> dict:
    served = [r for r in results if r["started"] and not r["error"] and r["seconds"] > 0]
    lat = np.concatenate([np.asarray(r["latencies_ms"]) for r in served]) if served else np.zeros(0)
    fps = [r["received"] / r["seconds"] for r in served]
    sent = sum(r["sent_measured"] for r in served)
    pct = (lambda q: round(float(np.percentile(lat, q)), 1) if lat.size else None)
    drifts = [d for d in (latency_drift_ms(r["latencies_ms"]) for r in served) if d is not None]
    return {"mode": mode, "clients": n, "served": len(served), "refused": sum(bool(r["refused"]) for r in results),
            "errors": sum(bool(r["error"]) for r in results),
            "aggregate_fps": round(float(sum(fps)), 2), "per_stream_fps": round(float(np.mean(fps)), 2) if fps else None,
            "latency_p50_ms": pct(50), "latency_p95_ms": pct(95), "latency_p99_ms": pct(99),
            "latency_drift_ms": round(float(np.median(drifts)), 1) if drifts else None,
            "drop_rate": round(1 - sum(r["received"] for r in served) / sent, 3) if sent else None,
            "first_output_s": round(float(np.median([r["first_output_s"] for r in served])), 1) if served else None,
            "load_1min": round(os.getloadavg()[0], 2), "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "refusal_message": next((r["refused"] for r in results if r["refused"]), None),
            "error_messages": sorted({r["error"] for r in results if r["error"]})[:3]}


def carried_over(path: pathlib.Path, modes: list[str]) -> list[dict]:
    """Rows of an earlier load.json for the modes this run does not measure (a quiet rerun of some
    modes keeps the others' rows beside it)."""
    if not path.exists():
        return []
    earlier = json.loads(path.read_text()).get("rows", [])
    return [{"measured_at": "earlier run", **r} for r in earlier if r.get("mode") not in modes]


def plot(rows, out_dir: pathlib.Path) -> pathlib.Path:
    rows = [r for r in rows if r.get("aggregate_fps") is not None]  # modes that ran
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return write_svg(rows, modes, out_dir / "load.svg")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for m in modes:
        rs = [r for r in rows if r["mode"] == m]
        a.plot([r["clients"] for r in rs], [r["aggregate_fps"] for r in rs], marker="o", label=m)
        b.plot([r["clients"] for r in rs], [r["latency_p95_ms"] or np.nan for r in rs], marker="o", label=m)
    a.set(xlabel="clients", ylabel="aggregate output fps", title="throughput")
    b.set(xlabel="clients", ylabel="latency p95 (ms)", title="latency (served streams)")
    a.legend()
    fig.tight_layout()
    path = out_dir / "load.png"
    fig.savefig(path, dpi=100)
    return path


def write_svg(rows, modes, path: pathlib.Path) -> pathlib.Path:
    """Aggregate fps vs clients, one polyline per mode (no plotting library needed)."""
    w, h, pad = 480, 300, 40
    xmax = max(r["clients"] for r in rows) or 1
    ymax = max(r["aggregate_fps"] for r in rows) or 1
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">',
             f'<text x="{pad}" y="20">aggregate output fps vs clients (max {ymax:.2f})</text>']
    for i, m in enumerate(modes):
        pts = " ".join(f"{pad + (w - 2 * pad) * r['clients'] / xmax:.1f},{h - pad - (h - 2 * pad) * r['aggregate_fps'] / ymax:.1f}"
                       for r in rows if r["mode"] == m)
        parts.append(f'<polyline fill="none" stroke="{colors[i % 4]}" stroke-width="2" points="{pts}"/>')
        parts.append(f'<text x="{w - 130}" y="{40 + 16 * i}" fill="{colors[i % 4]}">{m}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts))
    return path


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--client-run"]:
        url, n, fps, seconds, size, out = argv[1:7]
        clients_main(url, int(n), float(fps), float(seconds), int(size), out)
        return 0
    serve_extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 6])
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("--fps", type=float, default=24.0, help="camera frames per second per client (default 24)")
    p.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run (default 20)")
    p.add_argument("--max-sessions", type=int, default=4,
                   help="admission: sessions per process / per replica (default 4; more clients are refused)")
    p.add_argument("--out-dir", default=str(RESULTS_DIR))
    p.add_argument("--replace", action="store_true",
                   help="write only this run's modes (default: rows of other modes in load.json are kept, "
                        "each with its own measured_at and load)")
    args = p.parse_args(argv)
    if any(not 1 <= n <= 16 for n in args.clients):
        raise SystemExit("--clients: 1..16 each")
    rows = []
    load_start = os.getloadavg()
    for mode in args.modes:
        desc, opts = MODES[mode]
        limit = (["--max-sessions-per-replica", str(args.max_sessions)] if "--ray" in opts
                 else ["--max-sessions", str(args.max_sessions)])
        try:
            server, shared = start_server([*opts, *limit, "--session-timeout", "20", *serve_extra])
        except InputError as err:  # e.g. no local Ray cluster on this machine: say so in the table
            rows += [{"mode": mode, "clients": n, "served": 0, "errors": n, "error_messages": [str(err)],
                      "load_1min": round(os.getloadavg()[0], 2)} for n in args.clients]
            print(f"{mode}: {err}", file=sys.stderr)
            continue
        try:
            size = shared.size
            for n in args.clients:
                results = run_clients_process(server.url.split("?")[0], n, args.fps, args.seconds, size,
                                              timeout=args.seconds + 900)
                rows.append(summarize(mode, n, results))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                time.sleep(2.0)  # sessions closed and freed before the next run
        finally:
            server.__exit__(None, None, None)
            if "--ray" in opts:
                from engine.serve.ray_app import shutdown
                shutdown()
    meta = {**machine_info(), "load_average_at_start": [round(x, 2) for x in load_start],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "model": "tiny random (mprt demo's default)" if not serve_extra else " ".join(serve_extra),
            "camera_fps": args.fps, "seconds": args.seconds, "max_sessions": args.max_sessions,
            "modes": {m: MODES[m][0] for m in args.modes}}
    notes = ["Clients: aiortc WebRTC on loopback in a separate process, frames of the shared driving clip at "
             "camera_fps, 'no camera' driving (built-in motion, camera frames pace the stream). Latency: client "
             "send -> output frame received (client clock), served streams only, after each stream's first output. "
             "drop_rate: camera frames sent in the measured span that never came back (the server keeps the newest "
             "frame when behind: that is how latency stays bounded). refused: HTTP 503 with the server's message "
             "(admission: --max-sessions per process / --max-sessions-per-replica per replica).",
             "latency_drift_ms: per stream, median latency of the measured span's last third minus its first "
             "third (median over streams): near 0 or negative means no queue grows.",
             "2 CPU cores shared with other work: see load_1min per row and the load averages above; "
             "timings are indicative only here. Rows keep the time they were measured (measured_at): "
             "a rerun of some modes keeps the other modes' rows (--replace drops them)."]
    messages = {r["mode"]: r["refusal_message"] for r in rows if r.get("refusal_message")}
    notes += sorted({f"{r['mode']} failed: {m}" for r in rows if not r.get("served") for m in r.get("error_messages", [])})
    notes += [f"Refusal message ({m}): \"{msg}\"" for m, msg in messages.items()]
    out_dir = pathlib.Path(args.out_dir)
    if not args.replace:
        rows = carried_over(out_dir / "load.json", args.modes) + rows
        meta["modes"] = {**{r["mode"]: MODES[r["mode"]][0] for r in rows if r["mode"] in MODES}, **meta["modes"]}
    write_results("load", "mprt serve under load: one process vs Ray Serve replicas", rows, COLUMNS, meta, notes,
                  out_dir)
    if any(r.get("aggregate_fps") is not None for r in rows):
        plot(rows, out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

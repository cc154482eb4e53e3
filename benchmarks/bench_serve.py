"""mprt serve benchmark: glass-to-glass latency p50/p95, output fps and dropped frames for 1, 2, 4
concurrent browser sessions on loopback, and where the latency goes (queueing / compute / transport).

    .venv/bin/python -m benchmarks.bench_serve                       # built-in model, CPU here
    .venv/bin/python -m benchmarks.bench_serve --sessions 1 2 4 8 --seconds 30 -- --weights W --device cuda

Each session is a headless Chromium page (Debian's chromium, driven by Playwright) whose fake camera
plays the shared driving video; latency is what the page measures (frame code drawn into the pixels,
camera capture -> expected display), joined per frame with the server's timing from the data channel.
Arguments after `--` go to `mprt serve` (default: MediaPipe tracking with random DECA/SMIRK weights).
Writes benchmarks/results/serve.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time
import urllib.request

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS_DIR, machine_info, write_results  # noqa: E402

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"
COLUMNS = ["sessions", "frames", "g2g_p50_ms", "g2g_p95_ms", "fps_per_session", "fps_total", "dropped_per_s",
           "wait_share", "compute_share", "transport_share", "server_p50_ms"]


def _stats(url: str, sid: str) -> dict:
    with urllib.request.urlopen(f"{url}stats/{sid}", timeout=60) as r:
        return json.loads(r.read())


def _wait(page, expression: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if page.evaluate(f"() => !!({expression})"):
            return
        errors = page.evaluate("window.mprt.errors")
        if errors:
            raise RuntimeError(f"page reported: {errors}")
        time.sleep(0.5)
    raise TimeoutError(f"timed out waiting for {expression}")


def run_config(browser, url: str, n: int, warmup_s: float, seconds: float, timeout: float) -> dict:
    pages = [browser.new_page() for _ in range(n)]
    try:
        for page in pages:
            page.goto(url)
            _wait(page, "document.getElementById('preset').options.length > 0", 60)
            page.click("#start")
        for page in pages:  # every pipeline full and frames coming back
            _wait(page, "window.mprt.summary && window.mprt.summary.displayed >= 4", timeout)
        time.sleep(warmup_s)
        sids = [p.evaluate("window.mprt.session") for p in pages]
        before = [_stats(url, sid) for sid in sids]
        t0 = [p.evaluate("performance.now()") for p in pages]
        time.sleep(seconds)
        logs = [p.evaluate(f"window.mprt.log.filter((f) => f.t >= {t})") for p, t in zip(pages, t0)]
        after = [_stats(url, sid) for sid in sids]
    finally:
        for page in pages:
            page.close()
    frames = [f for log in logs for f in log]
    g2g = np.array([f["g2g"] for f in frames])
    joined = [f for f in frames if f.get("server") is not None]
    dropped = sum((a["dropped_camera"] + a["dropped_guidance"]) - (b["dropped_camera"] + b["dropped_guidance"])
                  for a, b in zip(after, before))
    row = {"sessions": n, "frames": len(frames),
           "g2g_p50_ms": round(float(np.percentile(g2g, 50)), 1) if len(g2g) else None,
           "g2g_p95_ms": round(float(np.percentile(g2g, 95)), 1) if len(g2g) else None,
           "fps_per_session": round(len(frames) / seconds / n, 2), "fps_total": round(len(frames) / seconds, 2),
           "dropped_per_s": round(dropped / seconds, 2)}
    if joined:
        mean_g2g = float(np.mean([f["g2g"] for f in joined]))
        for k in ("wait", "compute"):
            row[f"{k}_share"] = round(float(np.mean([f[k] for f in joined])) / mean_g2g, 3)
        row["transport_share"] = round(1 - row["wait_share"] - row["compute_share"], 3)
        row["server_p50_ms"] = round(float(np.percentile([f["server"] for f in joined], 50)), 1)
    return row


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    serve_argv = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--seconds", type=float, default=30.0, help="measured seconds per configuration")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds after the first frames before measuring")
    ap.add_argument("--timeout", type=float, default=600.0, help="limit for the first frames of a configuration")
    ap.add_argument("--camera-fps", type=int, default=12)
    ap.add_argument("--out-dir", type=pathlib.Path, default=RESULTS_DIR)
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from engine.cli import build_parser
    from engine.cli.serve import build_shared
    from engine.serve.access import access_policy
    from engine.serve.app import ServeApp
    from engine.serve.headless import chromium_args, driving_clip_y4m, find_chromium
    from engine.serve.server import BackgroundServer

    chromium = find_chromium()
    if chromium is None:
        print("bench_serve: Debian's chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    if not any(a in serve_argv for a in ("--landmarker", "--driving-weights")):
        serve_argv += ["--landmarker", str(SHARED / "assets/models/face_landmarker.task"), "--random-encoders"]
    serve_args = build_parser().parse_args(["serve", "--max-sessions", str(max(args.sessions))] + serve_argv)
    shared = build_shared(serve_args)
    serve = ServeApp(shared, access_policy("127.0.0.1", None, None, None, False), max_sessions=max(args.sessions),
                     idle_timeout_s=60)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, BackgroundServer(serve) as srv, sync_playwright() as p:
        camera = pathlib.Path(tmp) / "camera.y4m"
        driving_clip_y4m(camera, SHARED / "assets/media/driving.mp4", frames=3 * args.camera_fps, fps=args.camera_fps)
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=chromium_args(camera))
        load_start = machine_info()["load_average_1min"]
        for n in args.sessions:
            row = run_config(browser, srv.url, n, args.warmup, args.seconds, args.timeout)
            print(row, file=sys.stderr)
            rows.append(row)
        browser.close()
    meta = {**machine_info(), "load_average_1min_at_start": load_start, "model": shared.description,
            "size": shared.size, "preset": serve_args.preset, "camera": f"driving.mp4 256x256 at {args.camera_fps} fps",
            "measured_s": args.seconds, "serve_args": " ".join(serve_argv)}
    notes = ["Glass-to-glass: camera frame capture (requestVideoFrameCallback captureTime) -> expected display "
             "time of the output frame made from it, matched by a frame code drawn into the pixels, all on the "
             "page's clock. Shares of the mean: wait = received -> taken for tracking (queueing behind slower "
             "work), compute = tracking + maps + guidance encoder + frames in flight in the sampler + decode, "
             "transport = the rest (browser encode, network, server decode, output encode, jitter buffer, display).",
             "The browser, the server and the model share this machine's CPUs; fps per session falls as sessions "
             "are added because they share one model on the same cores (batching across sessions: issue 14)."]
    write_results("serve", "mprt serve: glass-to-glass latency in a browser", rows, COLUMNS, meta, notes,
                  out_dir=args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Long-clip memory benchmark: peak RSS of `mprt animate` (file source, tiny model, streaming preset,
video + side-by-side grid + PNG frames) at several clip lengths. Memory must not grow with the clip:
frames are read, rendered and written one window at a time.

    python -m benchmarks.bench_long_clip                      # 100 and 2000 frames
    python -m benchmarks.bench_long_clip --frames 100 500

Each length runs in a fresh process; its peak RSS comes from os.wait4 (that process alone). Writes
benchmarks/results/long_clip.{json,md}. RSS does not depend on machine load; the wall times do.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks.common import machine_info, write_results  # noqa: E402

SIZE = 64  # output and map size: the smallest that keeps every stage real, to make 2000 frames affordable


def write_guidance(folder: pathlib.Path, frames: int) -> None:
    """A guidance folder of `frames` frames (upstream layout), written one image at a time."""
    from PIL import Image
    rng = np.random.default_rng(0)
    base = {t: rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for t in ("depth", "normal", "render")}
    for kind, img in base.items():
        (folder / kind).mkdir(parents=True)
        for i in range(frames):
            Image.fromarray(np.roll(img, i, axis=1)).save(folder / kind / f"frame_{i:05d}.png")


def run_clip(frames: int, work: pathlib.Path) -> dict:
    from PIL import Image
    clip = work / f"clip{frames}"
    write_guidance(clip / "guidance", frames)
    Image.fromarray(np.full((SIZE, SIZE, 3), 128, np.uint8)).save(clip / "portrait.png")
    argv = [sys.executable, "-c", "import sys; from engine.cli import main; sys.exit(main())",
            "animate", "--source", str(clip / "portrait.png"),
            "--guidance", str(clip / "guidance"), "--out", str(clip / "out.mp4"), "--grid", str(clip / "grid.mp4"),
            "--frames-dir", str(clip / "frames"), "--size", str(SIZE), "--preset", "realtime", "--steps", "1",
            "--frames-per-stage", "4", "--report", str(clip / "report.json")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[1])}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"mprt animate failed on {frames} frames (exit {proc.returncode}):\n{err}")
    written = len(list((clip / "frames").glob("frame_*.png")))
    return {"frames": frames, "frames_written": written, "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "wall_s": round(wall, 1), "fps": round(frames / wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="+", default=[100, 2000])
    ap.add_argument("--out-dir", default=None, help="results folder (default benchmarks/results)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mprt-long-clip-") as tmp:
        for n in args.frames:
            rows.append(run_clip(n, pathlib.Path(tmp)))
            print(rows[-1], flush=True)
    growth = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    meta = {**machine_info(), "model": "tiny random-weight (no --weights)", "size": SIZE,
            "preset": "realtime, 1 step, 4 frames per stage", "outputs": "video + grid + PNG frames + report",
            "source": "guidance folder (file source)", f"rss_ratio_{rows[-1]['frames']}_vs_{rows[0]['frames']}":
            round(growth, 3)}
    notes = ["Peak RSS of one `mprt animate` process per clip length (os.wait4). It must not grow with the "
             "clip: the guidance folder is read frame by frame and the grid is streamed like the main video. "
             "(The `quality` preset is upstream's offline loop over the whole clip and holds every frame's "
             "latents by design; the streaming presets do not.) Wall times depend on machine load; RSS does not."]
    kwargs = {"out_dir": pathlib.Path(args.out_dir)} if args.out_dir else {}
    paths = write_results("long_clip", "Long clip: peak memory vs clip length", rows,
                          ["frames", "frames_written", "peak_rss_mb", "wall_s", "fps"], meta, notes, **kwargs)
    print(f"RSS {rows[-1]['frames']} vs {rows[0]['frames']} frames: x{growth:.3f}; wrote {paths[1]}")


if __name__ == "__main__":
    main()

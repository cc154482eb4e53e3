"""`mprt demo`: the embedded default — runs end to end with nothing downloaded."""
from __future__ import annotations

import sys

from engine.cli.common import add_model_options, default_size, load_model


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="run the whole chain on built-in inputs (no weights needed)",
        description="Render guidance maps of a built-in head motion (turn, nod, open jaw) of the synthetic "
        "head (not FLAME), use a render of that head as the portrait, animate it and write a video plus a "
        "side-by-side grid. Without --weights it uses a tiny random-weight model and says so: the "
        "animation is then noise-like, but every stage runs as it would with real weights.")
    p.add_argument("--out", default="mprt-demo.mp4", help="output video (default mprt-demo.mp4)")
    p.add_argument("--grid", default=None, help="side-by-side video (default: <out>-grid.mp4)")
    p.add_argument("--frames", type=int, default=16, help="number of frames (default 16)")
    p.add_argument("--steps", type=int, default=20, help="DDIM steps (default 20)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_model_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import time

    from engine.cli.animate import generate, write_outputs
    from engine.flame import synthetic_head
    from engine.guidance.demo_motion import demo_flame_params
    from engine.guidance.pipeline import render_guidance_maps
    from engine.io.video_writer import check_output_path

    args.grid = args.grid or str(args.out).rsplit(".", 1)[0] + "-grid.mp4"
    check_output_path(args.out, args.overwrite)
    check_output_path(args.grid, args.overwrite)
    t0 = time.perf_counter()
    head = synthetic_head()
    maps = render_guidance_maps(demo_flame_params(args.frames), head)
    source = maps["render"][0]  # the synthetic head itself stands in for a portrait photo
    t1 = time.perf_counter()
    print(f"rendered {args.frames} guidance frames of the synthetic head in {t1 - t0:.1f} s", file=sys.stderr)
    model, tiny = load_model(args)
    size = default_size(tiny)
    args.guidance_scale, args.context_frames, args.context_overlap, args.seed = 3.5, 12, 1, 42
    frames = generate(model, source, maps, size, args)
    t2 = time.perf_counter()
    args.fps = 24.0
    write_outputs(args, source, maps, frames)
    print(f"timings: guidance maps {t1 - t0:.1f} s, model load + sampling + decode {t2 - t1:.1f} s",
          file=sys.stderr)
    return 0

"""`mprt demo`: the embedded default — the streaming path end to end with nothing downloaded."""
from __future__ import annotations

import sys

from engine.cli.arg_types import image_size, positive_float, positive_int
from engine.cli.common import add_model_options


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="run the whole chain on built-in inputs (no weights needed)",
        description="Animate a built-in synthetic person (a held-out identity of the built-in model's "
        "training data: never seen in training) with a built-in head motion (turn, nod, open jaw, smile): FLAME-"
        "format parameters are rendered to guidance maps as frames are needed, denoised with the chosen preset, "
        "decoded and written frame by frame to a video plus a side-by-side grid (portrait | depth | normal | "
        "render | output). Without --weights it uses the built-in model, a small MagicPortrait trained by this "
        "project on synthetic heads (engine/assets/synthetic_heads/MODEL_CARD.md); where that is absent, a tiny "
        "random-weight model, and it says so.")
    p.add_argument("--out", default="mprt-demo.mp4", help="output video (default mprt-demo.mp4)")
    p.add_argument("--grid", default=None, help="side-by-side video (default: <out>-grid.mp4)")
    p.add_argument("--frames", type=positive_int, default=16, help="number of frames (default 16)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--size", type=image_size, default=None,
                   help="output size, a multiple of 8 (default: the model's own, 64 for the built-in model)")
    p.add_argument("--fps", type=positive_float, default=24.0, help="output frame rate (default 24)")
    from engine.cli.streaming import add_stream_options
    add_stream_options(p, default_preset="realtime")
    add_model_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import time

    from engine.cli.animate import stream
    from engine.cli.outputs import check_run_outputs
    from engine.runtime.sources import FlameParamsSource
    from engine.synthetic.demo import demo_person

    args.grid = args.grid or str(args.out).rsplit(".", 1)[0] + "-grid.mp4"
    check_run_outputs(args, {}, args.size)
    t0 = time.perf_counter()
    person = demo_person(args.frames)
    print(f"synthetic person ready in {time.perf_counter() - t0:.1f} s ({person.description})", file=sys.stderr)
    stream(args, person.portrait, FlameParamsSource(person.params, person.head, name="built-in head motion",
                                                    renderer=args.render_backend))
    return 0

"""`mprt animate`: animate a portrait with guidance maps (upstream's folder layout)."""
from __future__ import annotations

import sys

from engine.cli.common import add_model_options, default_size, load_model


def register(sub) -> None:
    p = sub.add_parser(
        "animate", help="animate a portrait from guidance maps and write a video",
        description="Animate the portrait --source with the motion in --guidance, a folder in upstream's "
        "layout (<dir>/{depth,normal,render}/<frame files>, sorted by name), and write an H.264 MP4. "
        "Sampling reproduces upstream: DDIM (v-prediction, zero-SNR, trailing), classifier-free guidance "
        "'with vs without reference', context windows of 12 frames with overlap 1.")
    p.add_argument("--source", required=True, help="portrait image (any format PIL reads)")
    p.add_argument("--guidance", required=True, metavar="DIR", help="guidance folder (depth/ normal/ render/)")
    p.add_argument("--out", required=True, help="output video (.mp4)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--grid", metavar="PATH", help="also write a side-by-side video: source | maps | output")
    p.add_argument("--max-frames", type=int, default=None, help="use only the first N guidance frames")
    p.add_argument("--size", type=int, default=None,
                   help="square output size in pixels (default 512; 128 for the tiny model)")
    p.add_argument("--fps", type=float, default=24.0, help="output frame rate (default 24)")
    s = p.add_argument_group("sampling (defaults = upstream)")
    s.add_argument("--steps", type=int, default=20, help="DDIM steps (default 20)")
    s.add_argument("--guidance-scale", type=float, default=3.5, help="CFG scale; <= 1 disables CFG (default 3.5)")
    s.add_argument("--context-frames", type=int, default=12, help="context window length (default 12, max 32)")
    s.add_argument("--context-overlap", type=int, default=1, help="window overlap (default 1)")
    s.add_argument("--seed", type=int, default=42, help="initial-noise seed (default 42)")
    add_model_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.guidance.folders import read_guidance_folders
    from engine.io.images import read_rgb_image
    from engine.io.video_writer import check_output_path

    check_output_path(args.out, args.overwrite)
    if args.grid:
        check_output_path(args.grid, args.overwrite)
    source = read_rgb_image(args.source)
    maps = read_guidance_folders(args.guidance)
    if args.max_frames:
        maps = {k: v[: args.max_frames] for k, v in maps.items()}
    model, tiny = load_model(args)
    size = args.size or default_size(tiny)
    frames = generate(model, source, maps, size, args)
    write_outputs(args, source, maps, frames)
    return 0


def generate(model, source, maps, size, args):
    from tqdm import tqdm

    from engine.animate import animate_offline
    from engine.sampling.offline import OfflineSettings
    settings = OfflineSettings(steps=args.steps, guidance_scale=args.guidance_scale,
                               context_frames=args.context_frames, context_overlap=args.context_overlap)
    n = len(next(iter(maps.values())))
    with tqdm(total=None, desc=f"denoising {n} frames", unit="call", file=sys.stderr) as bar:
        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)
        return animate_offline(model, source, maps, size, settings, args.seed, progress)


def write_outputs(args, source, maps, frames) -> None:
    import numpy as np

    from engine.animate import side_by_side
    from engine.io.images import resize_frames
    from engine.io.video_writer import VideoWriter
    with VideoWriter(args.out, args.fps, overwrite=args.overwrite) as w:
        for f in frames:
            w.write(f)
    print(f"wrote {len(frames)} frames ({frames.shape[2]}x{frames.shape[1]}) to {args.out}")
    if args.grid:
        n, size = len(frames), frames.shape[1]
        src = np.repeat(resize_frames(source[None], (size, size)), n, axis=0)
        grid = side_by_side(src, *[resize_frames(maps[t][:n], (size, size)) for t in ("depth", "normal", "render")],
                            frames)
        with VideoWriter(args.grid, args.fps, overwrite=args.overwrite) as w:
            for f in grid:
                w.write(f)
        print(f"wrote side-by-side grid to {args.grid}")

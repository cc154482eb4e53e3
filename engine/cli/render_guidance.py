"""`mprt render-guidance`: FLAME params file -> upstream's depth/normal/render image folders."""
from __future__ import annotations

import sys

from engine.cli.arg_types import positive_int

PARAMS_HELP = """\
PARAMS.npz keys (see engine/flame/params.py): shape (100,), tex (50,), light (9,3) SH [band, rgb],
cam (3,) = (s, tx, ty), crop (3,) = (x0, y0, size) in source-512 pixels; per frame exp (F,50) and
pose (F,6) = [global axis-angle | jaw axis-angle]; optional valid (F,) bool and model (string).
Output: DIR/depth/, DIR/normal/, DIR/render/ with frame_0000.png ... (512x512 RGB, the images
upstream's render_and_transfer.py writes)."""


def register(sub) -> None:
    import argparse

    p = sub.add_parser(
        "render-guidance", help="render depth/normal/render guidance images from FLAME parameters",
        description="Render the three guidance maps of every frame (FLAME LBS, DECA camera, "
        "pytorch3d-style rasterisation, 8-bit quantisation), by default on the CPU reference renderer.",
        epilog=PARAMS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--flame", required=True, metavar="PARAMS.npz", help="FLAME parameters file")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (gets depth/ normal/ render/)")
    p.add_argument("--flame-model", metavar="FLAME.npz|generic_model.pkl", default=None,
                   help="FLAME model (pkl read without chumpy, or from `mprt convert-flame`); "
                   "default: the built-in synthetic head (not FLAME), and it says so")
    p.add_argument("--head-obj", metavar="OBJ", default=None,
                   help="DECA head_template.obj: faces + UVs to render with (needed with a FLAME pkl)")
    p.add_argument("--texture", metavar="FLAME_texture.npz", default=None,
                   help="FLAME texture space for the 'render' albedo (with the params' tex code); "
                   "default: the synthetic head's albedo, or plain skin tone for a FLAME model")
    p.add_argument("--format", choices=("png", "jpg"), default="png",
                   help="image format (default png; jpg = JPEG q75 like upstream's README flow)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="frames per render batch (default 8)")
    p.add_argument("--backend", choices=("auto", "reference", "host", "cuda"), default="auto",
                   help="rasteriser: auto (default: the CUDA kernel on an NVIDIA GPU, else the fused kernel's "
                   "host build, else the CPU reference), the CPU reference, the host build, or the CUDA kernel")
    p.add_argument("--overwrite", action="store_true", help="replace existing depth/normal/render folders")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.flame.head_model import resolve_head_model
    from engine.flame.params import FlameParams
    from engine.flame.texture_space import load_flame_texture_albedo
    from engine.guidance.folders import check_output_free, write_guidance_folders
    from engine.guidance.pipeline import render_guidance_maps

    from engine.io.destinations import check_output_folder
    check_output_free(args.out, args.overwrite)  # fail before rendering, not after
    check_output_folder(args.out, "--out", need_bytes=512 * 512 * 3)
    params = FlameParams.load(args.flame)
    model, note = resolve_head_model(args.flame_model, args.head_obj)
    print(note, file=sys.stderr)
    albedo = None if args.texture is None else load_flame_texture_albedo(args.texture, params.tex)

    def progress(done: int, total: int) -> None:
        print(f"\rrendered {done}/{total} frames", end="\n" if done == total else "", file=sys.stderr)

    frames = render_guidance_maps(params, model, albedo=albedo, batch_size=args.batch_size,
                                  backend=args.backend, progress=progress)
    folders = write_guidance_folders(args.out, frames, args.format, overwrite=args.overwrite)
    print(f"wrote {params.num_frames} frames to {', '.join(str(f) for f in folders)}")
    return 0

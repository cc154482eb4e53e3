"""`mprt make-tiny-weights`: a random-weight model in upstream's on-disk layout."""
from __future__ import annotations


def register(sub) -> None:
    from engine.cli.arg_types import nonnegative_int
    p = sub.add_parser("make-tiny-weights", help="write a tiny random-weight model (upstream layout)",
                       description="Write a random-weight MagicPortrait model of the same architecture at a "
                       "tiny size (UNet widths 32/32/64/64, 128x128 images) in upstream's on-disk layout: "
                       "stable-diffusion-v1-5/unet, sd-vae-ft-mse, denoising_unet.pth, reference_unet.pth, "
                       "guidance_encoder_*.pth, motion_module.pth. Its outputs are noise-like: it exists "
                       "to exercise the real loading and sampling code without downloads.")
    p.add_argument("--out", required=True, help="folder to create")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed of the weights (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.io.destinations import check_output_folder
    from engine.weights.tiny import write_tiny_weights
    check_output_folder(args.out, "--out", need_bytes=1 << 24)
    out = write_tiny_weights(args.out, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote tiny random-weight model to {out}")
    return 0

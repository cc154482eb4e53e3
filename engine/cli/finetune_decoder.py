"""`mprt finetune-decoder`: fine-tune a model's VAE decoder on its images, the encoder frozen."""
from __future__ import annotations

import sys

from engine.cli.distill import add_data_options, load_clips


def register(sub) -> None:
    from engine.training.recipe import TrainRecipe
    r = TrainRecipe()
    p = sub.add_parser(
        "finetune-decoder", help="fine-tune a model's VAE decoder (encoder frozen: the model keeps working)",
        description="Fine-tune only the decoder of WEIGHTS/sd-vae-ft-mse on whole images (ground-truth frames and "
        "portraits of --data), the way SD's ft-MSE decoder was made: the encoder and every other network are "
        "untouched, so the latents and the model stay valid. Squared + absolute error with the background "
        "weighted like the head, plus an edge term. mprt train runs the same stage on its own autoencoder. "
        "Replaces WEIGHTS/sd-vae-ft-mse (with --overwrite) whole or not at all, rewrites SHA256SUMS, and "
        "prints the held-out round trip before and after (a synthetic dataset's held-out split).")
    p.add_argument("--weights", required=True, metavar="DIR", help="model folder whose sd-vae-ft-mse/ is fine-tuned")
    add_data_options(p, "frames/ (required: the decoder learns the frames and portraits)", builtin=False)
    p.add_argument("--work", metavar="DIR", help="checkpoint folder (a rerun resumes; default: a temporary folder)")
    p.add_argument("--overwrite", action="store_true", help="replace WEIGHTS/sd-vae-ft-mse (required)")
    p.add_argument("--steps", type=int, default=r.decoder_steps, help=f"optimizer steps (default {r.decoder_steps})")
    p.add_argument("--batch", type=int, default=r.decoder_batch, help=f"images per step (default {r.decoder_batch})")
    p.add_argument("--lr", type=float, default=r.decoder_lr, help=f"AdamW learning rate, cosine decay (default {r.decoder_lr:g})")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(func=run)


def run(args) -> int:
    import pathlib
    import shlex
    import tempfile

    import torch

    from engine.distill.data import clip_images
    from engine.errors import InputError
    from engine.training.refit_decoder import RefitSettings, describe_change, refit_decoder
    from engine.weights.layout import WeightsLayout
    from engine.weights.load import load_model_config

    if args.steps < 1 or args.batch < 1 or args.lr <= 0:
        raise InputError("--steps and --batch must be >= 1 and --lr > 0")
    if not args.overwrite:
        raise InputError(f"--weights {args.weights}: fine-tuning replaces its sd-vae-ft-mse/ folder; pass --overwrite "
                         "(copy the model folder first to keep the old decoder)")
    if args.threads:
        torch.set_num_threads(args.threads)
    layout = WeightsLayout.discover(args.weights)
    size = load_model_config(layout).image_size
    images = clip_images(load_clips(args, size), size, require_frames=True)
    held_out = _held_out(args.data, size)
    command = "mprt " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["finetune-decoder"] \
        else "mprt finetune-decoder"
    print(f"finetune-decoder: {len(images)} images at {size}px on {args.device}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="mprt-decoder-") as tmp:
        work = pathlib.Path(args.work) if args.work else pathlib.Path(tmp)
        report = refit_decoder(pathlib.Path(args.weights), images, RefitSettings(args.steps, args.batch, args.lr, args.seed),
                               work, args.device, held_out, command)
    trip = report["held_out_round_trip"] or {}
    print(f"wrote {layout.vae_dir}{describe_change(trip.get('before'), trip.get('after'))}")
    return 0


def _held_out(data: str, size: int):
    """A synthetic dataset's held-out frames and head masks at `size` (None for clip folders)."""
    import pathlib

    import numpy as np
    if not (pathlib.Path(data) / "dataset.json").is_file():
        return None
    from engine.synthetic.dataset import load_split
    clips = [c.resized(size) for c in load_split(data, "heldout")]
    return np.concatenate([c.frames for c in clips]), np.concatenate([c.mask for c in clips])

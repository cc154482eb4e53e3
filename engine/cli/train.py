"""`mprt train`: the project's own small MagicPortrait, trained on synthetic people."""
from __future__ import annotations




def register(sub) -> None:
    from engine.synthetic.dataset import DatasetSpec
    from engine.training.recipe import TrainRecipe
    r, d = TrainRecipe(), DatasetSpec()
    p = sub.add_parser("train", help="train a small MagicPortrait on generated synthetic people",
                       description="Generate a synthetic-people dataset (deterministic from --seed; kept in "
                       "--data and reused), then train an autoencoder (then its decoder alone), the image "
                       "stage (reference UNet, denoising UNet, guidance encoders; optionally a second "
                       "learning-rate cycle of it) and the motion stage (motion modules) with upstream's "
                       "objective, and write the model in upstream's layout to --out. Every stage resumes "
                       "from its checkpoint in --work. CPU by default; --device cuda uses bf16 autocast. "
                       "The shipped built-in model was made with --seed 1 (its MODEL_CARD.md has the command).")
    p.add_argument("--out", required=True, help="weights folder to write (refused if it exists, unless --overwrite)")
    p.add_argument("--data", required=True, help="dataset folder (built if missing, reused if complete)")
    p.add_argument("--work", required=True, help="checkpoint folder (a rerun resumes from it)")
    p.add_argument("--seed", type=int, default=r.seed, help=f"seed of data and training (default {r.seed})")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--scale-steps", type=float, default=1.0,
                   help="multiply every stage's step count (default 1.0; e.g. 0.01 for a smoke run)")
    p.add_argument("--image-refine-steps", type=int, default=r.image_refine_steps, metavar="N",
                   help="after the image stage, N more steps of it under a second, lower cosine learning-rate "
                   f"cycle (default {r.image_refine_steps}: the shipped recipe; 0 skips it). N is the cycle's "
                   "length in all: on a finished run's --work a shorter cycle is continued to N, a longer one "
                   "trained again, and the motion stage is trained again after the changed cycle")
    p.add_argument("--identities", type=int, default=d.train_identities,
                   help=f"train identities (default {d.train_identities})")
    p.add_argument("--frames", type=int, default=d.frames, help=f"frames per clip (default {d.frames})")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=run)


def run(args) -> int:
    import pathlib
    import shlex
    import sys

    import torch

    from engine.errors import InputError
    from engine.synthetic.dataset import DatasetSpec
    from engine.training.recipe import TrainRecipe
    from engine.training.package import check_replaceable
    from engine.training.train import train

    out = pathlib.Path(args.out)
    if out.exists() and not args.overwrite:
        raise InputError(f"--out {out}: already exists (pass --overwrite to replace it)")
    if not out.parent.is_dir():
        raise InputError(f"--out {out}: folder {out.parent} does not exist")
    check_replaceable(out)  # before an hour of training, not after
    if args.scale_steps <= 0 or args.identities < 1 or args.frames < 13:
        raise InputError("--scale-steps must be > 0, --identities >= 1, --frames >= 13 (the motion stage's window + 1)")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.image_refine_steps < 0:
        raise InputError(f"--image-refine-steps must be >= 0, got {args.image_refine_steps}")
    recipe = TrainRecipe(seed=args.seed, image_refine_steps=args.image_refine_steps).scaled(args.scale_steps)
    dataset = DatasetSpec(seed=args.seed, train_identities=args.identities, frames=args.frames)
    command = "mprt " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["train"] else "mprt train"
    train(pathlib.Path(args.data), pathlib.Path(args.work), out, recipe, dataset, args.device, command)
    return 0




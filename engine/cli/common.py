"""Options and helpers shared by the commands that run the model."""
from __future__ import annotations

import sys

from engine.errors import InputError


def add_model_options(p) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--weights", metavar="DIR",
                   help="upstream weights folder (stable-diffusion-v1-5/, sd-vae-ft-mse/, *.pth). "
                   "Without it a tiny random-weight model is used, and the output is noise-like")
    g.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    g.add_argument("--fp16", action="store_true", help="run the networks in float16 (GPU)")


def load_model(args):
    """The model named by --weights, or the embedded tiny model (announced on stderr)."""
    import torch

    from engine.model import MagicPortraitModel
    from engine.weights.tiny import ensure_tiny_weights
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.fp16 and device == "cpu":
        raise InputError("--fp16: half precision needs a GPU device (got --device cpu)")
    dtype = torch.float16 if args.fp16 else torch.float32
    if args.weights:
        root, tiny = args.weights, False
    else:
        root, tiny = ensure_tiny_weights(), True
        print(f"note: no --weights given: using the tiny random-weight model at {root} "
              "(outputs are noise-like; pass --weights DIR for real results)", file=sys.stderr)
    model = MagicPortraitModel.from_weights(root, device=device, dtype=dtype)
    if not tiny:
        print(model.report.summary(), file=sys.stderr)
    return model, tiny


def default_size(model) -> int:
    """The model's own generation size (512 for MagicPortrait, 128 for the tiny model)."""
    return model.config.image_size


def add_driving_options(p) -> None:
    """Face tracking + DECA/SMIRK options of the commands that take a driving video or webcam."""
    g = p.add_argument_group("driving (face tracking and encoders; see `mprt track --help`)")
    g.add_argument("--landmarker", metavar="PATH",
                   help="MediaPipe face_landmarker.task (default: the one in --driving-weights)")
    w = g.add_mutually_exclusive_group()
    w.add_argument("--driving-weights", metavar="DIR", help="folder with deca_model.tar and SMIRK_em1.pt")
    w.add_argument("--random-encoders", action="store_true",
                   help="RANDOM DECA/SMIRK weights (tests/demos only: the motion is then meaningless)")

"""Reading state dicts from .pth/.bin (torch, weights_only) and .safetensors files."""
from __future__ import annotations

import pathlib

import torch

from engine.errors import CheckpointError


def read_state_dict(path: str | pathlib.Path) -> dict[str, torch.Tensor]:
    path = pathlib.Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            sd = load_file(str(path))
        else:
            # weights_only: a checkpoint is data, never code.
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt, truncated or not a checkpoint at all
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(err).__name__}: {err})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    return sd

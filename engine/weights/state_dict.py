"""Reading state dicts from .pth/.bin (torch, weights_only) and .safetensors files."""
from __future__ import annotations

import pathlib

import torch

from engine.errors import CheckpointError
from engine.weights.torch_file import check_finite, load_torch_data


def read_state_dict(path: str | pathlib.Path) -> dict[str, torch.Tensor]:
    path = pathlib.Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
            sd = load_file(str(path))
        except Exception as err:  # corrupt, truncated or not a safetensors file
            raise CheckpointError(f"{path}: cannot read checkpoint ({type(err).__name__}: {err})") from None
    else:
        sd = load_torch_data(path)  # weights_only: a checkpoint is data, never code
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    check_finite(sd, str(path))
    return sd

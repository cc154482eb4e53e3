"""`torch.load` of released files as data only (weights_only), with one-line errors: a file that
needs code to unpickle is refused as such (never with torch's advice to load it unsafely), and
non-finite tensors are named by key instead of silently giving a black video."""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Mapping

import torch

from engine.errors import CheckpointError

_REFUSED = re.compile(r"Unsupported (?:global|class)[^\n]*?(?=\. |\n|$)")


def load_torch_data(path: str | os.PathLike, what: str = "checkpoint") -> object:
    """torch.load(weights_only=True) -> the object; CheckpointError naming `what` and `path` otherwise."""
    path = os.fspath(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        found = _REFUSED.search(text)
        # torch's weights_only refusal of a pickled object; "Unsupported operand" is not a pickle at all
        if "eights only load failed" in text and found:
            detail = f" ({found.group(0).rstrip('.')})"
            raise CheckpointError(f"{what} {path}: the file contains code (pickled Python objects other than "
                                  f"tensors{detail}); it is not loaded: checkpoints are read as data only") from None
        raise CheckpointError(f"{what} {path}: cannot read checkpoint: it could not be read as a torch checkpoint "
                              f"({_first_line(err)})") from None
    except (zipfile.BadZipFile, RuntimeError, EOFError, ValueError, AttributeError, TypeError, OSError) as err:
        raise CheckpointError(f"{what} {path}: cannot read checkpoint ({type(err).__name__}: "
                              f"{_first_line(err)})") from None


def tensor_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a checkpoint's tensors, without reading the data where the format allows
    (memory-mapped .pth zip archives, safetensors headers)."""
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        from safetensors import safe_open
        try:
            with safe_open(path, "pt") as f:
                return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        except Exception as err:
            raise CheckpointError(f"{path}: cannot read checkpoint ({type(err).__name__}: {err})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, ValueError, pickle.UnpicklingError):  # not a zip archive: no mmap (read whole)
        obj = load_torch_data(path)
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    return {k: tuple(v.shape) for k, v in obj.items() if isinstance(v, torch.Tensor)}


def check_finite(state: Mapping, source: str) -> None:
    """Every floating-point tensor in `state` (nested dicts too) holds only finite values."""
    for key, value in state.items():
        if isinstance(value, Mapping):
            check_finite(value, f"{source}: {key}")
        elif isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise CheckpointError(f"{source}: tensor '{key}' holds {bad} NaN or infinite value(s) of {value.numel()} "
                                  "(a corrupt or diverged checkpoint)")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__

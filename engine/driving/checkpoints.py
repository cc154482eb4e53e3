"""Loading released encoder checkpoints: `weights_only` torch.load and strict key/shape matching,
with errors that name the file, the keys and what was expected."""
from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from engine.errors import CheckpointError
from engine.weights.torch_file import check_finite, load_torch_data

MAX_KEYS_SHOWN = 5


def load_torch_file(path: str | os.PathLike, what: str) -> Mapping:
    """`torch.load(weights_only=True)` of a released file; any failure becomes a CheckpointError."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{what} file not found: {path}")
    obj = load_torch_data(path, f"{what} file")
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{what} file {path} holds a {type(obj).__name__}, expected a dict")
    check_finite(obj, f"{what} file {path}")
    return obj


def _shown(keys) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - MAX_KEYS_SHOWN} more)" if len(keys) > MAX_KEYS_SHOWN else ""
    return ", ".join(keys[:MAX_KEYS_SHOWN]) + more


def load_strict(module: nn.Module, state: Mapping, source: str) -> None:
    """Load `state` into `module`; every parameter/buffer must be present with its exact shape.

    BatchNorm's `num_batches_tracked` counters may be absent (they do not affect inference).
    Extra keys are an error too: they mean the file is not the expected network.
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys: {_shown(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {_shown(unexpected)}")
        raise CheckpointError(f"{source} does not match {type(module).__name__}: " + "; ".join(parts))
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source}: key {key} holds a {type(value).__name__}, expected a tensor")
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{source}: key {key} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}"
            )
    module.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=False)


def strip_prefix(state: Mapping, prefix: str) -> dict:
    """Entries of `state` whose key starts with `prefix`, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}

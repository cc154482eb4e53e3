"""The CFG scale a weights folder declares (magicportrait.json), read without torch: the graph and
Triton clients need it as much as the torch backend (engine.networks.config.ModelConfig)."""
from __future__ import annotations

import json
import pathlib

from engine.errors import CheckpointError
from engine.networks.config import UPSTREAM_GUIDANCE_SCALE, declared_guidance_scale
from engine.weights.layout import MODEL_CONFIG_FILE


def model_guidance_scale(root) -> float:
    """magicportrait.json in `root` or one of its sub-folders (where the checkpoints may sit); upstream's
    3.5 when there is none or it declares none."""
    root = pathlib.Path(root)
    folders = [root] + (sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else [])
    path = next((d / MODEL_CONFIG_FILE for d in folders if (d / MODEL_CONFIG_FILE).is_file()), None)
    if path is None:
        return UPSTREAM_GUIDANCE_SCALE
    try:
        extra = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable ({err})") from None
    return declared_guidance_scale(extra if isinstance(extra, dict) else {}, str(path))

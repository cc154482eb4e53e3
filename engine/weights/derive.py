"""Model sizes read off the checkpoints themselves: the guidance encoders' widths and the motion
modules' frame limit and attention-block count. Used instead of upstream's release sizes when no
magicportrait.json is given, and checked against one when it is (a mismatch is named by field).
Head counts leave no trace in the shapes: they stay magicportrait.json's (or upstream's 8)."""
from __future__ import annotations

import dataclasses
import re

from engine.errors import CheckpointError
from engine.networks.config import ModelConfig
from engine.weights.layout import WeightsLayout
from engine.weights.torch_file import tensor_shapes

_BLOCK = re.compile(r"^blocks\.(\d+)\.weight$")
_MOTION = re.compile(r"^(.*?motion_modules\.\d+\.temporal_transformer\.transformer_blocks\.0\.)"
                     r"attention_blocks\.(\d+)\.")


def guidance_sizes(shapes: dict[str, tuple[int, ...]], source: str) -> dict:
    try:
        c0, inputs = shapes["conv_in.weight"][:2]
        blocks = sorted((int(m.group(1)), shape) for k, shape in shapes.items() if (m := _BLOCK.match(k)))
        widths = (c0, *(shape[0] for i, shape in blocks if i % 2 == 1))  # odd blocks change the width
        embedding = shapes["conv_out.weight"][0]
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{source}: not a guidance encoder checkpoint (no {err})") from None
    return {"block_out_channels": tuple(int(w) for w in widths), "embedding_channels": int(embedding),
            "input_channels": int(inputs)}


def motion_sizes(shapes: dict[str, tuple[int, ...]], source: str) -> dict:
    blocks: dict[str, set[int]] = {}
    for key in shapes:
        m = _MOTION.match(key)
        if m:
            blocks.setdefault(m.group(1), set()).add(int(m.group(2)))
    if not blocks:
        raise CheckpointError(f"{source}: holds no motion-module keys")
    prefix = min(blocks)
    pe = shapes.get(f"{prefix}attention_blocks.0.pos_encoder.pe")
    if pe is None or len(pe) != 3:
        raise CheckpointError(f"{source}: {prefix}attention_blocks.0.pos_encoder.pe missing or not (1, frames, C)")
    return {"max_frames": int(pe[1]), "attention_blocks": len(blocks[prefix])}


def config_from_checkpoints(layout: WeightsLayout, config: ModelConfig, from_json: bool) -> ModelConfig:
    """`config` with the sizes the checkpoints have. from_json: the sizes came from magicportrait.json,
    so a disagreement is an error naming the field; otherwise the checkpoints' sizes are used."""
    depth = layout.guidance_encoder("depth")
    guidance = guidance_sizes(tensor_shapes(depth), depth.name)
    motion_file = layout.motion_modules[0]
    motion = motion_sizes(tensor_shapes(motion_file), motion_file.name)
    if from_json:
        for section, found, file in (("guidance", guidance, depth), ("motion", motion, motion_file)):
            stated = dataclasses.asdict(getattr(config, section))
            for field, value in found.items():
                if tuple(_as_tuple(stated[field])) != tuple(_as_tuple(value)):
                    raise CheckpointError(f"{layout.model_config}: {section}.{field} is {stated[field]}, but "
                                          f"{file.name} has {value}; fix magicportrait.json or use matching files")
        return config
    if guidance["embedding_channels"] != config.unet.block_out_channels[0]:
        raise CheckpointError(f"{depth.name}: guidance features have {guidance['embedding_channels']} channels, the "
                              f"UNet's first block {config.unet.block_out_channels[0]}: files of different models")
    return dataclasses.replace(config, guidance=dataclasses.replace(config.guidance, **guidance),
                               motion=dataclasses.replace(config.motion, **motion))


def _as_tuple(value):
    return value if isinstance(value, (tuple, list)) else (value,)

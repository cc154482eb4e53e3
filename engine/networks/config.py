"""Network configurations as data.

The UNet configuration is read from a diffusers `unet/config.json` (SD1.5 for the real model, a tiny
one for tests); MagicPortrait's additions (motion modules, guidance encoder) use upstream's
inference.yaml values unless a `magicportrait.json` beside the checkpoints says otherwise.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

from engine.errors import InputError
from engine.preprocess import GUIDANCE_TYPES  # noqa: F401  (defined there; kept importable from here)


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    """SD1.5-layout UNet. `attention_head_dim` is upstream's *head count* (networks.md (a))."""

    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    layers_per_block: int = 2
    attention_heads: int = 8
    cross_attention_dim: int = 768
    in_channels: int = 4
    out_channels: int = 4
    norm_num_groups: int = 32
    norm_eps: float = 1e-5
    down_block_types: tuple[str, ...] = (
        "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D")
    up_block_types: tuple[str, ...] = (
        "UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D")

    @property
    def time_embed_dim(self) -> int:
        return self.block_out_channels[0] * 4

    @classmethod
    def from_diffusers(cls, cfg: dict[str, Any], source: str = "unet config") -> "UNetConfig":
        try:
            heads = cfg.get("attention_head_dim", 8)
            if isinstance(heads, (list, tuple)):
                if len(set(heads)) != 1:
                    raise InputError(f"{source}: per-block attention_head_dim {heads} is not supported")
                heads = heads[0]
            out = cls(
                block_out_channels=tuple(int(c) for c in cfg["block_out_channels"]),
                layers_per_block=int(cfg.get("layers_per_block", 2)),
                attention_heads=int(heads),
                cross_attention_dim=int(cfg.get("cross_attention_dim", 768)),
                in_channels=int(cfg.get("in_channels", 4)),
                out_channels=int(cfg.get("out_channels", 4)),
                norm_num_groups=int(cfg.get("norm_num_groups", 32)),
                norm_eps=float(cfg.get("norm_eps", 1e-5)),
                down_block_types=tuple(cfg.get("down_block_types", cls.down_block_types)),
                up_block_types=tuple(cfg.get("up_block_types", cls.up_block_types)),
            )
        except KeyError as err:
            raise InputError(f"{source}: missing field {err}") from None
        if out.down_block_types != cls.down_block_types or out.up_block_types != cls.up_block_types:
            raise InputError(f"{source}: only the SD1.5 block layout is supported, got "
                             f"{out.down_block_types} / {out.up_block_types}")
        if cfg.get("use_linear_projection", False):
            raise InputError(f"{source}: use_linear_projection=true is not the SD1.5 layout")
        return out

    def to_diffusers(self) -> dict[str, Any]:
        return {
            "_class_name": "UNet2DConditionModel", "act_fn": "silu",
            "attention_head_dim": self.attention_heads,
            "block_out_channels": list(self.block_out_channels),
            "center_input_sample": False, "cross_attention_dim": self.cross_attention_dim,
            "down_block_types": list(self.down_block_types), "downsample_padding": 1,
            "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": self.in_channels,
            "layers_per_block": self.layers_per_block, "mid_block_scale_factor": 1,
            "norm_eps": self.norm_eps, "norm_num_groups": self.norm_num_groups,
            "out_channels": self.out_channels, "sample_size": 64,
            "up_block_types": list(self.up_block_types),
        }


@dataclasses.dataclass(frozen=True)
class MotionModuleConfig:
    """AnimateDiff "Vanilla" temporal module as inference.yaml configures it."""

    heads: int = 8
    max_frames: int = 32  # temporal_position_encoding_max_len
    attention_blocks: int = 2  # ("Temporal_Self", "Temporal_Self")


@dataclasses.dataclass(frozen=True)
class GuidanceEncoderConfig:
    block_out_channels: tuple[int, ...] = (16, 32, 96, 256)
    embedding_channels: int = 320
    input_channels: int = 3
    attention_heads: int = 8



UPSTREAM_GUIDANCE_SCALE = 3.5  # networks.md (d)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the networks' shapes."""

    unet: UNetConfig = UNetConfig()
    motion: MotionModuleConfig = MotionModuleConfig()
    guidance: GuidanceEncoderConfig = GuidanceEncoderConfig()
    latent_scale: float = 0.18215  # VAE scaling: networks.md (d)
    vae_downscale: int = 8
    image_size: int = 512  # the square size the model generates at by default (upstream: 512)
    # The CFG scale the weights were made for: upstream's 3.5, tuned on MagicPortrait's own model. A
    # model trained here declares its own (magicportrait.json); presets use it unless told a scale.
    guidance_scale: float = UPSTREAM_GUIDANCE_SCALE

    def to_json(self) -> dict[str, Any]:
        return {"motion": dataclasses.asdict(self.motion),
                "guidance": dataclasses.asdict(self.guidance),
                "latent_scale": self.latent_scale, "image_size": self.image_size,
                "guidance_scale": self.guidance_scale}

    @classmethod
    def from_files(cls, unet_config_json: pathlib.Path,
                   magicportrait_json: pathlib.Path | None) -> "ModelConfig":
        unet = UNetConfig.from_diffusers(_read_json(unet_config_json), str(unet_config_json))
        if not (magicportrait_json and magicportrait_json.exists()):
            return cls(unet=unet)
        return cls.from_json(_read_json(magicportrait_json), unet, str(magicportrait_json))

    @classmethod
    def from_json(cls, extra: dict[str, Any], unet: UNetConfig, source: str) -> "ModelConfig":
        """A magicportrait.json's fields over upstream's defaults; an unknown or mistyped field is
        named (a typo would otherwise silently mean the default)."""
        if not isinstance(extra, dict):
            raise InputError(f"{source}: expected a JSON object")
        _known(extra, {"motion", "guidance", "latent_scale", "image_size", "guidance_scale"}, source)
        motion = _dataclass_from(MotionModuleConfig, extra.get("motion", {}), f"{source}: motion")
        guidance = _dataclass_from(GuidanceEncoderConfig, extra.get("guidance", {}), f"{source}: guidance")
        if guidance.embedding_channels != unet.block_out_channels[0]:
            raise InputError(
                f"{source}: guidance embedding_channels {guidance.embedding_channels} must "
                f"equal the UNet's first block width {unet.block_out_channels[0]}")
        latent_scale, image_size = extra.get("latent_scale", 0.18215), extra.get("image_size", 512)
        if not isinstance(latent_scale, (int, float)) or isinstance(latent_scale, bool) or latent_scale <= 0:
            raise InputError(f"{source}: latent_scale: expected a number > 0, got {latent_scale!r}")
        if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 8 or image_size % 8:
            raise InputError(f"{source}: image_size: expected a positive multiple of 8, got {image_size!r}")
        return cls(unet=unet, motion=motion, guidance=guidance, latent_scale=float(latent_scale),
                   image_size=image_size, guidance_scale=declared_guidance_scale(extra, source))


def declared_guidance_scale(extra: dict[str, Any], source: str) -> float:
    """A magicportrait.json's guidance_scale (upstream's when it has none); > 1, or 1 = no CFG."""
    scale = extra.get("guidance_scale", UPSTREAM_GUIDANCE_SCALE)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not 1 <= scale <= 50:
        raise InputError(f"{source}: guidance_scale: expected a number in [1, 50], got {scale!r}")
    return float(scale)


def tiny_config() -> ModelConfig:
    """The parity harness's small model (../shared/parity/config.json): same architecture."""
    unet = UNetConfig(block_out_channels=(32, 32, 64, 64), cross_attention_dim=16)
    return ModelConfig(unet=unet, guidance=GuidanceEncoderConfig(block_out_channels=(16, 32, 32, 64),
                                                                 embedding_channels=32), image_size=128)


def _known(fields: dict[str, Any], allowed: set[str], source: str) -> None:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise InputError(f"{source}: unknown field(s) {', '.join(unknown)}; "
                         f"expected some of {', '.join(sorted(allowed))}")


def _dataclass_from(kind, fields: Any, source: str):
    """kind(**fields), with unknown fields and values of the wrong type named."""
    if not isinstance(fields, dict):
        raise InputError(f"{source}: expected a JSON object, got {fields!r}")
    defaults = {f.name: f.default for f in dataclasses.fields(kind)}
    _known(fields, set(defaults), source)
    values = {}
    for name, value in fields.items():
        default = defaults[name]
        if isinstance(default, tuple):
            ok = isinstance(value, list) and value and all(isinstance(v, int) and v > 0 for v in value)
            value = tuple(value) if ok else value
        else:
            ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
        if not ok:
            raise InputError(f"{source}: {name}: expected {'a list of ' if isinstance(default, tuple) else 'an '}"
                             f"integer(s) > 0, got {value!r}")
        values[name] = value
    return kind(**values)


def _read_json(path: pathlib.Path) -> dict[str, Any]:
    try:
        return json.loads(pathlib.Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: file not found (expected a JSON config)") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None

"""Loading the networks from upstream's checkpoints, in upstream's order (networks.md (e)).

Upstream loads with strict=False and says nothing; we apply the same files in the same order, but
report unexpected keys and refuse to run when a key whose value matters was in none of the files.
"""
from __future__ import annotations

import dataclasses
import re

import torch
from torch import nn

from engine.errors import CheckpointError
from engine.networks.config import ModelConfig
from engine.networks.denoising_unet import DenoisingUNet3D
from engine.networks.guidance_encoder import GuidanceEncoderSet
from engine.networks.reference_unet import ReferenceUNet
from engine.preprocess import GUIDANCE_TYPES
from engine.weights.layout import WeightsLayout
from engine.weights.state_dict import read_state_dict


@dataclasses.dataclass
class LoadReport:
    """What each network got from which file; `unexpected` keys were present but have no use."""

    loaded: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # network -> files
    unexpected: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    ignored: dict[str, int] = dataclasses.field(default_factory=dict)  # known-dead keys dropped

    def summary(self) -> str:
        lines = []
        for net, files in self.loaded.items():
            extra = f", {len(self.unexpected.get(net, []))} unexpected keys" if self.unexpected.get(net) else ""
            dropped = f", {self.ignored[net]} unused upstream keys dropped" if self.ignored.get(net) else ""
            lines.append(f"{net}: {' + '.join(files)}{dropped}{extra}")
            for key in self.unexpected.get(net, [])[:5]:
                lines.append(f"    unexpected: {key}")
        return "\n".join(lines)


def apply_sources(module: nn.Module, net: str, sources: list[tuple[str, dict[str, torch.Tensor]]],
                  report: LoadReport, ignore: list[re.Pattern] = ()) -> None:
    """Load `sources` in order (later files win), then require every key of `module` to be set."""
    expected = module.state_dict()
    covered: set[str] = set()
    unexpected: list[str] = []
    dropped = 0
    merged: dict[str, torch.Tensor] = {}
    for name, sd in sources:
        for key, value in sd.items():
            if key not in expected:
                if any(p.match(key) for p in ignore):
                    dropped += 1
                else:
                    unexpected.append(f"{key} ({name})")
                continue
            if tuple(value.shape) != tuple(expected[key].shape):
                raise CheckpointError(f"{name}: key '{key}' has shape {tuple(value.shape)}, "
                                      f"{net} expects {tuple(expected[key].shape)}")
            merged[key] = value
            covered.add(key)
    missing = sorted(set(expected) - covered)
    if missing:
        shown = ", ".join(missing[:5]) + (f" … ({len(missing)} in all)" if len(missing) > 5 else "")
        raise CheckpointError(f"{net}: keys found in none of {', '.join(n for n, _ in sources)}: {shown}")
    module.load_state_dict({k: v.to(expected[k].dtype) for k, v in merged.items()}, strict=True)
    report.loaded[net] = [n for n, _ in sources]
    report.unexpected[net] = unexpected
    report.ignored[net] = dropped


def _split_motion(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in sd.items() if "motion_modules." in k}


def load_denoising_unet(layout: WeightsLayout, config: ModelConfig, report: LoadReport) -> DenoisingUNet3D:
    net = DenoisingUNet3D(config.unet, config.motion)
    base = read_state_dict(layout.sd15_unet_weights)
    sources = [(layout.sd15_unet_weights.name, base)]
    sources += [(p.name, read_state_dict(p)) for p in layout.motion_modules]
    sources.append((layout.denoising_unet.name, read_state_dict(layout.denoising_unet)))
    apply_sources(net, "denoising UNet3D", sources, report)
    return net


def load_reference_unet(layout: WeightsLayout, config: ModelConfig, report: LoadReport) -> ReferenceUNet:
    net = ReferenceUNet(config.unet)
    ignore = [re.compile("^" + re.escape(p)) for p in ReferenceUNet.IGNORED_KEY_PREFIXES]
    # Upstream also ends up dropping the last block's dead tail; it is still in the files.
    sources = [(layout.sd15_unet_weights.name, read_state_dict(layout.sd15_unet_weights)),
               (layout.reference_unet.name, read_state_dict(layout.reference_unet))]
    apply_sources(net, "reference UNet", sources, report, ignore)
    return net


def load_guidance_encoders(layout: WeightsLayout, config: ModelConfig, report: LoadReport) -> GuidanceEncoderSet:
    nets = GuidanceEncoderSet(config.guidance)
    for kind in GUIDANCE_TYPES:
        enc = nets.encoders[kind]
        path = layout.guidance_encoder(kind)
        # No pretrained base: a missing key would silently be random upstream (networks.md (e).5).
        apply_sources(enc, f"guidance encoder ({kind})", [(path.name, read_state_dict(path))], report,
                      enc.unused_key_patterns())
    return nets


def load_model_config(layout: WeightsLayout) -> ModelConfig:
    """The UNet's config.json, magicportrait.json if present, and the guidance-encoder and motion-module
    sizes the checkpoints have (engine.weights.derive)."""
    from engine.weights.derive import config_from_checkpoints
    if not layout.sd15_unet_config.exists():
        raise CheckpointError(f"{layout.sd15_unet_config}: SD1.5 UNet config not found")
    config = ModelConfig.from_files(layout.sd15_unet_config, layout.model_config)
    return config_from_checkpoints(layout, config, from_json=layout.model_config.exists())


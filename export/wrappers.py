"""torch modules with the flat signatures of engine/graph_specs.py, one per graph.

Each wrapper's forward takes the graph's inputs in spec order and returns its outputs in spec order,
so `torch.onnx.export` names them from the spec and nothing else needs to know the module's API.
"""
from __future__ import annotations

from torch import nn

from engine.graph_specs import GraphSpec
from engine.model import MagicPortraitModel


class GuidanceGraph(nn.Module):
    def __init__(self, model: MagicPortraitModel):
        super().__init__()
        self.encoders = model.guidance_encoders

    def forward(self, depth, normal, render):
        return self.encoders(depth, normal, render)


class ReferenceGraph(nn.Module):
    """Reference UNet -> 16 features, optionally projected to the denoising UNet's self-attention K, V."""

    def __init__(self, model: MagicPortraitModel, project: bool):
        super().__init__()
        self.reference_unet = model.reference_unet
        self.denoising_unet = model.denoising_unet if project else None

    def forward(self, ref_latents, text_embedding):
        features = self.reference_unet(ref_latents, text_embedding)
        if self.denoising_unet is None:
            return tuple(features)
        return tuple(t for kv in self.denoising_unet.project_reference(features) for t in kv)


class DenoisingGraph(nn.Module):
    """sample, timestep (B,F), text, guidance (F,C0,h,w), 32 K/V or 16 features, use_reference -> v."""

    def __init__(self, model: MagicPortraitModel, reference_mode: str):
        super().__init__()
        self.unet = model.denoising_unet
        self.reference_mode = reference_mode

    def forward(self, sample, timestep, text_embedding, guidance, *rest):
        *refs, use_reference = rest
        if self.reference_mode == "kv":
            kv = [(refs[2 * i], refs[2 * i + 1]) for i in range(len(refs) // 2)]
        else:
            kv = self.unet.project_reference(list(refs))
        # (F, C0, h, w) rows -> (1, C0, F, h, w): the module broadcasts it over the batch.
        guidance = guidance.transpose(0, 1).unsqueeze(0)
        keep = use_reference > 0.5
        v = self.unet(sample, timestep, text_embedding, guidance, kv, keep)
        # Restate v's shape with the channel count as a constant: the module's reshape(b, f, -1, h, w)
        # leaves TensorRT unable to infer that dim 1 is 4.
        b, _, f, h, w = sample.shape
        return v.reshape(b, self.unet.config.out_channels, f, h, w)


class VaeGraph(nn.Module):
    def __init__(self, vae_half: nn.Module):
        super().__init__()
        self.vae_half = vae_half

    def forward(self, x):
        return self.vae_half(x)


def graph_module(model: MagicPortraitModel, spec: GraphSpec) -> nn.Module:
    """The fp32 wrapper of graph `spec.name` (fp16 graphs are converted from its ONNX: export/fp16.py)."""
    name = spec.name
    if name == "guidance_encoder":
        wrapper = GuidanceGraph(model)
    elif name in ("reference_kv", "reference_unet"):
        wrapper = ReferenceGraph(model, project=name == "reference_kv")
    elif name == "denoising_unet":
        mode = "kv" if "ref_k_00" in spec.input_names else "features"
        wrapper = DenoisingGraph(model, mode)
    elif name == "vae_encoder":
        wrapper = VaeGraph(model.vae_encoder)
    elif name == "vae_decoder":
        wrapper = VaeGraph(model.vae_decoder)
    else:
        raise ValueError(f"no wrapper for graph {name!r}")
    return wrapper.eval().requires_grad_(False)

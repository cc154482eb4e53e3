"""guidance_encoder — the three guidance encoders and their sum (depth + normal + render), per frame.
  in   depth, normal, render   (frames, 3, H, W)  float   maps in [0, 1] (uint8 / 255), RGB
  out  guidance                (frames, C0, h, w) float   C0 = UNet width 0 (320 full, 32 tiny)
"""
from __future__ import annotations

from engine.graph_specs import GraphSpec, TensorSpec, float_dtype, latent_hw
from engine.preprocess import GUIDANCE_TYPES

NAME, ORDER, SOURCE = "guidance_encoder", 10, "model"
INPUTS = GUIDANCE_TYPES   # one input per map type, in summation order
GUIDANCE = "guidance"


def spec(config, plan, precision) -> GraphSpec:
    fl, (H, W), (h, w) = float_dtype(precision), plan.image_size, latent_hw(config, plan)
    ins = tuple(TensorSpec(t, fl, ("frames", 3, H, W), "unit") for t in INPUTS)
    out = TensorSpec(GUIDANCE, fl, ("frames", config.unet.block_out_channels[0], h, w))
    return GraphSpec(NAME, precision, ins, (out,), {"frames": plan.frames})


def parts(model) -> dict:
    return {"encoders": model.guidance_encoders}


def forward(parts, depth, normal, render):
    return parts["encoders"](depth, normal, render)

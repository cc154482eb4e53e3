"""vae_decoder — latents (frames, 4, h, w) float -> image (frames, 3, H, W) float in [0, 1]."""
from __future__ import annotations

from engine.graph_specs import GraphSpec, TensorSpec, float_dtype, latent_hw

NAME, ORDER, SOURCE = "vae_decoder", 50, "model"
LATENTS, IMAGE = "latents", "image"


def spec(config, plan, precision) -> GraphSpec:
    fl, (H, W), (h, w) = float_dtype(precision), plan.image_size, latent_hw(config, plan)
    return GraphSpec(NAME, precision, (TensorSpec(LATENTS, fl, ("frames", 4, h, w)),),
                     (TensorSpec(IMAGE, fl, ("frames", 3, H, W)),), {"frames": plan.frames})


def parts(model) -> dict:
    return {"vae": model.decoder}  # the VAE's decoder, or the tiny one the model was set to use


def forward(parts, latents):
    return parts["vae"](latents)

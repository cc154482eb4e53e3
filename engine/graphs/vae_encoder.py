"""vae_encoder — image (images, 3, H, W) float in [-1, 1] -> latents (images, 4, h, w), latent mean x scale."""
from __future__ import annotations

from engine.graph_specs import GraphSpec, TensorSpec, float_dtype, latent_hw

NAME, ORDER, SOURCE = "vae_encoder", 40, "model"
IMAGE, LATENTS = "image", "latents"


def spec(config, plan, precision) -> GraphSpec:
    fl, (H, W), (h, w) = float_dtype(precision), plan.image_size, latent_hw(config, plan)
    return GraphSpec(NAME, precision, (TensorSpec(IMAGE, fl, ("images", 3, H, W), "signed"),),
                     (TensorSpec(LATENTS, fl, ("images", 4, h, w)),), {"images": plan.images})


def parts(model) -> dict:
    return {"vae": model.vae_encoder}


def forward(parts, image):
    return parts["vae"](image)

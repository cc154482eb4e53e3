"""reference_kv — reference UNet at t=0 on the reference latent, then each reference feature projected
  with the *denoising* UNet's self-attention to_k / to_v (exact: the projections are linear). Run once
  per identity; the denoising UNet then never re-projects the reference per step and frame.
  in   ref_latents             (1, 4, h, w)       float   VAE latent mean x 0.18215 (vae_encoder output)
       text_embedding          (1, 77, D)         float   CLIP text embedding (constant prompt)
  out  ref_k_00 .. ref_k_15    (1, L_i, C_i)      float   L_i = tokens of transformer i, C_i its width
       ref_v_00 .. ref_v_15    (1, L_i, C_i)      float   (pairing order: k_00, v_00, k_01, ...)
"""
from __future__ import annotations

from engine.graph_specs import GraphSpec, TensorSpec, float_dtype, latent_hw, reference_specs, text_spec

NAME, ORDER, SOURCE = "reference_kv", 20, "model"
REF_LATENTS = "ref_latents"
TEXT = "text_embedding"
MODE = "kv"


def wanted(plan) -> bool:
    return plan.reference_mode == MODE


def spec(config, plan, precision) -> GraphSpec:
    fl, (h, w) = float_dtype(precision), latent_hw(config, plan)
    ins = (TensorSpec(REF_LATENTS, fl, (1, 4, h, w)), text_spec(config, precision))
    return GraphSpec(NAME, precision, ins, reference_specs(config, plan, precision), {})


def parts(model) -> dict:
    return {"reference_unet": model.reference_unet, "denoising_unet": model.denoising_unet}


def forward(parts, ref_latents, text_embedding):
    features = parts["reference_unet"](ref_latents, text_embedding)
    return tuple(t for kv in parts["denoising_unet"].project_reference(features) for t in kv)

"""reference_unet — the reference UNet alone (reference mode "features"): reference_kv's inputs,
  out  ref_feature_00 .. ref_feature_15  (1, L_i, C_i) float   fp16-rounded norm1 outputs
"""
from __future__ import annotations

import dataclasses

from engine.graph_specs import GraphSpec
from engine.graphs import reference_kv
from engine.graphs.reference_kv import REF_LATENTS, TEXT  # noqa: F401  (same inputs)

NAME, ORDER, SOURCE = "reference_unet", 20, "model"
MODE = "features"


def wanted(plan) -> bool:
    return plan.reference_mode == MODE


def spec(config, plan, precision) -> GraphSpec:
    """reference_kv's inputs; its outputs follow the plan's reference mode (features here)."""
    return dataclasses.replace(reference_kv.spec(config, plan, precision), name=NAME)


def parts(model) -> dict:
    return {"reference_unet": model.reference_unet}


def forward(parts, ref_latents, text_embedding):
    return tuple(parts["reference_unet"](ref_latents, text_embedding))

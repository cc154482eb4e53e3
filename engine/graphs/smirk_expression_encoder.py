"""smirk_expression_encoder — SMIRK's expression encoder with its output activations (driving path).
  in   crop_rgb01  (crops, 3, 224, 224) float  RGB in [0, 1] (engine.driving.crops.smirk_crop)
  out  exp         (crops, 50)          float  expression coefficients
       jaw         (crops, 3)           float  jaw pose (relu / clamped, as SMIRK's head)
Exported when the plan includes the driving encoders (`mprt export --driving-weights`).
"""
from __future__ import annotations

from engine.graph_specs import GraphSpec, TensorSpec, float_dtype

NAME, ORDER, SOURCE = "smirk_expression_encoder", 70, "driving"
CROP, EXP, JAW = "crop_rgb01", "exp", "jaw"
CROP_SIZE, EXP_COUNT, JAW_COUNT = 224, 50, 3


def wanted(plan) -> bool:
    return plan.driving


def spec(config, plan, precision) -> GraphSpec:
    fl = float_dtype(precision)
    return GraphSpec(NAME, precision, (TensorSpec(CROP, fl, ("crops", 3, CROP_SIZE, CROP_SIZE), "unit"),),
                     (TensorSpec(EXP, fl, ("crops", EXP_COUNT)), TensorSpec(JAW, fl, ("crops", JAW_COUNT))),
                     {"crops": plan.crops})


def parts(encoders) -> dict:
    return {"smirk": encoders.smirk}


def forward(parts, crop_rgb01):
    from engine.driving.smirk_encoder import smirk_exp_and_jaw
    return smirk_exp_and_jaw(parts["smirk"](crop_rgb01))

"""deca_coarse_encoder — DECA's E_flame on 224x224 face crops (driving path, guidance_maps.md §1.7).
  in   crop_rgb01   (crops, 3, 224, 224) float  RGB in [0, 1] (engine.driving.crops.deca_crop)
  out  deca_params  (crops, 236)         float  shape, tex, exp, pose, cam, light (DECA's layout)
Exported when the plan includes the driving encoders (`mprt export --driving-weights`).
"""
from __future__ import annotations

from engine.graph_specs import GraphSpec, TensorSpec, float_dtype

NAME, ORDER, SOURCE = "deca_coarse_encoder", 60, "driving"
CROP, PARAMS = "crop_rgb01", "deca_params"
CROP_SIZE, PARAM_COUNT = 224, 236  # engine.driving.deca_encoder.DECA_LAYOUT.total
GLOBAL_POSE = slice(200, 203)       # the global head rotation: DECA_LAYOUT.pose[:3] (a test holds them equal)


def wanted(plan) -> bool:
    return plan.driving


def spec(config, plan, precision) -> GraphSpec:
    fl = float_dtype(precision)
    return GraphSpec(NAME, precision, (TensorSpec(CROP, fl, ("crops", 3, CROP_SIZE, CROP_SIZE), "unit"),),
                     (TensorSpec(PARAMS, fl, ("crops", PARAM_COUNT)),), {"crops": plan.crops})


def parts(encoders) -> dict:
    return {"deca": encoders.deca}


def forward(parts, crop_rgb01):
    return parts["deca"](crop_rgb01)

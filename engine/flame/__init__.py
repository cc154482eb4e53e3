"""FLAME head model: container, loaders, LBS, synthetic stand-in, camera chain, params file."""
from engine.flame.camera import OrthoCamera
from engine.flame.head_model import resolve_head_model
from engine.flame.lbs import LbsOutput, flame_lbs, rodrigues
from engine.flame.loaders import load_flame_model, save_flame_npz
from engine.flame.model import FlameModel, RenderTopology
from engine.flame.params import FlameParams
from engine.flame.synthetic import SYNTHETIC_NAME, synthetic_head

__all__ = [
    "FlameModel", "RenderTopology", "FlameParams", "OrthoCamera", "LbsOutput", "flame_lbs",
    "rodrigues", "load_flame_model", "save_flame_npz", "synthetic_head", "SYNTHETIC_NAME",
    "resolve_head_model",
]

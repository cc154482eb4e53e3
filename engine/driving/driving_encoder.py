"""Per-frame driving encoders: only what the maps need (guidance_maps.md §1.7, §8).

DECA `E_flame` gives the global head rotation (pose[:3]); SMIRK's expression encoder gives the
expression (50) and jaw (3). DECA's exp/jaw, the detail encoder, SMIRK's pose/shape encoders and
the landmark/ffhq centre are not computed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.driving.crops import CropBox, deca_crop, deca_no_face_box, resize_for_deca, smirk_crop
from engine.driving.deca_encoder import DECA_LAYOUT
from engine.driving.encoder_weights import EncoderPair
from engine.driving.face_tracker import Track
from engine.driving.smirk_encoder import smirk_exp_and_jaw


@dataclass(frozen=True)
class EncoderInputs:
    """The two 224x224 crops of one frame, float32 (3,224,224) RGB in [0,1]."""

    deca: np.ndarray
    smirk: np.ndarray


def prepare_encoder_inputs(frame_rgb_u8: np.ndarray, track: Track | None) -> EncoderInputs:
    """Crops as upstream makes them; `track=None` gives upstream's no-face fallbacks (§1.2, §1.5)."""
    deca_box: CropBox = track.deca_box if track is not None else deca_no_face_box()
    smirk_box = track.smirk_box if track is not None else None
    return EncoderInputs(deca_crop(resize_for_deca(frame_rgb_u8), deca_box), smirk_crop(frame_rgb_u8, smirk_box))


class DrivingEncoder:
    """`encode(inputs) -> {'pose': (B,3) global axis-angle, 'exp': (B,50), 'jaw': (B,3)}`."""

    def __init__(self, encoders: EncoderPair, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.deca = encoders.deca.to(self.device).eval()
        self.smirk = encoders.smirk.to(self.device).eval()

    @torch.inference_mode()
    def encode_crops(self, deca_crops: torch.Tensor, smirk_crops: torch.Tensor) -> dict[str, torch.Tensor]:
        pose_slice = slice(DECA_LAYOUT.pose.start, DECA_LAYOUT.pose.start + 3)
        global_rot = self.deca(deca_crops.to(self.device))[:, pose_slice]
        exp, jaw = smirk_exp_and_jaw(self.smirk(smirk_crops.to(self.device)))
        return {"pose": global_rot, "exp": exp, "jaw": jaw}

    def encode(self, inputs: list[EncoderInputs]) -> dict[str, np.ndarray]:
        """A batch of frames' crops -> float32 numpy parameters."""
        deca = torch.from_numpy(np.stack([i.deca for i in inputs]))
        smirk = torch.from_numpy(np.stack([i.smirk for i in inputs]))
        return {k: v.float().cpu().numpy() for k, v in self.encode_crops(deca, smirk).items()}

"""Where the encoders' weights come from: the released files in a weights folder, or (explicitly)
random weights for tests and demos. `EncoderPair.identity` keys caches on what decides outputs."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from engine.driving.deca_encoder import DECA_FILE, DECA_LAYOUT, DecaCoarseEncoder, load_deca_coarse_encoder
from engine.driving.smirk_encoder import SMIRK_FILE, SmirkExpressionEncoder, load_smirk_expression_encoder
from engine.errors import CheckpointError

WHERE_TO_GET = {
    DECA_FILE: "DECA's release (github.com/yfeng95/DECA, README 'Download DECA trained model' -> data/deca_model.tar)",
    SMIRK_FILE: "SMIRK's release (github.com/georgeretsi/smirk, README 'pretrained_models/SMIRK_em1.pt')",
}

# A plausible mean code for random-weight demos: camera scale ~9 puts the head inside the crop
# (DECA's typical s), ambient light in the first SH band so the render map is not black.
RANDOM_CAM_SCALE = 9.0
RANDOM_AMBIENT_LIGHT = 3.5


@dataclass
class EncoderPair:
    deca: DecaCoarseEncoder
    smirk: SmirkExpressionEncoder
    identity: str  # what determines the outputs (file path/size/mtime, or "random:<seed>")
    random: bool = False


def _file_identity(path: str) -> str:
    st = os.stat(path)
    return f"{os.path.abspath(path)}:{st.st_size}:{st.st_mtime_ns}"


def encoder_files(weights_dir: str | os.PathLike | None) -> tuple[str, str]:
    """Paths of deca_model.tar and SMIRK_em1.pt in `weights_dir`; error naming every missing file."""
    if weights_dir is None:
        raise CheckpointError(
            f"no encoder weights given: pass a folder holding {DECA_FILE} and {SMIRK_FILE} "
            f"(--weights DIR), or --random-encoders for a demo with random weights. "
            + "; ".join(f"{name} comes from {src}" for name, src in WHERE_TO_GET.items())
        )
    weights_dir = os.fspath(weights_dir)
    paths = {name: os.path.join(weights_dir, name) for name in WHERE_TO_GET}
    missing = [name for name, p in paths.items() if not os.path.isfile(p)]
    if missing:
        raise CheckpointError(
            f"missing in weights folder {weights_dir}: "
            + "; ".join(f"{name} (get it from {WHERE_TO_GET[name]})" for name in missing)
        )
    return paths[DECA_FILE], paths[SMIRK_FILE]


def load_encoders(weights_dir: str | os.PathLike | None) -> EncoderPair:
    deca_path, smirk_path = encoder_files(weights_dir)
    deca = load_deca_coarse_encoder(deca_path)
    smirk = load_smirk_expression_encoder(smirk_path)
    return EncoderPair(deca, smirk, f"deca={_file_identity(deca_path)};smirk={_file_identity(smirk_path)}")


def random_encoders(seed: int = 0) -> EncoderPair:
    """Encoders with seeded random weights; final layers damped around a plausible mean code."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        deca, smirk = DecaCoarseEncoder(), SmirkExpressionEncoder()
    with torch.no_grad():
        for head in (deca.layers[-1], smirk.expression_layers[-1]):
            head.weight.mul_(1e-3)
            head.bias.zero_()
        bias = deca.layers[-1].bias
        bias[DECA_LAYOUT.cam.start] = RANDOM_CAM_SCALE
        bias[DECA_LAYOUT.light.start : DECA_LAYOUT.light.start + 3] = RANDOM_AMBIENT_LIGHT
    return EncoderPair(deca.eval(), smirk.eval(), f"random:{seed}", random=True)

"""The full-size networks carry exactly upstream's checkpoint keys and shapes (spec/checkpoint_keys.json).
Built on the meta device: no memory is allocated."""
import json

import pytest
import torch

from engine.networks.config import ModelConfig
from engine.networks.denoising_unet import DenoisingUNet3D
from engine.networks.guidance_encoder import GuidanceEncoder
from engine.networks.reference_unet import ReferenceUNet


@pytest.fixture(scope="module")
def contract(shared_dir):
    return json.loads((shared_dir / "spec" / "checkpoint_keys.json").read_text())


def _shapes(module):
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def _expected(contract, net):
    return {k: v["shape"] for k, v in contract[net].items()}


def test_denoising_unet_keys_and_shapes_match_upstream(contract):
    cfg = ModelConfig()
    with torch.device("meta"):
        net = DenoisingUNet3D(cfg.unet, cfg.motion)
    assert _shapes(net) == _expected(contract, "denoising_unet3d")
    params = sum(p.numel() for p in net.parameters())
    assert params == contract["meta"]["counts"]["denoising_unet3d"]["params"] == 1_312_730_244


def test_reference_unet_keys_and_shapes_match_upstream(contract):
    cfg = ModelConfig()
    with torch.device("meta"):
        net = ReferenceUNet(cfg.unet)
    assert _shapes(net) == _expected(contract, "reference_unet2d")


def test_guidance_encoder_builds_only_used_keys_and_accepts_the_rest(contract):
    cfg = ModelConfig()
    with torch.device("meta"):
        enc = GuidanceEncoder(cfg.guidance)
    ours = _shapes(enc)
    expected = _expected(contract, "guidance_encoder")
    for key, shape in ours.items():
        assert expected[key] == shape, key
    unused = set(expected) - set(ours)
    patterns = enc.unused_key_patterns()
    assert all(any(p.match(k) for p in patterns) for k in unused)
    assert not any(any(p.match(k) for p in patterns) for k in ours)
    used_params = sum(p.numel() for p in enc.parameters())
    assert used_params == 2_270_736  # networks.md (e).6


def test_reference_pairs_follow_module_paths(contract):
    cfg = ModelConfig()
    with torch.device("meta"):
        ref = ReferenceUNet(cfg.unet)
        den = DenoisingUNet3D(cfg.unet, cfg.motion)
    pairs = contract["meta"]["reference_attention_reader_writer_pairs(reader_in_denoising_unet, writer_in_reference_unet)"]
    assert len(pairs) == 16
    # Our execution order pairs i-th writer with i-th reader; each pair shares its module path.
    assert ref.transformer_names() == den.transformer_names()
    assert sorted(ref.transformer_names()) == sorted(r for r, w in pairs)
    assert all(r == w for r, w in pairs)

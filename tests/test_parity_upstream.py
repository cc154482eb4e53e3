"""Parity with vectors produced by upstream's own code (../shared/parity), tolerance 1e-4 relative."""
import json

import pytest
import torch

from engine.networks.config import tiny_config
from engine.networks.denoising_unet import DenoisingUNet3D
from engine.networks.guidance_encoder import GuidanceEncoderSet
from engine.networks.reference_unet import ReferenceUNet
from engine.preprocess import GUIDANCE_TYPES

REL_TOL = 1e-4


def _load(path):
    from safetensors.torch import load_file
    return {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}


def _rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.fixture(scope="module")
def parity(shared_dir):
    d = shared_dir / "parity"
    cfg = tiny_config()
    assert json.loads((d / "config.json").read_text())["unet_config"]["block_out_channels"] == \
        list(cfg.unet.block_out_channels)
    guidance = GuidanceEncoderSet(cfg.guidance)
    for t in GUIDANCE_TYPES:
        enc = guidance.encoders[t]
        sd = _load(d / f"weights_guidance_encoder_{t}.safetensors")
        enc.load_state_dict({k: v for k, v in sd.items()
                             if not any(p.match(k) for p in enc.unused_key_patterns())}, strict=True)
    ref = ReferenceUNet(cfg.unet)
    ref.load_state_dict({k: v for k, v in _load(d / "weights_reference_unet.safetensors").items()
                         if not k.startswith(ReferenceUNet.IGNORED_KEY_PREFIXES)}, strict=True)
    den = DenoisingUNet3D(cfg.unet, cfg.motion)
    den.load_state_dict(_load(d / "weights_denoising_unet.safetensors"), strict=True)
    return d, guidance.eval(), ref.eval(), den.eval()


@torch.no_grad()
def test_case_i_guidance_encoders(parity):
    d, guidance, _, _ = parity
    case = _load(d / "case_i_guidance.safetensors")
    # Upstream's input: uint8 maps / 255, laid out (1, 3, F, H, W).
    maps = {t: case[f"in.guidance_u8.{t}"].permute(3, 0, 1, 2)[None].float() / 255 for t in GUIDANCE_TYPES}
    for t in GUIDANCE_TYPES:
        per_frame = maps[t][0].transpose(0, 1)
        out = guidance.encoders[t](per_frame).transpose(0, 1)[None]
        assert _rel_err(out, case[f"out.guidance_fea.{t}"]) < REL_TOL, t
    assert _rel_err(guidance.encode_video(maps), case["out.guidance_fea_sum"]) < REL_TOL


@torch.no_grad()
def test_case_ii_reference_features_are_fp16_rounded_banks(parity):
    d, _, ref, _ = parity
    case = _load(d / "case_ii_refattn.safetensors")
    feats = ref(case["in.ref_latents"], case["in.text_embeds"])
    for name, f in zip(ref.transformer_names(), feats):
        bank = case[f"dbg.bank.{name}"]
        assert f.shape == bank.shape
        # dbg banks are fp32; ours are rounded to fp16 like upstream's update(): within fp16's half-ulp.
        assert torch.allclose(f, bank.half().float(), rtol=0, atol=2e-3), name
        assert (f - bank).abs().max() <= bank.abs().max() * 2 ** -11 + 1e-6


@pytest.mark.slow
@torch.no_grad()
def test_case_ii_unet_forward_without_cfg(parity):
    d, _, ref, den = parity
    case = _load(d / "case_ii_refattn.safetensors")
    kv = den.project_reference(ref(case["in.ref_latents"], case["in.text_embeds"]))
    out = den(case["in.latents"], case["in.timestep"], case["in.text_embeds"], case["in.guidance_fea"], kv)
    assert _rel_err(out, case["out.nocfg"]) < REL_TOL


@pytest.mark.slow
@torch.no_grad()
def test_case_ii_unet_forward_with_cfg_uncond_half_has_no_reference(parity):
    d, _, ref, den = parity
    case = _load(d / "case_ii_refattn.safetensors")
    kv = den.project_reference(ref(case["in.ref_latents"], case["in.text_embeds"]))
    use_ref = torch.tensor([False, True])
    out = den(case["in.latents_cfg"], case["in.timestep"], case["in.text_embeds"], case["in.guidance_fea"],
              kv, use_ref)
    assert _rel_err(out, case["out.cfg"]) < REL_TOL
    # The uncond half equals a run with no reference at all (networks.md (b).6).
    noref = den(case["in.latents_cfg"][:1], case["in.timestep"], case["in.text_embeds"],
                case["in.guidance_fea"], None)
    assert _rel_err(out[:1], noref) < 1e-5

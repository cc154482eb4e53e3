"""A random-weight model of MagicPortrait's architecture, written in upstream's on-disk layout.

Tests and the embedded default load it through the real loader (engine.weights.load), so the code
path is the one real checkpoints take. Sizes follow ../shared/parity/config.json.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile

import torch

from engine.cache import cache_path, files_key
from engine.errors import InputError
from engine.networks.config import ModelConfig, tiny_config
from engine.networks.denoising_unet import DenoisingUNet3D
from engine.networks.guidance_encoder import GuidanceEncoder
from engine.networks.reference_unet import ReferenceUNet
from engine.networks.text_embedding import write_text_embedding
from engine.networks.transformer import SpatialTransformer
from engine.preprocess import GUIDANCE_TYPES, TEXT_EMBEDDING_FILE
from engine.weights.layout import MODEL_CONFIG_FILE

TINY_IMAGE_SIZE = tiny_config().image_size  # pixels; latents 16x16


def _upstream_guidance_state_dict(enc: GuidanceEncoder, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """The encoder's keys plus the ones upstream stores but never runs (attentions[0..-2], guidance_attention)."""
    sd = dict(enc.state_dict())
    widths = [conv.out_channels for conv in enc.blocks]
    for i, width in enumerate(widths[:-1]):
        extra = SpatialTransformer(width, cfg.guidance.attention_heads, None, groups=min(32, width))
        sd.update({f"attentions.{i}.{k}": v for k, v in extra.state_dict().items()})
    extra = SpatialTransformer(widths[-1], cfg.guidance.attention_heads, None)
    sd.update({f"guidance_attention.{k}": v for k, v in extra.state_dict().items()})
    return sd


def _vae(cfg: ModelConfig):
    from diffusers import AutoencoderKL
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         block_out_channels=(32, 32, 64, 64), norm_num_groups=32, sample_size=TINY_IMAGE_SIZE)


TINY_README = ("Random-weight tiny MagicPortrait model written by `mprt make-tiny-weights` (for tests and\n"
               "the embedded default). Same architecture and file layout as the released weights.\n")


def write_tiny_weights(out: str | pathlib.Path, seed: int = 0, overwrite: bool = False) -> pathlib.Path:
    """Write the tiny model to `out` (whole or not at all). Returns the folder."""
    from safetensors.torch import save_file
    out = pathlib.Path(out)
    if out.exists() and not overwrite:
        raise InputError(f"{out}: already exists (pass --overwrite to replace it)")
    if out.exists() and not _is_tiny_model(out):  # never delete a folder mprt did not write
        raise InputError(f"{out}: exists and is not a tiny model written by mprt; not replaced, even with "
                         "--overwrite (choose a new folder)")
    cfg = tiny_config()
    torch.manual_seed(seed)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=".tiny-", dir=out.parent if out.parent.exists() else None))
    try:
        sd15 = tmp / "stable-diffusion-v1-5" / "unet"
        sd15.mkdir(parents=True)
        (sd15 / "config.json").write_text(json.dumps(cfg.unet.to_diffusers(), indent=1))
        base = DenoisingUNet3D(cfg.unet, cfg.motion).state_dict()
        save_file({k: v.contiguous() for k, v in base.items() if "motion_modules." not in k},
                  str(sd15 / "diffusion_pytorch_model.safetensors"))
        # Stage-1 style files: the denoising/reference UNets' own weights override SD1.5's; the
        # motion-module file is the subset of the 3D UNet's keys that contain "motion_module".
        denoising = DenoisingUNet3D(cfg.unet, cfg.motion).state_dict()
        torch.save({k: v for k, v in denoising.items() if "motion_modules." not in k}, tmp / "denoising_unet.pth")
        torch.save({k: v for k, v in denoising.items() if "motion_modules." in k}, tmp / "motion_module.pth")
        torch.save(ReferenceUNet(cfg.unet).state_dict(), tmp / "reference_unet.pth")
        for kind in GUIDANCE_TYPES:
            enc = GuidanceEncoder(cfg.guidance)
            torch.save(_upstream_guidance_state_dict(enc, cfg), tmp / f"guidance_encoder_{kind}.pth")
        (tmp / MODEL_CONFIG_FILE).write_text(json.dumps(cfg.to_json(), indent=1))
        _vae(cfg).save_pretrained(str(tmp / "sd-vae-ft-mse"), safe_serialization=True)
        write_text_embedding(tmp / TEXT_EMBEDDING_FILE,
                             torch.randn(1, 77, cfg.unet.cross_attention_dim))
        (tmp / "README.txt").write_text(TINY_README)
        if out.exists():
            shutil.rmtree(out)
        tmp.chmod(0o755)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def tiny_weights_key() -> str:
    """Key of the code that writes the tiny model: this file and the networks (architecture, config,
    text embedding writer). A change there gives a new cache entry instead of a stale one."""
    networks = pathlib.Path(__file__).resolve().parents[1] / "networks"
    return files_key([pathlib.Path(__file__).resolve(), *sorted(networks.glob("*.py"))], length=12)


def _is_tiny_model(folder: pathlib.Path) -> bool:
    readme = folder / "README.txt"
    try:
        return readme.is_file() and readme.read_text().startswith(TINY_README.split("\n")[0])
    except (OSError, UnicodeDecodeError):
        return False


def default_tiny_weights_dir() -> pathlib.Path:
    """Where the embedded default keeps its tiny model (created on first use, under engine.cache's root)."""
    return cache_path(f"tiny-weights-{tiny_weights_key()}")


def ensure_tiny_weights() -> pathlib.Path:
    path = default_tiny_weights_dir()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_tiny_weights(path)
    return path

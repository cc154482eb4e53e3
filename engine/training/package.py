"""Write a trained model in upstream's on-disk layout (safetensors, fp16), with its model card.

The normal loader (engine.weights) reads the result like released weights: the SD1.5 base UNet file
holds the denoising UNet's spatial weights, the checkpoint files hold what upstream's do.
"""
from __future__ import annotations

import json
import pathlib
import shutil
import tempfile

import torch

from engine.errors import InputError
from engine.io.atomic import atomic_file
from engine.io.hashing import sha256_file
from engine.networks.config import GUIDANCE_TYPES, ModelConfig
from engine.networks.text_embedding import write_text_embedding
from engine.training.diffusion import Networks
from engine.weights.layout import MODEL_CONFIG_FILE

CARD_FILE = "MODEL_CARD.md"
HASHES_FILE = "SHA256SUMS"


def _save(tensors: dict[str, torch.Tensor], path: pathlib.Path, meta: dict[str, str]) -> None:
    from safetensors.torch import save_file
    save_file({k: v.detach().to(torch.float16).contiguous() for k, v in tensors.items()}, str(path), metadata=meta)


def write_model(out: pathlib.Path, nets: Networks, vae, config: ModelConfig, card: str,
                meta: dict[str, str]) -> pathlib.Path:
    """Write the whole folder (replaced whole or not at all)."""
    out = pathlib.Path(out)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        unet_dir = tmp / "stable-diffusion-v1-5" / "unet"
        unet_dir.mkdir(parents=True)
        (unet_dir / "config.json").write_text(json.dumps(config.unet.to_diffusers(), indent=1))
        dn = nets.denoising_unet.state_dict()
        spatial = {k: v for k, v in dn.items() if "motion_modules." not in k}
        _save(spatial, unet_dir / "diffusion_pytorch_model.safetensors", meta)
        _save(spatial, tmp / "denoising_unet.safetensors", meta)
        _save({k: v for k, v in dn.items() if "motion_modules." in k}, tmp / "motion_module.safetensors", meta)
        _save(nets.reference_unet.state_dict(), tmp / "reference_unet.safetensors", meta)
        for kind in GUIDANCE_TYPES:
            _save(nets.guidance_encoders.encoders[kind].state_dict(), tmp / f"guidance_encoder_{kind}.safetensors", meta)
        (tmp / MODEL_CONFIG_FILE).write_text(json.dumps(config.to_json(), indent=1))
        vae.to(torch.float16).save_pretrained(str(tmp / "sd-vae-ft-mse"), safe_serialization=True)
        vae.to(torch.float32)
        write_text_embedding(tmp / "text_embedding.safetensors", nets.text)
        write_hashes(tmp)
        (tmp / CARD_FILE).write_text(card)
        tmp.chmod(0o755)
        check_replaceable(out)
        old = out.with_name(f".{out.name}-replaced-{tmp.name}") if out.exists() else None
        if old is not None:
            out.rename(old)  # set aside, not deleted, until the new folder is in place
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def check_replaceable(out: pathlib.Path) -> None:
    """`out` may be replaced only when it is missing, empty or a model folder this code wrote
    (its model card and hash list): never a folder of the user's that merely has the name."""
    out = pathlib.Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder (expected a model folder to replace)")
    if any(out.iterdir()) and not ((out / CARD_FILE).is_file() and (out / HASHES_FILE).is_file()):
        raise InputError(f"--out {out}: not a model folder written by `mprt train` (no {CARD_FILE} and "
                         f"{HASHES_FILE}); refusing to replace it: name a new folder")


def write_hashes(root: pathlib.Path) -> None:
    """SHA256SUMS: every weight file of the folder (sha256sum -c checks it)."""
    with atomic_file(root / HASHES_FILE, "w") as f:
        f.write("".join(f"{sha256(p)}  {p.relative_to(root)}\n" for p in weight_files(root)))


def rehash_model_folder(written: pathlib.Path) -> pathlib.Path | None:
    """After `written` (a student, a tiny decoder) was put into a model folder that lists its weights
    (SHA256SUMS beside it or one level up), list them anew; returns the folder rehashed, if any."""
    written = pathlib.Path(written).resolve()
    for root in (written.parent, written.parent.parent):
        if (root / HASHES_FILE).is_file() and (root / CARD_FILE).is_file():
            write_hashes(root)
            return root
    return None


def weight_files(root: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in root.rglob("*.safetensors"))


def sha256(path: pathlib.Path) -> str:
    return sha256_file(path)

"""Fine-tune the VAE decoder of an existing model folder (`mprt finetune-decoder`).

The encoder, the latent scale and every other network stay as they are, so the model keeps working
as before; only `sd-vae-ft-mse/` is replaced (whole, or not at all) and `SHA256SUMS` rewritten.
`mprt train` runs the same stage (engine.training.autoencoder.finetune_decoder) on its own autoencoder.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil
import tempfile

import numpy as np
import torch

from engine.errors import InputError
from engine.evaluation.metrics import face_colour_error, psnr
from engine.training.autoencoder import encode_means, finetune_decoder
from engine.training.data import to_unit
from engine.training.package import CARD_FILE, HASHES_FILE, write_hashes
from engine.training.recipe import TrainRecipe
from engine.weights.layout import VAE_NAMES

REPORT_FILE = "finetune.json"  # in the VAE folder: settings and the before/after measurements


@dataclasses.dataclass(frozen=True)
class RefitSettings:
    """The decoder stage's numbers; defaults are the training recipe's (one source)."""
    steps: int = TrainRecipe.decoder_steps
    batch: int = TrainRecipe.decoder_batch
    lr: float = TrainRecipe.decoder_lr
    seed: int = TrainRecipe.seed


@torch.no_grad()
def round_trip_scores(vae, images_u8: np.ndarray, masks_u8: np.ndarray | None, device, batch: int = 64) -> dict:
    """PSNR of encode -> decode over `images_u8` (and the face colour error inside `masks_u8`)."""
    out = []
    for i in range(0, len(images_u8), batch):
        x = to_unit(images_u8[i:i + batch], device) * 2 - 1
        y = vae.decode(vae.encode(x).latent_dist.mean).sample
        out.append(((y.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
    recon = np.concatenate(out)
    scores = {"psnr_db": round(psnr(recon, images_u8), 3)}
    if masks_u8 is not None:
        scores["face_colour_err"] = round(face_colour_error(recon, images_u8, masks_u8), 3)
    return scores


def refit_decoder(weights: pathlib.Path, images_u8: np.ndarray, settings: RefitSettings, work: pathlib.Path,
                  device: str = "cpu", held_out: tuple[np.ndarray, np.ndarray | None] | None = None,
                  command: str = "") -> dict:
    """Fine-tune `weights`' VAE decoder on `images_u8` (N,S,S,3) uint8 at the model's size, checkpointing
    in `work` (a rerun resumes); replace the VAE folder and the hash list. Returns the report."""
    from engine.networks.vae import load_autoencoder
    weights = pathlib.Path(weights)
    folder = next((weights / n for n in VAE_NAMES if (weights / n).is_dir()), None)
    if folder is None:
        raise InputError(f"--weights {weights}: no VAE folder ({', '.join(VAE_NAMES)}) to fine-tune")
    if images_u8.ndim != 4 or images_u8.shape[1] != images_u8.shape[2] or images_u8.shape[1] % 8:
        raise InputError(f"images: expected (N,S,S,3) with S a multiple of 8, got {images_u8.shape}")
    stored = _stored_dtype(folder)
    vae = load_autoencoder(folder).float().to(device)
    before = round_trip_scores(vae, *held_out, device) if held_out else None
    latents = encode_means(vae, images_u8, device)
    vae = finetune_decoder(vae, images_u8, latents, settings.steps, settings.batch, settings.lr,
                           work / "decoder.pt", settings.seed, device)
    after = round_trip_scores(vae, *held_out, device) if held_out else None
    report = {"settings": dataclasses.asdict(settings), "images": len(images_u8), "command": command,
              "held_out_round_trip": {"before": before, "after": after} if held_out else None}
    _replace_folder(folder, vae.to("cpu", stored), report)
    if (weights / HASHES_FILE).is_file():
        write_hashes(weights)
    if (weights / CARD_FILE).is_file():
        with open(weights / CARD_FILE, "a") as f:
            f.write(f"\n**Decoder fine-tuned** (encoder frozen; `{REPORT_FILE}` in the VAE folder): `{command}`, "
                    f"{settings.steps} steps{describe_change(before, after)}.\n")
    return report


def describe_change(before: dict | None, after: dict | None) -> str:
    """'; held-out round trip: psnr_db 19.76 -> 20.29, face_colour_err 8.17 -> 3.2' (empty without one)."""
    if not (before and after):
        return ""
    return "; held-out round trip: " + ", ".join(f"{k} {before[k]:g} -> {after[k]:g}" for k in before)


def _stored_dtype(folder: pathlib.Path) -> torch.dtype:
    """The VAE's weight dtype on disk: written back the same (fp16 would round an fp32 encoder)."""
    from safetensors import safe_open
    file = folder / "diffusion_pytorch_model.safetensors"
    if not file.is_file():
        return torch.float32
    with safe_open(str(file), "pt") as f:
        return f.get_tensor(next(iter(f.keys()))).dtype


def _replace_folder(folder: pathlib.Path, vae, report: dict) -> None:
    """Write the new VAE beside the old folder, then swap: a crash leaves the old one in place."""
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        vae.save_pretrained(str(tmp), safe_serialization=True)
        config = json.loads((tmp / "config.json").read_text())
        config.pop("_name_or_path", None)  # where it was loaded from: a path of this machine
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        (tmp / REPORT_FILE).write_text(json.dumps(report, indent=1))
        tmp.chmod(0o755)
        old = folder.with_name(f".{folder.name}-replaced-{tmp.name}")
        folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

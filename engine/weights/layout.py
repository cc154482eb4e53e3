"""Where the files of a MagicPortrait installation are (upstream's `pretrained_weights/` layout).

    WEIGHTS/
      stable-diffusion-v1-5/unet/{config.json, diffusion_pytorch_model.(safetensors|bin)}
      stable-diffusion-v1-5/{text_encoder,tokenizer}/   (only to compute the text embedding once)
      sd-vae-ft-mse/{config.json, diffusion_pytorch_model.(safetensors|bin)}
      denoising_unet.pth, reference_unet.pth, guidance_encoder_{depth,normal,render}.pth,
      motion_module*.pth                 (here or in one sub-folder, e.g. MagicPortrait/;
                                          each may also be .safetensors, as the built-in model's are)
      magicportrait.json                 (optional: model config when not upstream's defaults)
      text_embedding.safetensors         (cache of the fixed prompt's CLIP embedding)
"""
from __future__ import annotations

import dataclasses
import pathlib

from engine.errors import CheckpointError
from engine.preprocess import GUIDANCE_TYPES, TEXT_EMBEDDING_FILE

SD15_NAMES = ("stable-diffusion-v1-5", "sd-v1-5", "sd15")
VAE_NAMES = ("sd-vae-ft-mse",)
MODEL_CONFIG_FILE = "magicportrait.json"
WEIGHT_FILE_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
CHECKPOINT_SUFFIXES = (".pth", ".safetensors")  # upstream ships .pth; both hold the same keys


def checkpoint_file(folder: pathlib.Path, stem: str) -> pathlib.Path | None:
    """`folder/stem.pth` or `folder/stem.safetensors`, whichever exists (None if neither)."""
    return next((folder / f"{stem}{s}" for s in CHECKPOINT_SUFFIXES if (folder / f"{stem}{s}").exists()), None)


@dataclasses.dataclass(frozen=True)
class WeightsLayout:
    root: pathlib.Path
    sd15_dir: pathlib.Path
    vae_dir: pathlib.Path
    ckpt_dir: pathlib.Path

    @property
    def sd15_unet_config(self) -> pathlib.Path:
        return self.sd15_dir / "unet" / "config.json"

    @property
    def sd15_unet_weights(self) -> pathlib.Path:
        return _first_existing(self.sd15_dir / "unet", WEIGHT_FILE_NAMES, "SD1.5 UNet weights")

    @property
    def denoising_unet(self) -> pathlib.Path:
        return _required(self.ckpt_dir, "denoising_unet")

    @property
    def reference_unet(self) -> pathlib.Path:
        return _required(self.ckpt_dir, "reference_unet")

    def guidance_encoder(self, kind: str) -> pathlib.Path:
        return _required(self.ckpt_dir, f"guidance_encoder_{kind}")

    @property
    def motion_modules(self) -> list[pathlib.Path]:
        files = sorted(p for s in CHECKPOINT_SUFFIXES for p in self.ckpt_dir.glob(f"motion_module*{s}"))
        if not files:
            raise CheckpointError(f"{self.ckpt_dir}: no motion_module*.pth found (expected upstream's "
                                  "motion_module-47360.pth beside denoising_unet.pth)")
        return files

    @property
    def model_config(self) -> pathlib.Path:
        return self.ckpt_dir / MODEL_CONFIG_FILE

    @property
    def text_embedding(self) -> pathlib.Path:
        return self.root / TEXT_EMBEDDING_FILE

    @classmethod
    def discover(cls, root: str | pathlib.Path) -> "WeightsLayout":
        root = pathlib.Path(root)
        if not root.is_dir():
            raise CheckpointError(f"{root}: weights folder not found")
        sd15 = _find_dir(root, SD15_NAMES, "the Stable Diffusion 1.5 folder (with unet/)")
        vae = _find_dir(root, VAE_NAMES, "the sd-vae-ft-mse VAE folder")
        candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir())
        ckpt = next((d for d in candidates if checkpoint_file(d, "denoising_unet")), None)
        if ckpt is None:
            raise CheckpointError(f"{root}: no denoising_unet.pth here or in a sub-folder (expected "
                                  "MagicPortrait's checkpoint files: denoising_unet.pth, reference_unet.pth, "
                                  "guidance_encoder_{depth,normal,render}.pth, motion_module*.pth)")
        layout = cls(root, sd15, vae, ckpt)
        missing = [f"{stem}.pth" for stem in ["reference_unet"] + [f"guidance_encoder_{k}" for k in GUIDANCE_TYPES]
                   if checkpoint_file(ckpt, stem) is None]
        if missing:
            raise CheckpointError(f"{ckpt}: missing checkpoint file(s): {', '.join(missing)}")
        return layout


def _find_dir(root: pathlib.Path, names: tuple[str, ...], what: str) -> pathlib.Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise CheckpointError(f"{root}: {what} not found (looked for {', '.join(names)})")


def _first_existing(folder: pathlib.Path, names: tuple[str, ...], what: str) -> pathlib.Path:
    for name in names:
        if (folder / name).exists():
            return folder / name
    raise CheckpointError(f"{folder}: {what} not found (expected one of {', '.join(names)})")


def _required(folder: pathlib.Path, stem: str) -> pathlib.Path:
    path = checkpoint_file(folder, stem)
    if path is None:
        raise CheckpointError(f"{folder / stem}.pth: checkpoint file not found (nor .safetensors)")
    return path

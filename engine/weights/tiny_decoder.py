"""User files of a tiny (TAESD-format) decoder: `--decoder taesd:DIR`. Never downloaded.

DIR holds either TAESD's own file (`taesd_decoder.safetensors`, or `taesd_decoder.pth` read with
weights_only) or a diffusers AutoencoderTiny folder (`config.json` + `diffusion_pytorch_model.*`;
only its decoder is read). `mprt distill-decoder` writes the first form, with what it was trained
from in the safetensors metadata.
"""
from __future__ import annotations

import json
import pathlib

import torch

from engine.errors import CheckpointError, InputError
from engine.networks.tiny_decoder import TinyDecoder, diffusers_to_taesd_keys
from engine.weights.state_dict import read_state_dict

TAESD_FILES = ("taesd_decoder.safetensors", "taesd_decoder.pth")
DIFFUSERS_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
TINY_DECODER_DIR = "tiny_decoder"  # WEIGHTS/tiny_decoder/: where `mprt distill-decoder` writes by default


def parse_decoder_option(text: str | None) -> tuple[str, pathlib.Path | None]:
    """'vae', 'auto' (WEIGHTS/tiny_decoder if it exists, resolved by `find_tiny_decoder`) or 'taesd:DIR'
    -> (kind, DIR)."""
    if text is None or text in ("vae", "auto"):
        return text or "vae", None
    kind, _, path = text.partition(":")
    if kind != "taesd" or not path:
        raise InputError(f"--decoder {text!r}: expected 'vae', 'auto' or 'taesd:DIR' (a folder with "
                         "taesd_decoder.safetensors or a diffusers AutoencoderTiny)")
    return kind, pathlib.Path(path)


def find_tiny_decoder(weights_root) -> pathlib.Path | None:
    """WEIGHTS/tiny_decoder if it holds a TAESD-format decoder file."""
    if weights_root is None:
        return None
    folder = pathlib.Path(weights_root) / TINY_DECODER_DIR
    return folder if any((folder / n).is_file() for n in TAESD_FILES) else None


def load_tiny_decoder(folder: str | pathlib.Path) -> tuple[TinyDecoder, dict[str, str]]:
    """-> (decoder in eval mode, metadata). Raises CheckpointError with one line naming the file."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"--decoder taesd:{folder}: folder not found (expected {TAESD_FILES[0]} or a "
                              "diffusers AutoencoderTiny folder in it)")
    path = next((folder / n for n in TAESD_FILES if (folder / n).is_file()), None)
    metadata: dict[str, str] = {}
    if path is not None:
        sd = read_state_dict(path)
        metadata = _safetensors_metadata(path)
    else:
        path = next((folder / n for n in DIFFUSERS_FILES if (folder / n).is_file()), None)
        if path is None:
            raise CheckpointError(f"--decoder taesd:{folder}: no {' / '.join(TAESD_FILES)} and no diffusers "
                                  f"AutoencoderTiny weights ({' / '.join(DIFFUSERS_FILES)}) in it")
        _check_diffusers_config(folder / "config.json")
        sd = diffusers_to_taesd_keys(read_state_dict(path))
    first = sd.get("1.weight")
    if first is None or first.ndim != 4:
        raise CheckpointError(f"{path}: not a TAESD-format decoder (no first convolution '1.weight' / "
                              "'decoder.layers.0.weight')")
    net = TinyDecoder(latent_channels=first.shape[1], width=first.shape[0])
    expected = net.state_dict()
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    wrong = [k for k in expected if k in sd and tuple(sd[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = [f"{what} {keys[:3]}" + (f" (+{len(keys) - 3})" if len(keys) > 3 else "")
                 for what, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                    ("wrong shapes", wrong)) if keys]
        raise CheckpointError(f"{path}: not a TAESD-format decoder of width {net.width}: {'; '.join(parts)}")
    net.load_state_dict({k: v.float() for k, v in sd.items()})
    return net.eval().requires_grad_(False), metadata


def _check_diffusers_config(path: pathlib.Path) -> None:
    if not path.is_file():
        return  # the weights decide
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None
    checks = {"act_fn": "relu", "upsample_fn": "nearest", "upsampling_scaling_factor": 2,
              "num_decoder_blocks": [3, 3, 3, 1], "scaling_factor": 1.0, "shift_factor": 0.0}
    bad = {k: cfg[k] for k, want in checks.items()
           if k in cfg and (list(cfg[k]) if isinstance(cfg[k], (list, tuple)) else cfg[k]) != want}
    widths = set(cfg.get("decoder_block_out_channels", [64]))
    if bad or len(widths) != 1:
        raise CheckpointError(f"{path}: this AutoencoderTiny is not TAESD's layout ({bad or widths}); expected "
                              f"{checks} and one decoder width")


def _safetensors_metadata(path: pathlib.Path) -> dict[str, str]:
    if path.suffix != ".safetensors":
        return {}
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        return dict(f.metadata() or {})


def save_tiny_decoder(net: TinyDecoder, path: str | pathlib.Path, metadata: dict[str, str],
                      overwrite: bool = False) -> pathlib.Path:
    """TAESD format (`taesd_decoder.safetensors`), written whole or not at all."""
    from safetensors.torch import save
    from engine.io.atomic import atomic_file
    path = pathlib.Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path}: already exists (pass --overwrite to replace it)")
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in net.state_dict().items()}
    with atomic_file(path) as f:
        f.write(save(tensors, metadata={k: str(v) for k, v in metadata.items()}))
    return path


def decoder_module(kind: str, folder) -> tuple[torch.nn.Module | None, str, dict[str, str]]:
    """(module or None for the model's VAE, its name for reports, metadata) for a parsed --decoder
    ('auto' already resolved to 'vae' or 'taesd')."""
    if kind == "vae" or folder is None:
        return None, "vae", {}
    net, metadata = load_tiny_decoder(folder)
    return net, f"taesd:{folder} (width {net.width})", metadata

"""LoRA on the denoising UNet3D through peft (`pip install peft`), as MCM / LCM-LoRA adapt it: the
spatial and temporal (motion-module) attention projections and feed-forwards, the transformers'
proj_in / proj_out, and the resnets' convolutions and time projections.

Only training needs peft: the student file stores the A/B factors under the UNet's module names and
engine.weights.student merges them without it.
"""
from __future__ import annotations

import contextlib

import torch

from engine.errors import InputError

TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2", "proj_in", "proj_out",
           "conv1", "conv2", "time_emb_proj")
ADAPTER = "default"


def add_lora(unet: torch.nn.Module, rank: int, alpha: float) -> None:
    """Inject rank-`rank` adapters (B = 0: the model is unchanged until trained); base weights frozen."""
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise InputError("--lora-rank: LoRA training needs peft (pip install peft, or the [distill] extra); "
                         "or use --lora-rank 0 for a full fine-tune") from None
    unet.requires_grad_(False)
    inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(TARGETS),
                                       init_lora_weights=True), unet, adapter_name=ADAPTER)


def lora_layers(unet: torch.nn.Module) -> dict[str, torch.nn.Module]:
    from peft.tuners.lora import LoraLayer
    return {name: m for name, m in unet.named_modules() if isinstance(m, LoraLayer)}


@contextlib.contextmanager
def adapters_disabled(unet: torch.nn.Module):
    """The teacher: the same network with every adapter switched off."""
    layers = lora_layers(unet).values()
    for m in layers:
        m.enable_adapters(False)
    try:
        yield unet
    finally:
        for m in layers:
            m.enable_adapters(True)


def lora_factors(unet: torch.nn.Module) -> dict[str, torch.Tensor]:
    """{M.lora_A.weight, M.lora_B.weight} under the UNet's own module names M (engine.weights.student)."""
    out = {}
    for name, m in lora_layers(unet).items():
        out[f"{name}.lora_A.weight"] = m.lora_A[ADAPTER].weight.detach().float().cpu()
        out[f"{name}.lora_B.weight"] = m.lora_B[ADAPTER].weight.detach().float().cpu()
    return out

"""ONNX graphs of the two driving encoders, each with its I/O contract declared once, and a
parity check of the exported graph in ONNX Runtime (CPU, fp32) against the PyTorch module."""
from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from engine.driving.deca_encoder import DECA_LAYOUT, DecaCoarseEncoder
from engine.driving.smirk_encoder import SmirkExpressionEncoder, smirk_exp_and_jaw
from engine.errors import InputError

ONNX_OPSET = 18  # as export/onnx_export.py


class SmirkExpJaw(nn.Module):
    """SMIRK expression encoder with its output activations: crop -> (exp (B,50), jaw (B,3))."""

    def __init__(self, encoder: SmirkExpressionEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, crop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return smirk_exp_and_jaw(self.encoder(crop))


@dataclass(frozen=True)
class EncoderGraphSpec:
    """Input/output names, dynamic axes and a sample input: read by export, engine build and runtime."""

    name: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    output_widths: tuple[int, ...]
    crop_size: int = 224

    @property
    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        return {n: {0: "batch"} for n in (*self.input_names, *self.output_names)}

    def sample_input(self, batch: int = 2, seed: int = 0) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return torch.rand(batch, 3, self.crop_size, self.crop_size, generator=gen)


DECA_GRAPH = EncoderGraphSpec("deca_coarse_encoder", ("crop_rgb01",), ("deca_params",), (DECA_LAYOUT.total,))
SMIRK_GRAPH = EncoderGraphSpec("smirk_expression_encoder", ("crop_rgb01",), ("exp", "jaw"), (50, 3))


def graph_module(spec: EncoderGraphSpec, module: nn.Module) -> nn.Module:
    if spec is SMIRK_GRAPH:
        if not isinstance(module, SmirkExpressionEncoder):
            raise InputError(f"{spec.name} export needs a SmirkExpressionEncoder, got {type(module).__name__}")
        return SmirkExpJaw(module).eval()
    if not isinstance(module, DecaCoarseEncoder):
        raise InputError(f"{spec.name} export needs a DecaCoarseEncoder, got {type(module).__name__}")
    return module.eval()


def export_encoder_onnx(spec: EncoderGraphSpec, module: nn.Module, path: str | os.PathLike,
                        overwrite: bool = False) -> str:
    """Write `module` as an ONNX graph (fp32, dynamic batch) whole or not at all."""
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise InputError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    wrapped = graph_module(spec, module).float().cpu()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on Python ints from shapes (fixed 224 crops)
            torch.onnx.export(
                wrapped, (spec.sample_input(),), tmp, input_names=list(spec.input_names),
                output_names=list(spec.output_names), dynamic_axes=spec.dynamic_axes,
                opset_version=ONNX_OPSET, dynamo=False,
            )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def onnx_parity(spec: EncoderGraphSpec, module: nn.Module, onnx_path: str | os.PathLike,
                batch: int = 2, seed: int = 1) -> dict[str, float]:
    """Max relative error per output, ORT CPU vs PyTorch: max|a-b| / max(max|b|, 1e-6)."""
    import onnxruntime as ort

    x = spec.sample_input(batch, seed)
    with torch.no_grad():
        ref = graph_module(spec, module)(x)
    ref = (ref,) if isinstance(ref, torch.Tensor) else ref
    session = ort.InferenceSession(os.fspath(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(list(spec.output_names), {spec.input_names[0]: x.numpy()})
    errors = {}
    for name, r, g in zip(spec.output_names, ref, got):
        r = r.numpy().astype(np.float64)
        errors[name] = float(np.abs(g - r).max() / max(np.abs(r).max(), 1e-6))
    return errors

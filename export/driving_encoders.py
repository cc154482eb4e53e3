"""The driving encoders (DECA coarse, SMIRK expression) as ONNX graphs beside the diffusion graphs.

Their I/O declaration and exporter live with the encoders (engine.driving.onnx_export); this step
writes both into an export folder and refuses a graph whose ONNX Runtime output strays from torch.
"""
from __future__ import annotations

import os
import pathlib

from engine.driving.onnx_export import DECA_GRAPH, SMIRK_GRAPH, export_encoder_onnx, onnx_parity
from engine.errors import MprtError

REL_TOL = 1e-4  # fp32, ORT CPU vs torch


def export_driving_encoders(encoders, out_dir: str | os.PathLike, overwrite: bool = False) -> list[dict]:
    """encoders: engine.driving.encoder_weights.EncoderPair. Returns one report per graph."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reports = []
    for spec, module in ((DECA_GRAPH, encoders.deca), (SMIRK_GRAPH, encoders.smirk)):
        path = out / f"{spec.name}.fp32.onnx"
        export_encoder_onnx(spec, module, path, overwrite=overwrite)
        errors = onnx_parity(spec, module, path)
        worst = max(errors.values())
        if worst > REL_TOL:
            path.unlink()
            raise MprtError(f"{spec.name}: ONNX Runtime differs from torch by {worst:.2e} relative "
                            f"(tolerance {REL_TOL:g}); graph not written")
        reports.append({"graph": spec.name, "path": str(path), "bytes": path.stat().st_size,
                        "max_rel_error": worst, "random_weights": encoders.random})
    return reports

"""ONNX Runtime (CPU) against the torch module: the numbers behind "this graph computes that network".

Error measure: max |onnx - torch| / max |torch| over each output, the worst output counted; the torch
reference is the fp32 module on the same (fp32) inputs, also for fp16 graphs.
"""
from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import torch

from engine.graph_specs import GraphSpec

# fp32: ONNX Runtime's kernels vs torch's. The reference graphs round their features to fp16 like
# upstream's bank (networks.md (b).4): a last-bit difference before rounding flips one fp16 ulp,
# 2^-11 = 4.9e-4 relative, so they get 1e-3. fp16 graphs: fp16 arithmetic throughout, measured ~2e-3.
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2}
FP16_ROUNDED_GRAPHS = {"reference_kv": 1e-3, "reference_unet": 1e-3}


def tolerance(spec: GraphSpec) -> float:
    if spec.precision == "fp32":
        return FP16_ROUNDED_GRAPHS.get(spec.name, TOLERANCE["fp32"])
    return TOLERANCE[spec.precision]


@dataclasses.dataclass(frozen=True)
class ParityResult:
    graph: str
    precision: str
    axes: dict
    max_abs: float
    max_rel: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.max_rel)) and self.max_rel <= self.tolerance


def parity_axes(spec: GraphSpec, frame_counts) -> list[dict[str, int]]:
    """Axis values to test: each frame count inside the range, at the largest batch (CFG mixes both halves)."""
    if "frames" not in spec.axes:
        return [spec.axis_points("opt")]
    base = {a: r.max for a, r in spec.axes.items() if a != "frames"}
    return [{**base, "frames": f} for f in frame_counts if spec.axes["frames"].contains(f)]


def ort_session(model: str | pathlib.Path | bytes):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # no per-node notes about fp16 kernels falling back to fp32
    return ort.InferenceSession(str(model) if not isinstance(model, bytes) else model, opts,
                                providers=["CPUExecutionProvider"])


def check_parity(session, spec: GraphSpec, module: torch.nn.Module, frame_counts=(1, 4, 12),
                 seed: int = 0, torch_outputs: dict | None = None) -> list[ParityResult]:
    """Run `session` and `module` on sample inputs per axis setting. `torch_outputs` (optional, a dict
    owned by the caller) keeps the torch results so the fp16 graph reuses the fp32 graph's reference."""
    results = []
    torch_outputs = {} if torch_outputs is None else torch_outputs
    for i, axes in enumerate(parity_axes(spec, frame_counts)):
        feeds32 = spec.sample_inputs(axes, seed=seed + i)
        feeds32 = {k: v.astype(np.float32) for k, v in feeds32.items()}
        feeds = {t.name: feeds32[t.name].astype(t.dtype) for t in spec.inputs}
        got = session.run(spec.output_names, feeds)
        key = (spec.name, tuple(sorted(axes.items())), seed + i)
        if key not in torch_outputs:
            with torch.no_grad():
                ref = module(*[torch.from_numpy(feeds32[n]) for n in spec.input_names])
            ref = ref if isinstance(ref, (tuple, list)) else (ref,)
            torch_outputs[key] = [r.double().numpy() for r in ref]
        abs_err, rel_err = 0.0, 0.0
        for g, r in zip(got, torch_outputs[key]):
            err = float(np.abs(g.astype(np.float64) - r).max())
            err = err if np.isfinite(err) else float("inf")  # NaN must not vanish in max()
            abs_err = max(abs_err, err)
            rel_err = max(rel_err, err / max(float(np.abs(r).max()), 1e-12))
        results.append(ParityResult(spec.name, spec.precision, dict(axes), abs_err, rel_err, tolerance(spec)))
    return results

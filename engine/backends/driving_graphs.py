"""The driving encoders on their exported graphs (`mprt export --driving-weights`): the per-frame
`encode` of engine.driving.DrivingEncoder — global head rotation from DECA, expression and jaw from
SMIRK — on ONNX Runtime, without torch. I/O names come from engine/graphs/."""
from __future__ import annotations

import numpy as np

from engine.backends.ort_backend import open_session, providers_for
from engine.errors import CheckpointError
from engine.graph_specs import read_export_manifest
from engine.graphs import deca_coarse_encoder as deca
from engine.graphs import smirk_expression_encoder as smirk


class OrtDrivingEncoder:
    """`encode([EncoderInputs, ...]) -> {"pose": (B,3), "exp": (B,50), "jaw": (B,3)}` float32."""

    def __init__(self, export_dir, precision: str = "fp32", device: str = "cpu", threads: int | None = None):
        import onnxruntime as ort
        exported = read_export_manifest(str(export_dir))
        specs = {s.name: s for s in exported.specs if s.precision == precision}
        missing = [n for n in (deca.NAME, smirk.NAME) if n not in specs]
        if missing:
            raise CheckpointError(f"{export_dir}: no {precision} graph(s) {missing} (export them with "
                                  "`mprt export --driving-weights DIR`)")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        providers = providers_for(device)
        self.specs = {n: specs[n] for n in (deca.NAME, smirk.NAME)}
        self.sessions = {n: open_session(exported.verified_path(s), opts, providers) for n, s in self.specs.items()}
        self.dtype = np.dtype(self.specs[deca.NAME].tensor(deca.CROP).dtype)

    def _run(self, name: str, crops: np.ndarray) -> list[np.ndarray]:
        """One graph over a batch of crops, in pieces of at most its largest crop count."""
        spec, cap = self.specs[name], self.specs[name].axes["crops"].max
        parts = []
        for start in range(0, len(crops), cap):
            feeds = {spec.input_names[0]: crops[start:start + cap].astype(self.dtype)}
            spec.check_inputs(feeds)
            parts.append(self.sessions[name].run(None, feeds))
        return [np.concatenate(outs).astype(np.float32) for outs in zip(*parts)]

    def encode(self, inputs) -> dict[str, np.ndarray]:
        params, = self._run(deca.NAME, np.stack([i.deca for i in inputs]))
        exp, jaw = self._run(smirk.NAME, np.stack([i.smirk for i in inputs]))
        return {"pose": params[:, deca.GLOBAL_POSE], "exp": exp, "jaw": jaw}

"""The rows of the quality benchmark (benchmarks/bench_quality.py): one named variant per row.

A variant = a preset + overrides (StreamSettings fields: steps, guidance_scale, cfg_steps, window,
overlap, frames_per_stage) on a backend at a precision, with a decoder and a model. To add a row
(e.g. a distilled student or a tiny decoder, issue 12) append a Variant below; a new model is a name
given on the command line (`--model student=DIR`), a new decoder one entry in DECODERS. Rows whose
model or decoder is not available are listed as "not run" with the reason, never dropped silently.
"""
from __future__ import annotations

import dataclasses
from typing import Callable


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    preset: str                                   # quality / balanced / realtime (engine.runtime.presets)
    overrides: tuple[tuple[str, object], ...] = ()  # StreamSettings fields, e.g. (("steps", 10),)
    backend: str = "torch"                        # torch / onnxruntime (engine.backends.registry)
    precision: str = "fp32"                       # fp32 / fp16
    decoder: str = "vae"                          # a key of DECODERS
    model: str = "trained"                        # "trained" = --weights; others from --model NAME=DIR
    quick: bool = False                           # part of the --quick subset

    @property
    def settings_overrides(self) -> dict:
        return dict(self.overrides)


def _tiny_decoder(model_dir) -> str:
    from engine.weights.tiny_decoder import find_tiny_decoder
    folder = find_tiny_decoder(model_dir)
    if folder is None:
        raise LookupError(f"no tiny decoder in {model_dir}/tiny_decoder (mprt distill-decoder --weights {model_dir})")
    return f"taesd:{folder}"


# Decoder name -> callable(model_dir) -> the backend's `decoder` option (engine.backends.registry).
# "vae" is the model's own KL decoder; "tiny" the TAESD-layout one `mprt distill-decoder` trains.
DECODERS: dict[str, Callable] = {"vae": lambda model_dir: "vae", "tiny": _tiny_decoder}
# Model "student": the distilled student (mprt distill) in the --weights folder (or --model student=DIR's),
# sampled as the realtime preset samples it: the consistency scheduler, no CFG (engine.runtime.presets).

NO_CFG = (("cfg_steps", 0),)

VARIANTS: tuple[Variant, ...] = (
    # the presets, torch fp32 (the `quality` row is what the controls and done-criteria compare to)
    Variant("quality", "quality", quick=True),
    Variant("balanced", "balanced", quick=True),
    Variant("realtime", "realtime", quick=True),
    # sweep: steps and CFG policy
    Variant("quality 10 steps", "quality", (("steps", 10),)),
    Variant("quality 4 steps", "quality", (("steps", 4),)),
    Variant("quality no CFG", "quality", NO_CFG),
    Variant("quality CFG 3.5", "quality", (("guidance_scale", 3.5),)),  # upstream's scale, whatever the model declares
    Variant("quality CFG 2", "quality", (("guidance_scale", 2.0),)),
    Variant("balanced no CFG", "balanced", NO_CFG),
    Variant("realtime 2 steps", "realtime", (("steps", 2),)),
    Variant("realtime CFG every step", "realtime", (("cfg_steps", -1),)),
    # other backends / precisions
    Variant("quality ort", "quality", backend="onnxruntime"),
    Variant("balanced ort", "balanced", backend="onnxruntime"),
    Variant("realtime ort", "realtime", backend="onnxruntime"),
    Variant("balanced ort fp16", "balanced", backend="onnxruntime", precision="fp16"),
    Variant("realtime ort fp16", "realtime", backend="onnxruntime", precision="fp16"),
    Variant("realtime torch fp16", "realtime", precision="fp16"),
    # issue 12: the distilled student (1 / 2 / 4 steps; clip and stream batch) and the tiny decoder, torch
    Variant("quality 4 steps no CFG", "quality", (("steps", 4),) + NO_CFG),
    Variant("student 4 stream", "realtime", model="student", quick=True),
    Variant("student 2 stream", "realtime", (("steps", 2),), model="student"),
    Variant("student 1 stream", "realtime", (("steps", 1),), model="student"),
    Variant("student 4 clip", "quality", (("steps", 4),), model="student"),
    Variant("student 2 clip", "quality", (("steps", 2),), model="student"),
    Variant("student 1 clip", "quality", (("steps", 1),), model="student"),
    Variant("quality tiny decoder", "quality", decoder="tiny"),
    Variant("realtime tiny decoder", "realtime", decoder="tiny"),
    Variant("student 4 stream tiny decoder", "realtime", model="student", decoder="tiny", quick=True),
    Variant("student 2 stream tiny decoder", "realtime", (("steps", 2),), model="student", decoder="tiny"),
    # the deployed realtime configuration on a graph backend: student + tiny decoder exported to ONNX
    Variant("student 4 stream tiny decoder ort", "realtime", model="student", decoder="tiny", backend="onnxruntime"),
)

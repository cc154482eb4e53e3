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


# Decoder name -> callable(backend, model_dir) -> backend whose decode() is that decoder.
# "vae" is the model's own KL decoder (the backend as opened).
DECODERS: dict[str, Callable] = {"vae": lambda backend, model_dir: backend}

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
    # issue 12 (distilled student, tiny decoder) adds its rows here.
)

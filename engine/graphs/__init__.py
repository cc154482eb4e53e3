"""Every exported graph, one module each: its name, what it is made of, its I/O and its forward.

A graph module defines
  NAME                        the graph's name (files `<NAME>.<precision>.onnx` / `.engine`)
  ORDER                       its place in an export (and in export.json)
  SOURCE                      what its networks come from: "model" (MagicPortraitModel),
                              "driving" (engine.driving.encoder_weights.EncoderPair), or any name
                              the exporter is handed a source for (export_all(..., sources=))
  wanted(plan) -> bool        whether an ExportPlan includes it (optional: default always; an
                              optional graph can answer `NAME in plan.extra_graphs`)
  spec(config, plan, precision) -> GraphSpec      its I/O (engine/graph_specs.py), torch-free
  parts(source) -> {name: torch module}          the networks it runs
  forward(parts, *inputs) -> outputs             inputs and outputs in the spec's order; what
                                                 export/ traces (wrapped in one generic module)
and, as constants, the names of its inputs and outputs, which the graph backends use. Adding a
graph is adding one module here. Nothing here imports torch at import time (the TensorRT runtime
reads these names without it).
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from engine.errors import InputError
from engine.graph_specs import ExportPlan, GraphSpec
from engine.networks.config import ModelConfig


def graph_modules() -> list[ModuleType]:
    """Every graph module, in export order."""
    mods = [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)
            if not m.name.startswith("_")]
    return sorted(mods, key=lambda m: (m.ORDER, m.NAME))


def graph_module(name: str) -> ModuleType:
    for m in graph_modules():
        if m.NAME == name:
            return m
    raise InputError(f"unknown graph {name!r}; expected one of {[m.NAME for m in graph_modules()]}")


def _wanted(graph: ModuleType, plan: ExportPlan) -> bool:
    return graph.wanted(plan) if hasattr(graph, "wanted") else True


def graph_names(plan: ExportPlan) -> list[str]:
    return [m.NAME for m in graph_modules() if _wanted(m, plan)]


def build_specs(config: ModelConfig, plan: ExportPlan) -> list[GraphSpec]:
    """Every graph of `plan`, for every precision: the single declaration of their I/O."""
    if plan.frames.max > config.motion.max_frames:
        raise InputError(f"frame range {plan.frames}: at most {config.motion.max_frames} frames "
                         "(the motion modules' positional encoding length)")
    wanted = [m for m in graph_modules() if _wanted(m, plan)]
    return [m.spec(config, plan, p) for p in plan.precisions for m in wanted]

"""The one torch module export/ traces: a graph's networks (engine/graphs/<name>.py `parts`) run by
that graph's `forward`, so the module's flat signature is the spec's inputs and outputs in order and
`torch.onnx.export` names them from the spec and nothing else needs to know the networks' API."""
from __future__ import annotations

from torch import nn

from engine.graph_specs import GraphSpec
from engine.graphs import graph_module as graph_definition


class GraphModule(nn.Module):
    def __init__(self, graph, source):
        super().__init__()
        self.parts = nn.ModuleDict(graph.parts(source))
        self._forward = graph.forward

    def forward(self, *inputs):
        return self._forward(self.parts, *inputs)


def graph_module(model, spec: GraphSpec, driving=None, sources=None) -> nn.Module:
    """The fp32 module of graph `spec.name`, from the MagicPortraitModel `model`, the driving encoders
    `driving` (an EncoderPair) or `sources[name]`, as the graph's SOURCE says (fp16 graphs are converted
    from its ONNX: export/fp16.py)."""
    graph = graph_definition(spec.name)
    source = {"model": model, "driving": driving, **(sources or {})}.get(graph.SOURCE)
    if source is None:
        raise ValueError(f"graph {spec.name} needs its {graph.SOURCE} networks")
    return GraphModule(graph, source).eval().requires_grad_(False)

"""What a Triton model repository (`mprt export --triton`) and the Triton client backend agree on.

Torch-free and tritonclient-free: model names, the dtype names of Triton's model config and wire
protocol, and the config parameter that carries each graph's spec (engine/graph_specs.py) so a
client reads the exact I/O contract from the server instead of from local files.
"""
from __future__ import annotations

SPEC_PARAMETER = "mprt_graph_spec"  # config.pbtxt parameter: GraphSpec.to_json() as a JSON string

# numpy dtype name -> Triton datatype: "TYPE_" + this in config.pbtxt, this itself on the wire (KServe v2)
TRITON_DTYPES = {"float32": "FP32", "float16": "FP16", "int32": "INT32", "int64": "INT64", "uint8": "UINT8",
                 "bool": "BOOL"}


def model_name(graph: str, precision: str) -> str:
    """Triton model name of one graph at one precision: `denoising_unet_fp16`."""
    return f"{graph}_{precision}"

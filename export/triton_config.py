"""A Triton model's config.pbtxt and perf_analyzer input data, generated from one graph's spec.

Written as protobuf text by hand (no protobuf or tritonclient needed to export); the tests parse every
generated file with Triton's own ModelConfig schema (tritonclient's model_config_pb2).

Batching: Triton's batch dimension is the first dimension of *every* input and output. Only graphs
whose leading axis is shared by all their tensors and starts at 1 get `max_batch_size` = that axis'
maximum (the per-frame 2-D networks: guidance_encoder and vae_decoder on `frames`, vae_encoder on
`images`; tests/test_triton_repo.py checks in ONNX Runtime that their rows are independent) and a
dynamic batcher, so Triton may merge the frames of several streams into one call. The denoising
UNet's `batch` axis is the CFG pair and its guidance / text / reference inputs have no such axis,
so it gets `max_batch_size: 0` (full shapes, -1 for dynamic axes), as do the static graphs.
"""
from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

from engine.errors import InputError
from engine.graph_specs import GraphSpec
from engine.triton_models import SPEC_PARAMETER, TRITON_DTYPES, model_name

# model file kind -> (Triton backend, version-folder file name)
MODEL_FILES = {"onnx": ("onnxruntime", "model.onnx"), "plan": ("tensorrt", "model.plan")}
INSTANCE_KINDS = {"gpu": "KIND_GPU", "cpu": "KIND_CPU"}


@dataclasses.dataclass(frozen=True)
class TritonModelOptions:
    instances: int = 1       # model instances per device
    kind: str = "gpu"        # "gpu" or "cpu" (ONNX only: TensorRT plans run on GPUs)
    queue_delay_us: int = 0  # dynamic batcher: longest wait for more requests (0: batch only what is queued)

    def __post_init__(self):
        if self.instances < 1:
            raise InputError(f"--triton-instances {self.instances}: expected 1 or more")
        if self.kind not in INSTANCE_KINDS:
            raise InputError(f"--triton-kind {self.kind!r}: expected one of {sorted(INSTANCE_KINDS)}")
        if self.queue_delay_us < 0:
            raise InputError(f"--triton-queue-delay-us {self.queue_delay_us}: expected 0 or more")


def batch_axis(spec: GraphSpec) -> str | None:
    """The axis Triton may batch requests along, or None (see the module docstring)."""
    tensors = spec.inputs + spec.outputs
    lead = tensors[0].shape[0] if tensors[0].shape else None
    if not isinstance(lead, str) or spec.axes[lead].min != 1:
        return None
    if any(not t.shape or t.shape[0] != lead or lead in t.shape[1:] for t in tensors):
        return None
    return lead


def max_batch_size(spec: GraphSpec) -> int:
    axis = batch_axis(spec)
    return spec.axes[axis].max if axis else 0


def triton_dims(spec: GraphSpec, shape: tuple) -> list[int]:
    """Config dims: -1 for a dynamic axis, the batch axis left out where Triton batches."""
    dims = [d if isinstance(d, int) else -1 for d in shape]
    return dims[1:] if batch_axis(spec) else dims


def config_pbtxt(spec: GraphSpec, file_kind: str, options: TritonModelOptions = TritonModelOptions()) -> str:
    """The config.pbtxt text of `spec`'s Triton model (file_kind "onnx" or "plan")."""
    backend, file_name = MODEL_FILES[file_kind]
    if file_kind == "plan" and options.kind != "gpu":
        raise InputError(f"--triton-kind {options.kind}: TensorRT plans run on GPUs only (use gpu)")
    spec_json = json.dumps(spec.to_json(), separators=(",", ":"))
    if not spec_json.isascii():
        raise InputError(f"{spec.name}: graph spec has non-ASCII names; Triton parameters need ASCII")
    lines = [f'name: "{model_name(spec.name, spec.precision)}"', f'backend: "{backend}"',
             f'default_model_filename: "{file_name}"', f"max_batch_size: {max_batch_size(spec)}"]
    for section, tensors in (("input", spec.inputs), ("output", spec.outputs)):
        entries = [f'  {{\n    name: "{t.name}"\n    data_type: TYPE_{_triton_dtype(spec, t.dtype)}\n'
                   f'    dims: [ {", ".join(map(str, triton_dims(spec, t.shape)))} ]\n  }}' for t in tensors]
        lines.append(f"{section} [\n" + ",\n".join(entries) + "\n]")
    lines.append(f"instance_group [\n  {{\n    count: {options.instances}\n    kind: {INSTANCE_KINDS[options.kind]}\n"
                 "  }\n]")
    if batch_axis(spec):
        lines.append(f"dynamic_batching {{\n  max_queue_delay_microseconds: {options.queue_delay_us}\n}}")
    # JSON's escapes (\" and \\ only, as the text is ASCII) are valid protobuf text-format escapes
    lines.append(f'parameters {{\n  key: "{SPEC_PARAMETER}"\n  value {{\n    string_value: {json.dumps(spec_json)}\n'
                 "  }\n}")
    return "\n".join(lines) + "\n"


def _triton_dtype(spec: GraphSpec, dtype: str) -> str:
    if dtype not in TRITON_DTYPES:
        raise InputError(f"{spec.name}: dtype {dtype} has no Triton type; expected one of {sorted(TRITON_DTYPES)}")
    return TRITON_DTYPES[dtype]


def perf_input_data(spec: GraphSpec, seed: int = 0) -> dict[str, Any]:
    """perf_analyzer --input-data JSON: one request of the spec's sample inputs at the axes' opt points,
    each {"content": {"b64": raw little-endian bytes}, "shape": [...]}. Where Triton batches, one row
    without the batch dimension (perf_analyzer -b sets the batch)."""
    feeds = spec.sample_inputs(seed=seed)
    batched = batch_axis(spec) is not None
    step = {}
    for t in spec.inputs:
        arr = feeds[t.name][:1] if batched else feeds[t.name]
        shape = list(arr.shape[1:] if batched else arr.shape)
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        step[t.name] = {"content": {"b64": base64.b64encode(raw).decode()}, "shape": shape}
    return {"data": [step]}


def perf_batch(spec: GraphSpec) -> int:
    """perf_analyzer -b: the batch axis' opt point where Triton batches, else 1."""
    axis = batch_axis(spec)
    return spec.axes[axis].opt if axis else 1

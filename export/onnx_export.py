"""Write one graph to ONNX (TorchScript exporter) and check the file against its spec."""
from __future__ import annotations

import os
import pathlib
import tempfile
import warnings

import torch

from engine.errors import InputError
from engine.graph_specs import GraphSpec

OPSET = 18
TWO_GB = 2 * 1024 ** 3  # protobuf's limit: larger graphs keep their weights in external data
# Axis values used while tracing: distinct and > 1, so no dynamic axis is specialised to a constant
# (an axis not named here, e.g. a new graph's, is traced at TRACE_OTHER).
TRACE_AXES = {"batch": 2, "frames": 3, "images": 2}
TRACE_OTHER = 5


def trace_inputs(spec: GraphSpec) -> dict[str, torch.Tensor]:
    axes = {a: min(max(TRACE_AXES.get(a, TRACE_OTHER), r.min), r.max) for a, r in spec.axes.items()}
    return {k: torch.from_numpy(v) for k, v in spec.sample_inputs(axes, seed=1).items()}


def trace_to_onnx(module: torch.nn.Module, spec: GraphSpec):
    """Trace `module` (flat signature of the fp32 `spec`) to an in-memory ONNX ModelProto."""
    import onnx
    if spec.precision != "fp32":
        raise ValueError("trace the fp32 graph; fp16 graphs are converted from it (export/fp16.py)")
    inputs = trace_inputs(spec)
    with tempfile.TemporaryDirectory(prefix="mprt-export-") as tmp:
        raw = pathlib.Path(tmp) / "raw.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python ints from shapes
            torch.onnx.export(module, tuple(inputs.values()), str(raw), dynamo=False, opset_version=OPSET,
                              input_names=spec.input_names, output_names=spec.output_names,
                              dynamic_axes=spec.dynamic_axes(), do_constant_folding=True)
        proto = onnx.load(str(raw))  # loads external data too, if the exporter wrote any
    stamp_output_shapes(proto, spec)
    return proto


def to_precision(proto, spec: GraphSpec):
    """The fp32 `proto` itself, or an fp16 copy of it; checked against the spec's I/O."""
    import onnx
    out = proto
    if spec.precision == "fp16":
        from export.fp16 import convert_to_fp16
        out = onnx.ModelProto()
        out.CopyFrom(proto)  # the conversion works in place; the fp32 graph stays as it is
        convert_to_fp16(out, {t.name for t in spec.inputs if t.dtype == "float32"})
    check_graph_io(out, spec, spec.file_name)
    return out


def save_graph(proto, path: pathlib.Path) -> None:
    """Write `proto` to `path` whole or not at all; weights go to `<file>.data` over protobuf's 2 GB."""
    path = pathlib.Path(path)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        _save(proto, path, pathlib.Path(tmp))


def _save(proto, path: pathlib.Path, tmp: pathlib.Path) -> None:
    import onnx
    external = not fits_protobuf(proto)
    staged = tmp / path.name
    data_name = path.name + ".data"
    onnx.save_model(proto, str(staged), save_as_external_data=external, all_tensors_to_one_file=True,
                    location=data_name, size_threshold=1024)
    if external:
        os.replace(tmp / data_name, path.parent / data_name)
    elif (path.parent / data_name).exists():
        (path.parent / data_name).unlink()  # a stale weights file of an earlier, larger export
    os.replace(staged, path)


def fits_protobuf(proto) -> bool:
    try:
        return proto.ByteSize() < TWO_GB
    except Exception:  # protobuf refuses to size a message over 2 GB
        return False


def stamp_output_shapes(proto, spec: GraphSpec) -> None:
    """Write the spec's output shapes into the graph: the tracer leaves static dims of outputs that
    depend on a dynamic axis symbolic ('Transposev_dim_1'); TensorRT and the runtime want them fixed."""
    for v, t in zip(proto.graph.output, spec.outputs):
        dims = v.type.tensor_type.shape.dim
        if len(dims) != len(t.shape):
            continue  # check_graph_io names the mismatch
        for d, s in zip(dims, t.shape):
            if isinstance(s, int):
                d.dim_value = s
            else:
                d.dim_param = s


def check_graph_io(proto, spec: GraphSpec, source: str) -> None:
    """The ONNX graph's inputs/outputs carry exactly the spec's names, dtypes and ranks."""
    import onnx
    for kind, have, want in (("inputs", proto.graph.input, spec.inputs), ("outputs", proto.graph.output, spec.outputs)):
        names = [v.name for v in have]
        if names != [t.name for t in want]:
            raise InputError(f"{source}: graph {kind} {names}, expected {[t.name for t in want]}")
        for v, t in zip(have, want):
            tt = v.type.tensor_type
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name
            dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in tt.shape.dim]
            if dtype != t.dtype or len(dims) != len(t.shape):
                raise InputError(f"{source}: {v.name} is {dtype}{dims}, expected {t.dtype}{list(t.shape)}")
            for d, s in zip(dims, t.shape):
                if isinstance(s, int) and d != s:
                    raise InputError(f"{source}: {v.name} has shape {dims}, expected {list(t.shape)}")

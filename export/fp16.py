"""fp32 ONNX graph -> fp16 graph, keeping the inputs the spec declares float32 on an fp32 island.

Why not trace the module in fp16: the TorchScript exporter promotes attention with a boolean mask to
fp32 and then feeds fp32 into fp16 LayerNorms, which is an invalid graph. Converting the clean fp32 graph
is exact bookkeeping: every float tensor becomes fp16 except

- the "island": nodes reached from an fp32 input (the timestep sinusoid, use_reference > 0.5) up to the
  first weight op (MatMul / Gemm / Conv), as diffusers computes the sinusoid in fp32 — angles up to
  999 rad would lose whole radians in fp16;
- inputs that ONNX types as float32 only (Resize's roi / scales).
"""
from __future__ import annotations

import numpy as np

FP16_MAX = 65504.0
WEIGHT_OPS = {"MatMul", "Gemm", "Conv"}
FLOAT32_ONLY_INPUTS = {"Resize": (1, 2)}


def convert_to_fp16(proto, fp32_inputs: set[str]):
    """Convert `proto` (fp32, shape-inferable) in place and return it."""
    from onnx import TensorProto, helper, numpy_helper

    g = proto.graph
    types = _float_tensors(proto)
    island_tensors = set(fp32_inputs)
    island = set()  # node indices
    for k, node in enumerate(g.node):  # graph nodes are topologically sorted
        if node.op_type not in WEIGHT_OPS and any(i in island_tensors for i in node.input):
            island.add(k)
            island_tensors.update(node.output)

    # Initializers / Constant outputs read by the island keep an fp32 copy of their own.
    init = {t.name: t for t in g.initializer}
    const_values = {n.output[0]: numpy_helper.to_array(a.t) for n in g.node if n.op_type == "Constant"
                    for a in n.attribute if a.name == "value"}  # before the loop below converts them
    new_nodes: list = []
    renamed: dict[tuple[str, int], str] = {}

    def as_type(name: str, to: int) -> str:
        """`name` as an fp32 (TensorProto.FLOAT) or fp16 tensor: an exact copy for weights and constants,
        a Cast for computed tensors."""
        key = (name, to)
        if key in renamed:
            return renamed[key]
        out = renamed[key] = f"{name}__{'fp32' if to == TensorProto.FLOAT else 'fp16'}"
        if to == TensorProto.FLOAT and name in init:
            g.initializer.append(numpy_helper.from_array(numpy_helper.to_array(init[name]).astype(np.float32), out))
        elif to == TensorProto.FLOAT and name in const_values:
            value = numpy_helper.from_array(const_values[name].astype(np.float32), out)
            new_nodes.append(helper.make_node("Constant", [], [out], value=value, name=f"{out}_const"))
        else:
            new_nodes.append(helper.make_node("Cast", [name], [out], to=to, name=f"{out}_cast"))
        return out

    for k, node in enumerate(g.node):
        in_island = k in island
        for idx, name in enumerate(node.input):
            if name not in types:
                continue  # not a float tensor
            from_island = name in island_tensors
            if in_island and not from_island:
                node.input[idx] = as_type(name, TensorProto.FLOAT)  # weights / constants the island reads
            elif not in_island and from_island:
                node.input[idx] = as_type(name, TensorProto.FLOAT16)
            elif idx in FLOAT32_ONLY_INPUTS.get(node.op_type, ()):
                node.input[idx] = as_type(name, TensorProto.FLOAT)
        if in_island:
            continue
        if node.op_type == "Cast" and _attr(node, "to") == TensorProto.FLOAT:
            _set_attr(node, "to", TensorProto.FLOAT16)
        if node.op_type in ("Constant", "ConstantOfShape"):
            for a in node.attribute:
                if a.name == "value" and a.t.data_type == TensorProto.FLOAT:
                    a.t.CopyFrom(_to_fp16(a.t))

    fp32_copies = set(renamed.values())
    for t in g.initializer:
        if t.data_type == TensorProto.FLOAT and t.name not in fp32_copies:
            t.CopyFrom(_to_fp16(t))
    for v in list(g.input) + list(g.output):
        tt = v.type.tensor_type
        if tt.elem_type == TensorProto.FLOAT and v.name not in fp32_inputs:
            tt.elem_type = TensorProto.FLOAT16
    _append_and_sort(g, new_nodes)  # inserted nodes must follow their producers
    del g.value_info[:]
    return proto


def _to_fp16(t):
    """fp32 TensorProto -> fp16, finite values clipped to fp16's range (inf stays inf: attention masks)."""
    from onnx import numpy_helper
    arr = numpy_helper.to_array(t).astype(np.float32)
    arr = np.where(np.isfinite(arr), np.clip(arr, -FP16_MAX, FP16_MAX), arr)
    return numpy_helper.from_array(arr.astype(np.float16), t.name)


def _float_tensors(proto) -> set[str]:
    """Names of every float32 tensor (inputs, initializers, intermediates, outputs) after shape inference."""
    import onnx
    from onnx import TensorProto
    # Types only: infer on a light copy whose weights are typed inputs (works for graphs over 2 GB).
    src = proto.graph
    light = onnx.helper.make_model(
        onnx.helper.make_graph(list(src.node), "types", list(src.input) + [
            onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in src.initializer],
            list(src.output)), opset_imports=list(proto.opset_import), ir_version=proto.ir_version)
    g = onnx.shape_inference.infer_shapes(light).graph
    names = {t.name for t in src.initializer if t.data_type == TensorProto.FLOAT}
    for v in list(g.input) + list(g.value_info) + list(g.output):
        if v.type.tensor_type.elem_type == TensorProto.FLOAT:
            names.add(v.name)
    for n in g.node:
        if n.op_type == "Constant" and any(a.name == "value" and a.t.data_type == TensorProto.FLOAT
                                           for a in n.attribute):
            names.add(n.output[0])
    return names


def _attr(node, name):
    for a in node.attribute:
        if a.name == name:
            return a.i
    return None


def _set_attr(node, name, value):
    for a in node.attribute:
        if a.name == name:
            a.i = value


def _append_and_sort(g, new_nodes) -> None:
    nodes = list(g.node) + new_nodes
    available = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
    ordered, pending = [], nodes
    while pending:
        rest = []
        for n in pending:
            if all(i in available for i in n.input):
                ordered.append(n)
                available.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ValueError(f"fp16 conversion: cannot order nodes, e.g. {rest[0].name} needs {list(rest[0].input)}")
        pending = rest
    del g.node[:]
    g.node.extend(ordered)

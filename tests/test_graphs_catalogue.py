"""engine/graphs/: every graph is one module; a new one (dropped into the package's search path here)
is declared, exported and parity-checked without touching any other file."""
import numpy as np
import pytest

from engine.graph_specs import ExportPlan
from engine.graphs import build_specs, graph_names
from engine.networks.config import tiny_config

ONE_FILE_GRAPH = '''
from engine.graph_specs import GraphSpec, TensorSpec, float_dtype

NAME, ORDER, SOURCE = "doubler", 90, "extra"


def wanted(plan):
    return NAME in plan.extra_graphs


def spec(config, plan, precision):
    fl = float_dtype(precision)
    return GraphSpec(NAME, precision, (TensorSpec("x", fl, ("frames", 4)),), (TensorSpec("y", fl, ("frames", 4)),),
                     {"frames": plan.frames})


def parts(source):
    return {"net": source}


def forward(parts, x):
    return parts["net"](x) * 2
'''


def test_the_diffusion_graphs_in_export_order():
    plan = ExportPlan((128, 128))
    assert graph_names(plan) == ["guidance_encoder", "reference_kv", "denoising_unet", "vae_encoder", "vae_decoder"]
    assert graph_names(ExportPlan((128, 128), reference_mode="features"))[1] == "reference_unet"
    assert graph_names(ExportPlan((128, 128), driving=True))[-2:] == ["deca_coarse_encoder", "smirk_expression_encoder"]


@pytest.fixture
def doubler(tmp_path, monkeypatch):
    from helpers.packages import drop_module
    return drop_module(monkeypatch, tmp_path, "engine.graphs", "doubler", ONE_FILE_GRAPH)


def test_a_graph_in_one_file_is_declared_exported_and_checked(doubler, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from export.onnx_export import save_graph, trace_to_onnx
    from export.parity import check_parity, ort_session
    from export.wrappers import graph_module
    assert doubler not in graph_names(ExportPlan((128, 128)))
    plan = ExportPlan((128, 128), extra_graphs=(doubler,))
    spec = [s for s in build_specs(tiny_config(), plan) if s.name == doubler][0]
    net = torch.nn.Linear(4, 4)
    module = graph_module(None, spec, sources={"extra": net})
    path = tmp_path / spec.file_name
    save_graph(trace_to_onnx(module, spec), path)
    results = check_parity(ort_session(path), spec, module, frame_counts=(1, 3))
    assert [r.axes["frames"] for r in results] == [1, 3] and all(r.ok for r in results)
    x = np.ones((2, 4), np.float32)
    got = ort_session(path).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, 2 * net(torch.from_numpy(x)).detach().numpy(), atol=1e-6)

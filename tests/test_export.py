"""`mprt export` on the tiny model: every graph against its torch module in ONNX Runtime (CPU).

Tolerances (max |onnx - torch| / max |torch|, worst output): fp32 1e-4; the fp32 reference graph 1e-3
(its features are fp16-rounded like upstream's bank, so a last-bit difference may flip one fp16 ulp,
4.9e-4 relative); fp16 graphs 2e-2 against the fp32 torch module.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from helpers.export_support import PARITY_FRAMES, tiny_export  # noqa: E402

from engine.errors import InputError  # noqa: E402
from engine.graph_specs import AxisRange, ExportPlan, find_spec, read_export_manifest  # noqa: E402
from engine.graphs import build_specs  # noqa: E402

pytestmark = pytest.mark.slow  # ONNX exports with parity checks

GRAPHS = {"guidance_encoder", "reference_kv", "denoising_unet", "vae_encoder", "vae_decoder"}


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return tiny_export(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def tiny_model():
    from engine.model import MagicPortraitModel
    from engine.weights.tiny import ensure_tiny_weights
    return MagicPortraitModel.from_weights(ensure_tiny_weights())


def test_every_graph_passes_parity_at_1_4_12_frames(export_dir):
    exported = read_export_manifest(str(export_dir))
    reports = exported.reports
    assert {(s.name, s.precision) for s in exported.specs} == {(g, p) for g in GRAPHS for p in ("fp32", "fp16")}
    for spec in exported.specs:
        r = reports[spec.file_name]
        assert r["nodes"] > 10 and r["bytes"] == (export_dir / spec.file_name).stat().st_size
        frames = sorted(p["axes"].get("frames") for p in r["parity"] if "frames" in p["axes"])
        if "frames" in spec.axes:
            assert frames == list(PARITY_FRAMES), spec.file_name
        else:
            assert len(r["parity"]) == 1
        tol = 2e-2 if spec.precision == "fp16" else (1e-3 if spec.name == "reference_kv" else 1e-4)
        for p in r["parity"]:
            assert p["tolerance"] == tol
            assert p["max_rel"] <= tol, (spec.file_name, p)
        if spec.name == "denoising_unet":
            assert all(p["axes"]["batch"] == 2 for p in r["parity"])  # CFG: uncond and cond rows together


def test_graph_files_are_opset_18_with_the_spec_io(export_dir):
    from export.onnx_export import check_graph_io
    exported = read_export_manifest(str(export_dir))
    for spec in exported.specs:
        proto = onnx.load(str(export_dir / spec.file_name), load_external_data=False)
        assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 18
        check_graph_io(proto, spec, spec.file_name)
    unet16 = next(s for s in exported.specs if s.name == "denoising_unet" and s.precision == "fp16")
    dtypes = {t.name: t.dtype for t in unet16.inputs}
    assert dtypes["timestep"] == dtypes["use_reference"] == "float32" and dtypes["sample"] == "float16"


def test_unet_graph_independently_matches_torch(export_dir, tiny_model):
    """A fresh draw of inputs (other seed, 5 frames, batch 1 and 2) outside the exporter's own check."""
    import torch
    from export.parity import ort_session
    from export.wrappers import graph_module
    exported = read_export_manifest(str(export_dir))
    spec = next(s for s in exported.specs if s.name == "denoising_unet" and s.precision == "fp32")
    session, module = ort_session(export_dir / spec.file_name), graph_module(tiny_model, spec)
    for batch in (1, 2):
        feeds = spec.sample_inputs({"frames": 5, "batch": batch}, seed=123 + batch)
        got = session.run(["v"], feeds)[0]
        with torch.no_grad():
            ref = module(*[torch.from_numpy(feeds[n]) for n in spec.input_names]).numpy()
        assert got.shape == (batch, 4, 5, 16, 16)
        assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
    # CFG switch: the uncond row (use_reference 0) ignores the reference K/V entirely.
    feeds = spec.sample_inputs({"frames": 2, "batch": 2}, seed=7)
    other = dict(feeds, **{n: feeds[n] * 3 for n in spec.input_names if n.startswith("ref_")})
    a, b = session.run(["v"], feeds)[0], session.run(["v"], other)[0]
    assert np.abs(a[0] - b[0]).max() < 1e-5 and np.abs(a[1] - b[1]).max() > 1e-3


def test_onnxslim_is_kept_only_where_parity_holds(tiny_model, monkeypatch):
    import export.parity
    from export.exporter import ExportOptions, _traced_and_slimmed
    from export.onnx_export import trace_to_onnx
    from export.wrappers import graph_module
    spec = find_spec(build_specs(tiny_model.config, ExportPlan((128, 128))), "guidance_encoder", "fp32")
    module = graph_module(tiny_model, spec)
    options = ExportOptions(slim=True, parity_frames=(3,))
    notes = []
    proto, slimmed = _traced_and_slimmed(module, spec, options, notes.append)
    raw = len(trace_to_onnx(module, spec).graph.node)
    assert slimmed and len(proto.graph.node) < raw, notes
    monkeypatch.setitem(export.parity.TOLERANCE, "fp32", 0.0)  # no graph can pass: the traced one is kept
    proto, slimmed = _traced_and_slimmed(module, spec, options, notes.append)
    assert not slimmed and len(proto.graph.node) == raw and "kept the traced graph" in notes[-1]


def test_features_mode_reference_graph_matches_torch(tiny_model, tmp_path):
    """reference_mode "features": reference_unet emits the 16 features, the UNet projects K/V itself."""
    from export.exporter import ExportOptions, export_all
    plan = ExportPlan((128, 128), frames=AxisRange(1, 2, 4), reference_mode="features")
    lines = []
    reports = export_all(tiny_model, plan, tmp_path, ExportOptions(slim=False, parity_frames=(2,)), lines.append)
    by_name = {r.name: r for r in reports}
    unet = find_spec(build_specs(tiny_model.config, plan), "denoising_unet", "fp32")
    assert "ref_feature_15" in unet.input_names and "ref_k_00" not in unet.input_names
    assert by_name["reference_unet"].parity[0].ok and by_name["denoising_unet"].parity[0].ok
    assert by_name["denoising_unet"].parity[0].max_rel <= 1e-4
    assert any("denoising_unet.fp32.onnx" in line and "MB" in line for line in lines)  # progress names size


def test_large_graphs_go_to_external_data(tiny_model, tmp_path, monkeypatch):
    import export.onnx_export as ox
    from export.parity import check_parity, ort_session
    from export.wrappers import graph_module
    spec = find_spec(build_specs(tiny_model.config, ExportPlan((128, 128))), "vae_decoder", "fp32")
    module = graph_module(tiny_model, spec)
    proto = ox.trace_to_onnx(module, spec)
    monkeypatch.setattr(ox, "TWO_GB", 1000)  # pretend the 2.6 MB graph is over protobuf's limit
    path = tmp_path / spec.file_name
    ox.save_graph(proto, path)
    assert (tmp_path / (spec.file_name + ".data")).stat().st_size > path.stat().st_size
    assert all(r.ok for r in check_parity(ort_session(path), spec, module, (2,)))


def test_export_refuses_missing_weights_and_overwriting(export_dir, tiny_model):
    from engine.cli import main
    from export.exporter import export_all
    before = (export_dir / "export.json").read_bytes()
    assert main(["export", "--weights", "/nonexistent-weights", "--out", str(export_dir)]) == 2
    with pytest.raises(InputError, match="--overwrite"):
        export_all(tiny_model, ExportPlan((128, 128)), export_dir)
    assert (export_dir / "export.json").read_bytes() == before
    assert json.loads(before)["opset"] >= 18


@pytest.mark.parametrize("argv, message", [
    (["--frames", "4:2:8"], "MIN <= OPT <= MAX"),
    (["--frames", "1:12:40"], "at most 32 frames"),
    (["--batch", "1:2:3"], "at most 2"),
    (["--size", "100"], "multiples of 64"),
    (["--parity-frames", "a,b"], "comma-separated"),
])
def test_export_rejects_bad_options(argv, message, tmp_path, capsys):
    from engine.cli import main
    from engine.weights.tiny import ensure_tiny_weights
    assert main(["export", "--weights", str(ensure_tiny_weights()), "--out", str(tmp_path / "o"), *argv]) == 2
    assert message in capsys.readouterr().err

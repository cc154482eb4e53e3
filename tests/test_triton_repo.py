"""`mprt export --triton`: the Triton model repository of the tiny export.

Every generated config.pbtxt is parsed with Triton's own model-config schema (model_config_pb2, the
compiled model_config.proto shipped in tritonclient: unknown fields and wrong enum names fail) and
compared with the graph spec it was generated from. No Triton server runs here (none can on this
machine), so Triton's loading of these models is not tested; see tests/test_triton_backend_stub.py
for the client side.
"""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from helpers.export_support import tiny_export, tiny_triton_repo  # noqa: E402

from engine.cli import main  # noqa: E402
from engine.graph_specs import read_export_manifest  # noqa: E402
from engine.triton_models import SPEC_PARAMETER, model_name  # noqa: E402
from export.triton_config import batch_axis  # noqa: E402

pytestmark = pytest.mark.slow  # an ONNX export of the tiny model

ROW_GRAPHS = {"guidance_encoder", "vae_encoder", "vae_decoder"}  # what Triton may batch (per-frame 2-D nets)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return tiny_export(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return tiny_triton_repo(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def schema():
    pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2",
                              reason="tritonclient[grpc] not installed (pip install -e '.[triton]')")
    from google.protobuf import text_format

    def parse(text: str):
        return text_format.Parse(text, pb2.ModelConfig())
    parse.pb2 = pb2
    return parse


def test_every_config_parses_with_tritons_schema_and_matches_its_spec(export_dir, repo, schema):
    exported = read_export_manifest(str(export_dir))
    pb2 = schema.pb2
    dirs = sorted(p.name for p in repo.iterdir() if p.is_dir())
    assert dirs == sorted(model_name(s.name, s.precision) for s in exported.specs)
    for spec in exported.specs:
        name = model_name(spec.name, spec.precision)
        cfg = schema((repo / name / "config.pbtxt").read_text())
        assert cfg.name == name and cfg.backend == "onnxruntime" and cfg.default_model_filename == "model.onnx"
        batched = spec.name in ROW_GRAPHS
        assert cfg.max_batch_size == (spec.axes[spec.inputs[0].shape[0]].max if batched else 0), name
        assert cfg.HasField("dynamic_batching") == batched
        for have, want in ((cfg.input, spec.inputs), (cfg.output, spec.outputs)):
            assert [t.name for t in have] == [t.name for t in want]
            for t, w in zip(have, want):
                full = [d if isinstance(d, int) else -1 for d in w.shape]
                assert list(t.dims) == (full[1:] if batched else full), (name, t.name)
                assert all(d == -1 or d >= 1 for d in t.dims)  # Triton: a dim is -1 (variable) or positive
                assert pb2.DataType.Name(t.data_type) == {"float32": "TYPE_FP32", "float16": "TYPE_FP16"}[w.dtype]
        assert [(g.count, pb2.ModelInstanceGroup.Kind.Name(g.kind)) for g in cfg.instance_group] == [(1, "KIND_CPU")]
        assert json.loads(cfg.parameters[SPEC_PARAMETER].string_value) == json.loads(json.dumps(spec.to_json()))
        model = repo / name / "1" / "model.onnx"
        assert model.read_bytes() == (export_dir / spec.file_name).read_bytes()
    unet = schema((repo / "denoising_unet_fp16" / "config.pbtxt").read_text())
    dims = {t.name: (pb2.DataType.Name(t.data_type), list(t.dims)) for t in unet.input}
    assert dims["sample"] == ("TYPE_FP16", [-1, 4, -1, 16, 16])  # batch = the CFG pair, not Triton's batch
    assert dims["timestep"] == ("TYPE_FP32", [-1, -1]) and dims["use_reference"] == ("TYPE_FP32", [-1])
    assert not list(repo.rglob("*.partial"))


def test_the_schema_check_can_fail(repo, schema):
    """Unknown fields, misspelt enums and wrong types are refused by the schema, so the check above bites."""
    from google.protobuf import text_format
    text = (repo / "vae_decoder_fp32" / "config.pbtxt").read_text()
    schema(text)
    for bad in (text + "no_such_field: 1\n", text.replace("TYPE_FP32", "TYPE_FLOAT32"),
                text.replace("KIND_CPU", "KIND_TPU"), text.replace("max_batch_size: 32", "max_batch_size: \"32\"")):
        with pytest.raises(text_format.ParseError):
            schema(bad)


def test_triton_batches_only_graphs_whose_rows_are_independent(export_dir):
    """Where a config lets Triton merge requests along the leading axis, a merged call must equal the
    rows run one by one (ONNX Runtime, 1e-5 relative): otherwise one stream's frames would change another's."""
    import onnxruntime as ort
    exported = read_export_manifest(str(export_dir))
    assert {s.name for s in exported.specs if batch_axis(s)} == ROW_GRAPHS
    for spec in exported.specs:
        axis = batch_axis(spec)
        if not axis or spec.precision != "fp32" or spec.axes[axis].max < 2:
            continue
        session = ort.InferenceSession(str(export_dir / spec.file_name), providers=["CPUExecutionProvider"])
        feeds = spec.sample_inputs({axis: 3}, seed=5)
        merged = session.run(None, feeds)[0]
        rows = np.concatenate([session.run(None, {k: v[i:i + 1] for k, v in feeds.items()})[0] for i in range(3)])
        assert np.abs(merged - rows).max() <= 1e-5 * np.abs(rows).max(), spec.name


def test_perf_analyzer_input_data_is_the_specs_sample_at_opt_shapes(export_dir, repo):
    exported = read_export_manifest(str(export_dir))
    manifest = json.loads((repo / "mprt_triton.json").read_text())
    commands = {m["name"]: m["perf_analyzer"] for m in manifest["models"]}
    for spec in exported.specs:
        name = model_name(spec.name, spec.precision)
        data = json.loads((repo / name / "perf_analyzer_input.json").read_text())["data"]
        assert len(data) == 1 and list(data[0]) == spec.input_names
        batched = batch_axis(spec) is not None
        expected = spec.sample_inputs(seed=0)
        for t in spec.inputs:
            entry = data[0][t.name]
            want = expected[t.name][:1] if batched else expected[t.name]
            got = np.frombuffer(base64.b64decode(entry["content"]["b64"]), dtype=np.dtype(t.dtype).newbyteorder("<"))
            assert entry["shape"] == list(want.shape[1:] if batched else want.shape)
            np.testing.assert_array_equal(got.reshape(want.shape), want)
        b = spec.axes[batch_axis(spec)].opt if batched else 1
        assert f"-m {name} " in commands[name] and f" -b {b} " in commands[name]
        assert str(repo / name / "perf_analyzer_input.json") in commands[name]


def test_repository_is_not_overwritten_without_overwrite(export_dir, tmp_path, capsys):
    out = tmp_path / "repo"
    argv = ["export", "--onnx", str(export_dir), "--triton", str(out)]
    assert main(argv) == 0
    config = out / "vae_decoder_fp16" / "config.pbtxt"
    before = config.read_bytes()
    stale = out / "vae_decoder_fp16" / "1" / "model.plan"
    stale.write_bytes(b"an engine of an earlier repository")
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err and config.read_bytes() == before and stale.exists()
    assert main(argv + ["--overwrite", "--triton-instances", "2"]) == 0
    assert "count: 2" in config.read_text() and "KIND_GPU" in config.read_text()
    assert not stale.exists()  # the version folder holds one model file: the new one


@pytest.mark.parametrize("argv, message", [
    (["--triton", "R"], "--onnx DIR"),
    (["--triton", "R", "--onnx", "O", "--out", "X"], "and no --out"),
    (["--triton", "R", "--onnx", "{export}", "--triton-instances", "0"], "--triton-instances 0"),
    (["--triton", "{file}", "--onnx", "{export}"], "not a directory"),
    (["--triton", "R", "--onnx", "/nonexistent-export"], "export.json"),
    (["--triton", "R", "--engines", "{export}"], "no <graph>.<precision>.engine"),
])
def test_triton_option_errors_are_one_line(argv, message, export_dir, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    subst = {"R": str(tmp_path / "r"), "{export}": str(export_dir), "{file}": str(tmp_path / "file")}
    assert main(["export", *[subst.get(a, a) for a in argv]]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_plan_models_come_from_engine_manifests(export_dir, tmp_path, schema, capsys):
    """Engines of `mprt build` (here: stand-in bytes with real manifests; TensorRT does not run here) become
    tensorrt models; the manifest's graph spec is the config's source and its recorded I/O must agree."""
    from engine.engine_manifest import EngineManifest, sha256_file, write_manifest
    exported = read_export_manifest(str(export_dir))
    engines = tmp_path / "engines"
    engines.mkdir()

    def onnx_record(spec):  # what `mprt build` records of the graph it built from
        graph = export_dir / f"{spec.name}.{spec.precision}.onnx"
        return {"file": graph.name, "bytes": graph.stat().st_size, "sha256": sha256_file(graph)}

    def fake_engine(spec, io=None, size=1000):
        path = engines / f"{spec.name}.{spec.precision}.engine"
        path.write_bytes(bytes(range(256)) * (size // 256))
        io = io or [{"name": t.name, "mode": mode, "dtype": t.dtype,
                     "shape": [d if isinstance(d, int) else -1 for d in t.shape]}
                    for mode, ts in (("input", spec.inputs), ("output", spec.outputs)) for t in ts]
        write_manifest(EngineManifest(spec, tuple(io), {"module": "tensorrt", "version": "10.0"},
                                      {"gpu_name": "x", "compute_capability": "8.9"}, onnx_record(spec), {
                                          "file": path.name, "bytes": path.stat().st_size,
                                          "sha256": sha256_file(path)}, {}, "mprt build ..."), path)
        return path

    specs = [s for s in exported.specs if s.precision == "fp16" and s.name in ("denoising_unet", "vae_decoder")]
    paths = [fake_engine(s) for s in specs]
    out = tmp_path / "repo"
    assert main(["export", "--engines", str(engines), "--triton", str(out), "--triton-kind", "cpu"]) == 2
    assert "GPUs only" in capsys.readouterr().err and not out.exists()
    assert main(["export", "--engines", str(engines), "--triton", str(out)]) == 0
    for spec, path in zip(specs, paths):
        name = model_name(spec.name, spec.precision)
        cfg = schema((out / name / "config.pbtxt").read_text())
        assert cfg.backend == "tensorrt" and cfg.default_model_filename == "model.plan"
        assert (out / name / "1" / "model.plan").read_bytes() == path.read_bytes()
    bad = fake_engine(specs[1], io=[{"name": "latents", "mode": "input", "dtype": "float16", "shape": [-1, 4, 8, 8]},
                                    {"name": "image", "mode": "output", "dtype": "float16", "shape": [-1, 3, 64, 64]}])
    assert main(["export", "--engines", str(engines), "--triton", str(tmp_path / "r2")]) == 2
    assert f"{bad}: engine I/O" in capsys.readouterr().err

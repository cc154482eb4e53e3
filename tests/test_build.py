"""`mprt build` with tensorrt_rtx, which builds without a GPU for a named compute capability (8.9):
every graph of the tiny export parses and builds, manifests describe them, and bad inputs are refused.
Full TensorRT takes the same code path (export/trt_build.py) and needs a GPU; it is not installable here."""
from __future__ import annotations

import json
import shutil

import pytest

trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt_rtx not installed (pip install tensorrt-rtx)")

from helpers.export_support import tiny_export  # noqa: E402

from engine.cli import main  # noqa: E402
from engine.engine_manifest import EngineMismatchError, RuntimeTarget, load_checked  # noqa: E402
from engine.graph_specs import read_export_manifest  # noqa: E402

pytestmark = pytest.mark.slow  # an ONNX export and TensorRT builds

RTX = ["--backend", "tensorrt_rtx", "--compute-capability", "8.9"]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return tiny_export(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def engine_dir(export_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("engines")
    assert main(["build", "--onnx", str(export_dir), "--out", str(out), *RTX, "--precision", "fp16,fp32"]) == 0
    return out


def test_every_tiny_graph_builds_with_a_manifest(export_dir, engine_dir):
    exported = read_export_manifest(str(export_dir))
    assert len(exported.specs) == 10
    for spec in exported.specs:
        engine = engine_dir / f"{spec.name}.{spec.precision}.engine"
        m = load_checked(engine, RuntimeTarget("tensorrt_rtx", trt.__version__, "8.9"), spec.axis_points("max"),
                         onnx_path=export_dir / spec.file_name)
        assert m.graph == spec and m.engine["bytes"] > 100_000
        assert m.onnx["sha256"] == exported.reports[spec.file_name]["sha256"]
        io = {x["name"]: x for x in m.io}
        for t in spec.inputs + spec.outputs:
            assert io[t.name]["dtype"] == t.dtype, (spec.file_name, t.name)
            assert io[t.name]["shape"] == [d if isinstance(d, int) else -1 for d in t.shape]
        saved = json.loads((engine_dir / f"{engine.name}.json").read_text())
        assert saved["profile"]["sample" if spec.name == "denoising_unet" else spec.input_names[0]] == \
            [list(s) for s in spec.profile()["sample" if spec.name == "denoising_unet" else spec.input_names[0]]]
        assert saved["target"]["compute_capability"] == "8.9" and saved["tensorrt"]["module"] == "tensorrt_rtx"


def test_loading_refuses_another_gpu_or_profile(engine_dir):
    engine = engine_dir / "denoising_unet.fp16.engine"
    with pytest.raises(EngineMismatchError) as err:
        load_checked(engine, RuntimeTarget("tensorrt_rtx", trt.__version__, "8.6", "RTX 3090"))
    assert "compute capability 8.9" in str(err.value) and "mprt build --onnx" in str(err.value)
    with pytest.raises(EngineMismatchError, match="frames=33 is outside"):
        load_checked(engine, RuntimeTarget("tensorrt_rtx", trt.__version__, "8.9"), {"frames": 33})


def _copy_export(export_dir, tmp_path):
    onnx_dir = tmp_path / "onnx"
    onnx_dir.mkdir()
    for name in ("export.json", "guidance_encoder.fp16.onnx", "vae_encoder.fp16.onnx"):
        shutil.copy(export_dir / name, onnx_dir / name)
    return onnx_dir


@pytest.mark.parametrize("damage, extra, message", [
    (lambda d: (d / "guidance_encoder.fp16.onnx").unlink(), [], "ONNX file missing"),
    (lambda d: (d / "guidance_encoder.fp16.onnx").write_bytes((d / "guidance_encoder.fp16.onnx").read_bytes()[:5000]),
     [], "truncated or replaced"),
    (lambda d: (d / "export.json").unlink(), [], "export.json: not found"),
    (lambda d: None, ["--graphs", "guidance_encoder,unet"], "--graphs unet: not in this export"),
    (lambda d: None, ["--graphs", "guidance_encoder", "--precision", "fp16", "--compute-capability", "9.0"],
     "--compute-capability 9.0: tensorrt_rtx"),
])
def test_bad_onnx_folders_and_options_are_named(export_dir, tmp_path, capsys, damage, extra, message):
    onnx_dir = _copy_export(export_dir, tmp_path)
    damage(onnx_dir)
    argv = ["build", "--onnx", str(onnx_dir), "--out", str(tmp_path / "e"), *RTX, "--graphs", "guidance_encoder",
            "--precision", "fp16", *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_build_refuses_to_overwrite_engines(export_dir, tmp_path, capsys):
    onnx_dir = _copy_export(export_dir, tmp_path)
    argv = ["build", "--onnx", str(onnx_dir), "--out", str(tmp_path / "e"), *RTX, "--graphs", "vae_encoder"]
    assert main(argv) == 0
    first = (tmp_path / "e" / "vae_encoder.fp16.engine").read_bytes()
    assert main(argv) == 2 and "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "e" / "vae_encoder.fp16.engine").read_bytes() == first
    assert main(argv + ["--overwrite"]) == 0


def test_full_tensorrt_without_a_gpu_says_what_to_do(export_dir, tmp_path, capsys):
    from export.trt_build import detect_gpu
    if detect_gpu() is not None:
        pytest.skip("a GPU is visible: full TensorRT would build here")
    assert main(["build", "--onnx", str(export_dir), "--out", str(tmp_path / "e"), "--backend", "tensorrt"]) == 2
    err = capsys.readouterr().err
    assert "no TensorRT module importable" in err or "--backend tensorrt_rtx --compute-capability" in err


def test_fp32_island_is_the_timestep_sinusoid_and_cfg_switch(export_dir):
    """What TensorRT's FP16 flag must leave in fp32 on an fp32 UNet graph (pinned by export/trt_build.py)."""
    from export.trt_build import fp32_island_layers
    logger = trt.Logger(trt.Logger.ERROR)
    network = trt.Builder(logger).create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    assert trt.OnnxParser(network, logger).parse_from_file(str(export_dir / "denoising_unet.fp32.onnx"))
    island = fp32_island_layers(trt, network, ["timestep", "use_reference"])
    kinds = {layer.type for layer in island}
    assert trt.LayerType.UNARY in kinds  # sin / cos / exp
    assert not kinds & {trt.LayerType.MATRIX_MULTIPLY, trt.LayerType.CONVOLUTION}
    assert 3 <= len(island) < network.num_layers // 20

"""engine/graph_specs.py and engine/engine_manifest.py: the I/O contract and the engine manifest checks."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from engine.engine_manifest import (EngineManifest, EngineManifestError, EngineMismatchError, RuntimeTarget,
                                    load_checked, write_manifest)
from engine.errors import InputError, MprtError
from engine.graph_specs import (AxisRange, ExportPlan, GraphSpec, find_spec,
                                reference_token_shapes)
from engine.graphs import build_specs
from engine.networks.config import ModelConfig, tiny_config


def tiny_specs(**kw):
    return build_specs(tiny_config(), ExportPlan((128, 128), **kw))


def test_graph_specs_and_manifest_import_without_torch():
    code = "import sys, engine.graph_specs, engine.engine_manifest; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_reference_token_shapes_match_the_networks():
    """SD1.5 at 512 px and the tiny model's actual reference UNet outputs."""
    full = reference_token_shapes(ModelConfig(), (64, 64))
    assert full[:7] == [(4096, 320)] * 2 + [(1024, 640)] * 2 + [(256, 1280)] * 2 + [(64, 1280)]
    assert full[7:] == [(256, 1280)] * 3 + [(1024, 640)] * 3 + [(4096, 320)] * 3
    import torch
    from engine.networks.reference_unet import ReferenceUNet
    cfg = tiny_config()
    net = ReferenceUNet(cfg.unet).eval()
    with torch.no_grad():
        feats = net(torch.randn(1, 4, 16, 24), torch.randn(1, 77, cfg.unet.cross_attention_dim))
    assert [tuple(f.shape[1:]) for f in feats] == reference_token_shapes(cfg, (16, 24))


def test_profiles_follow_the_axis_ranges():
    unet = find_spec(tiny_specs(frames=AxisRange(2, 8, 16)), "denoising_unet", "fp32")
    assert unet.profile()["sample"] == ((1, 4, 2, 16, 16), (2, 4, 8, 16, 16), (2, 4, 16, 16, 16))
    assert unet.profile()["guidance"][2] == (16, 32, 16, 16)
    assert unet.profile()["ref_k_00"] == ((1, 256, 32),) * 3
    assert len([n for n in unet.input_names if n.startswith("ref_")]) == 32
    assert GraphSpec.from_json(unet.to_json()) == unet


def test_sample_inputs_pass_their_own_check_and_cfg_order():
    unet = find_spec(tiny_specs(precisions=("fp16",)), "denoising_unet", "fp16")
    feeds = unet.sample_inputs({"frames": 3, "batch": 2})
    assert unet.check_inputs(feeds) == {"batch": 2, "frames": 3}
    assert feeds["use_reference"].tolist() == [0.0, 1.0] and feeds["sample"].dtype == np.float16
    assert feeds["timestep"].dtype == np.float32


@pytest.mark.parametrize("change, message", [
    (lambda f: f.pop("guidance"), "missing ['guidance']"),
    (lambda f: f.update(sample=f["sample"][:, :, :2]), "timestep has frames=3, but an earlier input has 2"),
    (lambda f: f.update(sample=f["sample"][..., :8]), "input sample has shape (2, 4, 3, 16, 8)"),
    (lambda f: f.update(timestep=f["timestep"].astype(np.float64)), "timestep has dtype float64"),
    (lambda f: f.update(use_reference=np.ones(3, np.float32)), "use_reference has batch=3, but an earlier"),
    (lambda f: f.update(sample=np.concatenate([f["sample"]] * 2)), "sample has shape (4, 4, 3, 16, 16), "
                                                                   "expected (batch[1..2], 4, frames[1..32]"),
])
def test_wrong_inputs_are_named(change, message):
    unet = find_spec(tiny_specs(), "denoising_unet", "fp32")
    feeds = unet.sample_inputs({"frames": 3, "batch": 2})
    change(feeds)
    with pytest.raises(InputError) as err:
        unet.check_inputs(feeds)
    assert message in str(err.value)


@pytest.mark.parametrize("make, message", [
    (lambda: AxisRange.parse("1:x:3", "--frames"), "--frames: expected MIN:OPT:MAX"),
    (lambda: AxisRange.parse("3:2:1", "--frames"), "1 <= MIN <= OPT <= MAX"),
    (lambda: ExportPlan((100, 128)), "multiples of 64"),
    (lambda: ExportPlan((128, 128), precisions=("bf16",)), "precisions"),
    (lambda: tiny_specs(frames=AxisRange(1, 12, 33)), "at most 32 frames"),
])
def test_bad_plans_are_rejected(make, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[")):
        make()


def _manifest(spec: GraphSpec, engine_bytes: int) -> EngineManifest:
    return EngineManifest(graph=spec, io=(), tensorrt={"module": "tensorrt", "version": "10.3.0"},
                          target={"gpu_name": "NVIDIA GeForce RTX 4090", "compute_capability": "8.9"},
                          onnx={"file": spec.file_name, "sha256": "0" * 64, "bytes": 1},
                          engine={"file": "x.engine", "bytes": engine_bytes, "sha256": ""},
                          build={}, rebuild_command="mprt build --onnx ONNX --out ENGINES")


def test_manifest_checks_refuse_mismatches_with_the_rebuild_command(tmp_path):
    spec = find_spec(tiny_specs(frames=AxisRange(1, 12, 16)), "denoising_unet", "fp32")
    engine = tmp_path / "denoising_unet.fp32.engine"
    engine.write_bytes(b"x" * 100)
    with pytest.raises(EngineManifestError, match="manifest not found"):
        load_checked(engine, RuntimeTarget("tensorrt", "10.3.0", "8.9"))
    write_manifest(_manifest(spec, 100), engine)
    ok = RuntimeTarget("tensorrt", "10.3.0", "8.9", "NVIDIA GeForce RTX 4090")
    assert load_checked(engine, ok, {"frames": 16, "batch": 2}).graph == spec
    cases = [(RuntimeTarget("tensorrt", "10.3.0", "8.7", "Orin"), "compute capability 8.9"),
             (RuntimeTarget("tensorrt", "10.7.0", "8.9"), "10.3.0"),
             (RuntimeTarget("tensorrt_rtx", "10.3.0", "8.9"), "built with tensorrt,")]
    for runtime, message in cases:
        with pytest.raises(EngineMismatchError) as err:
            load_checked(engine, runtime)
        assert message in str(err.value) and "mprt build --onnx ONNX --out ENGINES" in str(err.value)
    with pytest.raises(EngineMismatchError, match="frames=17 is outside the engine's profile 1..16"):
        load_checked(engine, ok, {"frames": 17})
    onnx_file = tmp_path / "other.onnx"
    onnx_file.write_bytes(b"graph")
    with pytest.raises(EngineMismatchError, match="sha256 differs"):
        load_checked(engine, ok, onnx_path=onnx_file)
    engine.write_bytes(b"x" * 60)  # truncated
    with pytest.raises(EngineManifestError, match="truncated"):
        load_checked(engine, ok)
    engine.with_name(engine.name + ".json").write_text("{not json")
    with pytest.raises(EngineManifestError, match="not a valid engine manifest"):
        load_checked(engine, ok)
    assert issubclass(EngineMismatchError, MprtError) and issubclass(EngineManifestError, MprtError)

"""DECA E_flame and SMIRK expression encoder: released-format loading, errors, outputs, ONNX parity."""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from helpers.driving import randomize_, write_deca_tar, write_smirk_pt
from engine.driving.deca_encoder import DECA_LAYOUT, DecaCoarseEncoder, load_deca_coarse_encoder, split_deca_params
from engine.driving.driving_encoder import DrivingEncoder, EncoderInputs
from engine.driving.encoder_weights import EncoderPair, encoder_files, load_encoders
from engine.driving.mobilenetv3 import MobileNetV3LargeMinimalFeatures
from engine.driving.smirk_encoder import SmirkExpressionEncoder, load_smirk_expression_encoder, smirk_exp_and_jaw
from engine.errors import CheckpointError, InputError

ONNX_REL_TOL = 1e-4


@pytest.fixture(scope="module")
def deca() -> DecaCoarseEncoder:
    return randomize_(DecaCoarseEncoder(), seed=1)


@pytest.fixture(scope="module")
def smirk() -> SmirkExpressionEncoder:
    return randomize_(SmirkExpressionEncoder(), seed=2)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory, deca, smirk):
    folder = tmp_path_factory.mktemp("encoder_weights")
    write_deca_tar(folder / "deca_model.tar", deca)
    write_smirk_pt(folder / "SMIRK_em1.pt", smirk)
    return folder


@pytest.fixture(scope="module")
def crops() -> torch.Tensor:
    return torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def reference_outputs(deca, smirk, crops) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return deca(crops), smirk(crops)


def test_deca_key_names_match_released_layout(deca):
    keys = set(deca.state_dict())
    assert {"encoder.conv1.weight", "encoder.layer1.0.downsample.0.weight", "encoder.layer4.2.bn3.running_var",
            "layers.0.weight", "layers.2.bias"} <= keys
    assert deca.state_dict()["layers.2.weight"].shape == (236, 1024)
    assert not any(k.startswith("encoder.fc") for k in keys)


def test_smirk_key_names_match_released_layout(smirk):
    state = smirk.state_dict()
    assert state["encoder.conv_stem.weight"].shape == (16, 3, 3, 3)
    assert state["encoder.blocks.6.0.conv.weight"].shape == (960, 160, 1, 1)
    assert state["encoder.blocks.3.2.conv_pw.weight"].shape == (184, 80, 1, 1)  # e2.3 -> 184 channels
    assert state["expression_layers.0.weight"].shape == (55, 960)


def test_loaders_read_released_formats(weights_dir, reference_outputs, crops):
    loaded_deca = load_deca_coarse_encoder(weights_dir / "deca_model.tar")
    loaded_smirk = load_smirk_expression_encoder(weights_dir / "SMIRK_em1.pt")
    with torch.no_grad():
        out = loaded_deca(crops)
        torch.testing.assert_close(out, reference_outputs[0], rtol=0, atol=0)
        torch.testing.assert_close(loaded_smirk(crops), reference_outputs[1], rtol=0, atol=0)
    assert out.shape == (2, 236) and torch.isfinite(out).all() and out.abs().max() > 1e-2


def test_deca_loader_reads_legacy_serialization(tmp_path, deca):
    path = write_deca_tar(tmp_path / "deca_model.tar", deca, legacy=True)
    loaded = load_deca_coarse_encoder(path)
    for key, value in deca.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_encoder_files_names_every_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="deca_model.tar.*SMIRK_em1.pt"):
        encoder_files(tmp_path)
    with pytest.raises(CheckpointError, match="--random-encoders"):
        encoder_files(None)


def test_missing_key_is_named(tmp_path, deca):
    state = deca.state_dict()
    del state["layers.2.weight"]
    torch.save({"E_flame": state}, tmp_path / "deca_model.tar")
    with pytest.raises(CheckpointError, match=r"deca_model\.tar.*missing keys: layers\.2\.weight"):
        load_deca_coarse_encoder(tmp_path / "deca_model.tar")


def test_shape_mismatch_is_named(tmp_path, smirk):
    state = {f"smirk_encoder.expression_encoder.{k}": v for k, v in smirk.state_dict().items()}
    state["smirk_encoder.expression_encoder.expression_layers.0.weight"] = torch.zeros(53, 960)
    torch.save(state, tmp_path / "SMIRK_em1.pt")
    with pytest.raises(CheckpointError, match=r"expression_layers\.0\.weight has shape \(53, 960\), expected \(55, 960\)"):
        load_smirk_expression_encoder(tmp_path / "SMIRK_em1.pt")


def test_wrong_files_give_clear_errors(tmp_path, deca):
    junk = tmp_path / "deca_model.tar"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="could not be read as a torch checkpoint"):
        load_deca_coarse_encoder(junk)
    torch.save({"smirk_encoder.pose_encoder.x": torch.zeros(1)}, tmp_path / "smirk.pt")
    with pytest.raises(CheckpointError, match="no 'smirk_encoder.expression_encoder"):
        load_smirk_expression_encoder(tmp_path / "smirk.pt")
    torch.save({"E_detail": {}}, tmp_path / "other.tar")
    with pytest.raises(CheckpointError, match="no 'E_flame' entry"):
        load_deca_coarse_encoder(tmp_path / "other.tar")
    with pytest.raises(CheckpointError, match="not found"):
        load_deca_coarse_encoder(tmp_path / "absent.tar")


def test_non_tensor_pickles_are_refused(tmp_path):
    """weights_only loading: a file that needs arbitrary code to unpickle is rejected, not run."""
    torch.save({"E_flame": {"x": types.SimpleNamespace(a=1)}}, tmp_path / "evil.tar")
    with pytest.raises(CheckpointError, match="contains code") as refused:
        load_deca_coarse_encoder(tmp_path / "evil.tar")
    assert "weights_only" not in str(refused.value)  # torch's advice to load it unsafely is not relayed


def test_deca_split_follows_param_list_order():
    params = torch.arange(236, dtype=torch.float32)[None]
    code = split_deca_params(params)
    assert code["shape"][0, 0] == 0 and code["tex"][0, 0] == 100 and code["exp"][0, 0] == 150
    assert code["pose"][0].tolist() == [200, 201, 202, 203, 204, 205]
    assert code["cam"][0].tolist() == [206, 207, 208]
    assert code["light"].shape == (1, 9, 3) and code["light"][0, 0].tolist() == [209, 210, 211]


def test_smirk_output_activations_match_spec():
    raw = torch.zeros(1, 55)
    raw[0, :50] = torch.linspace(-3, 3, 50)
    raw[0, 50:52] = torch.tensor([5.0, -5.0])  # eyelids: ignored
    raw[0, 52:55] = torch.tensor([-0.3, 0.5, -0.7])
    exp, jaw = smirk_exp_and_jaw(raw)
    assert torch.equal(exp, raw[:, :50])
    assert jaw[0].tolist() == pytest.approx([0.0, 0.2, -0.2])
    raw[0, 52:55] = torch.tensor([0.4, 0.1, -0.15])
    assert smirk_exp_and_jaw(raw)[1][0].tolist() == pytest.approx([0.4, 0.1, -0.15])


def test_driving_encoder_takes_pose_from_deca_and_exp_jaw_from_smirk(deca, smirk, crops, reference_outputs):
    encoder = DrivingEncoder(EncoderPair(deca, smirk, "test"))
    out = encoder.encode([EncoderInputs(c.numpy(), c.numpy()) for c in crops])
    full = reference_outputs[0]
    exp, jaw = smirk_exp_and_jaw(reference_outputs[1])
    np.testing.assert_allclose(out["pose"], full[:, 200:203].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["exp"], exp.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["jaw"], jaw.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["deca_coarse_encoder", "smirk_expression_encoder"])
def test_onnx_parity(tmp_path, name, deca, smirk):
    """The encoders as graphs of engine/graphs/, exported the way `mprt export` exports every graph."""
    pytest.importorskip("onnxruntime")
    from engine.graph_specs import AxisRange, ExportPlan
    from engine.graphs import graph_module as graph_definition
    from engine.networks.config import tiny_config
    from export.onnx_export import save_graph, trace_to_onnx
    from export.parity import check_parity, ort_session
    from export.wrappers import graph_module
    plan = ExportPlan((128, 128), driving=True, crops=AxisRange(1, 3, 4))
    spec = graph_definition(name).spec(tiny_config(), plan, "fp32")
    module = graph_module(None, spec, EncoderPair(deca, smirk, "test"))
    path = tmp_path / spec.file_name
    save_graph(trace_to_onnx(module, spec), path)
    results = check_parity(ort_session(path), spec, module)
    assert [r.axes for r in results] == [{"crops": 3}]
    assert all(r.ok for r in results) and results[0].max_rel <= ONNX_REL_TOL, results


class _TorchvisionStub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Lets timm import without torchvision: only FrozenBatchNorm2d & co. names are touched."""

    class _Meta(type(nn.Module)):
        def __getattr__(cls, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return f"{cls.__name__}.{name}"

    class _Module(types.ModuleType):
        __path__: list = []

        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return _TorchvisionStub._Meta(name, (nn.Module,), {})

    def find_spec(self, name, path, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return self._Module(spec.name)

    def exec_module(self, module):
        pass


def _import_timm_without_torchvision():
    if importlib.util.find_spec("timm") is None:
        pytest.skip("timm not installed (not a dependency: it requires torchvision, which conflicts with torch 2.13 CPU)")
    stub = _TorchvisionStub()
    sys.meta_path.insert(0, stub)
    try:
        import timm
    finally:
        sys.meta_path.remove(stub)
    return timm


@pytest.mark.slow
def test_mobilenetv3_matches_timm_when_available():
    before = set(sys.modules)
    try:
        timm = _import_timm_without_torchvision()
        ref = timm.create_model("tf_mobilenetv3_large_minimal_100", pretrained=False, features_only=True)
        mine = MobileNetV3LargeMinimalFeatures()
        assert {k: tuple(v.shape) for k, v in ref.state_dict().items()} == \
            {k: tuple(v.shape) for k, v in mine.state_dict().items()}
        randomize_(ref, seed=4)
        mine.load_state_dict(ref.state_dict())
        mine.eval()
        x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(5))
        with torch.no_grad():
            torch.testing.assert_close(mine(x), ref(x)[-1], rtol=1e-5, atol=1e-5)
    finally:
        for name in set(sys.modules) - before:
            if name.split(".")[0] in ("timm", "torchvision"):
                del sys.modules[name]


def test_random_encoders_are_seeded_and_flagged():
    from engine.driving.encoder_weights import random_encoders

    a, b = random_encoders(7), random_encoders(7)
    assert a.random and a.identity == "random:7"
    x = torch.rand(1, 3, 64, 64)  # small input: only the damped head + bias matter here
    with torch.no_grad():
        assert torch.equal(a.deca(x), b.deca(x))
        assert a.deca(x)[0, DECA_LAYOUT.cam.start] == pytest.approx(9.0, abs=1e-2)


def test_load_encoders_from_folder(weights_dir):
    pair = load_encoders(weights_dir)
    assert not pair.random and "deca_model.tar" in pair.identity and "SMIRK_em1.pt" in pair.identity

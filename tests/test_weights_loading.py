"""The loader reads upstream's layout in upstream's order and reports what upstream would hide."""
import shutil

import pytest
import torch

from engine.errors import CheckpointError, InputError
from engine.model import MagicPortraitModel
from engine.weights.tiny import write_tiny_weights


@pytest.fixture()
def weights_copy(tiny_weights, tmp_path):
    dst = tmp_path / "w"
    shutil.copytree(tiny_weights, dst)
    return dst


def test_tiny_model_loads_through_the_real_loader(tiny_model):
    report = tiny_model.report
    assert report.loaded["denoising UNet3D"] == [
        "diffusion_pytorch_model.safetensors", "motion_module.pth", "denoising_unet.pth"]
    assert report.loaded["reference UNet"] == ["diffusion_pytorch_model.safetensors", "reference_unet.pth"]
    # SD1.5's output head is present in the base file and dropped for the reference UNet.
    assert report.ignored["reference UNet"] == 4
    # Unused upstream guidance layers are accepted and dropped.
    assert report.ignored["guidance encoder (depth)"] > 0
    assert not any(report.unexpected.values())


def test_later_files_win(tiny_weights):
    model = MagicPortraitModel.from_weights(tiny_weights)
    own = torch.load(tiny_weights / "denoising_unet.pth", weights_only=True)
    assert torch.equal(model.denoising_unet.state_dict()["conv_in.weight"], own["conv_in.weight"])
    ref_own = torch.load(tiny_weights / "reference_unet.pth", weights_only=True)
    assert torch.equal(model.reference_unet.state_dict()["conv_in.weight"], ref_own["conv_in.weight"])


def test_missing_file_is_named(weights_copy):
    (weights_copy / "guidance_encoder_normal.pth").unlink()
    with pytest.raises(CheckpointError, match="guidance_encoder_normal.pth"):
        MagicPortraitModel.from_weights(weights_copy)


def test_missing_motion_module_file(weights_copy):
    (weights_copy / "motion_module.pth").unlink()
    with pytest.raises(CheckpointError, match="motion_module"):
        MagicPortraitModel.from_weights(weights_copy)


def test_missing_guidance_key_is_an_error_not_random_weights(weights_copy):
    path = weights_copy / "guidance_encoder_render.pth"
    sd = torch.load(path, weights_only=True)
    del sd["conv_out.weight"]
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"guidance encoder \(render\).*conv_out.weight"):
        MagicPortraitModel.from_weights(weights_copy)


def test_wrong_shape_names_key_and_file(weights_copy):
    path = weights_copy / "reference_unet.pth"
    sd = torch.load(path, weights_only=True)
    sd["conv_in.weight"] = torch.zeros(3, 3)
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"reference_unet.pth: key 'conv_in.weight' has shape \(3, 3\)"):
        MagicPortraitModel.from_weights(weights_copy)


def test_corrupt_file(weights_copy):
    path = weights_copy / "denoising_unet.pth"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="denoising_unet.pth: cannot read checkpoint"):
        MagicPortraitModel.from_weights(weights_copy)


def test_pickled_code_is_refused(weights_copy):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    (weights_copy / "reference_unet.pth").write_bytes(pickle.dumps({"x": Evil()}, protocol=2))
    with pytest.raises(CheckpointError, match="reference_unet.pth"):
        MagicPortraitModel.from_weights(weights_copy)


def test_unexpected_keys_are_reported(weights_copy):
    path = weights_copy / "denoising_unet.pth"
    sd = torch.load(path, weights_only=True)
    sd["some.extra.key"] = torch.zeros(1)
    torch.save(sd, path)
    model = MagicPortraitModel.from_weights(weights_copy)
    assert model.report.unexpected["denoising UNet3D"] == ["some.extra.key (denoising_unet.pth)"]
    assert "1 unexpected keys" in model.report.summary()


def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="weights folder not found"):
        MagicPortraitModel.from_weights(tmp_path / "nope")


def test_tiny_weights_refuse_to_overwrite(tiny_weights):
    with pytest.raises(InputError, match="already exists"):
        write_tiny_weights(tiny_weights)

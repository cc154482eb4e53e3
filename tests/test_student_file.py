"""Student files: full and LoRA round trips through the loader, metadata, one-line errors."""
from __future__ import annotations

import json

import pytest
import torch

from engine.errors import CheckpointError
from engine.networks.config import tiny_config
from engine.networks.denoising_unet import DenoisingUNet3D
from engine.weights.student import apply_student, find_student, read_student, write_student


def unet(seed: int) -> DenoisingUNet3D:
    torch.manual_seed(seed)
    cfg = tiny_config()
    return DenoisingUNet3D(cfg.unet, cfg.motion).eval()


def outputs(net):
    torch.manual_seed(5)
    x, g = torch.randn(1, 4, 3, 16, 16), torch.randn(1, 32, 3, 16, 16)
    with torch.no_grad():
        return net(x, torch.tensor([[999, 500, 20]]), torch.randn(1, 77, 16), g, None)


def test_full_student_round_trip(tmp_path):
    teacher, trained = unet(0), unet(1)
    path = write_student(tmp_path / "student" / "student.safetensors", trained.state_dict(), "full", 123,
                         {"lr": 1e-4}, "denoising_unet.pth (42 bytes)")
    assert find_student(tmp_path) == path and find_student(tmp_path / "student") is None
    student = read_student(path)
    assert student.metadata["steps"] == "123" and json.loads(student.metadata["config"]) == {"lr": 1e-4}
    assert student.metadata["scheduler"] == "lcm" and "123 distillation steps" in student.describe()
    assert not torch.equal(outputs(teacher), outputs(trained))
    apply_student(teacher, student)
    assert torch.equal(outputs(teacher), outputs(trained))


def test_lora_student_merges_into_the_teacher(tmp_path):
    """A LoRA file trained with peft gives, merged by our loader (no peft), the adapted network's outputs."""
    pytest.importorskip("peft", reason="LoRA training needs peft")
    from engine.distill.lora import add_lora, lora_factors
    net = unet(0)
    add_lora(net, rank=4, alpha=8)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)  # trained adapters are non-zero
    want = outputs(net)
    factors = lora_factors(net)
    assert any(".motion_modules." in k for k in factors) and any("conv1.lora_A" in k for k in factors)
    path = write_student(tmp_path / "s.safetensors", factors, "lora", 7, {}, "t", {"lora_rank": "4", "lora_alpha": "8"})
    teacher = unet(0)
    assert not torch.allclose(outputs(teacher), want, atol=1e-4)
    apply_student(teacher, read_student(path))
    assert torch.allclose(outputs(teacher), want, atol=1e-5), float((outputs(teacher) - want).abs().max())


def test_bad_student_files_are_one_line(tmp_path):
    from safetensors.torch import save_file
    with pytest.raises(CheckpointError, match="file not found"):
        read_student(tmp_path / "nope.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="cannot read the student file"):
        read_student(tmp_path / "junk.safetensors")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="not a student file"):
        read_student(tmp_path / "plain.safetensors")
    sd = unet(0).state_dict()
    sd.pop("conv_in.weight")
    write_student(tmp_path / "short.safetensors", sd, "full", 1, {}, "t")
    with pytest.raises(CheckpointError, match=r"does not fit this model's denoising UNet: 1 keys missing \['conv_in.weight'\]") as err:
        apply_student(unet(0), read_student(tmp_path / "short.safetensors"))
    assert "\n" not in str(err.value)

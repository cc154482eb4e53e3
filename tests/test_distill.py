"""Consistency distillation on the tiny model, through the same code paths a real run takes:
synthetic-head clips (engine.guidance) -> frozen-network cache -> windows with per-frame levels ->
teacher CFG step + EMA target -> student update; resumable checkpoints; the CLI writes a student file."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.distill.objective import step_indices
from engine.errors import InputError

SIZE = 128


@pytest.fixture(scope="module")
def clips():
    from engine.distill.data import builtin_clips
    return builtin_clips(count=1, frames=6, size=SIZE)


@pytest.fixture(scope="module")
def cached(tiny_weights, clips):
    from engine.distill.cache import cache_clips
    from engine.model import MagicPortraitModel
    model = MagicPortraitModel.from_weights(tiny_weights)
    out = cache_clips(model, clips, SIZE, teacher_steps=2)
    assert out[0].x0_source == "teacher" and out[0].x0.shape == (1, 4, 6, 16, 16)
    assert len(out[0].ref_features) == 16 and out[0].guidance.shape == (1, 32, 6, 16, 16)
    return out


def distiller(tiny_weights, cached, **overrides):
    from engine.distill.trainer import DistillConfig, Distiller
    from engine.model import MagicPortraitModel
    model = MagicPortraitModel.from_weights(tiny_weights)  # training changes the UNet: a fresh model each
    config = DistillConfig(**{"steps": 3, "lr": 1e-3, "windows": (4,), "teacher_steps": 4, "stream_steps": (2,),
                              "timestep_mode": "stream", **overrides})
    return Distiller(model, cached, config)


def test_stream_levels_are_staggered_stages_oldest_least_noisy():
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = step_indices(rng, 8, "stream", 20, (4,))
        stages = idx.reshape(4, 2)
        assert (stages[:, 0] == stages[:, 1]).all() and list(np.diff(stages[:, 0])) == [-5, -5, -5]
    assert any((step_indices(rng, 8, "stream", 20, (4,)) == [15, 15, 10, 10, 5, 5, 0, 0]).all() for _ in range(50))
    clip = step_indices(rng, 6, "clip", 20)
    assert len(set(clip)) == 1 and 0 <= clip[0] < 20


@pytest.mark.slow
@pytest.mark.parametrize("lora_rank,lr,bound", [(0, None, 0.8), (4, 1e-2, 0.9)])
def test_a_few_steps_lower_the_distillation_loss_on_a_fixed_batch(tiny_weights, cached, lora_rank, lr, bound):
    """LoRA starts with B = 0 and moves a few factors: at the full fine-tune's learning rate three steps
    lower the loss by ~8% only, so it gets LoRA's usual ~10x larger rate and a looser bound."""
    if lora_rank:
        pytest.importorskip("peft", reason="LoRA training needs peft")
    d = distiller(tiny_weights, cached, lora_rank=lora_rank, **({"lr": lr} if lr else {}))
    fixed = [d.window(0, 0)]
    assert len(set(d.objective.grid[fixed[0].step_index])) == 2  # staggered: two levels in one window
    d.window = lambda step, item: fixed[item]
    before = d.eval_loss(fixed)
    for _ in range(3):
        d.train_step()
    after = d.eval_loss(fixed)
    assert after < bound * before, (before, after)
    if lora_rank:
        assert all("lora_" in n for n in d.params) and d.params
        factors = d.student_tensors()
        assert factors and all(".lora_A." in k or ".lora_B." in k for k in factors)


@pytest.mark.slow
def test_data_weight_adds_the_squared_error_to_x0_and_training_lowers_it(tiny_weights, cached):
    d = distiller(tiny_weights, cached, data_weight=4.0)
    fixed = [d.window(0, 0)]
    pure = d.objective.loss(fixed[0]).item()
    consistency_only, data_before = d.objective.terms["consistency"], d.objective.terms["data"]
    assert pure == pytest.approx(consistency_only + 4.0 * data_before, rel=1e-5)
    d.objective.data_weight = 0.0
    assert d.objective.loss(fixed[0]).item() == pytest.approx(consistency_only, rel=1e-6)
    assert "data" not in d.objective.terms
    d.objective.data_weight = 4.0
    d.window = lambda step, item: fixed[item]
    for _ in range(3):
        d.train_step()
    d.objective.loss(fixed[0])
    assert d.objective.terms["data"] < data_before, (data_before, d.objective.terms)
    with pytest.raises(InputError, match="--data-weight"):
        distiller(tiny_weights, cached, data_weight=-1.0)


@pytest.mark.slow
def test_checkpoint_resumes_the_same_run(tiny_weights, cached, tmp_path):
    d = distiller(tiny_weights, cached, ema_decay=0.5)
    d.train_step()
    d.save_checkpoint(tmp_path)
    again = distiller(tiny_weights, cached, ema_decay=0.5, steps=10)  # --steps may grow on resume
    again.load_checkpoint(tmp_path / "checkpoint.pt")
    assert again.step == 1
    for n, p in d.params.items():
        assert torch.equal(again.params[n], p) and torch.equal(again.ema[n], d.ema[n])
    w1, w2 = d.window(1, 0), again.window(1, 0)  # windows and noise are drawn from (seed, step, item)
    assert torch.equal(w1.noise, w2.noise) and (w1.step_index == w2.step_index).all()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    del state["config"]["data_weight"]  # written before the setting existed: its default
    torch.save(state, tmp_path / "old.pt")
    again.load_checkpoint(tmp_path / "old.pt")
    other = distiller(tiny_weights, cached, ema_decay=0.5, lr=5e-4)  # one setting differs: named
    with pytest.raises(InputError, match=r"other settings \{'lr': \(0.001, 0.0005\)\}"):
        other.load_checkpoint(tmp_path / "checkpoint.pt")


@pytest.mark.slow
def test_cli_writes_a_student_the_loader_reads(tiny_weights, tmp_path, capsys):
    from engine.cli import main
    from engine.weights.student import read_student
    out = tmp_path / "student"
    argv = ["distill", "--weights", str(tiny_weights), "--builtin-clips", "1", "--steps", "1", "--windows", "4",
            "--teacher-steps", "2", "--stream-steps", "2", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    student = read_student(out / "student.safetensors")
    assert student.kind == "full" and student.metadata["steps"] == "1" and (out / "checkpoint.pt").exists()
    assert main(argv) == 2 and "--resume" in capsys.readouterr().err  # never silently overwritten
    log = (out / "distill.json").read_text()
    assert main(argv + ["--resume", "--save-fp16"]) == 0  # steps already done: only the file is rewritten
    half = read_student(out / "student.safetensors")
    assert half.metadata["stored_dtype"] == "float16" and half.metadata["steps"] == "1"
    assert all(v.dtype == torch.float16 for v in half.tensors.values() if v.is_floating_point())
    assert all(torch.equal(half.tensors[k], v.half()) for k, v in student.tensors.items() if v.is_floating_point())
    assert (out / "distill.json").read_text() == log  # the training run's log is kept

"""Training: the objective learns (a few steps lower the loss on a fixed batch), stages resume,
and a trained folder loads through the normal loader."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.networks.denoising_unet import DenoisingUNet3D
from engine.networks.guidance_encoder import GuidanceEncoderSet
from engine.networks.reference_unet import ReferenceUNet
from engine.synthetic import make_identity, make_motion, render_clip
from engine.synthetic.motion import reference_pose
from engine.training.data import ClipTensors, sample_batch
from engine.training.diffusion import Networks, Objective, image_parameters, init_for_training, motion_parameters
from engine.training.recipe import model_config


def _nets():
    torch.manual_seed(0)
    cfg = model_config(64, 1.0)
    nets = Networks(ReferenceUNet(cfg.unet), DenoisingUNet3D(cfg.unet, cfg.motion),
                    GuidanceEncoderSet(cfg.guidance), torch.randn(1, 77, cfg.unet.cross_attention_dim))
    init_for_training(nets)
    return nets


def test_init_makes_guidance_and_motion_modules_no_ops():
    nets = _nets()
    maps = [torch.rand(2, 3, 64, 64) for _ in range(3)]
    assert torch.count_nonzero(nets.guidance_encoders(*maps)) == 0
    x = torch.randn(1, 4, 3, 8, 8)
    out = nets.denoising_unet(x, torch.tensor(500), nets.text, None, None)
    per_frame = torch.cat([nets.denoising_unet(x[:, :, i:i + 1], torch.tensor(500), nets.text, None, None)
                           for i in range(3)], dim=2)
    torch.testing.assert_close(out, per_frame, atol=1e-5, rtol=1e-5)  # no temporal mixing yet


@pytest.mark.parametrize("stage,frames,bound", [("image", 1, 0.8), ("motion", 3, 0.95)])
def test_a_few_steps_lower_the_loss_on_a_fixed_batch(stage, frames, bound):
    """Both stages' objectives learn: single frames (image stage), and windows of several frames where
    only the motion modules train (their zeroed output layers move first: a smaller first drop)."""
    clip = render_clip(make_identity(0), make_motion(0, 4), reference_pose(np.random.default_rng(0)), 64)
    data = ClipTensors.from_clips([clip])
    batch = sample_batch(data, np.random.default_rng(0), 4 if frames == 1 else 2, frames, "cpu")
    latents = torch.nn.functional.avg_pool3d(batch.target[:, :3], (1, 8, 8)).repeat(1, 2, 1, 1, 1)[:, :4]
    ref = torch.nn.functional.avg_pool2d(batch.reference, 8).repeat(1, 2, 1, 1)[:, :4]
    nets = _nets()
    objective = Objective("cpu")
    params = image_parameters(nets) if stage == "image" else motion_parameters(nets.denoising_unet)
    opt = torch.optim.AdamW(params, lr=1e-3)

    def loss():  # same timesteps and noise every call: a fixed batch
        return objective.loss(nets, latents, ref, batch.maps, np.random.default_rng(1), drop=0.0)

    before = float(loss().detach())
    for _ in range(8):
        opt.zero_grad()
        loss().backward()
        opt.step()
    after = float(loss().detach())
    assert after < bound * before, (before, after)


def test_overwrite_never_replaces_a_folder_train_did_not_write(tmp_path, capsys):
    """--overwrite replaces a model folder of ours; a user's folder of the same name is refused up front
    (before any data or training) and left as it was."""
    from engine.cli import main
    from engine.training.package import CARD_FILE, HASHES_FILE, check_replaceable
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"mine")
    args = ["train", "--data", str(tmp_path / "data"), "--work", str(tmp_path / "work"), "--overwrite"]
    assert main(args + ["--out", str(photos)]) == 2
    assert "not a model folder written by `mprt train`" in capsys.readouterr().err
    assert (photos / "holiday.jpg").read_bytes() == b"mine" and not (tmp_path / "data").exists()
    ours = tmp_path / "model"
    ours.mkdir()
    (ours / CARD_FILE).write_text("card")
    (ours / HASHES_FILE).write_text("")
    check_replaceable(ours)  # ours: may be replaced
    check_replaceable(tmp_path / "new")  # missing: fine


def test_a_stage_resumes_only_a_checkpoint_made_after_the_same_stages(tmp_path, capsys):
    """run_stage keeps a finished checkpoint recorded after the same earlier stages, and trains again
    from the start one recorded after others (a stage since added, removed or lengthened) or one
    trained past the stage's steps; a shorter one is continued."""
    from engine.training.loop import StageState, run_stage
    ckpt = tmp_path / "stage.pt"

    def run(after: tuple[str, ...], steps: int = 4) -> tuple[bool, torch.Tensor]:
        torch.manual_seed(0)
        net = torch.nn.Linear(2, 1)
        state = StageState("s", {"net": net}, torch.optim.SGD(net.parameters(), lr=0.1), after=after)

        def step(s: StageState) -> float:
            loss = (net(torch.ones(1, 2)) - 3.0).pow(2).sum()
            s.optimizer.zero_grad()
            loss.backward()
            s.optimizer.step()
            return float(loss.detach())
        trained = run_stage(state, steps, step, ckpt)
        return trained, net.weight.detach().clone()

    trained, first = run(("a:10@0.1",))
    assert trained and StageState.peek(ckpt) == (4, ("a:10@0.1",))
    trained, again = run(("a:10@0.1",))
    assert not trained and torch.equal(first, again) and "s: done earlier" in capsys.readouterr().out
    trained, other = run(("a:10@0.1", "b:5@0.1"))
    assert trained and "s: starting over" in capsys.readouterr().out
    assert torch.equal(other, first)  # the same 4 steps from the same start: not continued from `first`
    assert StageState.peek(ckpt) == (4, ("a:10@0.1", "b:5@0.1"))
    trained, two = run(("a:10@0.1", "b:5@0.1"), steps=2)
    assert trained and "s: starting over" in capsys.readouterr().out and StageState.peek(ckpt)[0] == 2
    trained, six = run(("a:10@0.1", "b:5@0.1"), steps=6)
    assert trained and "s: starting over" not in capsys.readouterr().out and StageState.peek(ckpt)[0] == 6
    assert not torch.equal(two, first) and not torch.equal(six, first)


def test_autoencoder_trains_on_crops_then_whole_images_and_resumes(tmp_path):
    """The whole-image phase starts from the crop phase's weights, has its own checkpoint, and a rerun
    with both checkpoints done trains nothing and returns the same autoencoder."""
    from engine.training.autoencoder import full_phase_checkpoint, train_autoencoder
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    masks = rng.integers(0, 256, (6, 16, 16), dtype=np.uint8)
    ckpt = tmp_path / "autoencoder.pt"

    def train(full_steps):
        vae = train_autoencoder(images, masks, 2, 2, 1e-3, ckpt, 0, "cpu", crop=8, full_steps=full_steps, full_lr=1e-3)
        return {k: v.clone() for k, v in vae.state_dict().items()}

    crops_only = train(0)
    assert ckpt.exists() and not full_phase_checkpoint(ckpt).exists()
    both = train(3)
    blob = torch.load(full_phase_checkpoint(ckpt), weights_only=False)
    assert blob["done"] and blob["step"] == 3 and blob["name"] == "autoencoder_full"
    assert any(not torch.equal(crops_only[k], both[k]) for k in both)  # the second phase trained
    again = train(3)
    assert all(torch.equal(both[k], again[k]) for k in both)


@pytest.mark.slow
def test_train_command_end_to_end_writes_a_model_the_loader_takes(tmp_path, capsys):
    """`mprt train` at a thousandth of the recipe's steps on 2 identities: every stage runs (the decoder
    stage leaves the encoder as the autoencoder stage made it), the folder loads, hashes and declares
    the recipe's CFG scale, a second run of the same command writes the same weights, and a finished
    run's second image-stage cycle can be lengthened, put back and removed (`--image-refine-steps`),
    every later stage trained again on what now precedes it."""
    from engine.cli import main
    from engine.model import MagicPortraitModel
    from engine.training.package import sha256
    from engine.training.recipe import TrainRecipe
    out = tmp_path / "model"
    args = ["train", "--data", str(tmp_path / "data"), "--work", str(tmp_path / "work"), "--out", str(out),
            "--scale-steps", "0.001", "--identities", "2", "--frames", "13", "--threads", "2"]
    assert main(args) == 0
    work = tmp_path / "work"
    autoencoder = torch.load(work / "autoencoder.pt", weights_only=False)["modules"]["vae"]
    decoder = torch.load(work / "decoder.pt", weights_only=False)
    assert decoder["done"] and decoder["step"] == max(1, round(TrainRecipe().decoder_steps * 0.001))
    tuned = decoder["modules"]["vae"]
    assert all(torch.equal(autoencoder[k], tuned[k]) for k in autoencoder if k.startswith(("encoder.", "quant_conv.")))
    assert any(not torch.equal(autoencoder[k], tuned[k]) for k in autoencoder if k.startswith("decoder."))
    refine = torch.load(work / "image_refine.pt", weights_only=False)
    assert refine["done"] and refine["step"] == max(1, round(TrainRecipe().image_refine_steps * 0.001))
    model = MagicPortraitModel.from_weights(out)
    assert model.config.image_size == 64 and model.config.guidance_scale == TrainRecipe().guidance_scale
    for line in (out / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        assert sha256(out / name) == digest, name
    card = (out / "MODEL_CARD.md").read_text()
    assert "its decoder alone" in card and f"CFG scale {TrainRecipe().guidance_scale:g}" in card

    # The same command from scratch (fresh checkpoints, the same data) writes the same weights, bit
    # for bit, on the same machine and thread count: the seed fixes the whole run. (The files' metadata
    # differ: they record the command, whose folders differ here.)
    from safetensors.torch import load_file
    again = tmp_path / "model-again"
    assert main([*args[:4], str(tmp_path / "work-again"), "--out", str(again), *args[7:]]) == 0
    files = sorted(p.relative_to(out) for p in out.rglob("*.safetensors"))
    assert files == sorted(p.relative_to(again) for p in again.rglob("*.safetensors")) and len(files) >= 8
    for name in files:
        first, second = load_file(out / name), load_file(again / name)
        assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first), name

    # Lengthening the second cycle of a finished run (--image-refine-steps 3000: 3 steps at this scale):
    # the earlier stages resume from --work, the cycle continues from its checkpoint, and the motion
    # stage, whose checkpoint was trained on the weights before, is trained again on top of it.
    def ref_unet(stage: str) -> dict:
        return torch.load(work / f"{stage}.pt", weights_only=False)["modules"]["reference_unet"]
    shipped_refine = ref_unet("image_refine")
    capsys.readouterr()
    assert main([*args[:6], str(tmp_path / "model-longer"), *args[7:], "--image-refine-steps", "3000"]) == 0
    log = capsys.readouterr().out
    assert "image: done earlier" in log and "motion: starting over" in log
    refine, motion = (torch.load(work / f"{s}.pt", weights_only=False) for s in ("image_refine", "motion"))
    assert refine["done"] and refine["step"] == 3 and motion["done"]
    longer = refine["modules"]["reference_unet"]
    assert any(not torch.equal(shipped_refine[k], longer[k]) for k in longer)
    assert all(torch.equal(longer[k], v) for k, v in motion["modules"]["reference_unet"].items())  # frozen there

    # ... and back to the recipe: the cycle's checkpoint holds more steps than the recipe's, so the cycle
    # starts over from the image stage and the motion stage after it: the first run's weights again.
    capsys.readouterr()
    back = tmp_path / "model-back"
    assert main([*args[:6], str(back), *args[7:]]) == 0
    log = capsys.readouterr().out
    assert "image: done earlier" in log and "image_refine: starting over" in log and "motion: starting over" in log
    assert all(torch.equal(shipped_refine[k], v) for k, v in ref_unet("motion").items())
    for name in files:
        first, second = load_file(out / name), load_file(back / name)
        assert all(torch.equal(first[k], second[k]) for k in first), name

    # A stage removed (--image-refine-steps 0): the motion checkpoint was recorded after the cycle, so
    # it is trained again from the image stage's weights.
    capsys.readouterr()
    assert main([*args[:6], str(tmp_path / "model-without"), *args[7:], "--image-refine-steps", "0"]) == 0
    log = capsys.readouterr().out
    assert "motion: starting over" in log and "image_refine:1@" in log
    motion = torch.load(work / "motion.pt", weights_only=False)
    assert motion["after"][-1].startswith("image:") and not any("image_refine" in a for a in motion["after"])
    assert all(torch.equal(ref_unet("image")[k], v) for k, v in motion["modules"]["reference_unet"].items())

"""`mprt train`: synthetic data -> autoencoder -> image stage -> motion stage -> weights folder."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
import time

import numpy as np
import torch

from engine.networks.denoising_unet import DenoisingUNet3D
from engine.networks.guidance_encoder import GuidanceEncoderSet
from engine.networks.reference_unet import ReferenceUNet
from engine.synthetic.dataset import DatasetSpec, build_dataset, load_split
from engine.synthetic.backgrounds import with_new_backgrounds
from engine.training.autoencoder import encode_means, finetune_decoder, latent_scale, train_autoencoder
from engine.training.data import ClipTensors, sample_batch
from engine.training.diffusion import Networks, Objective, image_parameters, init_for_training, motion_parameters
from engine.training.loop import StageState, cosine_lr, run_stage
from engine.training.package import write_model
from engine.training.recipe import TrainRecipe, model_config


STAGE_STREAMS = {"image": 1, "motion": 2, "image_refine": 3}  # one random stream per stage, fixed by the seed
STAGES = ("autoencoder", "autoencoder_full", "decoder", "image", "image_refine", "motion")  # checkpoint names, in training order


def _autocast(device: torch.device):
    """CUDA: bf16 autocast (same code path as the CPU run); CPU: plain fp32."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train(data_dir: pathlib.Path, work_dir: pathlib.Path, out_dir: pathlib.Path, recipe: TrainRecipe,
          dataset: DatasetSpec, device: str = "cpu", command: str = "") -> pathlib.Path:
    """Train at recipe.size pixels on `dataset` (rendered at dataset.size, resized when smaller)."""
    device = torch.device(device)
    work_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    build_dataset(data_dir, dataset, workers=2,
                  progress=lambda d, n: print(f"\rdata: {d}/{n} clips", end="\n" if d == n else "", flush=True))
    clips = [c.resized(recipe.size) for c in load_split(data_dir, "train")]
    clips = with_new_backgrounds(clips, recipe.background_variants, recipe.seed)
    data = ClipTensors.from_clips(clips)
    print(f"data: {data.num_clips} train clips ({recipe.background_variants} new backgrounds per clip) x "
          f"{data.num_frames} frames at {recipe.size} px ({time.time() - t0:.0f} s)")

    # Stage 0: autoencoder; then every training image's latent is computed once.
    masks = np.concatenate([np.stack([c.mask for c in clips]).reshape(-1, recipe.size, recipe.size),
                            np.stack([c.reference_mask for c in clips])])
    del clips
    vae = train_autoencoder(data.all_images(), masks, recipe.autoencoder_steps, recipe.autoencoder_batch,
                            recipe.autoencoder_lr, work_dir / "autoencoder.pt", recipe.seed, device,
                            recipe.autoencoder_crop, recipe.autoencoder_full_steps, recipe.autoencoder_full_lr)
    means = encode_means(vae, data.all_images(), device)
    scale = latent_scale(means)
    n, f = data.num_clips, data.num_frames
    frame_latents = (means[:n * f] * scale).reshape(n, f, *means.shape[1:])
    ref_latents = means[n * f:] * scale
    print(f"autoencoder: latent scale {scale:.5f}")
    if recipe.decoder_steps:  # the encoder is frozen here: the latents above stay valid
        vae = finetune_decoder(vae, data.all_images(), means, recipe.decoder_steps, recipe.decoder_batch,
                               recipe.decoder_lr, work_dir / "decoder.pt", recipe.seed, device)

    config = model_config(recipe.size, scale, recipe.guidance_scale)
    torch.manual_seed(recipe.seed)
    text = torch.randn(1, 77, config.unet.cross_attention_dim, generator=torch.Generator().manual_seed(recipe.seed))
    nets = Networks(ReferenceUNet(config.unet), DenoisingUNet3D(config.unet, config.motion),
                    GuidanceEncoderSet(config.guidance), text.to(device))
    init_for_training(nets)
    for m in nets.modules().values():
        m.to(device).train()
    objective = Objective(device)

    changed = False  # a UNet stage trained in this call: the later stages' checkpoints predate it
    # What each UNet stage starts from: the latents (the autoencoder's stages), then the UNet stages
    # before it. A checkpoint recorded after other stages is trained again (engine.training.loop).
    trained_on = [f"autoencoder:{recipe.autoencoder_steps}@{recipe.autoencoder_lr:g}"]
    if recipe.autoencoder_full_steps:
        trained_on.append(f"autoencoder_full:{recipe.autoencoder_full_steps}@{recipe.autoencoder_full_lr:g}")

    def stage(name: str, params, steps: int, batch: int, frames: int, lr: float) -> None:
        nonlocal changed
        params = list(params)
        trainable = {id(p) for p in params}
        for m in nets.modules().values():
            for p in m.parameters():
                p.requires_grad_(id(p) in trainable)
        state = StageState(name, nets.modules(), torch.optim.AdamW(params, lr=lr, weight_decay=1e-2),
                           rng=np.random.default_rng([recipe.seed, STAGE_STREAMS[name]]), after=tuple(trained_on))
        trained_on.append(f"{name}:{steps}@{lr:g}")

        def step(s: StageState) -> float:
            b = sample_batch(data, s.rng, batch, frames, device)
            lat = frame_latents[b.clip_index[:, None], b.frame_index].transpose(1, 2).contiguous()
            with _autocast(device):
                loss = objective.loss(nets, lat, ref_latents[b.clip_index], b.maps, s.rng)
            s.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            s.optimizer.step()
            return float(loss.detach())

        changed |= run_stage(state, steps, step, work_dir / f"{name}.pt", cosine_lr(lr, steps), start_over=changed)

    # Stage 1: single frames; motion modules stay the identity (zeroed output) and frozen.
    stage("image", image_parameters(nets), recipe.image_steps, recipe.image_batch, 1, recipe.image_lr)
    if recipe.image_refine_steps:  # the same stage under a second, lower learning-rate cycle
        stage("image_refine", image_parameters(nets), recipe.image_refine_steps, recipe.image_batch, 1,
              recipe.image_refine_lr)
    # Stage 2: clips of the runtime's window length; only the motion modules learn.
    stage("motion", motion_parameters(nets.denoising_unet), recipe.motion_steps, recipe.motion_batch,
          recipe.motion_frames, recipe.motion_lr)

    for m in nets.modules().values():
        m.eval().requires_grad_(False).to("cpu")
    nets.text = nets.text.cpu()
    vae = vae.to("cpu")
    records = {name: StageState.read_record(work_dir / f"{name}.pt") for name in STAGES}
    (work_dir / "losses.json").write_text(json.dumps({k: r["losses"] for k, r in records.items()}))
    meta = {"recipe": json.dumps(dataclasses.asdict(recipe)), "dataset": json.dumps(dataclasses.asdict(dataset)),
            "command": command}
    where = f"the CPU with {torch.get_num_threads()} torch threads" if device.type == "cpu" else str(device)
    card = model_card(recipe, dataset, command, {k: r["seconds"] for k, r in records.items()}, where)
    write_model(out_dir, nets, vae, config, card, meta)
    minutes = (time.time() - t0) / 60
    print(f"wrote {out_dir} ({minutes:.1f} min in this run)")
    return out_dir


def model_card(recipe: TrainRecipe, dataset: DatasetSpec, command: str, seconds: dict[str, float], where: str) -> str:
    minutes = sum(seconds.values()) / 60
    full_phase = f" then {recipe.autoencoder_full_steps} on whole images" if recipe.autoencoder_full_steps else ""
    decoder_phase = (f", then its decoder alone {recipe.decoder_steps} steps on whole images (encoder frozen)"
                     if recipe.decoder_steps else "")
    refine_phase = (f", then {recipe.image_refine_steps} more under a second cosine cycle peaking at "
                    f"{recipe.image_refine_lr:g}" if recipe.image_refine_steps else "")
    stage_times = ", ".join(f"{k.replace('_', ' ')} {v / 60:.0f} min" for k, v in seconds.items())
    return f"""# synthetic-heads — a small MagicPortrait trained on synthetic people

**What it is.** MagicPortrait's architecture (reference UNet, denoising UNet3D with motion modules,
three guidance encoders, a KL autoencoder with SD's latent layout) at the parity harness's small
size, trained by this project's own code (`mprt train`) on synthetic people it generates:
procedural FLAME-format heads with random shapes, skin textures, hair or caps, backgrounds and
lights, moved along random head-pose / jaw / expression trajectories. It exists so the engine can
be shown and measured with a model that has learnt something: a viewer sees the reference's
synthetic person follow the driving motion, and the quality benchmark has ground truth.

**What it is not.** It is not MagicPortrait's released model and has never seen a real face: on
photos of people it produces nothing useful. It is small ({recipe.size}x{recipe.size} pixels)
and was trained for {minutes:.0f} minutes on {where} ({stage_times}), far from converged:
its frames are soft and lose fine texture (stripes, spots) that the reference shows; how it scores
against ground truth and against simple baselines is measured in `benchmarks/results/quality.md`.
Longer training (the same command
with larger step counts, or `--device cuda`) is what it needs. Use it to try the engine, to test,
and to compare fast paths; use the released weights for real work.

**How it was made.** Command: `{command}` (seed {recipe.seed}). Data: {dataset.train_identities}
train identities x {dataset.clips_per_identity} clips of {dataset.frames} frames (held-out
identities and motions come from disjoint seed ranges). Stages: autoencoder
{recipe.autoencoder_steps} steps on {recipe.autoencoder_crop}-px crops{full_phase} (batch {recipe.autoencoder_batch}){decoder_phase}; image stage {recipe.image_steps}
steps (batch {recipe.image_batch} single frames, reference dropped for 10% of samples){refine_phase}; every
training clip also over {recipe.background_variants} new random backgrounds (frames and reference alike); motion stage
{recipe.motion_steps} steps (batch {recipe.motion_batch} x {recipe.motion_frames} frames, motion
modules only). Objective: v-prediction, zero-terminal-SNR linear betas (upstream's schedule). It declares
CFG scale {recipe.guidance_scale:g} (`magicportrait.json`; the presets use it unless given `--guidance-scale`):
upstream's 3.5 overshoots a model this small (the recipe's comment has the measurements).
Weights are stored in fp16 safetensors in upstream's folder layout; `SHA256SUMS` lists them.
Quality on held-out data: `benchmarks/results/quality.md`.
"""

"""`mprt distill`: consistency-distil the denoising UNet3D into a few-step student (CFG folded in)."""
from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser(
        "distill", help="distil the denoising UNet3D into a 1-4 step student (consistency distillation, CFG folded in)",
        description="Consistency distillation (LCM / MCM style) of the denoising UNet3D including its motion modules. "
        "Teacher: the quality sampler (DDIM, 20 trailing steps, CFG 'with vs without reference' at --guidance-scale, "
        "folded into the target); student: the same network run once per step without CFG, sampled by the "
        "consistency scheduler (preset realtime uses it when WEIGHTS/student/student.safetensors exists). Reference "
        "UNet, guidance encoders and VAE stay frozen; their outputs are computed once per clip. Training windows are "
        "cut from the clips (sliding, wrapping) with one timestep per frame: all frames at one level (clip mode) or "
        "staggered stages (stream-batch mode). Writes OUT/student.safetensors and a resumable OUT/checkpoint.pt.")
    p.add_argument("--weights", required=True, metavar="DIR", help="the teacher: a model folder in upstream's layout")
    add_data_options(p, "frames/ (optional: without it the teacher's own samples are the data)")
    p.add_argument("--out", metavar="DIR", help="output folder (default WEIGHTS/student, where the loader finds it)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt (same settings; --steps may grow)")
    p.add_argument("--overwrite", action="store_true", help="start over even if OUT holds a checkpoint or student")
    t = p.add_argument_group("training")
    t.add_argument("--steps", type=int, default=2000, help="optimizer steps (default 2000)")
    t.add_argument("--batch", type=int, default=1, help="windows per optimizer step, gradients accumulated (default 1)")
    t.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate (default 1e-4)")
    t.add_argument("--lora-rank", type=int, default=0,
                   help="LoRA rank on attention / feed-forward / resnet layers incl. motion modules (needs peft); "
                   "0 = full fine-tune (default)")
    t.add_argument("--lora-alpha", type=float, default=None, help="LoRA alpha (default: the rank)")
    t.add_argument("--windows", default="8,12", help="window lengths in frames, drawn per window (default 8,12)")
    t.add_argument("--timesteps", choices=("clip", "stream", "mixed"), default="mixed",
                   help="per-frame noise levels: clip (one level per window), stream (staggered stages as in "
                   "stream-batch), mixed (half each; default)")
    t.add_argument("--stream-steps", default="2,4", help="stage counts of stream windows (default 2,4)")
    t.add_argument("--teacher-steps", type=int, default=20, help="teacher DDIM steps (default 20, the quality preset)")
    t.add_argument("--guidance-scale", type=float, default=None,
                   help="teacher CFG scale folded in (default: the model's own, as the quality preset; 3.5 for "
                   "MagicPortrait's weights)")
    t.add_argument("--ema-decay", type=float, default=0.95, help="EMA of the consistency target (default 0.95)")
    t.add_argument("--data-weight", type=float, default=16.0,
                   help="weight of a squared-error term pulling the student's x0 towards the clip's own latents "
                   "(ground truth, or the teacher's samples) beside the consistency term (default 16; 0 = pure "
                   "consistency distillation)")
    t.add_argument("--grad-checkpointing", action="store_true", help="recompute activations in backward (less memory)")
    t.add_argument("--size", type=int, default=None, help="training image size (default: the model's, 512 / 128 tiny)")
    t.add_argument("--seed", type=int, default=0, help="seed of windows, levels and noise (default 0)")
    t.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (default 100)")
    t.add_argument("--device", default=None, help="torch device (default cuda if available, else cpu; AMP on CUDA)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--save-fp16", action="store_true",
                   help="store the student's tensors in fp16 (half the file, as the teacher's weights are stored; "
                   "the loader casts to the precision it runs in). With --resume and --steps already done it "
                   "only rewrites the student file")
    p.set_defaults(func=run)


def add_data_options(p, frames_note: str, builtin: bool = True) -> None:
    """--data / --builtin-clips (mprt distill, distill-decoder; finetune-decoder needs ground truth: no builtin)."""
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--data", metavar="DIR", help="a synthetic-people dataset (mprt train's; its train split) or clip "
                      f"folders DIR/<clip>/{{reference.png, depth/, normal/, render/, {frames_note}}}")
    if builtin:
        data.add_argument("--builtin-clips", type=int, metavar="N",
                          help="N clips of the built-in synthetic head motion (no ground truth; to try the machinery)")
    p.add_argument("--background-variants", type=int, default=3, metavar="N",
                   help="a synthetic dataset's clips also over N new random backgrounds each, as mprt train "
                        "sees them (default 3; 0: as rendered)")


def load_clips(args, size: int) -> list:
    from engine.distill.data import builtin_clips, read_clip_folder
    from engine.errors import InputError
    if args.background_variants < 0:
        raise InputError(f"--background-variants: expected N >= 0, got {args.background_variants}")
    if not args.data:  # --builtin-clips
        return builtin_clips(args.builtin_clips, size=size)
    return read_clip_folder(args.data, background_variants=args.background_variants)


def _ints(text: str, what: str) -> tuple[int, ...]:
    from engine.errors import InputError
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise InputError(f"{what} {text!r}: expected comma-separated integers") from None


def run(args) -> int:
    import json
    import pathlib
    import time

    import torch

    from engine.distill.cache import cache_clips
    from engine.distill.trainer import CHECKPOINT, DistillConfig, Distiller
    from engine.errors import InputError
    from engine.model import MagicPortraitModel
    from engine.weights.layout import WeightsLayout
    from engine.weights.student import STUDENT_DIR, STUDENT_FILE, write_student

    from engine.weights.guidance_scale import model_guidance_scale
    guidance_scale = args.guidance_scale if args.guidance_scale is not None else model_guidance_scale(args.weights)
    config = DistillConfig(steps=args.steps, batch=args.batch, lr=args.lr, windows=_ints(args.windows, "--windows"),
                           timestep_mode=args.timesteps, stream_steps=_ints(args.stream_steps, "--stream-steps"),
                           teacher_steps=args.teacher_steps, guidance_scale=guidance_scale,
                           ema_decay=args.ema_decay, data_weight=args.data_weight, lora_rank=args.lora_rank,
                           lora_alpha=args.lora_alpha,
                           grad_checkpointing=args.grad_checkpointing, seed=args.seed).validate()
    out = pathlib.Path(args.out) if args.out else pathlib.Path(args.weights) / STUDENT_DIR
    checkpoint = out / CHECKPOINT
    if (checkpoint.exists() or (out / STUDENT_FILE).exists()) and not (args.resume or args.overwrite):
        raise InputError(f"--out {out}: already holds a distillation run; pass --resume to continue it or --overwrite "
                         "to start over")
    if args.resume and not checkpoint.exists():
        raise InputError(f"--resume: no {checkpoint} to continue from")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    layout = WeightsLayout.discover(args.weights)
    model = MagicPortraitModel.from_weights(args.weights, device=device)
    size = args.size or model.config.image_size
    clips = load_clips(args, size)
    with_truth = sum(getattr(c, "frames", None) is not None for c in clips)
    print(f"distill: {len(clips)} clips ({with_truth} with ground-truth frames; the others use the teacher's "
          f"{args.teacher_steps}-step CFG samples), {size}px, {config.kind} fine-tune on {device}", file=sys.stderr)
    t0, c0 = time.perf_counter(), time.process_time()
    cached = cache_clips(model, clips, size, teacher_steps=config.teacher_steps, guidance_scale=config.guidance_scale,
                         seed=config.seed, progress=lambda i, n, name: print(f"  cached {i}/{n}: {name}", file=sys.stderr))
    cache_s, cache_cpu = time.perf_counter() - t0, time.process_time() - c0
    distiller = Distiller(model, cached, config, device)
    out.mkdir(parents=True, exist_ok=True)
    if args.resume:
        distiller.load_checkpoint(checkpoint)
        print(f"distill: resumed at step {distiller.step} of {config.steps}", file=sys.stderr)
    t0, c0 = time.perf_counter(), time.process_time()
    start = distiller.step
    losses = distiller.train(config.steps, out, args.checkpoint_every, progress=not args.no_progress)
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    teacher = f"{layout.denoising_unet.name} ({layout.denoising_unet.stat().st_size} bytes)"
    extra = {"lora_rank": str(config.lora_rank), "lora_alpha": str(config.lora_alpha or config.lora_rank)} \
        if config.lora_rank else {}
    path = write_student(out / STUDENT_FILE, distiller.student_tensors(), config.kind, distiller.step,
                         config.to_json(), teacher, extra, fp16=args.save_fp16)
    from engine.training.package import rehash_model_folder
    rehash_model_folder(path)  # a model folder's SHA256SUMS lists its student too
    log = {"steps_done": distiller.step, "steps_this_run": distiller.step - start, "cache_s": round(cache_s, 2),
           "train_s": round(train_s, 2), "s_per_step": round(train_s / max(distiller.step - start, 1), 3),
           # CPU seconds (all threads) are what a loaded machine does not inflate: wall ~ cpu / threads when quiet
           "cache_cpu_s": round(cache_cpu, 2), "cpu_s_per_step": round(train_cpu / max(distiller.step - start, 1), 3),
           "torch_threads": torch.get_num_threads(),
           "losses": [round(x, 6) for x in losses], "config": config.to_json(), "device": device}
    from engine.io.atomic import atomic_file
    if log["steps_this_run"]:  # a run that trained nothing (only rewrote the file) keeps the last run's log
        with atomic_file(out / "distill.json", "w") as f:
            json.dump(log, f, indent=1)
    print(f"wrote {path} ({config.kind}, {distiller.step} steps; {log['s_per_step']} s/step)")
    return 0

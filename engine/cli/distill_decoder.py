"""`mprt distill-decoder`: train a tiny TAESD-layout decoder from a model's own VAE decoder."""
from __future__ import annotations

import sys


from engine.cli.distill import add_data_options, load_clips


def register(sub) -> None:
    p = sub.add_parser(
        "distill-decoder", help="train a tiny (TAESD-layout) decoder that reproduces a model's VAE decoder",
        description="Train a tiny decoder in TAESD's layout (convolutions and ReLUs, three upsamplings) on latents of "
        "the model's own images (VAE-encoded ground-truth frames and portraits, slightly jittered), with the VAE "
        "decoder's output as target. Writes OUT/taesd_decoder.safetensors (use it with --decoder taesd:OUT; with the "
        "default OUT, WEIGHTS/tiny_decoder, the realtime preset and demo pick it up by themselves) and OUT/"
        "decoder.json with PSNR against the VAE and the images on held-out images and both decoders' time per frame.")
    p.add_argument("--weights", required=True, metavar="DIR", help="model folder (its sd-vae-ft-mse/ VAE is the teacher)")
    add_data_options(p, "frames/ (the frames and portraits are the images)")
    p.add_argument("--out", metavar="DIR", help="output folder (default WEIGHTS/tiny_decoder)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT/taesd_decoder.safetensors")
    p.add_argument("--steps", type=int, default=8000,
                   help="optimizer steps (default 8000: 23 min for the built-in model on 2 CPU threads; 2000 left it "
                   "1 dB behind the VAE in the realtime preset)")
    p.add_argument("--batch", type=int, default=16, help="latents per step (default 16)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate, cosine decay (default 1e-3)")
    p.add_argument("--width", type=int, default=16,
                   help="channels (default 16; TAESD's decoder for SD's VAE is 64 wide)")
    p.add_argument("--size", type=int, default=None, help="image size (default: the model's)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--device", default=None, help="torch device (default cuda if available, else cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    import pathlib

    import torch

    from engine.distill.data import clip_images
    from engine.distill.decoder import DecoderDistillConfig, DecoderDistiller
    from engine.errors import InputError
    from engine.io.atomic import atomic_file
    from engine.model import MagicPortraitModel
    from engine.weights.tiny_decoder import TAESD_FILES, TINY_DECODER_DIR, save_tiny_decoder

    if args.steps < 1 or args.batch < 1 or args.width < 1:
        raise InputError("--steps, --batch and --width must be >= 1")
    out = pathlib.Path(args.out) if args.out else pathlib.Path(args.weights) / TINY_DECODER_DIR
    target = out / TAESD_FILES[0]
    if target.exists() and not args.overwrite:
        raise InputError(f"{target}: already exists (pass --overwrite to replace it)")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = MagicPortraitModel.from_weights(args.weights, device=device)
    size = args.size or model.config.image_size
    clips = load_clips(args, size)
    images = clip_images(clips, size)
    config = DecoderDistillConfig(steps=args.steps, batch=args.batch, lr=args.lr, width=args.width, seed=args.seed)
    print(f"distill-decoder: {len(images)} images of {len(clips)} clips at {size}px, width {args.width}, on {device}",
          file=sys.stderr)
    import time
    distiller = DecoderDistiller(model, images, config)
    t0, c0 = time.perf_counter(), time.process_time()
    losses = distiller.train(progress=not args.no_progress)
    timing = {"train_s": round(time.perf_counter() - t0, 2), "train_cpu_s": round(time.process_time() - c0, 2),
              "torch_threads": torch.get_num_threads()}
    report = distiller.compare()
    out.mkdir(parents=True, exist_ok=True)
    meta = {"format": "taesd-decoder", "trained_from": str(pathlib.Path(args.weights) / "sd-vae-ft-mse"),
            "steps": str(config.steps), "width": str(config.width), "image_size": str(size),
            "comparison": json.dumps(report)}
    save_tiny_decoder(distiller.net, target, meta, overwrite=args.overwrite)
    from engine.training.package import rehash_model_folder
    rehash_model_folder(target)  # a model folder's SHA256SUMS lists its tiny decoder too
    with atomic_file(out / "decoder.json", "w") as f:
        json.dump({"config": config.to_json(), "comparison": report, "final_loss": losses[-1], **timing}, f, indent=1)
    print(f"wrote {target}: PSNR vs VAE {report['psnr_tiny_vs_vae_db']} dB; vs images {report['psnr_tiny_vs_images_db']} "
          f"dB (VAE {report['psnr_vae_vs_images_db']} dB); {report['tiny_ms_per_frame']} ms/frame vs VAE "
          f"{report['vae_ms_per_frame']} ms/frame on {device}")
    return 0

"""One-call GPU suite for a lent GPU machine; prints one table and writes
benchmarks/results/streaming.gpu_suite.{json,md}:

  1. torch-CUDA backend at FULL size (ModelConfig(): SD1.5 UNet3D + motion modules, reference UNet,
     guidance encoders, SD VAE) in fp16 with random weights built directly (no files): per-stage timings
     (reference once, guidance encode per frame, UNet per window shape, VAE decode per frame);
  2. the streaming runtime end to end on that model: realtime / balanced presets on a 512 px clip of the
     synthetic head's motion, and the quality preset (= upstream's offline loop) on the same clip, as a ratio;
  3. the guidance CUDA kernel vs its CPU twin (engine.guidance.kernel_cuda / kernel_host), if importable:
     agreement and speed on a 512 px demo scene.

On a machine without CUDA the GPU parts are skipped (with the reason in the table) and the same runtime
part runs on the tiny model on the CPU, so the script itself is exercised everywhere:

    .venv/bin/python benchmarks/gpu_suite.py [--frames 24] [--skip-quality]
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks.bench_streaming import demo_inputs, psnr, run_preset, temporal_change, warm_up  # noqa: E402
from benchmarks.common import RESULTS_DIR, machine_info, write_results  # noqa: E402


def full_size_random_model(device: str, dtype):
    """Every full-size network from ModelConfig() with random init; a random (1,77,768) text embedding."""
    import torch
    from diffusers import AutoencoderKL

    from engine.model import MagicPortraitModel
    from engine.networks.config import ModelConfig
    from engine.networks.denoising_unet import DenoisingUNet3D
    from engine.networks.guidance_encoder import GuidanceEncoderSet
    from engine.networks.reference_unet import ReferenceUNet
    from engine.networks.vae import VaeDecoder, VaeEncoder
    from engine.weights.load import LoadReport
    torch.manual_seed(0)
    cfg = ModelConfig()
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        block_out_channels=(128, 256, 512, 512), norm_num_groups=32, sample_size=512)
    model = MagicPortraitModel(
        config=cfg, reference_unet=ReferenceUNet(cfg.unet), denoising_unet=DenoisingUNet3D(cfg.unet, cfg.motion),
        guidance_encoders=GuidanceEncoderSet(cfg.guidance), vae_encoder=VaeEncoder(vae, cfg.latent_scale),
        vae_decoder=VaeDecoder(vae, cfg.latent_scale),
        text_embedding=torch.randn(1, 77, cfg.unet.cross_attention_dim), report=LoadReport())
    return model.to(device, dtype)


def timed(fn, sync, repeats: int = 5) -> dict:
    """p50 / min wall time of fn() after one warm-up call; `sync` waits for the device."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return {"p50_ms": round(float(np.median(times)) * 1000, 2), "min_ms": round(min(times) * 1000, 2)}


def stage_rows(backend, size: int, label: str) -> list[dict]:
    """Per-stage timings of the backend."""
    rng = np.random.default_rng(0)
    portrait = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    maps1 = {t: rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8) for t in ("depth", "normal", "render")}
    maps8 = {t: np.repeat(m, 8, axis=0) for t, m in maps1.items()}
    identity = backend.encode_reference(portrait, (size, size))
    h = size // 8
    sync, part = backend.synchronize, f"stages ({label})"
    rows = [{"part": part, "what": "reference (once per identity)",
             **timed(lambda: backend.encode_reference(portrait, (size, size)), sync)},
            {"part": part, "what": "guidance encode, 8 frames", **timed(lambda: backend.encode_guidance(maps8), sync)},
            {"part": part, "what": "VAE decode, 1 frame",
             **timed(lambda: backend.decode(rng.standard_normal((1, 4, h, h)).astype(np.float32)), sync)}]
    features = backend.encode_guidance(maps8) * 4  # 32 frames of features
    for batch, frames in ((1, 4), (1, 8), (2, 8), (2, 12), (1, 16)):
        x = rng.standard_normal((batch, 4, frames, h, h)).astype(np.float32)
        t = np.full((batch, frames), 500)
        keep = np.array([False, True][-batch:])
        r = timed(lambda: backend.denoise(x, t, features[:frames], identity, keep), sync)
        r["per_frame_eval_ms"] = round(r["p50_ms"] / (batch * frames), 2)
        rows.append({"part": part, "what": f"UNet3D batch {batch} x {frames} frames", **r})
    return rows


def runtime_rows(backend, size: int, frames: int, skip_quality: bool, label: str) -> list[dict]:
    """File input (as fast as possible) per preset, then realtime fed live at 30 fps (latency as a user sees it)."""
    from engine.runtime.sources import PacedMapsSource
    portrait, maps = demo_inputs(frames, size)
    presets = ("realtime", "balanced") if skip_quality else ("quality", "realtime", "balanced")
    results = {}
    for preset in presets:
        warm_up(backend, preset, portrait, maps, size, 42)
        results[preset] = run_preset(backend, preset, portrait, maps, size, 42)
    for stage_frames in (2, 1):  # 8 frames in flight (the preset) or 4 (lower latency)
        key = f"realtime, live 30 fps, {stage_frames} frame(s)/stage"
        results[key] = run_preset(backend, "realtime", portrait, maps, size, 42,
                                  dict(frames_per_stage=stage_frames), source=PacedMapsSource(maps, 30.0))
    base = results.get("quality")
    rows = []
    for preset, (out, report, seconds) in results.items():
        row = {"part": f"runtime ({label})", "what": preset, "fps": round(len(out) / seconds, 2),
               "steady_fps": report["steady_fps"], "latency_p50_ms": report["latency"].get("p50_ms"),
               "latency_p95_ms": report["latency"].get("p95_ms"), "dropped": report["dropped_input_frames"],
               "unet_p50_ms": report["stages"]["unet"]["p50_ms"], "temporal_change": round(temporal_change(out), 2)}
        if base is not None:
            row["x_quality"] = round(base[2] / seconds, 2)
            same = preset != "quality" and out.shape == base[0].shape  # live runs may drop frames
            row["psnr_vs_quality_db"] = round(psnr(out, base[0]), 2) if same else None
        rows.append(row)
    return rows


def kernel_rows(size: int) -> list[dict]:
    try:
        from engine.guidance.kernel_cuda import CudaGuidanceKernel, render_guidance_cuda
        from tests.helpers.kernel_demo_scene import make_demo_scene
        from engine.guidance.kernel_host import HostKernel, render_guidance_host
    except Exception as err:  # not importable here
        return [{"part": "guidance kernel", "what": f"skipped: {type(err).__name__}: {err}"}]
    scene = make_demo_scene(batch=8, height=size, width=size)
    try:
        host_kernel = HostKernel.load()
        t0 = time.perf_counter()
        host = render_guidance_host(scene, kernel=host_kernel)
        host_ms = (time.perf_counter() - t0) * 1000
    except Exception as err:
        return [{"part": "guidance kernel", "what": f"skipped: CPU twin unavailable ({err})"}]
    try:
        kernel = CudaGuidanceKernel.load()
    except Exception as err:
        return [{"part": "guidance kernel", "what": f"CPU twin {host_ms:.1f} ms / 8 frames; CUDA skipped: {err}"}]
    render_guidance_cuda(scene, kernel=kernel)  # warm-up
    t0 = time.perf_counter()
    cuda = render_guidance_cuda(scene, kernel=kernel)
    cuda_ms = (time.perf_counter() - t0) * 1000
    diffs = {k: float(np.abs(getattr(cuda, k).astype(np.float64) - getattr(host, k).astype(np.float64)).max())
             for k in ("depth", "normal", "render")}
    differ = float(np.mean([np.mean(getattr(cuda, k) != getattr(host, k)) for k in ("depth", "normal", "render")]))
    kernel.close()
    what = f"8 frames {size}px: CUDA {cuda_ms:.2f} ms vs CPU twin {host_ms:.1f} ms"
    return [{"part": "guidance kernel", "what": what,
             "p50_ms": round(cuda_ms, 2), "max_abs_diff": max(diffs.values()), "fraction_differing": round(differ, 6)}]


def tensorrt_rows(args) -> list[dict]:
    if not args.engines:
        return [{"part": "tensorrt", "what": "skipped: no --engines DIR (`mprt export` + `mprt build` make them)"}]
    from engine.backends.trt_backend import TrtBackend
    rng = np.random.default_rng(0)
    text = rng.standard_normal((1, 77, 768)).astype(np.float32)
    rows = []
    for graphs in (True, False):
        backend = TrtBackend.from_engine_dir(args.engines, text, args.engine_precision, cuda_graphs=graphs)
        label = f"TensorRT {args.engine_precision}, CUDA graphs {'on' if graphs else 'off'}"
        size = backend.image_hw[0]
        rows += stage_rows(backend, size, label)
        if graphs:
            rows += runtime_rows(backend, size, args.frames, True, label)
        backend.close()
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="GPU suite: full-size torch-CUDA fp16, streaming runtime, guidance kernel")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--skip-quality", action="store_true", help="skip the (slow) quality preset at full size")
    p.add_argument("--engines", metavar="DIR", help="also run TensorRT engines of `mprt build` (full size, random "
                   "weights are fine: speed only); text embedding random")
    p.add_argument("--engine-precision", default="fp16", choices=("fp16", "fp32"))
    p.add_argument("--out-dir", default=str(RESULTS_DIR))
    args = p.parse_args(argv)
    import torch

    from engine.backends.torch_backend import TorchBackend
    rows: list[dict] = []
    meta = {**machine_info(), "torch": torch.__version__}
    if torch.cuda.is_available():
        meta["gpu"] = torch.cuda.get_device_name(0)
        model = full_size_random_model("cuda", torch.float16)
        backend = TorchBackend(model)
        rows += stage_rows(backend, 512, "full size, torch CUDA fp16")
        rows += runtime_rows(backend, 512, args.frames, args.skip_quality, "full size, torch CUDA fp16")
        del backend, model
        torch.cuda.empty_cache()
        rows += tensorrt_rows(args)
    else:
        meta["gpu"] = None
        rows.append({"part": "torch CUDA full size", "what": "skipped: no CUDA device (torch.cuda.is_available() "
                     "is False)"})
        from engine.model import MagicPortraitModel
        from engine.weights.tiny import ensure_tiny_weights
        torch.set_num_threads(1)
        tiny = TorchBackend(MagicPortraitModel.from_weights(ensure_tiny_weights()))
        rows += stage_rows(tiny, 128, "tiny, CPU")
        rows += runtime_rows(tiny, 128, min(args.frames, 12), True, "tiny, CPU")
    rows += kernel_rows(512)
    columns = ["part", "what", "p50_ms", "min_ms", "per_frame_eval_ms", "fps", "steady_fps", "latency_p50_ms",
               "latency_p95_ms", "dropped", "unet_p50_ms", "x_quality", "psnr_vs_quality_db", "temporal_change",
               "max_abs_diff", "fraction_differing"]
    json_path, md_path = write_results("streaming.gpu_suite", "GPU suite (random full-size weights)", rows, columns,
                                       meta, ["Random weights: speed is real, images are not."],
                                       pathlib.Path(args.out_dir))
    print(md_path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Options and helpers shared by the commands that run the model."""
from __future__ import annotations


def add_model_options(p) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--weights", metavar="DIR",
                   help="upstream weights folder (stable-diffusion-v1-5/, sd-vae-ft-mse/, *.pth). "
                   "Without it a tiny random-weight model is used, and the output is noise-like")
    g.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    g.add_argument("--fp16", action="store_true", help="run the networks in float16 (GPU)")
    add_variant_options(g, exporting=False)


def add_variant_options(g, exporting: bool) -> None:
    """--student / --decoder: what runs (a command that runs the model) or what goes into the graphs
    (mprt export; the graph backends then run what their export holds)."""
    if exporting:
        run, where = "the denoising_unet graph from ", ""
        defaults = "default: the teacher; model.json beside the graphs records which"
    else:
        run, where = "", " Graph backends (onnxruntime, tensorrt) run what their export holds: 'auto' takes it"
        defaults = ("'auto' is the realtime preset's default, 'none' the other presets'. A student runs with "
                    "the consistency scheduler (lcm) and no CFG")
    g.add_argument("--student", metavar="FILE|auto|none", default=None,
                   help=f"{run}a distilled few-step student (mprt distill): a file, 'auto' "
                   f"(WEIGHTS/student/student.safetensors if present) or 'none' (the teacher); {defaults}.{where}")
    g.add_argument("--decoder", metavar="vae|auto|taesd:DIR", default=None,
                   help="latent decoder: 'vae', 'taesd:DIR' (TAESD-format files: taesd_decoder.safetensors or a "
                   "diffusers AutoencoderTiny folder, never downloaded) or 'auto' (WEIGHTS/tiny_decoder if present"
                   + ("" if exporting else "; the realtime preset's default, the VAE for the others") + ")")


def add_driving_options(p) -> None:
    """Face tracking + DECA/SMIRK options of the commands that take a driving video or webcam."""
    g = p.add_argument_group("driving (face tracking and encoders; see `mprt track --help`)")
    g.add_argument("--landmarker", metavar="PATH",
                   help="MediaPipe face_landmarker.task (default: the one in --driving-weights)")
    w = g.add_mutually_exclusive_group()
    w.add_argument("--driving-weights", metavar="DIR", help="folder with deca_model.tar and SMIRK_em1.pt")
    w.add_argument("--random-encoders", action="store_true",
                   help="RANDOM DECA/SMIRK weights (tests/demos only: the motion is then meaningless)")
    g.add_argument("--driving-onnx", metavar="DIR",
                   help="run the per-frame DECA/SMIRK encoders on ONNX Runtime from this `mprt export "
                   "--driving-weights` directory (the source portrait still uses the torch encoders)")


def frame_encoder(args):
    """The per-frame driving encoder --driving-onnx names, or None (the torch encoders)."""
    if not getattr(args, "driving_onnx", None):
        return None
    from engine.backends.driving_graphs import OrtDrivingEncoder
    return OrtDrivingEncoder(args.driving_onnx, device=args.device or "cpu")

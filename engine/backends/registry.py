"""Open an inference backend by name, from Python, without argparse:

    backend = open_backend("onnxruntime", onnx="export/", weights="pretrained_weights")

A backend joins with one line in OPENERS: its name -> "module:callable", the callable taking a
BackendRequest and returning a Backend. Modules are imported only when their backend is opened, so
the TensorRT path stays torch-free.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import pathlib
import sys

from engine.backends.base import Backend
from engine.errors import InputError

OPENERS = {
    "torch": "engine.backends.torch_backend:TorchBackend.open",
    "onnxruntime": "engine.backends.ort_backend:OrtBackend.open",
    "tensorrt": "engine.backends.trt_backend:TrtBackend.open",
    "triton": "engine.backends.triton_backend:TritonBackend.open",
}
PRECISIONS = ("fp32", "fp16")


@dataclasses.dataclass(frozen=True)
class BackendRequest:
    """What open_backend was asked for; each opener reads the fields it needs."""
    weights: str | pathlib.Path | None = None   # upstream weights folder (torch: the model; graphs: text embedding)
    onnx: str | pathlib.Path | None = None      # onnxruntime: an `mprt export` directory
    engines: str | pathlib.Path | None = None   # tensorrt: a `mprt build` directory
    device: str | None = None                   # "cpu", "cuda", "cuda:1"; None = the backend's default
    precision: str | None = None                # "fp32" / "fp16"; None = the backend's default
    cuda_graphs: bool = True                    # tensorrt: capture CUDA graphs
    threads: int | None = None                  # onnxruntime: intra-op threads
    url: str | None = None                      # triton: "host:port" (HTTP) or "grpc://host:port"
    student: str | None = None                  # None / "none": the teacher; "auto": WEIGHTS/student if present;
                                                # or a student file (torch; graph backends: what the export holds)
    decoder: str | None = None                  # None / "vae", "auto" (WEIGHTS/tiny_decoder if present), "taesd:DIR"


def backend_names() -> tuple[str, ...]:
    return tuple(OPENERS)


def open_backend(name: str, *, weights=None, onnx=None, engines=None, device: str | None = None,
                 precision: str | None = None, cuda_graphs: bool = True, threads: int | None = None,
                 url: str | None = None, student: str | None = None, decoder: str | None = None) -> Backend:
    """One loaded backend: "torch" (weights; without them the built-in trained model, else the tiny
    random-weight one, announced on stderr), "onnxruntime" (onnx=export dir), "tensorrt" (engines=build dir) or "triton" (url of a server
    serving an `mprt export --triton` repository). The graph backends read
    the text embedding from `weights` (or the tiny model's). `backend.info.image_size` is its native size.
    student / decoder: a distilled student and a tiny decoder (engine.weights.student / tiny_decoder) on
    torch; the graph backends run what their export holds (model.json beside it) and refuse to run
    anything else; `backend.info.denoiser` / `.decoder` say which run."""
    if name == "triton" and (student not in (None, "none", "auto") or decoder not in (None, "vae", "auto")):
        raise InputError(f"--student {student} / --decoder {decoder}: backend triton runs the models its server "
                         "serves; export a student / tiny decoder into the repository with mprt export")
    if name not in OPENERS:
        raise InputError(f"backend {name!r}: expected one of {', '.join(OPENERS)}")
    if precision is not None and precision not in PRECISIONS:
        raise InputError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    module, attribute = OPENERS[name].split(":")
    opener = functools.reduce(getattr, attribute.split("."), importlib.import_module(module))
    return opener(BackendRequest(weights, onnx, engines, device, precision, cuda_graphs, threads, url,
                                 student=student, decoder=decoder))


def guidance_scale_for(request: BackendRequest) -> float:
    """The CFG scale of the model whose text embedding a Triton client uses (text_embedding_for's folder)."""
    from engine.networks.config import UPSTREAM_GUIDANCE_SCALE
    from engine.weights.builtin import builtin_weights_dir
    from engine.weights.guidance_scale import model_guidance_scale
    root = request.weights or builtin_weights_dir()
    return model_guidance_scale(root) if root is not None else UPSTREAM_GUIDANCE_SCALE


def text_embedding_for(request: BackendRequest, backend: str):
    """(1,77,D) float32 text embedding for a graph backend: from request.weights, else the tiny model's."""
    from engine.preprocess import read_text_embedding
    if request.weights:
        return read_text_embedding(request.weights)
    from engine.weights.builtin import builtin_weights_dir
    root = builtin_weights_dir()
    if root is not None:
        print("note: no --weights given: using the built-in model's text embedding", file=sys.stderr)
        return read_text_embedding(root)
    try:
        from engine.weights.tiny import ensure_tiny_weights
    except ImportError:
        raise InputError(f"backend {backend} without torch: pass the weights folder (--weights DIR) "
                         "for its text embedding") from None
    print("note: no --weights given: using the tiny model's text embedding", file=sys.stderr)
    return read_text_embedding(ensure_tiny_weights())

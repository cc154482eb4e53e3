"""Backend on ONNX Runtime: the graphs of `mprt export` (I/O declared in engine/graphs/).

CPU by default; the CUDA execution provider is used when installed and asked for. Inputs are fed as
numpy arrays; the identity (reference K/V) and per-frame guidance features are kept as the arrays
the graphs returned. Dynamic axes are the graphs' own (frames <= their max, batch <= 2).
"""
from __future__ import annotations

import pathlib
from typing import Mapping, Sequence

import numpy as np

from engine.backends.graph_backend import GraphBackend
from engine.errors import CheckpointError, InputError
from engine.graph_specs import GraphSpec
from engine.graphs import denoising_unet, guidance_encoder, vae_decoder, vae_encoder
from engine.preprocess import check_maps, image_to_u8, maps_to_float, reference_image


def providers_for(device: str) -> list[str]:
    import onnxruntime as ort
    available = ort.get_available_providers()
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise InputError(f"--device {device}: onnxruntime has no CUDA execution provider here "
                             f"(available: {available}); install onnxruntime-gpu or use --device cpu")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def open_session(path, options, providers: list[str]):
    """An onnxruntime session of one graph file; a missing or corrupt file is one CheckpointError."""
    import onnxruntime as ort
    if not pathlib.Path(path).is_file():
        raise CheckpointError(f"{path}: ONNX graph file not found")
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as err:  # onnxruntime raises its own Fail / InvalidProtobuf / RuntimeException
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: onnxruntime cannot load this graph ({first}); re-run `mprt export`") from None


class OrtBackend(GraphBackend):
    def __init__(self, graphs: Mapping[str, tuple[GraphSpec, str | pathlib.Path]], text_embedding: np.ndarray,
                 device: str = "cpu", threads: int | None = None):
        """graphs: name -> (spec, .onnx path) for guidance_encoder, reference_kv or reference_unet,
        denoising_unet, vae_encoder, vae_decoder (one precision); text_embedding (1,77,D)."""
        import onnxruntime as ort
        self._use_specs({n: spec for n, (spec, _) in graphs.items()}, "ONNX export")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        providers = providers_for(device)
        self.sessions = {}
        for name, (spec, path) in graphs.items():
            if name not in self.specs:
                continue  # not a graph this backend runs (e.g. a driving encoder)
            self.sessions[name] = open_session(path, opts, providers)
        self.text = np.asarray(text_embedding).astype(self.dtype)
        self.info = self._backend_info("onnxruntime", providers[0],
                                       concurrent_calls=providers[0] == "CPUExecutionProvider")

    @classmethod
    def from_export_dir(cls, directory, text_embedding: np.ndarray, precision: str = "fp32", device: str = "cpu",
                        threads: int | None = None) -> "OrtBackend":
        """The graphs of one precision in an `mprt export` directory (its export.json)."""
        from engine.graph_specs import read_export_manifest
        exported = read_export_manifest(str(directory))
        specs = [s for s in exported.specs if s.precision == precision]
        if not specs:
            have = sorted({s.precision for s in exported.specs})
            raise InputError(f"{directory}: no {precision} graphs in this export (it has {have})")
        return cls({s.name: (s, exported.verified_path(s)) for s in specs}, text_embedding, device, threads)

    @classmethod
    def open(cls, request) -> "OrtBackend":
        """registry opener: request.onnx (an `mprt export` directory), precision (default fp32), device."""
        from engine.backends.registry import text_embedding_for
        if not request.onnx:
            raise InputError("backend onnxruntime needs an `mprt export` directory (--onnx DIR)")
        return cls.from_export_dir(request.onnx, text_embedding_for(request, "onnxruntime"),
                                   request.precision or "fp32", request.device or "cpu", request.threads)

    def _run(self, name: str, *inputs: np.ndarray) -> list[np.ndarray]:
        """Inputs in the graph's spec order -> its outputs in spec order."""
        spec = self.specs[name]
        feeds = dict(zip(spec.input_names, inputs))
        spec.check_inputs(feeds)
        return self.sessions[name].run(None, feeds)

    def encode_reference(self, image_rgb_u8: np.ndarray, size: tuple[int, int]) -> dict[str, np.ndarray]:
        self._check_size(size)
        latents = self._run(vae_encoder.NAME, reference_image(image_rgb_u8, size).astype(self.dtype))[0]
        return dict(zip(self.reference_names, self._run(self.ref_graph, latents, self.text)))

    def encode_guidance(self, maps_u8: dict[str, np.ndarray]) -> list[np.ndarray]:
        frames = check_maps(maps_u8, self.info.scale_factor)
        first = maps_u8[guidance_encoder.INPUTS[0]]
        self._check_size((first.shape[2], first.shape[1]))
        out = []
        for part in self._chunks(guidance_encoder.NAME, frames):
            chunk = maps_to_float({t: m[part] for t, m in maps_u8.items()}, self.dtype)
            out += list(self._run(guidance_encoder.NAME, *(chunk[t] for t in guidance_encoder.INPUTS))[0])
        return out

    def denoise(self, sample: np.ndarray, timesteps: np.ndarray, guidance: Sequence[np.ndarray], identity,
                use_reference: np.ndarray) -> np.ndarray:
        v = self._run(denoising_unet.NAME, sample.astype(self.dtype), np.asarray(timesteps, np.float32), self.text,
                      np.stack(guidance), *(identity[n] for n in self.reference_names),
                      np.asarray(use_reference, np.float32))[0]
        return v.astype(np.float32)

    def decode(self, latents: np.ndarray) -> np.ndarray:
        parts = [self._run(vae_decoder.NAME, latents[part].astype(self.dtype))[0]
                 for part in self._chunks(vae_decoder.NAME, len(latents))]
        return image_to_u8(np.concatenate(parts))

"""Backend on ONNX Runtime: the graphs of `mprt export` (I/O declared in engine/graphs/).

CPU by default; the CUDA execution provider is used when installed and asked for. Inputs are fed as
numpy arrays; the identity (reference K/V) and per-frame guidance features are kept as the arrays
the graphs returned. Dynamic axes are the graphs' own (frames <= their max, batch <= 2).
"""
from __future__ import annotations

import pathlib
from typing import Any, Mapping, Sequence

import numpy as np

from engine.backends.graph_backend import GraphBackend, check_requested_variants, read_model_variants
from engine.errors import CheckpointError, InputError
from engine.graph_specs import GraphSpec
from engine.graphs import denoising_unet, denoising_unet_streams, guidance_encoder, vae_decoder, vae_encoder
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
                 device: str = "cpu", threads: int | None = None, variants: Mapping[str, Any] | None = None):
        """graphs: name -> (spec, .onnx path) for guidance_encoder, reference_kv or reference_unet,
        denoising_unet, vae_encoder, vae_decoder (one precision); text_embedding (1,77,D); variants: the
        denoiser / decoder the graphs were exported from (graph_backend.read_model_variants)."""
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
                                       concurrent_calls=providers[0] == "CPUExecutionProvider", variants=variants)

    @classmethod
    def from_export_dir(cls, directory, text_embedding: np.ndarray, precision: str = "fp32", device: str = "cpu",
                        threads: int | None = None, request=None) -> "OrtBackend":
        """The graphs of one precision in an `mprt export` directory (its export.json); `request` (a
        BackendRequest) may ask for the student / tiny decoder the export must hold."""
        from engine.graph_specs import read_export_manifest
        exported = read_export_manifest(str(directory))
        specs = [s for s in exported.specs if s.precision == precision]
        if not specs:
            have = sorted({s.precision for s in exported.specs})
            raise InputError(f"{directory}: no {precision} graphs in this export (it has {have})")
        variants = read_model_variants(directory)
        if request is not None:
            check_requested_variants(request, variants, directory)
        return cls({s.name: (s, exported.verified_path(s)) for s in specs}, text_embedding, device, threads,
                   variants)

    @classmethod
    def open(cls, request) -> "OrtBackend":
        """registry opener: request.onnx (an `mprt export` directory), precision (default fp32), device."""
        from engine.backends.registry import text_embedding_for
        if not request.onnx:
            raise InputError("backend onnxruntime needs an `mprt export` directory (--onnx DIR)")
        return cls.from_export_dir(request.onnx, text_embedding_for(request, "onnxruntime"),
                                   request.precision or "fp32", request.device or "cpu", request.threads, request)

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

    def denoise_batch(self, sample: np.ndarray, timesteps: np.ndarray, guidance: Sequence[Sequence[np.ndarray]],
                      identities: Sequence, use_reference: np.ndarray) -> np.ndarray:
        """One denoising_unet_streams call per group of up to its largest `streams`; without that graph
        (an export made without --streams), the streams one by one."""
        if not self._streams_graph_takes(sample.shape[2]):
            return super().denoise_batch(sample, timesteps, guidance, identities, use_reference)
        io, out = denoising_unet_streams, []
        for part in self._chunks(io.NAME, len(sample), io.AXIS):
            ids, n = list(identities[part]), part.stop - part.start
            refs = [np.concatenate([i[name] for i in ids]) for name in self.reference_names]
            v = self._run(io.NAME, sample[part].astype(self.dtype), np.asarray(timesteps[part], np.float32),
                          self._text_rows(n), np.stack([np.stack(g) for g in guidance[part]]),
                          *refs, np.asarray(use_reference[part], np.float32))[0]
            out.append(v.astype(np.float32))
        return np.concatenate(out)

    def _text_rows(self, n: int) -> np.ndarray:
        """The text embedding once per sample (the streams graph's (n, 77, D)), made once per n."""
        if not hasattr(self, "_text_by_rows"):
            self._text_by_rows: dict[int, np.ndarray] = {}
        if n not in self._text_by_rows:
            self._text_by_rows[n] = np.repeat(self.text, n, axis=0)
        return self._text_by_rows[n]

    def decode(self, latents: np.ndarray) -> np.ndarray:
        parts = [self._run(vae_decoder.NAME, latents[part].astype(self.dtype))[0]
                 for part in self._chunks(vae_decoder.NAME, len(latents))]
        return image_to_u8(np.concatenate(parts))

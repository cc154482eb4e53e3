"""Backend on ONNX Runtime: the graphs of `mprt export` (I/O declared in engine/graph_specs.py).

CPU by default; the CUDA execution provider is used when installed and asked for. Inputs are fed as
numpy arrays; the identity (reference K/V) and per-frame guidance features are kept as the arrays
the graphs returned. Dynamic axes are the graphs' own (frames <= their max, batch <= 2).
"""
from __future__ import annotations

import pathlib
from typing import Mapping, Sequence

import numpy as np

from engine.backends.base import Backend, BackendInfo, check_maps, image_to_u8, maps_to_float, reference_image
from engine.errors import CheckpointError, InputError
from engine.graph_specs import GraphSpec

REQUIRED = ("guidance_encoder", "denoising_unet", "vae_encoder", "vae_decoder")


def providers_for(device: str) -> list[str]:
    import onnxruntime as ort
    available = ort.get_available_providers()
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise InputError(f"--device {device}: onnxruntime has no CUDA execution provider here "
                             f"(available: {available}); install onnxruntime-gpu or use --device cpu")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OrtBackend(Backend):
    def __init__(self, graphs: Mapping[str, tuple[GraphSpec, str | pathlib.Path]], text_embedding: np.ndarray,
                 device: str = "cpu", threads: int | None = None):
        """graphs: name -> (spec, .onnx path) for guidance_encoder, reference_kv or reference_unet,
        denoising_unet, vae_encoder, vae_decoder (one precision); text_embedding (1,77,D)."""
        import onnxruntime as ort
        missing = [n for n in REQUIRED if n not in graphs]
        ref = "reference_kv" if "reference_kv" in graphs else "reference_unet"
        if missing or ref not in graphs:
            raise CheckpointError(f"ONNX export: missing graph(s) {missing + ([] if ref in graphs else [ref])}")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        providers = providers_for(device)
        self.specs = {n: spec for n, (spec, _) in graphs.items()}
        self.sessions = {}
        for name, (spec, path) in graphs.items():
            if not pathlib.Path(path).is_file():
                raise CheckpointError(f"{path}: ONNX graph file not found")
            self.sessions[name] = ort.InferenceSession(str(path), opts, providers=providers)
        self.ref_graph = ref
        unet = self.specs["denoising_unet"]
        self.dtype = np.dtype(unet.inputs[0].dtype)
        self.text = np.asarray(text_embedding).astype(self.dtype)
        self.ref_inputs = [n for n in unet.input_names if n.startswith("ref_")]
        sample = unet.inputs[0].shape  # (batch, 4, frames, h, w)
        image = self.specs["vae_decoder"].outputs[0].shape  # (frames, 3, H, W)
        self.image_hw = (image[2], image[3])
        self.info = BackendInfo(name="onnxruntime", device=providers[0],
                                precision=unet.precision.replace("fp", "float"), latent_channels=sample[1],
                                scale_factor=image[2] // sample[3], max_frames=unet.axes["frames"].max,
                                concurrent_calls=providers[0] == "CPUExecutionProvider",
                                image_size=self.image_hw[0])

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
        return cls({s.name: (s, exported.path(s)) for s in specs}, text_embedding, device, threads)

    @classmethod
    def open(cls, request) -> "OrtBackend":
        """registry opener: request.onnx (an `mprt export` directory), precision (default fp32), device."""
        from engine.backends.registry import text_embedding_for
        if not request.onnx:
            raise InputError("backend onnxruntime needs an `mprt export` directory (--onnx DIR)")
        return cls.from_export_dir(request.onnx, text_embedding_for(request, "onnxruntime"),
                                   request.precision or "fp32", request.device or "cpu", request.threads)

    def _run(self, name: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.specs[name].check_inputs(feeds)
        return self.sessions[name].run(None, feeds)

    def _check_size(self, size: tuple[int, int]) -> None:
        if (size[1], size[0]) != self.image_hw:
            raise InputError(f"size {size[0]}x{size[1]}: this export is for {self.image_hw[1]}x{self.image_hw[0]} "
                             "(export again with that --size)")

    def encode_reference(self, image_rgb_u8: np.ndarray, size: tuple[int, int]) -> dict[str, np.ndarray]:
        self._check_size(size)
        latents = self._run("vae_encoder", {"image": reference_image(image_rgb_u8, size).astype(self.dtype)})[0]
        outs = self._run(self.ref_graph, {"ref_latents": latents, "text_embedding": self.text})
        names = self.specs[self.ref_graph].output_names
        return dict(zip(names, outs))

    def encode_guidance(self, maps_u8: dict[str, np.ndarray]) -> list[np.ndarray]:
        frames = check_maps(maps_u8, self.info.scale_factor)
        self._check_size((maps_u8["depth"].shape[2], maps_u8["depth"].shape[1]))
        cap = self.specs["guidance_encoder"].axes["frames"].max
        out = []
        for start in range(0, frames, cap):
            chunk = {t: m[start:start + cap] for t, m in maps_u8.items()}
            out += list(self._run("guidance_encoder", maps_to_float(chunk, self.dtype))[0])
        return out

    def denoise(self, sample: np.ndarray, timesteps: np.ndarray, guidance: Sequence[np.ndarray], identity,
                use_reference: np.ndarray) -> np.ndarray:
        feeds = {"sample": sample.astype(self.dtype), "timestep": np.asarray(timesteps, np.float32),
                 "text_embedding": self.text, "guidance": np.stack(guidance),
                 "use_reference": np.asarray(use_reference, np.float32)}
        feeds.update({n: identity[n] for n in self.ref_inputs})
        return self._run("denoising_unet", feeds)[0].astype(np.float32)

    def decode(self, latents: np.ndarray) -> np.ndarray:
        cap = self.specs["vae_decoder"].axes["frames"].max
        parts = [self._run("vae_decoder", {"latents": latents[i:i + cap].astype(self.dtype)})[0]
                 for i in range(0, len(latents), cap)]
        return image_to_u8(np.concatenate(parts))


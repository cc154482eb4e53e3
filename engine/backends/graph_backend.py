"""What the ONNX Runtime and TensorRT backends share: which graphs they need (either reference
graph), shapes, dtype and BackendInfo read from the graphs' specs, the size check, and chunking
along a graph's frame axis. Tensor names come from the graph modules (engine/graphs/)."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from engine.backends.base import Backend, BackendInfo
from engine.errors import CheckpointError, InputError
from engine.graph_specs import GraphSpec
from engine.graphs import denoising_unet, guidance_encoder, reference_kv, reference_unet, vae_decoder, vae_encoder

REFERENCE_GRAPHS = (reference_kv.NAME, reference_unet.NAME)  # either, by the export's reference mode
REQUIRED = (guidance_encoder.NAME, denoising_unet.NAME, vae_encoder.NAME, vae_decoder.NAME)  # and a reference graph


class GraphBackend(Backend):
    def _use_specs(self, specs: Mapping[str, GraphSpec], what: str) -> None:
        """Check that `specs` (graph name -> spec) hold every graph needed; read shapes and dtype.
        what: the files they come from, for messages ("ONNX export", "TensorRT engines")."""
        ref = next((n for n in REFERENCE_GRAPHS if n in specs), REFERENCE_GRAPHS[0])
        needed = (*REQUIRED, ref)
        missing = [n for n in needed if n not in specs]
        if missing:
            raise CheckpointError(f"{what}: missing graph(s) {missing}")
        self.what, self.ref_graph = what, ref
        self.specs = {n: specs[n] for n in needed}  # other graphs of the export (driving encoders) are not ours
        unet = specs[denoising_unet.NAME]
        sample = unet.tensor(denoising_unet.SAMPLE)
        self.dtype = np.dtype(sample.dtype)
        self.reference_names = specs[ref].output_names  # the identity: also the UNet's reference inputs
        image = specs[vae_decoder.NAME].tensor(vae_decoder.IMAGE).shape  # (frames, 3, H, W)
        self.image_hw = (image[2], image[3])
        self.latent_channels, self.scale_factor = sample.shape[1], image[2] // sample.shape[3]

    def _backend_info(self, name: str, device: str, concurrent_calls: bool = False) -> BackendInfo:
        unet = self.specs[denoising_unet.NAME]
        return BackendInfo(name=name, device=device, precision=unet.precision.replace("fp", "float"),
                           latent_channels=self.latent_channels, scale_factor=self.scale_factor,
                           max_frames=unet.axes["frames"].max, concurrent_calls=concurrent_calls,
                           image_size=self.image_hw[0])

    def _check_size(self, size: tuple[int, int]) -> None:
        if (size[1], size[0]) != self.image_hw:
            raise InputError(f"size {size[0]}x{size[1]}: this {self.what} is for {self.image_hw[1]}x"
                             f"{self.image_hw[0]} (export again with that --size)")

    def _chunks(self, graph: str, count: int) -> list[slice]:
        """[0, count) in pieces of at most the graph's largest frame count."""
        cap = self.specs[graph].axes["frames"].max
        return [slice(i, min(i + cap, count)) for i in range(0, count, cap)]

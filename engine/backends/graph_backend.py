"""What the ONNX Runtime and TensorRT backends share: which graphs they need (either reference
graph), shapes, dtype and BackendInfo read from the graphs' specs, the size check, and chunking
along a graph's frame axis. Tensor names come from the graph modules (engine/graphs/)."""
from __future__ import annotations

import json
import pathlib
from typing import Any, Mapping

import numpy as np

from engine.backends.base import Backend, BackendInfo
from engine.errors import CheckpointError, InputError
from engine.graph_specs import GraphSpec
from engine.graphs import (denoising_unet, denoising_unet_streams, guidance_encoder, reference_kv, reference_unet,
                           vae_decoder, vae_encoder)

REFERENCE_GRAPHS = (reference_kv.NAME, reference_unet.NAME)  # either, by the export's reference mode
REQUIRED = (guidance_encoder.NAME, denoising_unet.NAME, vae_encoder.NAME, vae_decoder.NAME)  # and a reference graph
OPTIONAL = (denoising_unet_streams.NAME,)  # used when the export has it (cross-session batching in one call)
MODEL_FILE = "model.json"  # beside the graphs / engines: which denoiser and decoder they were made from


def read_model_variants(directory) -> dict[str, Any]:
    """{"denoiser", "decoder", "guidance_scale"} that an export (and the engines built from it) holds; the
    teacher, the VAE and upstream's CFG scale when it says nothing (exports made before those existed)."""
    from engine.networks.config import declared_guidance_scale
    path = pathlib.Path(directory) / MODEL_FILE
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable ({err}); re-run `mprt export`") from None
    return {"denoiser": str(data.get("denoiser", "teacher")), "decoder": str(data.get("decoder", "vae")),
            "guidance_scale": declared_guidance_scale(data, str(path))}


def write_model_variants(directory, denoiser: str, decoder: str, guidance_scale: float) -> pathlib.Path:
    """model.json beside an export's graphs: which denoiser (the teacher or a student) and decoder they
    hold, and the CFG scale their model was made for."""
    from engine.io.atomic import write_atomic
    data = {"denoiser": denoiser, "decoder": decoder, "guidance_scale": guidance_scale}
    return write_atomic(pathlib.Path(directory) / MODEL_FILE, json.dumps(data, indent=1).encode())


def check_requested_variants(request, variants: Mapping[str, Any], directory) -> None:
    """Graphs carry their weights: a graph backend runs the denoiser and decoder its export holds, so
    --student / --decoder may only ask for that ('auto' takes whatever it is)."""
    student, decoder = request.student or "auto", request.decoder or "auto"
    has_student, has_tiny = variants["denoiser"] != "teacher", variants["decoder"] != "vae"
    ok_student = student == "auto" or (student == "none" and not has_student)
    ok_decoder = decoder == "auto" or (decoder == "vae" and not has_tiny)
    if not (ok_student and ok_decoder):
        raise InputError(f"--student {student} / --decoder {decoder}: {directory} holds denoiser "
                         f"'{variants['denoiser']}' and decoder '{variants['decoder']}'; export the ones you "
                         "want with `mprt export --student ... --decoder ...`")


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
        # other graphs of the export (driving encoders) are not ours
        self.specs = {n: specs[n] for n in (*needed, *OPTIONAL) if n in specs}
        unet = specs[denoising_unet.NAME]
        sample = unet.tensor(denoising_unet.SAMPLE)
        self.dtype = np.dtype(sample.dtype)
        self.reference_names = specs[ref].output_names  # the identity: also the UNet's reference inputs
        image = specs[vae_decoder.NAME].tensor(vae_decoder.IMAGE).shape  # (frames, 3, H, W)
        self.image_hw = (image[2], image[3])
        self.latent_channels, self.scale_factor = sample.shape[1], image[2] // sample.shape[3]

    def _backend_info(self, name: str, device: str, concurrent_calls: bool = False,
                      variants: Mapping[str, Any] | None = None) -> BackendInfo:
        unet = self.specs[denoising_unet.NAME]
        return BackendInfo(name=name, device=device, precision=unet.precision.replace("fp", "float"),
                           latent_channels=self.latent_channels, scale_factor=self.scale_factor,
                           max_frames=unet.axes["frames"].max, concurrent_calls=concurrent_calls,
                           image_size=self.image_hw[0], **(variants or {}))

    def _check_size(self, size: tuple[int, int]) -> None:
        if (size[1], size[0]) != self.image_hw:
            raise InputError(f"size {size[0]}x{size[1]}: this {self.what} is for {self.image_hw[1]}x"
                             f"{self.image_hw[0]} (export again with that --size)")

    def _chunks(self, graph: str, count: int, axis: str = "frames") -> list[slice]:
        """[0, count) in pieces of at most the graph's largest `axis` value."""
        cap = self.specs[graph].axes[axis].max
        return [slice(i, min(i + cap, count)) for i in range(0, count, cap)]

    def _streams_graph_takes(self, frames: int) -> bool:
        """Whether the export's denoising_unet_streams graph exists and takes windows of `frames`."""
        spec = self.specs.get(denoising_unet_streams.NAME)
        return spec is not None and spec.axes["frames"].contains(frames)

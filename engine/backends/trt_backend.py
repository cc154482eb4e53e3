"""Backend on TensorRT engines (`mprt build`), with cuda-python device buffers, one CUDA stream and
optional CUDA graphs. Imports no torch (tests/test_backends_trt.py checks it with torch blocked).

Every graph input/output gets one device buffer sized for its largest shape, so tensor addresses
never change and a CUDA graph captured for one (batch, frames) shape can be replayed. Per-frame
guidance features live in a device ring of `feature_slots` frames (a handle is its slot); the
identity's reference K/V are copied once into their own buffers.
"""
from __future__ import annotations

import pathlib
from typing import Any, Mapping, Sequence

import numpy as np

from engine import cuda_python
from engine.backends.graph_backend import GraphBackend, check_requested_variants, read_model_variants
from engine.errors import CheckpointError, InputError
from engine.graph_specs import GraphSpec
from engine.graphs import (denoising_unet, denoising_unet_streams, guidance_encoder, reference_kv, vae_decoder,
                           vae_encoder)
from engine.preprocess import check_maps, image_to_u8, maps_to_float, reference_image


def _cudart():
    return cuda_python.load("runtime", InputError, "--backend tensorrt needs cuda-python: pip install cuda-python")


def _tensorrt():
    """(module, name): TensorRT, or TensorRT-RTX (same Python API) where only that is installed."""
    for name in ("tensorrt", "tensorrt_rtx"):
        try:
            return __import__(name), name
        except ImportError:
            continue
    raise InputError("--backend tensorrt needs the tensorrt (or tensorrt_rtx) package") from None


def _ok(result):
    """A CUDA runtime call's values; RuntimeError naming the error otherwise."""
    return cuda_python.unwrap(result, "CUDA runtime call")


class _Buffer:
    def __init__(self, cudart, nbytes: int):
        self.cudart, self.nbytes = cudart, max(int(nbytes), 1)
        self.ptr = _ok(cudart.cudaMalloc(self.nbytes))

    def free(self) -> None:
        if self.ptr:
            self.cudart.cudaFree(self.ptr)
            self.ptr = 0


class _Engine:
    """One deserialized engine + execution context + its fixed-address I/O buffers."""

    def __init__(self, trt, runtime, cudart, spec: GraphSpec, path: pathlib.Path):
        data = pathlib.Path(path).read_bytes()
        self.engine = runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise CheckpointError(f"{path}: TensorRT could not deserialize this engine (built with another "
                                  "TensorRT version or GPU?)")
        self.context = self.engine.create_execution_context()
        self.spec, self.cudart = spec, cudart
        big = spec.axis_points("max")
        self.buffers: dict[str, _Buffer] = {}
        for t in spec.inputs + spec.outputs:
            nbytes = int(np.prod(t.resolve(big))) * np.dtype(t.dtype).itemsize
            self.buffers[t.name] = _Buffer(cudart, nbytes)
            self.context.set_tensor_address(t.name, self.buffers[t.name].ptr)
        self.graphs: dict[tuple, object] = {}  # axis values -> instantiated CUDA graph

    def set_shapes(self, axes: Mapping[str, int]) -> None:
        for t in self.spec.inputs:
            self.context.set_input_shape(t.name, t.resolve(axes))

    def launch(self, stream, axes: Mapping[str, int], use_graph: bool) -> None:
        self.set_shapes(axes)
        if not use_graph:
            if not self.context.execute_async_v3(stream):
                raise RuntimeError(f"TensorRT: {self.spec.name} failed to run")
            return
        key = tuple(sorted(axes.items()))
        if key not in self.graphs:
            cu = self.cudart
            self.context.execute_async_v3(stream)  # one plain run first (TensorRT's advice before capture)
            _ok(cu.cudaStreamBeginCapture(stream, cu.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal))
            self.context.execute_async_v3(stream)
            graph = _ok(cu.cudaStreamEndCapture(stream))
            self.graphs[key] = _ok(cu.cudaGraphInstantiate(graph, 0))
        _ok(self.cudart.cudaGraphLaunch(self.graphs[key], stream))

    def free(self) -> None:
        for b in self.buffers.values():
            b.free()


class TrtBackend(GraphBackend):
    def __init__(self, engines: Mapping[str, tuple[GraphSpec, str | pathlib.Path]], text_embedding: np.ndarray,
                 cuda_graphs: bool = True, feature_slots: int = 96, device: int = 0,
                 variants: Mapping[str, Any] | None = None):
        self._use_specs({n: spec for n, (spec, _) in engines.items()}, "TensorRT engines")
        trt, _ = _tensorrt()
        self.cu = cu = _cudart()
        _ok(cu.cudaSetDevice(device))
        self.stream = _ok(cu.cudaStreamCreate())
        self.cuda_graphs = cuda_graphs
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engines = {n: _Engine(trt, runtime, cu, spec, path) for n, (spec, path) in engines.items()
                        if n in self.specs}
        text = np.asarray(text_embedding, self.dtype)
        self._upload(denoising_unet.NAME, denoising_unet.TEXT, text)
        self._upload(self.ref_graph, denoising_unet.TEXT, text)
        if denoising_unet_streams.NAME in self.engines:  # every sample's row: the same text, uploaded once
            most = self.specs[denoising_unet_streams.NAME].axes[denoising_unet_streams.AXIS].max
            self._upload(denoising_unet_streams.NAME, denoising_unet_streams.TEXT, np.repeat(text, most, axis=0))
        guidance = self.specs[guidance_encoder.NAME].tensor(guidance_encoder.GUIDANCE)  # (frames, C0, h, w)
        self.frame_bytes = int(np.prod(guidance.shape[1:])) * self.dtype.itemsize
        self.slots = _Buffer(cu, self.frame_bytes * feature_slots)
        self.slot_count, self.next_slot = feature_slots, 0
        self.info = self._backend_info("tensorrt", f"cuda:{device}", variants=variants)

    @classmethod
    def from_engine_dir(cls, directory, text_embedding: np.ndarray, precision: str = "fp16",
                        cuda_graphs: bool = True, feature_slots: int = 96, device: int = 0,
                        request=None) -> "TrtBackend":
        """`<graph>.<precision>.engine` files of `mprt build`, each checked against its manifest
        (TensorRT version, compute capability, file size) before it is deserialized; `request` may ask
        for the student / tiny decoder the engines must hold (model.json, copied there by mprt build)."""
        from engine.engine_manifest import RuntimeTarget, load_checked
        trt, module = _tensorrt()
        cu = _cudart()
        err, count = cu.cudaGetDeviceCount()
        if int(err) != 0 or count <= device:
            why = f"CUDA error {err}" if int(err) != 0 else f"{count} CUDA device(s)"
            raise InputError(f"--backend tensorrt: no usable NVIDIA GPU {device} on this host ({why}); "
                             "use --backend torch or onnxruntime here")
        props = _ok(cu.cudaGetDeviceProperties(device))
        name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
        target = RuntimeTarget(module, trt.__version__, f"{props.major}.{props.minor}", name)
        engines = {}
        for path in sorted(pathlib.Path(directory).glob(f"*.{precision}.engine")):
            manifest = load_checked(path, target)
            engines[manifest.graph.name] = (manifest.graph, path)
        if not engines:
            raise CheckpointError(f"{directory}: no *.{precision}.engine files (build them with `mprt build`)")
        variants = read_model_variants(directory)
        if request is not None:
            check_requested_variants(request, variants, directory)
        return cls(engines, text_embedding, cuda_graphs, feature_slots, device, variants)

    @classmethod
    def open(cls, request) -> "TrtBackend":
        """registry opener: request.engines (a `mprt build` directory), precision (default fp16),
        device cuda[:N], cuda_graphs."""
        from engine.backends.registry import text_embedding_for
        if not request.engines:
            raise InputError("backend tensorrt needs a `mprt build` directory (--engines DIR)")
        device = request.device or "cuda"
        kind, _, index = device.partition(":")
        if kind != "cuda" or not (index or "0").isdigit():
            raise InputError(f"device {device!r}: the tensorrt backend runs on a CUDA device (cuda or cuda:N)")
        return cls.from_engine_dir(request.engines, text_embedding_for(request, "tensorrt"),
                                   request.precision or "fp16", cuda_graphs=request.cuda_graphs,
                                   device=int(index or 0), request=request)

    # -- copies ------------------------------------------------------------------------------------
    def _upload(self, graph: str, name: str, array: np.ndarray) -> None:
        a = np.ascontiguousarray(array)
        buf = self.engines[graph].buffers[name]
        if a.nbytes > buf.nbytes:
            raise InputError(f"{graph}: input {name} of {a.shape} exceeds the engine's largest shape")
        _ok(self.cu.cudaMemcpyAsync(buf.ptr, a.ctypes.data, a.nbytes,
                                    self.cu.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream))
        _ok(self.cu.cudaStreamSynchronize(self.stream))  # `a` may be freed once we return

    def _download(self, graph: str, name: str, shape: tuple[int, ...]) -> np.ndarray:
        dtype = np.dtype([t for t in self.engines[graph].spec.outputs if t.name == name][0].dtype)
        out = np.empty(shape, dtype)
        _ok(self.cu.cudaMemcpyAsync(out.ctypes.data, self.engines[graph].buffers[name].ptr, out.nbytes,
                                    self.cu.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream))
        _ok(self.cu.cudaStreamSynchronize(self.stream))
        return out

    def _d2d(self, dst: int, src: int, nbytes: int) -> None:
        _ok(self.cu.cudaMemcpyAsync(dst, src, nbytes, self.cu.cudaMemcpyKind.cudaMemcpyDeviceToDevice, self.stream))

    # -- Backend -----------------------------------------------------------------------------------
    def encode_reference(self, image_rgb_u8: np.ndarray, size: tuple[int, int]) -> dict[str, _Buffer]:
        self._check_size(size)
        encoder, ref = self.engines[vae_encoder.NAME], self.engines[self.ref_graph]
        self._upload(vae_encoder.NAME, vae_encoder.IMAGE, reference_image(image_rgb_u8, size).astype(self.dtype))
        encoder.launch(self.stream, {"images": 1}, use_graph=False)
        ref_latents = ref.buffers[reference_kv.REF_LATENTS]  # reference_unet's input has the same name
        self._d2d(ref_latents.ptr, encoder.buffers[vae_encoder.LATENTS].ptr, ref_latents.nbytes)
        ref.launch(self.stream, {}, use_graph=False)
        identity = {}
        for name in self.reference_names:
            identity[name] = _Buffer(self.cu, ref.buffers[name].nbytes)
            self._d2d(identity[name].ptr, ref.buffers[name].ptr, ref.buffers[name].nbytes)
        _ok(self.cu.cudaStreamSynchronize(self.stream))
        return identity

    def encode_guidance(self, maps_u8: dict[str, np.ndarray]) -> list[int]:
        frames = check_maps(maps_u8, self.info.scale_factor)
        first = maps_u8[guidance_encoder.INPUTS[0]]
        self._check_size((first.shape[2], first.shape[1]))
        enc = self.engines[guidance_encoder.NAME]
        handles = []
        for part in self._chunks(guidance_encoder.NAME, frames):
            chunk = maps_to_float({t: m[part] for t, m in maps_u8.items()}, self.dtype)
            n = part.stop - part.start
            for t in guidance_encoder.INPUTS:
                self._upload(guidance_encoder.NAME, t, chunk[t])
            enc.launch(self.stream, {"frames": n}, use_graph=False)
            for j in range(n):
                slot = self.next_slot % self.slot_count
                self.next_slot += 1
                self._d2d(self.slots.ptr + slot * self.frame_bytes,
                          enc.buffers[guidance_encoder.GUIDANCE].ptr + j * self.frame_bytes, self.frame_bytes)
                handles.append(self.next_slot - 1)  # monotonically numbered; slot = handle % slot_count
        return handles

    def _check_slots(self, handles: Sequence[int]) -> None:
        if min(handles) < self.next_slot - self.slot_count:
            raise RuntimeError("guidance feature slot was reused while still in flight: raise feature_slots")

    def _gather_guidance(self, dst: int, handles: Sequence[int]) -> None:
        """Copy the feature rows of `handles` from the ring to consecutive rows at device address `dst`."""
        for j, handle in enumerate(handles):
            self._d2d(dst + j * self.frame_bytes, self.slots.ptr + (handle % self.slot_count) * self.frame_bytes,
                      self.frame_bytes)

    def denoise(self, sample: np.ndarray, timesteps: np.ndarray, guidance: Sequence[int], identity,
                use_reference: np.ndarray) -> np.ndarray:
        self._check_slots(guidance)
        io, unet = denoising_unet, self.engines[denoising_unet.NAME]
        b, _, f = sample.shape[:3]
        self._upload(io.NAME, io.SAMPLE, sample.astype(self.dtype))
        self._upload(io.NAME, io.TIMESTEP, np.asarray(timesteps, np.float32))
        self._upload(io.NAME, io.USE_REFERENCE, np.asarray(use_reference, np.float32))
        self._gather_guidance(unet.buffers[io.GUIDANCE].ptr, guidance)
        for name, buf in identity.items():
            self._d2d(unet.buffers[name].ptr, buf.ptr, buf.nbytes)
        unet.launch(self.stream, {"batch": b, "frames": f}, self.cuda_graphs)
        return self._download(io.NAME, io.V, sample.shape).astype(np.float32)

    def denoise_batch(self, sample: np.ndarray, timesteps: np.ndarray, guidance: Sequence[Sequence[int]],
                      identities: Sequence, use_reference: np.ndarray) -> np.ndarray:
        """One denoising_unet_streams launch per group of up to its largest `streams` (each sample's
        guidance rows and identity K/V copied on the device into its place); without that engine, the
        streams one by one."""
        if not self._streams_graph_takes(sample.shape[2]):
            return super().denoise_batch(sample, timesteps, guidance, identities, use_reference)
        io, unet = denoising_unet_streams, self.engines[denoising_unet_streams.NAME]
        out = []
        for part in self._chunks(io.NAME, len(sample), io.AXIS):
            s, _, f = sample[part].shape[:3]
            rows, ids = list(guidance[part]), list(identities[part])
            self._check_slots([h for frames in rows for h in frames])
            self._upload(io.NAME, io.SAMPLE, sample[part].astype(self.dtype))
            self._upload(io.NAME, io.TIMESTEP, np.asarray(timesteps[part], np.float32))
            self._upload(io.NAME, io.USE_REFERENCE, np.asarray(use_reference[part], np.float32))
            for i, frames in enumerate(rows):
                self._gather_guidance(unet.buffers[io.GUIDANCE].ptr + i * f * self.frame_bytes, frames)
            for i, identity in enumerate(ids):
                for name, buf in identity.items():  # (1, L, C) each: sample i's row
                    self._d2d(unet.buffers[name].ptr + i * buf.nbytes, buf.ptr, buf.nbytes)
            unet.launch(self.stream, {io.AXIS: s, "frames": f}, self.cuda_graphs)
            out.append(self._download(io.NAME, io.V, sample[part].shape).astype(np.float32))
        return np.concatenate(out)

    def decode(self, latents: np.ndarray) -> np.ndarray:
        dec = self.engines[vae_decoder.NAME]
        parts = []
        for part in self._chunks(vae_decoder.NAME, len(latents)):
            chunk = latents[part].astype(self.dtype)
            self._upload(vae_decoder.NAME, vae_decoder.LATENTS, chunk)
            dec.launch(self.stream, {"frames": len(chunk)}, self.cuda_graphs)
            parts.append(self._download(vae_decoder.NAME, vae_decoder.IMAGE, (len(chunk), 3, *self.image_hw)))
        return image_to_u8(np.concatenate(parts))

    def synchronize(self) -> None:
        _ok(self.cu.cudaStreamSynchronize(self.stream))

    def close(self) -> None:
        for e in self.engines.values():
            e.free()
        self.slots.free()

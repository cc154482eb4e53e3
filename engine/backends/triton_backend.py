"""Backend on a Triton Inference Server that serves the models of `mprt export --triton`, via tritonclient.

The sampling loop stays in this process (engine/runtime); each graph call is one inference request
over HTTP or gRPC with binary tensors. The graph I/O comes from the server: every model's config
carries its graph spec (engine/triton_models.SPEC_PARAMETER), so names, dtypes and axis ranges are
those of the export the server loaded. Pre/post-processing and the graph calls' order are the ONNX
Runtime backend's; only where a graph runs differs.

Handles (the identity's reference K/V, per-frame guidance features) are numpy arrays held here and
sent with every UNet call: at 512 px fp16 that is ~46 MB of K/V plus ~2.6 MB of guidance per frame
per call. With a server on this host the K/V are instead placed once per identity in system shared
memory that the server registers (engine/backends/triton_shm.py), and each call only names them.
No torch import.
"""
from __future__ import annotations

import json
import sys
from typing import Sequence

import numpy as np

from engine.backends.graph_backend import REFERENCE_GRAPHS, REQUIRED
from engine.backends.ort_backend import OrtBackend
from engine.backends.triton_shm import is_loopback, share_identity
from engine.errors import InputError, MprtError
from engine.graph_specs import GraphSpec
from engine.triton_models import SPEC_PARAMETER, TRITON_DTYPES, model_name

PROTOCOLS = ("http", "grpc")


class TritonError(MprtError):
    """The Triton server is unreachable, lacks a model, or refused a request."""


def _client_module(protocol: str):
    if protocol not in PROTOCOLS:
        raise InputError(f"triton protocol {protocol!r}: expected one of {list(PROTOCOLS)}")
    try:
        if protocol == "http":
            import tritonclient.http as module
        else:
            import tritonclient.grpc as module
    except ImportError:
        raise InputError(f"the triton backend needs tritonclient: pip install \"tritonclient[{protocol}]\" "
                         "(or the project's [triton] extra)") from None
    return module


def split_url(url: str) -> tuple[str, str]:
    """"grpc://host:port" -> ("grpc", "host:port"); no scheme means HTTP (tritonclient takes no scheme)."""
    scheme, sep, address = url.partition("://")
    if not sep:
        return "http", url
    if scheme not in PROTOCOLS or not address:
        raise InputError(f"triton url {url!r}: expected host:port, http://host:port or grpc://host:port")
    return scheme, address


class TritonBackend(OrtBackend):
    def __init__(self, url: str, text_embedding: np.ndarray, precision: str = "fp32", protocol: str = "http",
                 timeout_s: float = 60.0, shared_memory: bool | None = None, guidance_scale: float = 3.5):
        """url: host:port of the server's HTTP (default 8000) or gRPC (8001) endpoint; precision selects
        the `<graph>_<precision>` models; text_embedding (1,77,D) as for the ONNX Runtime backend.
        shared_memory: identity K/V in system shared memory (None: when the server is on a loopback
        address, falling back to the wire with a note if it cannot map our memory)."""
        from tritonclient.utils import InferenceServerException
        self.url, self.protocol = url, protocol
        self._module = _client_module(protocol)
        self._server_error = InferenceServerException
        try:
            if protocol == "http":
                self.client = self._module.InferenceServerClient(url, connection_timeout=timeout_s,
                                                                 network_timeout=timeout_s)
            else:
                self.client = self._module.InferenceServerClient(url)
        except Exception as err:  # a malformed URL is refused here, an unreachable one on the first call
            raise TritonError(f"triton {url}: cannot create a {protocol} client ({err})") from None
        self._timeout_s = timeout_s
        self._share, self._share_auto = (is_loopback(url), True) if shared_memory is None else (shared_memory, False)
        self._releases: list = []  # one per shared identity
        self._regions: dict = {}  # the current UNet call's inputs in shared memory
        if not self._call("server", self.client.is_server_live):
            raise TritonError(f"triton {url}: the server is not live")
        names = [*REQUIRED, self._reference_graph(precision)]
        self.models = {g: model_name(g, precision) for g in names}
        self._use_specs({g: self._read_spec(g) for g in names}, f"Triton server {url}")
        self.text = np.asarray(text_embedding).astype(self.dtype)
        self.info = self._backend_info("triton", f"{protocol}://{url}",  # one client, used from one thread
                                       concurrent_calls=False, variants={"guidance_scale": guidance_scale})

    @classmethod
    def open(cls, request) -> "TritonBackend":
        """registry opener: request.url ("host:port" = HTTP, "grpc://host:port", "http://host:port"),
        precision (default fp32: the models `<graph>_fp32`), weights (for the text embedding)."""
        from engine.backends.registry import guidance_scale_for, text_embedding_for
        if not request.url:
            raise InputError("backend triton needs the server's address (--triton-url host:port, or "
                             "grpc://host:port)")
        protocol, address = split_url(request.url)
        return cls(address, text_embedding_for(request, "triton"), request.precision or "fp32", protocol,
                   guidance_scale=guidance_scale_for(request))

    def _call(self, what: str, fn, *args, **kwargs):
        """Run one client call; any failure becomes one TritonError line naming the server and model."""
        try:
            return fn(*args, **kwargs)
        except self._server_error as err:
            raise TritonError(f"triton {self.url}: {what}: {err.message() or err}") from None
        except (OSError, ConnectionError) as err:
            raise TritonError(f"triton {self.url}: {what}: cannot reach the server ({err}); is tritonserver "
                              f"running with its {self.protocol} endpoint there?") from None

    def _reference_graph(self, precision: str) -> str:
        """reference_kv if the server has it, else reference_unet (an export with --reference features)."""
        for graph in REFERENCE_GRAPHS:
            name = model_name(graph, precision)
            if self._call(f"model {name}", self.client.is_model_ready, name):
                return graph
        raise TritonError(f"triton {self.url}: neither {model_name('reference_kv', precision)} nor "
                          f"{model_name('reference_unet', precision)} is ready; serve a repository written by "
                          f"`mprt export --triton` with {precision} graphs")

    def _read_spec(self, graph: str) -> GraphSpec:
        name = self.models[graph]
        if not self._call(f"model {name}", self.client.is_model_ready, name):
            raise TritonError(f"triton {self.url}: model {name} is not ready (missing from the repository, "
                              "or it failed to load: see the server log)")
        if self.protocol == "http":
            config = self._call(f"model {name}", self.client.get_model_config, name)
        else:
            config = self._call(f"model {name}", self.client.get_model_config, name, as_json=True)["config"]
        try:
            spec = GraphSpec.from_json(json.loads(config["parameters"][SPEC_PARAMETER]["string_value"]))
        except (KeyError, TypeError, ValueError) as err:
            raise TritonError(f"triton {self.url}: model {name}: its config has no valid {SPEC_PARAMETER} "
                              f"parameter ({type(err).__name__}: {err}); write the repository with "
                              "`mprt export --triton`") from None
        if spec.name != graph:
            raise TritonError(f"triton {self.url}: model {name} serves graph {spec.name!r}, expected {graph!r}")
        return spec

    def encode_reference(self, image_rgb_u8: np.ndarray, size: tuple[int, int]):
        identity = super().encode_reference(image_rgb_u8, size)
        if not self._share:
            return identity
        from tritonclient.utils.shared_memory import SharedMemoryException
        try:
            shared = share_identity(identity, self._register, self.client.unregister_system_shared_memory)
        except (TritonError, SharedMemoryException) as err:
            if not self._share_auto:
                raise TritonError(f"triton {self.url}: identity in shared memory: {err}") from None
            print(f"note: {err}; the reference K/V go with every UNet call instead", file=sys.stderr)
            self._share = False
            return identity
        self._releases.append(shared.release)
        return shared

    def _register(self, region: str, key: str, byte_size: int) -> None:
        self._call(f"system shared memory {key}", self.client.register_system_shared_memory, region, key, byte_size)

    def denoise(self, sample: np.ndarray, timesteps: np.ndarray, guidance: Sequence[np.ndarray], identity,
                use_reference: np.ndarray) -> np.ndarray:
        self._regions = getattr(identity, "regions", {})
        try:
            return super().denoise(sample, timesteps, guidance, identity, use_reference)
        finally:
            self._regions = {}

    def _run(self, name: str, *arrays: np.ndarray) -> list[np.ndarray]:
        """Inputs in the graph's spec order -> its outputs in spec order (as OrtBackend._run)."""
        spec = self.specs[name]
        feeds = dict(zip(spec.input_names, arrays))
        spec.check_inputs(feeds)
        inputs = []
        for t in spec.inputs:
            arr = np.ascontiguousarray(feeds[t.name])
            tensor = self._module.InferInput(t.name, list(arr.shape), TRITON_DTYPES[t.dtype])
            if t.name in self._regions:  # the identity's K/V: already in registered shared memory
                region, offset, byte_size = self._regions[t.name]
                tensor.set_shared_memory(region, byte_size, offset)
            else:
                tensor.set_data_from_numpy(arr)
            inputs.append(tensor)
        outputs = [self._module.InferRequestedOutput(t.name) for t in spec.outputs]
        model = self.models[name]
        result = self._call(f"model {model}", self.client.infer, model, inputs, outputs=outputs,
                            **({"client_timeout": self._timeout_s} if self.protocol == "grpc" else {}))
        arrays = []
        for t in spec.outputs:
            arr = result.as_numpy(t.name)
            if arr is None or str(arr.dtype) != t.dtype or arr.ndim != len(t.shape):
                got = "nothing" if arr is None else f"{arr.dtype}{list(arr.shape)}"
                raise TritonError(f"triton {self.url}: model {model} returned {got} for {t.name}, expected "
                                  f"{t.dtype}{list(t.shape)}")
            arrays.append(arr)
        return arrays

    def close(self) -> None:
        for release in self._releases:
            release()
        self.client.close()

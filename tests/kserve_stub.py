"""A stand-in KServe-v2 inference server — NOT Triton — for the Triton client backend's protocol tests.

It serves a model repository written by `mprt export --triton` (ONNX models only) and answers the few
calls tritonclient makes for engine/backends/triton_backend.py — server live, model ready, model
config, infer with binary tensors, system shared memory regions — over HTTP (JSON header + binary extension) and gRPC
(GRPCInferenceService from tritonclient's protobufs), running each model with ONNX Runtime on the CPU.
Like Triton it parses config.pbtxt with the ModelConfig schema and refuses tensors whose names, dtypes
or dims the config does not allow. Everything Triton itself does (its backends, batcher, scheduler,
TensorRT plans) is untested by it: no Triton server can run on this machine.
"""
from __future__ import annotations

import collections
import concurrent.futures
import http.server
import json
import pathlib
import threading

import numpy as np

from engine.triton_models import TRITON_DTYPES

NUMPY_OF = {wire: np.dtype(name) for name, wire in TRITON_DTYPES.items()}


class StubError(Exception):
    pass


class StubModels:
    """The repository's ONNX models in ONNX Runtime, with Triton-like input checks against the configs."""

    def __init__(self, repo: pathlib.Path, include=lambda name: True):
        import onnxruntime as ort
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
        self.configs, self.sessions = {}, {}
        for path in sorted(pathlib.Path(repo).glob("*/config.pbtxt")):
            cfg = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
            if not include(cfg.name):
                continue
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            self.sessions[cfg.name] = ort.InferenceSession(str(path.parent / "1" / cfg.default_model_filename),
                                                           opts, providers=["CPUExecutionProvider"])
            self.configs[cfg.name] = cfg
        self.calls: collections.Counter = collections.Counter()  # model name -> infer requests served
        self.wire_bytes: collections.Counter = collections.Counter()  # model name -> tensor bytes sent inline
        self.regions: dict[str, tuple[str, int, int]] = {}  # registered system shared memory: name -> key, offset, size

    def register(self, name: str, key: str, offset: int, byte_size: int) -> None:
        if not pathlib.Path("/dev/shm", key.lstrip("/")).is_file():
            raise StubError(f"Unable to open shared memory region: '{key}'")
        self.regions[name] = (key, offset, byte_size)

    def from_region(self, name: str, offset: int, byte_size: int, dtype, shape) -> np.ndarray:
        """A tensor read from a registered region, as Triton maps /dev/shm/<key>."""
        if name not in self.regions:
            raise StubError(f"Unable to find system shared memory region: '{name}'")
        key, base, size = self.regions[name]
        if offset + byte_size > size:
            raise StubError(f"{name}: {byte_size} bytes at {offset} exceed the region's {size}")
        count = byte_size // np.dtype(dtype).itemsize
        return np.fromfile(f"/dev/shm/{key.lstrip('/')}", dtype, count, offset=base + offset).reshape(shape)

    def config(self, name: str):
        if name not in self.configs:
            raise StubError(f"Request for unknown model: '{name}' is not found")
        return self.configs[name]

    def infer(self, name: str, inputs: dict[str, np.ndarray], wanted: list[str] | None) -> dict[str, np.ndarray]:
        cfg = self.config(name)
        declared = {t.name: t for t in cfg.input}
        if set(inputs) != set(declared):
            raise StubError(f"{name}: expected inputs {sorted(declared)}, got {sorted(inputs)}")
        for key, arr in inputs.items():
            self._check(name, cfg, declared[key], arr)
        outs = [o.name for o in cfg.output]
        unknown = [w for w in wanted or () if w not in outs]
        if unknown:
            raise StubError(f"{name}: unknown outputs {unknown}")
        self.calls[name] += 1
        result = dict(zip(outs, self.sessions[name].run(outs, inputs)))
        return {k: result[k] for k in (wanted or outs)}

    @staticmethod
    def _check(model: str, cfg, decl, arr: np.ndarray) -> None:
        from tritonclient.grpc import model_config_pb2
        want_dtype = NUMPY_OF[model_config_pb2.DataType.Name(decl.data_type)[len("TYPE_"):]]
        dims = list(decl.dims)
        shape = list(arr.shape)
        if cfg.max_batch_size > 0:  # Triton: the leading dim is the batch, at most max_batch_size
            ok_batch = bool(shape) and 1 <= shape[0] <= cfg.max_batch_size
            shape = shape[1:]
        else:
            ok_batch = True
        fits = ok_batch and len(shape) == len(dims) and all(d in (-1, s) for d, s in zip(dims, shape))
        if arr.dtype != want_dtype or not fits:
            raise StubError(f"{model}: input {decl.name} {arr.dtype}{list(arr.shape)} does not match the config's "
                            f"{want_dtype}{dims} (max_batch_size {cfg.max_batch_size})")


# -- HTTP/REST (KServe v2 with the binary tensor extension) ---------------------------------------------
class _HttpHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as tritonclient's connection pool expects
    models: StubModels

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {"Content-Type": "application/json"}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, msg: str) -> None:
        self._send(400, json.dumps({"error": msg}).encode())

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if parts[:2] == ["v2", "health"]:
            return self._send(200)
        if parts[:2] == ["v2", "models"] and len(parts) == 4 and parts[3] == "ready":
            return self._send(200 if parts[2] in self.models.configs else 400)
        if parts[:2] == ["v2", "models"] and len(parts) == 4 and parts[3] == "config":
            from google.protobuf import json_format
            try:
                cfg = self.models.config(parts[2])
            except StubError as err:
                return self._error(str(err))
            return self._send(200, json.dumps(json_format.MessageToDict(cfg, preserving_proto_field_name=True)).encode())
        self._error(f"stub: unsupported GET {self.path}")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        parts = self.path.strip("/").split("/")
        if parts[:3] == ["v2", "systemsharedmemory", "region"] and len(parts) == 5:
            try:
                if parts[4] == "register":
                    r = json.loads(body)
                    self.models.register(parts[3], r["key"], r.get("offset", 0), r["byte_size"])
                else:
                    self.models.regions.pop(parts[3], None)
            except (StubError, KeyError, ValueError) as err:
                return self._error(str(err))
            return self._send(200)
        if not (parts[:2] == ["v2", "models"] and len(parts) == 4 and parts[3] == "infer"):
            return self._error(f"stub: unsupported POST {self.path}")
        try:
            header_len = int(self.headers.get("Inference-Header-Content-Length", len(body)))
            request = json.loads(body[:header_len])
            offset, inputs = header_len, {}
            for t in request["inputs"]:
                dtype, shape, params = NUMPY_OF[t["datatype"]], t["shape"], t.get("parameters", {})
                size = params.get("binary_data_size")
                if "shared_memory_region" in params:
                    inputs[t["name"]] = self.models.from_region(
                        params["shared_memory_region"], params.get("shared_memory_offset", 0),
                        params["shared_memory_byte_size"], dtype, shape)
                elif size is None:
                    inputs[t["name"]] = np.asarray(t["data"], dtype).reshape(shape)
                else:
                    inputs[t["name"]] = np.frombuffer(body[offset:offset + size], dtype).reshape(shape)
                    offset += size
            self.models.wire_bytes[parts[2]] += len(body) - header_len
            wanted = [o["name"] for o in request.get("outputs", [])] or None
            result = self.models.infer(parts[2], inputs, wanted)
        except (StubError, KeyError, ValueError) as err:
            return self._error(str(err))
        header = {"model_name": parts[2], "model_version": "1", "outputs": [
            {"name": k, "datatype": TRITON_DTYPES[str(v.dtype)], "shape": list(v.shape),
             "parameters": {"binary_data_size": v.nbytes}} for k, v in result.items()]}
        head = json.dumps(header).encode()
        self._send(200, head + b"".join(np.ascontiguousarray(v).tobytes() for v in result.values()),
                   {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": len(head)})


class HttpStub:
    """`with HttpStub(models) as stub:` — serves on 127.0.0.1:<free port>; `stub.url` for the client."""

    def __init__(self, models: StubModels):
        self.models = models
        handler = type("Handler", (_HttpHandler,), {"models": self.models})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "HttpStub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


# -- gRPC (GRPCInferenceService, raw tensor contents) ------------------------------------------------
class GrpcStub:
    """`with GrpcStub(models) as stub:` — the same models behind tritonclient's gRPC service definition."""

    def __init__(self, models: StubModels):
        import grpc
        from tritonclient.grpc import service_pb2, service_pb2_grpc
        self.models = models
        models_ = self.models

        class Servicer(service_pb2_grpc.GRPCInferenceServiceServicer):
            def ServerLive(self, request, context):
                return service_pb2.ServerLiveResponse(live=True)

            def ModelReady(self, request, context):
                return service_pb2.ModelReadyResponse(ready=request.name in models_.configs)

            def ModelConfig(self, request, context):
                try:
                    return service_pb2.ModelConfigResponse(config=models_.config(request.name))
                except StubError as err:
                    context.abort(grpc.StatusCode.NOT_FOUND, str(err))

            def SystemSharedMemoryRegister(self, request, context):
                try:
                    models_.register(request.name, request.key, request.offset, request.byte_size)
                except StubError as err:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
                return service_pb2.SystemSharedMemoryRegisterResponse()

            def SystemSharedMemoryUnregister(self, request, context):
                models_.regions.pop(request.name, None)
                return service_pb2.SystemSharedMemoryUnregisterResponse()

            def ModelInfer(self, request, context):
                try:
                    raw = iter(request.raw_input_contents)  # one entry per input not in shared memory
                    inputs = {}
                    for t in request.inputs:
                        dtype, shape, p = NUMPY_OF[t.datatype], list(t.shape), t.parameters
                        if "shared_memory_region" in p:
                            inputs[t.name] = models_.from_region(
                                p["shared_memory_region"].string_param, p["shared_memory_offset"].int64_param,
                                p["shared_memory_byte_size"].int64_param, dtype, shape)
                        else:
                            inputs[t.name] = np.frombuffer(next(raw), dtype).reshape(shape)
                    models_.wire_bytes[request.model_name] += sum(len(r) for r in request.raw_input_contents)
                    result = models_.infer(request.model_name, inputs, [o.name for o in request.outputs] or None)
                except (StubError, KeyError, ValueError, StopIteration) as err:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
                response = service_pb2.ModelInferResponse(model_name=request.model_name, model_version="1")
                for k, v in result.items():
                    out = response.outputs.add()
                    out.name, out.datatype = k, TRITON_DTYPES[str(v.dtype)]
                    out.shape.extend(v.shape)
                    response.raw_output_contents.append(np.ascontiguousarray(v).tobytes())
                return response

        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2),
                                  options=[("grpc.max_receive_message_length", 1 << 30),
                                           ("grpc.max_send_message_length", 1 << 30)])
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(), self.server)
        self.url = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"

    def __enter__(self) -> "GrpcStub":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop(grace=None).wait(10)

"""Helpers (no tests here): host-memory stand-ins for cuda-python's runtime API and TensorRT, so the
TensorRT backend's own logic (fixed-address buffers, uploads/downloads, device-to-device copies, the
guidance feature ring, identity buffers, CUDA-graph capture and replay) runs without a GPU. An
"engine" file holds the path of an ONNX graph, which ONNX Runtime executes on the emulated memory."""
from __future__ import annotations

import ctypes
import enum
import types

import numpy as np


class _Err(enum.IntEnum):
    cudaSuccess = 0


class FakeCudart(types.ModuleType):
    cudaMemcpyKind = enum.IntEnum("cudaMemcpyKind", "cudaMemcpyHostToDevice cudaMemcpyDeviceToHost "
                                  "cudaMemcpyDeviceToDevice")
    cudaStreamCaptureMode = enum.IntEnum("cudaStreamCaptureMode", "cudaStreamCaptureModeThreadLocal")

    def __init__(self):
        super().__init__("cuda.bindings.runtime")
        self.memory: dict[int, bytearray] = {}
        self.next_base = 1 << 32
        self.capturing: dict[int, list] = {}
        self.graph_launches = 0

    # memory
    def cudaSetDevice(self, device):
        return (_Err.cudaSuccess,)

    def cudaMalloc(self, nbytes):
        base = self.next_base
        self.next_base += 1 << 32
        self.memory[base] = bytearray(nbytes)
        return _Err.cudaSuccess, base

    def cudaFree(self, ptr):
        self.memory.pop(ptr, None)
        return (_Err.cudaSuccess,)

    def view(self, ptr: int, nbytes: int) -> memoryview:
        base = ptr & ~((1 << 32) - 1)
        offset = ptr - base
        buf = self.memory[base]
        assert offset + nbytes <= len(buf), "out-of-bounds device access"
        return memoryview(buf)[offset:offset + nbytes]

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):
        assert stream not in self.capturing, "copies are not captured in this backend's graphs"
        k = self.cudaMemcpyKind
        if kind == k.cudaMemcpyHostToDevice:
            self.view(dst, nbytes)[:] = ctypes.string_at(src, nbytes)
        elif kind == k.cudaMemcpyDeviceToHost:
            ctypes.memmove(dst, bytes(self.view(src, nbytes)), nbytes)
        else:
            self.view(dst, nbytes)[:] = bytes(self.view(src, nbytes))
        return (_Err.cudaSuccess,)

    # streams and graphs
    def cudaStreamCreate(self):
        return _Err.cudaSuccess, 7

    def cudaGetDeviceCount(self):
        return _Err.cudaSuccess, 1

    def cudaGetDeviceProperties(self, device):
        return _Err.cudaSuccess, types.SimpleNamespace(name=b"Emulated H100", major=9, minor=0)

    def cudaStreamSynchronize(self, stream):
        return (_Err.cudaSuccess,)

    def cudaStreamBeginCapture(self, stream, mode):
        self.capturing[stream] = []
        return (_Err.cudaSuccess,)

    def cudaStreamEndCapture(self, stream):
        return _Err.cudaSuccess, self.capturing.pop(stream)

    def cudaGraphInstantiate(self, graph, flags):
        return _Err.cudaSuccess, list(graph)

    def cudaGraphLaunch(self, graph_exec, stream):
        self.graph_launches += 1
        for launch in graph_exec:
            launch()
        return (_Err.cudaSuccess,)


class FakeTensorRT(types.ModuleType):
    """tensorrt's Logger / Runtime / engine / execution context, executing ONNX graphs with ORT."""

    def __init__(self, cudart: FakeCudart):
        super().__init__("tensorrt")
        self.__version__ = "10.0-emulated"
        cu = cudart

        class Logger:
            WARNING = 2

            def __init__(self, level):
                pass

        class Context:
            def __init__(self, session):
                self.session, self.addresses, self.shapes = session, {}, {}

            def set_tensor_address(self, name, ptr):
                self.addresses[name] = ptr

            def set_input_shape(self, name, shape):
                self.shapes[name] = tuple(shape)

            def execute_async_v3(self, stream):
                shapes = dict(self.shapes)  # a captured graph keeps the shapes of its capture
                if stream in cu.capturing:
                    cu.capturing[stream].append(lambda: self._run(shapes))
                else:
                    self._run(shapes)
                return True

            def _run(self, shapes):
                feeds = {}
                for i in self.session.get_inputs():
                    dtype = np.float16 if "float16" in i.type else np.float32
                    n = int(np.prod(shapes[i.name])) * np.dtype(dtype).itemsize
                    feeds[i.name] = np.frombuffer(bytes(cu.view(self.addresses[i.name], n)), dtype).reshape(
                        shapes[i.name])
                for o, value in zip(self.session.get_outputs(), self.session.run(None, feeds)):
                    data = np.ascontiguousarray(value).tobytes()
                    cu.view(self.addresses[o.name], len(data))[:] = data

        class Engine:
            def __init__(self, onnx_path):
                import onnxruntime as ort
                self.session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])

            def create_execution_context(self):
                return Context(self.session)

        class Runtime:
            def __init__(self, logger):
                pass

            def deserialize_cuda_engine(self, data):
                return Engine(data.decode())

        self.Logger, self.Runtime = Logger, Runtime


def install(monkeypatch) -> FakeCudart:
    """Put the stand-ins where trt_backend imports them from; returns the emulated runtime API."""
    import sys
    cudart = FakeCudart()
    cuda = types.ModuleType("cuda")
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime, cuda.bindings = cudart, bindings
    for name, module in (("cuda", cuda), ("cuda.bindings", bindings), ("cuda.bindings.runtime", cudart),
                         ("tensorrt", FakeTensorRT(cudart))):
        monkeypatch.setitem(sys.modules, name, module)
    return cudart

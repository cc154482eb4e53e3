"""open_backend(): a backend by name from Python, with its options checked (one line naming what is wrong).
The ONNX Runtime opener against the directly constructed backend is in test_backends_ort.py."""
import numpy as np
import pytest

from engine.backends.registry import OPENERS, backend_names, open_backend
from engine.errors import InputError


def test_every_registered_backend_resolves_to_a_callable():
    import functools
    import importlib
    for name, target in OPENERS.items():
        module, attribute = target.split(":")
        try:
            mod = importlib.import_module(module)
        except ImportError as err:  # e.g. torch missing for the torch backend
            pytest.skip(f"{module}: {err}")
        assert callable(functools.reduce(getattr, attribute.split("."), mod)), name
    assert backend_names() == ("torch", "onnxruntime", "tensorrt", "triton")


def test_torch_backend_in_one_line(tiny_weights):
    backend = open_backend("torch", weights=tiny_weights, device="cpu")
    assert backend.info.name == "torch" and backend.info.image_size == 128
    assert backend.info.precision == "float32"
    rng = np.random.default_rng(0)
    identity = backend.encode_reference(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), (128, 128))
    assert identity is not None


@pytest.mark.parametrize("name, options, needle", [
    ("nope", {}, "expected one of torch, onnxruntime, tensorrt, triton"),
    ("torch", {"precision": "int8"}, "precision 'int8'"),
    ("torch", {"precision": "fp16", "device": "cpu"}, "needs a GPU device"),
    ("onnxruntime", {}, "--onnx DIR"),
    ("tensorrt", {}, "--engines DIR"),
    ("tensorrt", {"engines": "x", "device": "cpu"}, "CUDA device"),
    ("triton", {}, "--triton-url host:port"),
    ("triton", {"url": "ftp://h:1"}, "expected host:port, http://host:port or grpc://host:port"),
])
def test_bad_requests_are_named(name, options, needle):
    with pytest.raises(InputError, match=needle):
        open_backend(name, **options)

"""The Triton client backend (engine/backends/triton_backend.py) against a KServe-v2 STUB server.

NOT a Triton test: no Triton server can run on this machine. tests/kserve_stub.py speaks the KServe v2
protocol (HTTP with binary tensors, and gRPC) for the few calls the client makes, and runs the
repository's ONNX models with ONNX Runtime. That checks the protocol shape only: the right models,
names, dtypes, shapes and bytes cross the wire. The stub runs the very graphs the ONNX Runtime backend
runs, one thread each, so every stage must agree bit for bit (tolerance 0).
"""
from __future__ import annotations

import os
import pathlib
import socket

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc,http] not installed (pip install -e '.[triton]')")
pytest.importorskip("tritonclient.http", reason="tritonclient[http] not installed (pip install -e '.[triton]')")

from kserve_stub import GrpcStub, HttpStub, StubModels  # noqa: E402
from helpers.export_support import tiny_export, tiny_triton_repo  # noqa: E402

pytestmark = pytest.mark.slow  # an ONNX export of the tiny model

SIZE = 128
STUBS = {"http": HttpStub, "grpc": GrpcStub}


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return tiny_export(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def stub_models(tmp_path_factory):
    return StubModels(tiny_triton_repo(tmp_path_factory.getbasetemp()), include=lambda n: n.endswith("_fp32"))


@pytest.fixture(scope="module")
def text():
    from engine.preprocess import read_text_embedding
    from engine.weights.tiny import ensure_tiny_weights
    return read_text_embedding(ensure_tiny_weights())


@pytest.fixture(scope="module")
def ort_backend(export_dir, text):
    from engine.backends.ort_backend import OrtBackend
    return OrtBackend.from_export_dir(export_dir, text, threads=1)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_each_stage_equals_the_ort_backend_through_the_stub(protocol, stub_models, ort_backend):
    from engine.backends.registry import open_backend
    from engine.weights.tiny import ensure_tiny_weights
    rng = np.random.default_rng(0)
    portrait = rng.integers(0, 256, (90, 100, 3), dtype=np.uint8)
    maps = {t: rng.integers(0, 256, (5, SIZE, SIZE, 3), dtype=np.uint8) for t in ("depth", "normal", "render")}
    x = rng.standard_normal((2, 4, 5, 16, 16)).astype(np.float32)
    t = np.array([[999, 749, 499, 249, 10]] * 2)
    keep = np.array([False, True])
    before, wire_before = dict(stub_models.calls), dict(stub_models.wire_bytes)
    with STUBS[protocol](stub_models) as stub:
        url = f"grpc://{stub.url}" if protocol == "grpc" else stub.url  # no scheme: HTTP
        tb = open_backend("triton", url=url, weights=ensure_tiny_weights())
        try:
            assert tb.info.name == "triton" and tb.info.device == f"{protocol}://{stub.url}"
            assert (tb.info.max_frames, tb.info.image_size) == (ort_backend.info.max_frames, SIZE)
            assert tb.specs == ort_backend.specs  # the graph specs came over the wire from the configs
            it, io = tb.encode_reference(portrait, (SIZE, SIZE)), ort_backend.encode_reference(portrait, (SIZE, SIZE))
            assert sorted(it) == sorted(io) and all(np.array_equal(it[k], io[k]) for k in io)
            gt, go = tb.encode_guidance(maps), ort_backend.encode_guidance(maps)
            np.testing.assert_array_equal(np.stack(gt), np.stack(go))
            np.testing.assert_array_equal(tb.denoise(x, t, gt, it, keep), ort_backend.denoise(x, t, go, io, keep))
            latents = x[0].transpose(1, 0, 2, 3)
            np.testing.assert_array_equal(tb.decode(latents), ort_backend.decode(latents))
            # a loopback server: the K/V went once into shared memory, not with the UNet call
            assert it.regions and set(stub_models.regions) == {r for r, _, _ in it.regions.values()}
            unet_wire = stub_models.wire_bytes["denoising_unet_fp32"] - wire_before.get("denoising_unet_fp32", 0)
            inline = (x, t.astype(np.float32), tb.text, np.stack(gt), keep.astype(np.float32))  # all but the K/V
            assert unet_wire == sum(a.nbytes for a in inline) < sum(a.nbytes for a in it.values())
        finally:
            tb.close()
        assert not stub_models.regions and not list(pathlib.Path("/dev/shm").glob(f"mprt_identity_{os.getpid()}_*"))
    served = {k: v - before.get(k, 0) for k, v in stub_models.calls.items()}
    assert served == {"vae_encoder_fp32": 1, "reference_kv_fp32": 1, "guidance_encoder_fp32": 1,
                      "denoising_unet_fp32": 1, "vae_decoder_fp32": 1}


def test_runtime_streams_through_the_stub_like_on_ort(stub_models, ort_backend, text):
    from engine.backends.triton_backend import TritonBackend
    from engine.runtime.presets import preset_settings
    from engine.runtime.runner import StreamRuntime
    from engine.runtime.sources import MapsSource
    from engine.runtime.sinks import CollectingSink as Collect
    rng = np.random.default_rng(1)
    portrait = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    maps = {t: rng.integers(0, 256, (6, SIZE, SIZE, 3), dtype=np.uint8) for t in ("depth", "normal", "render")}
    outs = []
    with HttpStub(stub_models) as stub:  # K/V on the wire with every UNet call, as with a remote server
        for backend in (TritonBackend(stub.url, text, shared_memory=False), ort_backend):
            rt = StreamRuntime(backend, preset_settings("realtime", steps=2, frames_per_stage=2), SIZE)
            rt.set_identity(portrait)
            sink = Collect()
            rt.run(MapsSource(maps), [sink])
            outs.append(np.stack(sink.frames))
    assert outs[0].shape == (6, SIZE, SIZE, 3)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_unreachable_server_and_missing_model_are_one_clear_line(stub_models, text):
    from engine.backends.triton_backend import TritonBackend, TritonError
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for protocol in ("http", "grpc"):
        with pytest.raises(TritonError, match=rf"triton 127.0.0.1:{port}: .*") as err:
            TritonBackend(f"127.0.0.1:{port}", text, protocol=protocol, timeout_s=5)
        assert "\n" not in str(err.value)
    partial = StubModels.__new__(StubModels)  # the same models without the VAE decoder
    partial.configs = {k: v for k, v in stub_models.configs.items() if k != "vae_decoder_fp32"}
    partial.sessions, partial.calls = stub_models.sessions, stub_models.calls
    with HttpStub(partial) as stub:
        with pytest.raises(TritonError, match="model vae_decoder_fp32 is not ready"):
            TritonBackend(stub.url, text)
        with pytest.raises(TritonError, match="neither reference_kv_fp16 nor reference_unet_fp16"):
            TritonBackend(stub.url, text, precision="fp16")


def test_shared_memory_the_server_cannot_map_falls_back_to_the_wire(stub_models, text, monkeypatch, capsys):
    """As Triton in a container without the host's /dev/shm: registration fails. Automatic mode notes it
    and sends the K/V inline; asked for explicitly, it is one clear error. The region is freed either way."""
    from engine.backends.triton_backend import TritonBackend, TritonError
    from kserve_stub import StubError

    def refuse(name, key, offset, byte_size):
        raise StubError(f"Unable to open shared memory region: '{key}'")
    monkeypatch.setattr(stub_models, "register", refuse)
    portrait = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    with HttpStub(stub_models) as stub:
        with pytest.raises(TritonError, match="identity in shared memory: .*Unable to open shared memory region"):
            TritonBackend(stub.url, text, shared_memory=True).encode_reference(portrait, (SIZE, SIZE))
        tb = TritonBackend(stub.url, text)
        identity = tb.encode_reference(portrait, (SIZE, SIZE))
        assert not hasattr(identity, "regions") and "go with every UNet call instead" in capsys.readouterr().err
        tb.close()
    assert not list(pathlib.Path("/dev/shm").glob(f"mprt_identity_{os.getpid()}_*"))


def test_mprt_animate_with_backend_triton_equals_backend_onnxruntime(stub_models, export_dir, tmp_path):
    from PIL import Image

    from engine.cli import main
    from engine.guidance.folders import write_guidance_folders
    rng = np.random.default_rng(5)
    write_guidance_folders(tmp_path / "g", {t: rng.integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8)
                                            for t in ("depth", "normal", "render")})
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    common = ["animate", "--source", str(tmp_path / "p.png"), "--guidance", str(tmp_path / "g"),
              "--preset", "realtime", "--steps", "1"]
    frames = {}
    with GrpcStub(stub_models) as stub:
        for name, backend in (("triton", ["--backend", "triton", "--triton-url", f"grpc://{stub.url}"]),
                              ("ort", ["--backend", "onnxruntime", "--onnx", str(export_dir)])):
            assert main(common + backend + ["--frames-dir", str(tmp_path / name)]) == 0
            frames[name] = [np.asarray(Image.open(p)) for p in sorted((tmp_path / name).glob("*.png"))]
    assert len(frames["triton"]) == 4
    assert all(np.array_equal(a, b) for a, b in zip(frames["triton"], frames["ort"]))

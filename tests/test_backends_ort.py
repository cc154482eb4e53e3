"""ONNX Runtime backend (CPU) against the torch backend, on the tiny model exported at 128 px by
export/ (graph I/O from engine/graph_specs.py). Tolerances: guidance features and v 1e-4 absolute,
reference K/V 2e-3 relative to their scale (the reference features are fp16-rounded, networks.md,
so a value on a rounding boundary may round the other way), decoded frames within 1 level."""
import types

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow  # an ONNX export of the tiny model, CLI runs

pytest.importorskip("onnxruntime")
SIZE = 128


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    from engine.preprocess import read_text_embedding
    from engine.backends.ort_backend import OrtBackend
    from engine.backends.torch_backend import TorchBackend
    from engine.graph_specs import AxisRange, ExportPlan
    from engine.model import MagicPortraitModel
    from engine.weights.tiny import ensure_tiny_weights
    from export import exporter
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = MagicPortraitModel.from_weights(ensure_tiny_weights())
    out = tmp_path_factory.mktemp("onnx")
    # with the cross-session graph, at most 3 streams per call (4 streams below take two calls)
    plan = ExportPlan(image_size=(SIZE, SIZE), frames=AxisRange(1, 8, 16), extra_graphs=("denoising_unet_streams",),
                      streams=AxisRange(1, 2, 3))
    exporter.export_all(model, plan, out, exporter.ExportOptions(slim=False, parity_frames=()), progress=lambda s: None)
    text = read_text_embedding(ensure_tiny_weights())
    ort = OrtBackend.from_export_dir(out, text, threads=1)
    ort.export_dir = out
    yield TorchBackend(model), ort
    torch.set_num_threads(threads)


def test_each_stage_matches_torch(backends):
    tb, ob = backends
    rng = np.random.default_rng(0)
    portrait = rng.integers(0, 256, (90, 100, 3), dtype=np.uint8)
    it, io = tb.encode_reference(portrait, (SIZE, SIZE)), ob.encode_reference(portrait, (SIZE, SIZE))
    for i, (k, v) in enumerate(it):
        for name, ref in ((f"ref_k_{i:02d}", k), (f"ref_v_{i:02d}", v)):
            scale = float(ref.abs().max())
            assert np.abs(io[name] - ref.numpy()).max() <= 2e-3 * scale, name
    maps = {t: rng.integers(0, 256, (5, SIZE, SIZE, 3), dtype=np.uint8) for t in ("depth", "normal", "render")}
    gt, go = tb.encode_guidance(maps), ob.encode_guidance(maps)
    assert len(go) == 5
    np.testing.assert_allclose(np.stack(go), torch.stack(gt).numpy(), atol=1e-4, rtol=0)
    x = rng.standard_normal((2, 4, 5, 16, 16)).astype(np.float32)
    t = np.array([[999, 749, 499, 249, 10]] * 2)
    keep = np.array([False, True])
    np.testing.assert_allclose(ob.denoise(x, t, go, it_as_ort(it), keep), tb.denoise(x, t, gt, it, keep),
                               atol=1e-4, rtol=0)
    latents = x[0].transpose(1, 0, 2, 3)
    assert np.abs(ob.decode(latents).astype(int) - tb.decode(latents).astype(int)).max() <= 1


def it_as_ort(torch_kv):
    """The torch identity in the ORT backend's form, so the UNet comparison isolates the UNet."""
    return {f"ref_{kv}_{i:02d}": t.numpy() for i, pair in enumerate(torch_kv) for kv, t in zip("kv", pair)}


def test_runtime_on_ort_matches_runtime_on_torch(backends):
    from engine.runtime.presets import preset_settings
    from engine.runtime.runner import StreamRuntime
    from engine.runtime.sources import MapsSource
    from engine.runtime.sinks import CollectingSink as Collect
    rng = np.random.default_rng(1)
    portrait = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    maps = {t: rng.integers(0, 256, (6, SIZE, SIZE, 3), dtype=np.uint8) for t in ("depth", "normal", "render")}
    outs = []
    for backend in backends:
        rt = StreamRuntime(backend, preset_settings("realtime", steps=3, frames_per_stage=2), SIZE)
        rt.set_identity(portrait)
        sink = Collect()
        rt.run(MapsSource(maps), [sink])
        outs.append(np.stack(sink.frames).astype(int))
    assert outs[0].shape == outs[1].shape == (6, SIZE, SIZE, 3)
    diff = np.abs(outs[0] - outs[1])
    assert diff.max() <= 2 and diff.mean() < 0.01, (diff.max(), diff.mean())


def test_animate_cli_on_onnxruntime(backends, tmp_path):
    from PIL import Image

    from engine.cli import main
    from engine.guidance.folders import write_guidance_folders
    from engine.io.video_writer import read_video_frames
    rng = np.random.default_rng(2)
    maps = {t: rng.integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8) for t in ("depth", "normal", "render")}
    write_guidance_folders(tmp_path / "g", maps)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    out = tmp_path / "o.mp4"
    common = ["animate", "--source", str(tmp_path / "p.png"), "--guidance", str(tmp_path / "g"), "--preset",
              "realtime", "--steps", "2", "--backend", "onnxruntime", "--onnx", str(backends[1].export_dir)]
    assert main(common + ["--out", str(out)]) == 0
    assert read_video_frames(out)[0].shape == (3, SIZE, SIZE, 3)
    frames_dir = tmp_path / "frames"
    assert main(common + ["--frames-dir", str(frames_dir), "--size", "256"]) == 2  # not the export's size
    assert not frames_dir.exists() and not list(tmp_path.glob(".*partial*"))


def test_tensorrt_backend_logic_on_emulated_cuda_matches_ort(backends, tmp_path, monkeypatch):
    """TrtBackend over emulated cuda-python + TensorRT (tests/helpers/fake_cuda.py) running the same
    ONNX graphs: buffers, copies, the feature ring and CUDA-graph replay must reproduce ORT exactly
    (same graphs, same numbers: 1e-6), here and through the runtime."""
    import hashlib

    from engine.backends.trt_backend import TrtBackend
    from engine.graph_specs import read_export_manifest
    from helpers.fake_cuda import install
    cudart = install(monkeypatch)
    ort = backends[1]
    from engine.engine_manifest import EngineManifest, EngineMismatchError, write_manifest
    for spec in read_export_manifest(str(ort.export_dir)).specs:
        fake = tmp_path / f"{spec.name}.{spec.precision}.engine"
        fake.write_text(str(ort.export_dir / spec.file_name))  # the emulated engine runs this graph
        write_manifest(EngineManifest(
            graph=spec, io=(), tensorrt={"module": "tensorrt", "version": "10.0-emulated"},
            target={"gpu_name": "Emulated H100", "compute_capability": "9.0"},
            onnx={"file": spec.file_name,
                  "sha256": hashlib.sha256((ort.export_dir / spec.file_name).read_bytes()).hexdigest()},
            engine={"file": fake.name, "bytes": fake.stat().st_size}, build={}, rebuild_command="mprt build"), fake)
    # A small feature ring, to see its reuse detected below.
    trt = TrtBackend.from_engine_dir(tmp_path, ort.text, precision="fp32", cuda_graphs=True, feature_slots=12)
    rng = np.random.default_rng(3)
    portrait = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    it, io = trt.encode_reference(portrait, (SIZE, SIZE)), ort.encode_reference(portrait, (SIZE, SIZE))
    maps = {t: rng.integers(0, 256, (5, SIZE, SIZE, 3), dtype=np.uint8) for t in ("depth", "normal", "render")}
    gt, go = trt.encode_guidance(maps), ort.encode_guidance(maps)
    x = rng.standard_normal((2, 4, 5, 16, 16)).astype(np.float32)
    t = np.array([[999, 749, 499, 249, 10]] * 2)
    keep = np.array([False, True])
    for _ in range(2):  # capture, then replay
        np.testing.assert_allclose(trt.denoise(x, t, gt, it, keep), ort.denoise(x, t, go, io, keep), atol=1e-6)
    assert cudart.graph_launches == 2
    np.testing.assert_array_equal(trt.decode(x[0].transpose(1, 0, 2, 3)), ort.decode(x[0].transpose(1, 0, 2, 3)))
    trt.encode_guidance({k: np.repeat(v, 2, axis=0) for k, v in maps.items()})  # 10 more: slots 0..4 reused
    with pytest.raises(RuntimeError, match="feature slot"):
        trt.denoise(x, t, gt, it, keep)

    from engine.runtime.presets import preset_settings
    from engine.runtime.runner import StreamRuntime
    from engine.runtime.sources import MapsSource
    from engine.runtime.sinks import CollectingSink as Collect
    outs = []
    for backend in (trt, ort):
        rt = StreamRuntime(backend, preset_settings("realtime", steps=2, frames_per_stage=2), SIZE)
        rt.set_identity(portrait)
        sink = Collect()
        rt.run(MapsSource(maps), [sink])
        outs.append(np.stack(sink.frames))
    np.testing.assert_array_equal(outs[0], outs[1])
    # several streams in one launch: each sample's guidance rows and identity copied into its place
    two = {k: v[:2] for k, v in maps.items()}  # 4 streams x 2 frames fit the 12-slot feature ring
    x, t, keep, guidance, ids = streams_inputs(7, trt, portrait, two)
    *_, oguidance, oids = streams_inputs(7, ort, portrait, two)
    launches = cudart.graph_launches
    np.testing.assert_allclose(trt.denoise_batch(x, t, guidance, ids, keep),
                               ort.denoise_batch(x, t, oguidance, oids, keep), atol=1e-6)
    assert cudart.graph_launches == launches + 2  # 4 streams, at most 3 per call
    trt.close()
    monkeypatch.setattr(cudart, "cudaGetDeviceProperties",
                        lambda d: (0, types.SimpleNamespace(name=b"Other GPU", major=8, minor=9)))
    with pytest.raises(EngineMismatchError, match="compute capability"):
        TrtBackend.from_engine_dir(tmp_path, ort.text, precision="fp32")


def streams_inputs(seed, backend, portrait, maps):
    """4 streams of F frames (the maps'): two identities, each stream its own guidance rows, timesteps
    and CFG row."""
    rng = np.random.default_rng(seed)
    other = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    ids = [backend.encode_reference(p, (SIZE, SIZE)) for p in (portrait, other)]
    guidance = [backend.encode_guidance({k: np.roll(v, s, axis=0) for k, v in maps.items()}) for s in range(4)]
    frames = len(guidance[0])
    x = rng.standard_normal((4, 4, frames, 16, 16)).astype(np.float32)
    t = np.sort(rng.integers(0, 1000, (4, frames)), axis=1)[:, ::-1]  # staggered, oldest least noisy
    keep = np.array([True, False, True, True])
    return x, t, keep, guidance, [ids[0], ids[1], ids[1], ids[0]]


def test_cross_session_batch_matches_each_stream_alone(backends):
    """The exported denoising_unet_streams graph: one call for several streams (own identity, guidance,
    timesteps, CFG row) gives each what the single-stream graph gives it alone (1e-5), and what the
    torch backend's batched call gives (1e-4)."""
    from engine.graphs import denoising_unet_streams
    tb, ob = backends
    assert denoising_unet_streams.NAME in ob.specs
    rng = np.random.default_rng(5)
    portrait = rng.integers(0, 256, (80, 70, 3), dtype=np.uint8)
    maps = {t: rng.integers(0, 256, (5, SIZE, SIZE, 3), dtype=np.uint8) for t in ("depth", "normal", "render")}
    x, t, keep, guidance, ids = streams_inputs(6, ob, portrait, maps)
    batched = ob.denoise_batch(x, t, guidance, ids, keep)
    alone = np.concatenate([ob.denoise(x[s:s + 1], t[s:s + 1], guidance[s], ids[s], keep[s:s + 1]) for s in range(4)])
    np.testing.assert_allclose(batched, alone, atol=1e-5, rtol=0)
    assert np.abs(batched[0] - batched[3]).max() > 1e-3  # the streams really differ
    *_, tguidance, tids = streams_inputs(6, tb, portrait, maps)
    np.testing.assert_allclose(batched, tb.denoise_batch(x, t, tguidance, tids, keep), atol=1e-4, rtol=0)


def test_tensorrt_backend_on_a_gpu_matches_ort(backends, tmp_path):
    """Real TensorRT (fp32 engines, FP16 off) vs ONNX Runtime on the same graphs: v within 5e-3 of its
    scale (TensorRT may use TF32), decoded frames within 2 levels. Skips without GPU / TensorRT."""
    pytest.importorskip("tensorrt", reason="tensorrt is not installed (no GPU on this machine)")
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        cudart = pytest.importorskip("cuda.cudart", reason="cuda-python is not installed")
    err, count = cudart.cudaGetDeviceCount()
    if int(err) != 0 or count == 0:
        pytest.skip("no CUDA device")
    from engine.backends.trt_backend import TrtBackend
    from export import trt_build as build
    ort = backends[1]
    build.build_all(ort.export_dir, tmp_path, build.BuildOptions(backend="tensorrt", fp16=False),
                    progress=lambda s: None)
    trt = TrtBackend.from_engine_dir(tmp_path, ort.text, precision="fp32")
    rng = np.random.default_rng(4)
    portrait = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    maps = {t: rng.integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8) for t in ("depth", "normal", "render")}
    it, io = trt.encode_reference(portrait, (SIZE, SIZE)), ort.encode_reference(portrait, (SIZE, SIZE))
    gt, go = trt.encode_guidance(maps), ort.encode_guidance(maps)
    x = rng.standard_normal((2, 4, 4, 16, 16)).astype(np.float32)
    t = np.array([[999, 500, 250, 10]] * 2)
    keep = np.array([False, True])
    want = ort.denoise(x, t, go, io, keep)
    for _ in range(2):  # CUDA graph capture, then replay
        assert np.abs(trt.denoise(x, t, gt, it, keep) - want).max() <= 5e-3 * np.abs(want).max()
    lat = x[0].transpose(1, 0, 2, 3)
    assert np.abs(trt.decode(lat).astype(int) - ort.decode(lat).astype(int)).max() <= 2
    trt.close()


def test_open_backend_gives_the_same_onnxruntime_backend(backends):
    from engine.backends.registry import open_backend
    from engine.weights.tiny import ensure_tiny_weights
    ob = backends[1]
    opened = open_backend("onnxruntime", onnx=ob.export_dir, weights=ensure_tiny_weights(), threads=1)
    assert opened.info == ob.info and opened.info.image_size == SIZE
    latents = np.random.default_rng(4).standard_normal((2, 4, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(opened.decode(latents), ob.decode(latents))

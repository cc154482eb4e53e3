"""Failures end in one clear line and clean up: OSErrors (a disk filling up mid-run), SIGTERM (a
valid shorter video, like Ctrl-C), a source failing mid-stream (exit 1), broken ONNX exports, engine
manifests and hosts without a GPU; a long clip's grid is streamed, not kept."""
import hashlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers.cli_inputs import write_cli_inputs
from engine.cli import main
from helpers.runtime_fakes import FrameLocalBackend

TESTS = pathlib.Path(__file__).resolve().parent


class NoiseBackend(FrameLocalBackend):
    """FrameLocalBackend whose frames are 64x64 noise (PNG frames that do not compress)."""

    def decode(self, latents):
        rng = np.random.default_rng(int(abs(latents).sum() * 1000) % 2**32)
        return rng.integers(0, 256, (len(latents), 64, 64, 3), dtype=np.uint8)


@pytest.fixture
def fake_backend(monkeypatch):
    import engine.cli.streaming as streaming
    monkeypatch.setattr(streaming, "build_backend", lambda args: (NoiseBackend(), 64))


@pytest.fixture
def inputs(tmp_path):
    return write_cli_inputs(tmp_path, frames=8, seed=2)


def animate(d, *extra):
    return ["animate", "--source", str(d / "portrait.png"), "--guidance", str(d / "guidance"), "--size", "64",
            "--preset", "realtime", "--steps", "2", *map(str, extra)]


def last_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1] if lines else ""


def test_os_errors_are_one_line(monkeypatch, capsys):
    import engine.cli.convert_flame as convert

    def fail(args):
        raise IsADirectoryError(21, "Is a directory", "/data/flame.npz")
    monkeypatch.setattr(convert, "run", fail)  # registered when main() builds its parser
    assert main(["convert-flame", "--pkl", "x.pkl", "--out", "y.npz"]) == 2
    assert last_error(capsys) == "mprt convert-flame: error: /data/flame.npz: Is a directory"


def test_disk_filling_up_mid_run_is_one_line_and_leaves_nothing(inputs, fake_backend, capsys, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        # Room for the first frame (checked up front), not for all 8 noise frames (~12 kB each) + the video.
        (small / "filler").write_bytes(b"\0" * (100 << 10))
        rc = main(animate(inputs, "--frames-dir", small / "frames", "--out", small / "o.mp4"))
        err = last_error(capsys)
        assert rc == 2 and err.startswith("mprt animate: error: ") and "No space left on device" in err, err
        assert sorted(p.name for p in small.iterdir()) == ["filler"]  # temp frames and video removed
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_source_failing_mid_stream_exits_1_with_a_valid_shorter_video(inputs, fake_backend, capsys):
    from engine.io.video_writer import read_video_frames
    (inputs / "guidance" / "normal" / "frame_0005.png").write_text("corrupt")
    rc = main(animate(inputs, "--out", inputs / "o.mp4"))
    err = capsys.readouterr().err
    assert rc == 1 and "source stopped after 5 frames" in err and "frame_0005.png" in err
    frames, _ = read_video_frames(inputs / "o.mp4")
    assert 1 <= len(frames) <= 5


SLOW_RUN = """
import sys, time
sys.path.insert(0, {tests!r})
import engine.cli.streaming as streaming
from test_cli_failures import NoiseBackend

class Slow(NoiseBackend):
    def denoise(self, *args):
        time.sleep(0.3)
        return super().denoise(*args)

streaming.build_backend = lambda args: (Slow(), 64)
from engine.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_ends_like_ctrl_c_with_a_valid_shorter_video(inputs, tmp_path):
    from engine.guidance.folders import write_guidance_folders
    from engine.io.video_writer import read_video_frames
    rng = np.random.default_rng(3)
    write_guidance_folders(tmp_path / "long", {t: rng.integers(0, 256, (200, 64, 64, 3), dtype=np.uint8)
                                               for t in ("depth", "normal", "render")})
    script = tmp_path / "slow_run.py"
    script.write_text(SLOW_RUN.format(tests=str(TESTS)))
    out = tmp_path / "out" / "o.mp4"
    out.parent.mkdir()
    argv = [sys.executable, str(script), "animate", "--source", str(inputs / "portrait.png"), "--guidance",
            str(tmp_path / "long"), "--size", "64", "--preset", "realtime", "--steps", "2", "--out", str(out),
            "--frames-dir", str(tmp_path / "out" / "frames")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not list(out.parent.glob(".o.mp4.*.partial.mp4")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    time.sleep(2)  # a few more frames
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err
    assert "interrupted (SIGTERM)" in err.strip().splitlines()[-1]
    frames, _ = read_video_frames(out)
    pngs = sorted((tmp_path / "out" / "frames").glob("frame_*.png"))
    assert 1 <= len(frames) < 200 and len(pngs) == len(frames)
    assert sorted(p.name for p in out.parent.iterdir()) == ["frames", "o.mp4"]  # no temporary files left


def test_grid_is_streamed_not_kept(inputs, tmp_path):
    """A long clip's grid holds only the frames in flight (it used to keep every frame's maps and output)."""
    from engine.runtime.presets import preset_settings
    from engine.runtime.runner import StreamRuntime
    from engine.runtime.sinks import GridSink
    from engine.runtime.sources import MapsSource, RecordingSource
    n = 60
    maps = {t: np.full((n, 64, 64, 3), 9, np.uint8) for t in ("depth", "normal", "render")}
    recorder = RecordingSource(MapsSource(maps))
    held = []

    class Watch(GridSink):
        def write(self, index, frame):
            held.append(recorder.held())
            super().write(index, frame)
    rt = StreamRuntime(NoiseBackend(), preset_settings("realtime", steps=2), size=64)
    rt.set_identity(np.zeros((64, 64, 3), np.uint8))
    report = rt.run(recorder, [Watch(tmp_path / "grid.mp4", 24, np.zeros((64, 64, 3), np.uint8), recorder)])
    from engine.io.video_writer import read_video_frames
    assert report["frames_out"] == n and read_video_frames(tmp_path / "grid.mp4")[0].shape == (n, 64, 5 * 64, 3)
    assert max(held) <= 12 and recorder.held() == 0  # bounded by the frames in flight, not by n


# -- graph backends --------------------------------------------------------------------------------

def _fake_export(tmp_path, sha_of=None, drop_key=None):
    """An export.json for the tiny model whose graph files are garbage (and hashes match them unless
    sha_of says otherwise)."""
    from engine.graph_specs import AxisRange, ExportPlan
    from engine.graphs import build_specs
    from engine.networks.config import tiny_config
    plan = ExportPlan(image_size=(128, 128), frames=AxisRange(1, 4, 8))
    specs = build_specs(tiny_config(), plan)
    out = tmp_path / "onnx"
    out.mkdir()
    reports = []
    for spec in specs:
        data = f"not an onnx graph: {spec.name}".encode()
        (out / spec.file_name).write_bytes(data)
        report = {"file": spec.file_name, "bytes": len(data),
                  "sha256": hashlib.sha256(sha_of or data).hexdigest()}
        report.pop(drop_key, None)
        reports.append(report)
    (out / "export.json").write_text(json.dumps({"format": 1, "plan": plan.to_json(),
                                                 "graphs": [s.to_json() for s in specs], "reports": reports}))
    return out


@pytest.mark.parametrize("kind, needle", [
    ("corrupt", "onnxruntime cannot load this graph"),
    ("modified", "content differs from export.json's sha256"),
    ("no-sha", "not a valid export manifest (KeyError"),
])
def test_broken_onnx_exports_are_one_line(inputs, tmp_path, capsys, kind, needle):
    pytest.importorskip("onnxruntime")
    onnx = _fake_export(tmp_path, sha_of=b"other" if kind == "modified" else None,
                        drop_key="sha256" if kind == "no-sha" else None)
    rc = main(["animate", "--source", str(inputs / "portrait.png"), "--guidance", str(inputs / "guidance"),
               "--out", str(tmp_path / "o.mp4"), "--backend", "onnxruntime", "--onnx", str(onnx)])
    err = last_error(capsys)
    assert rc == 2 and err.startswith("mprt animate: error: ") and needle in err, err
    assert not (tmp_path / "o.mp4").exists()


def test_tensorrt_on_a_host_without_gpu_is_one_line(inputs, tmp_path, capsys, monkeypatch):
    from helpers.fake_cuda import install
    cudart = install(monkeypatch)
    import importlib.machinery
    for name in ("tensorrt", "cuda", "cuda.bindings", "cuda.bindings.runtime"):  # torch's lazy imports look for specs
        sys.modules[name].__spec__ = importlib.machinery.ModuleSpec(name, None)
    monkeypatch.setattr(cudart, "cudaGetDeviceCount", lambda: (100, 0), raising=False)
    rc = main(["animate", "--source", str(inputs / "portrait.png"), "--guidance", str(inputs / "guidance"),
               "--out", str(tmp_path / "o.mp4"), "--backend", "tensorrt", "--engines", str(tmp_path)])
    err = last_error(capsys)
    assert rc == 2 and "--backend tensorrt: no usable NVIDIA GPU 0 on this host" in err, err


def test_engine_manifest_missing_an_inner_key_is_refused_when_read(tmp_path):
    from engine.engine_manifest import EngineManifestError, read_manifest
    from engine.graph_specs import AxisRange, ExportPlan
    from engine.graphs import build_specs
    from engine.networks.config import tiny_config
    spec = build_specs(tiny_config(), ExportPlan(image_size=(128, 128), frames=AxisRange(1, 4, 8)))[0]
    manifest = {"format": 1, "graph": spec.to_json(), "io": [], "tensorrt": {"module": "tensorrt", "version": "10"},
                "target": {"compute_capability": "8.9"}, "onnx": {"sha256": "0"}, "engine": {"sha256": "0"},
                "build": {}, "rebuild_command": "mprt build"}
    from engine.engine_manifest import FORMAT
    manifest["format"] = FORMAT
    (tmp_path / "g.fp16.engine.json").write_text(json.dumps(manifest))
    with pytest.raises(EngineManifestError, match=r"not a valid engine manifest \(KeyError: 'engine.bytes'\)"):
        read_manifest(tmp_path / "g.fp16.engine")

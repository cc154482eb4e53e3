"""Live behaviour on the frame-local backend: stale frames dropped (newest kept) only for live
sources, a source failing mid-stream ends the output cleanly, Ctrl-C leaves a valid video, the
frames folder appears whole, the preview skips cleanly without a display, the JSON report."""
import json
import time

import numpy as np
import pytest

from engine.errors import InputError
from engine.runtime.latest import LatestOnly
from engine.runtime.presets import preset_settings
from engine.runtime.runner import StreamRuntime
from engine.runtime.sinks import FolderSink, VideoSink, open_preview
from engine.runtime.sources import FrameSource, GuidanceFrame, MapsSource
from engine.runtime.stats import write_json_report
from helpers.runtime_fakes import FrameLocalBackend


def maps(n):
    return {t: np.full((n, 16, 16, 3), 40, np.uint8) for t in ("depth", "normal", "render")}


class Paced(FrameSource):
    """A live source delivering a frame every `period` seconds, optionally failing after `fail_after`."""
    live = True

    def __init__(self, n, period, fail_after=None, interrupt_after=None):
        self.n, self.period, self.fail_after, self.interrupt_after = n, period, fail_after, interrupt_after

    def frames(self):
        m = maps(1)
        for i in range(self.n):
            if i == self.fail_after:
                raise InputError("camera unplugged")
            if i == self.interrupt_after:
                raise KeyboardInterrupt
            time.sleep(self.period)
            yield GuidanceFrame(i, {t: v[0] for t, v in m.items()})


class SlowBackend(FrameLocalBackend):
    def denoise(self, *args):
        time.sleep(0.03)
        return super().denoise(*args)


def runtime(backend=None, preset="realtime", **overrides):
    rt = StreamRuntime(backend or FrameLocalBackend(), preset_settings(preset, **overrides), 16)
    rt.set_identity(np.zeros((8, 8, 3), np.uint8))
    return rt


def test_latest_only_keeps_the_newest_and_counts_drops():
    def produce():
        for i in range(5):
            yield i
    q = LatestOnly(produce())
    time.sleep(0.2)  # the producer runs ahead of the consumer
    assert list(q) == [4] and q.dropped == 4


def test_latest_only_reraises_the_producer_error_after_its_items():
    def produce():
        yield 1
        raise InputError("boom")
    q = LatestOnly(produce())
    assert next(q) == 1
    with pytest.raises(InputError, match="boom"):
        next(q)


def test_live_source_drops_stale_frames_and_latency_stays_bounded():
    rt = runtime(SlowBackend(), steps=2, frames_per_stage=1)
    report = rt.run(Paced(60, 0.002), [])
    assert report["dropped_input_frames"] > 0 and report["frames_in"] + report["dropped_input_frames"] == 60
    assert report["frames_out"] == report["frames_in"]  # every frame taken in comes out
    # Bounded: an output waits for the frames in flight (2 stages) and a few calls, not for a backlog
    # (which would reach ~60 x 30 ms - 120 ms = 1.7 s here).
    assert report["latency"]["p95_ms"] < 800


def test_file_source_drops_nothing():
    rt = runtime(SlowBackend(), steps=2, frames_per_stage=1)
    report = rt.run(MapsSource(maps(12)), [])
    assert report["frames_out"] == 12 and report["dropped_input_frames"] == 0


def test_source_failing_mid_stream_ends_the_video_cleanly(tmp_path, capsys):
    from engine.io.video_writer import read_video_frames
    out = tmp_path / "out.mp4"
    report = runtime(steps=2).run(Paced(20, 0.001, fail_after=7), [VideoSink(out, 24)])
    assert "camera unplugged" in report["source_error"]
    frames, _ = read_video_frames(out)
    assert len(frames) == report["frames_out"] >= 1
    assert "the output holds" in capsys.readouterr().err


def test_ctrl_c_leaves_a_valid_video(tmp_path):
    from engine.io.video_writer import read_video_frames
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        runtime(steps=2, frames_per_stage=1).run(Paced(20, 0.001, interrupt_after=9), [VideoSink(out, 24)])
    frames, _ = read_video_frames(out)
    assert 1 <= len(frames) <= 9
    assert not list(tmp_path.glob(".*partial*"))


def test_other_errors_leave_no_output(tmp_path):
    class Broken(FrameLocalBackend):
        def decode(self, latents):
            raise RuntimeError("device lost")
    out, folder = tmp_path / "out.mp4", tmp_path / "frames"
    with pytest.raises(RuntimeError):
        runtime(Broken(), steps=2).run(MapsSource(maps(6)), [VideoSink(out, 24), FolderSink(folder)])
    assert not out.exists() and not folder.exists() and list(tmp_path.iterdir()) == []


def test_frames_folder_and_report(tmp_path):
    folder = tmp_path / "frames"
    report = runtime(preset="balanced", steps=2).run(MapsSource(maps(9)), [FolderSink(folder)])
    frames = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))  # not the manifest
    assert frames == [f"frame_{i:06d}.png" for i in range(9)]
    with pytest.raises(InputError, match="already (exists|holds frames)"):
        FolderSink(folder)
    write_json_report(tmp_path / "r.json", report)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["frames_out"] == 9 and data["settings"]["mode"] == "windowed"
    assert set(data["stages"]) >= {"source", "guidance_encode", "unet", "decode", "write"}
    assert data["queue_depth"]["max"] <= 12


def test_preview_skips_cleanly_without_a_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    sink, why = open_preview()
    assert sink is None and "no display" in why


def test_quality_refuses_a_live_source():
    with pytest.raises(InputError, match="balanced or realtime"):
        runtime(preset="quality").run(Paced(3, 0.001), [])


class Concurrent(FrameLocalBackend):
    """Decode on the worker thread, slowly, to exercise the pipelined output stage."""
    info = FrameLocalBackend.info.__class__(**{**vars(FrameLocalBackend.info), "concurrent_calls": True})

    def decode(self, latents):
        time.sleep(0.01)
        return super().decode(latents)


def test_pipelined_outputs_keep_order_and_match_inline(tmp_path):
    from engine.io.video_writer import read_video_frames
    outs = []
    for backend in (FrameLocalBackend(), Concurrent()):
        folder = tmp_path / f"f{len(outs)}"
        report = runtime(backend, preset="balanced", steps=2, window=4, overlap=1).run(MapsSource(maps(11)),
                                                                                        [FolderSink(folder)])
        assert report["frames_out"] == 11
        outs.append([p.read_bytes() for p in sorted(folder.glob("frame_*.png"))])
    assert outs[0] == outs[1]
    out = tmp_path / "ctrl-c.mp4"
    with pytest.raises(KeyboardInterrupt):
        runtime(Concurrent(), steps=2, frames_per_stage=1).run(Paced(30, 0.001, interrupt_after=12),
                                                               [VideoSink(out, 24)])
    assert 1 <= len(read_video_frames(out)[0]) <= 12


def test_paced_maps_source_is_live_and_drops_under_load():
    from engine.runtime.sources import PacedMapsSource
    source = PacedMapsSource(maps(40), fps=400.0)
    with pytest.raises(TypeError):
        len(source)
    report = runtime(SlowBackend(), steps=2, frames_per_stage=1).run(source, [])
    assert report["dropped_input_frames"] > 0 and report["frames_in"] + report["dropped_input_frames"] == 40
    assert "live at 400 fps" in report["source"]

"""Outputs never lose data: no deletes of files mprt did not write, unique temp names with a
no-clobber final step, one path per output, and every destination checked (exists, writable, room)
before any model is loaded — leaving nothing behind when refused."""
import os
import pathlib
import subprocess
import threading

import numpy as np
import pytest

from helpers.cli_inputs import refuse_model_loads, write_cli_inputs
from engine.cli import main
from engine.errors import InputError
from engine.io.atomic import atomic_file
from engine.io.frame_folder import MANIFEST, FrameFolder
from engine.io.video_writer import VideoWriter, read_video_frames

SIZE = 128


@pytest.fixture
def inputs(tmp_path):
    return write_cli_inputs(tmp_path, frames=3, seed=0)


@pytest.fixture
def no_model(monkeypatch):
    refuse_model_loads(monkeypatch)


def animate(d, *extra):
    return ["animate", "--source", str(d / "portrait.png"), "--guidance", str(d / "guidance"), *map(str, extra)]


def last_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1] if lines else ""


def snapshot(folder: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- 1. never delete what mprt did not write -------------------------------------------------------

def test_frames_dir_with_foreign_files_is_refused_even_with_overwrite(inputs, no_model, capsys):
    photos = inputs / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"precious")
    (photos / "notes.txt").write_text("keep")
    before = snapshot(inputs)
    assert main(animate(inputs, "--frames-dir", photos, "--overwrite")) == 2
    err = last_error(capsys)
    assert err.startswith("mprt animate: error: --frames-dir") and "mprt did not write" in err, err
    assert snapshot(inputs) == before


def test_frames_dir_parent_is_refused(inputs, no_model, capsys, monkeypatch):
    monkeypatch.chdir(inputs / "guidance")
    assert main(animate(inputs, "--frames-dir", "..", "--overwrite")) == 2
    assert "mprt did not write" in last_error(capsys)
    assert (inputs / "portrait.png").exists() and (inputs / "guidance" / "depth").is_dir()


def test_frame_folder_replaces_only_its_own_frames(tmp_path):
    frames = tmp_path / "frames"
    first = FrameFolder(frames)
    for v in (10, 20, 30):
        first.write(np.full((8, 8, 3), v, np.uint8))
    first.close()
    assert sorted(p.name for p in frames.iterdir()) == [MANIFEST, "frame_000000.png", "frame_000001.png",
                                                        "frame_000002.png"]
    (frames / "my_notes.txt").write_text("mine")  # the user adds a file beside mprt's frames
    with pytest.raises(InputError, match="pass --overwrite"):
        FrameFolder(frames)
    second = FrameFolder(frames, overwrite=True)
    for v in (40, 50):
        second.write(np.full((8, 8, 3), v, np.uint8))
    second.close()
    names = sorted(p.name for p in frames.iterdir())
    assert names == [MANIFEST, "frame_000000.png", "frame_000001.png", "my_notes.txt"]
    assert (frames / "my_notes.txt").read_text() == "mine"
    from PIL import Image
    assert np.asarray(Image.open(frames / "frame_000001.png"))[0, 0, 0] == 50


def test_frame_folder_uses_an_empty_folder_and_abort_leaves_nothing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    sink = FrameFolder(empty)
    sink.write(np.zeros((8, 8, 3), np.uint8))
    sink.abort()
    assert list(empty.iterdir()) == []
    sink = FrameFolder(empty)
    sink.write(np.zeros((8, 8, 3), np.uint8))
    sink.close()
    assert sorted(p.name for p in empty.iterdir()) == [MANIFEST, "frame_000000.png"]


def test_tiny_weights_and_guidance_folders_never_replace_foreign_folders(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("do not delete")
    assert main(["make-tiny-weights", "--out", str(mine), "--overwrite"]) == 2
    assert "not a tiny model written by mprt" in last_error(capsys)
    (tmp_path / "maps" / "depth").mkdir(parents=True)
    (tmp_path / "maps" / "depth" / "scan.png").write_bytes(b"x")
    params = tmp_path / "p.npz"
    from engine.guidance.demo_motion import demo_flame_params
    demo_flame_params(1).save(params)
    assert main(["render-guidance", "--flame", str(params), "--out", str(tmp_path / "maps"), "--overwrite"]) == 2
    assert "files other than guidance frames" in last_error(capsys)
    assert (mine / "thesis.tex").exists() and (tmp_path / "maps" / "depth" / "scan.png").exists()


# -- unique temp names, no-clobber final step ------------------------------------------------------

def _frames(n, value):
    return [np.full((32, 32, 3), value + 10 * i, np.uint8) for i in range(n)]


def test_two_writers_of_one_path_never_mix(tmp_path):
    out = tmp_path / "out.mp4"
    a, b = VideoWriter(out, 24), VideoWriter(out, 24)
    for fa, fb in zip(_frames(6, 20), _frames(6, 120)):
        a.write(fa)
        b.write(fb)
    assert a.tmp != b.tmp  # each run has its own temporary file
    a.close()
    with pytest.raises(InputError, match="appeared while this run was writing"):
        b.close()  # no --overwrite: the first run's finished video is not replaced
    frames, _ = read_video_frames(out)
    assert len(frames) == 6 and abs(int(frames[0].mean()) - 20) <= 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_concurrent_writers_with_overwrite_leave_one_whole_video(tmp_path):
    out = tmp_path / "out.mp4"

    def write(value):
        with VideoWriter(out, 24, overwrite=True) as w:
            for f in _frames(12, value):
                w.write(f)
    threads = [threading.Thread(target=write, args=(v,)) for v in (20, 120)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    frames, _ = read_video_frames(out)
    first = round(float(frames[0].mean()))
    assert len(frames) == 12 and (15 <= first <= 25 or 115 <= first <= 125)  # one run's frames, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_atomic_file_no_clobber(tmp_path):
    target = tmp_path / "r.json"
    with pytest.raises(InputError, match="appeared while"):
        with atomic_file(target, "w", overwrite=False) as fh:
            fh.write("mine")
            target.write_text("theirs")  # another program writes the name meanwhile
    assert target.read_text() == "theirs" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


# -- two outputs on one path -----------------------------------------------------------------------

@pytest.mark.parametrize("extra, needle", [
    (("--out", "x.mp4", "--grid", "x.mp4"), "--grid x.mp4: same path as --out"),
    (("--out", "x.mp4", "--report", "./x.mp4"), "same path as --out"),
    (("--out", "x.mp4", "--frames-dir", "x.mp4"), "same path as --out"),
    (("--out", "portrait.png"), "is the input --source"),
])
def test_outputs_on_one_path_are_refused_up_front(inputs, no_model, capsys, monkeypatch, extra, needle):
    monkeypatch.chdir(inputs)
    (inputs / "x.mp4").write_bytes(b"old video")
    before = snapshot(inputs)
    assert main(animate(inputs, *extra, "--overwrite")) == 2
    assert needle in last_error(capsys)
    assert snapshot(inputs) == before


# -- destinations checked before any model loads, nothing left behind ------------------------------

def test_missing_destination_fails_before_the_model(inputs, no_model, capsys):
    before = snapshot(inputs)
    for extra in (("--out", inputs / "nope" / "o.mp4"), ("--frames-dir", inputs / "nope" / "f"),
                  ("--out", inputs / "o.mp4", "--report", inputs / "nope" / "r.json"),
                  ("--out", inputs / "o.mp4", "--grid", inputs / "nope" / "g.mp4")):
        assert main(animate(inputs, *extra)) == 2
        assert "does not exist" in last_error(capsys)
    assert snapshot(inputs) == before and not list(inputs.glob(".*"))


def test_full_destination_fails_before_the_model_faked(inputs, no_model, capsys, monkeypatch):
    """A full disk, faked by monkeypatching shutil.disk_usage (runs anywhere)."""
    import collections
    import shutil
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    assert main(animate(inputs, "--out", inputs / "o.mp4")) == 2
    err = last_error(capsys)
    assert err.startswith("mprt animate: error: --out") and "free" in err, err
    assert not (inputs / "o.mp4").exists() and not list(inputs.glob(".*"))


@pytest.fixture
def tmpfs(tmp_path):
    """Mount small tmpfs filesystems (root only; skips elsewhere). Yields mount(name, size, ro)."""
    mounted = []

    def mount(name, size="256k", read_only=False):
        where = tmp_path / name
        where.mkdir()
        opts = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'not root'})")
        mounted.append(where)
        return where
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], check=False)


def test_read_only_and_full_filesystems_fail_before_the_model(inputs, no_model, capsys, tmpfs):
    read_only = tmpfs("ro", read_only=True)
    full = tmpfs("full", size="64k")
    (full / "filler").write_bytes(b"\0" * (60 << 10))  # leaves less than one frame
    cases = [(("--out", read_only / "o.mp4"), "cannot write in"),
             (("--frames-dir", read_only / "frames"), "cannot write in"),
             (("--out", full / "o.mp4"), "free"),
             (("--out", inputs / "o.mp4", "--report", read_only / "r.json"), "cannot write in")]
    for extra, needle in cases:
        assert main(animate(inputs, *extra)) == 2
        err = last_error(capsys)
        assert needle in err and err.startswith("mprt animate: error:"), err
    assert list(read_only.iterdir()) == [] and sorted(p.name for p in full.iterdir()) == ["filler"]
    assert not (inputs / "o.mp4").exists()


def test_track_checks_its_out_before_tracking(inputs, capsys, monkeypatch):
    import engine.driving.pipeline as pipeline

    def refuse(*_, **__):
        raise AssertionError("tracking started before --out was checked")
    monkeypatch.setattr(pipeline, "track_driving_detailed", refuse)
    base = ["track", "--driving", str(inputs / "guidance" / "depth"), "--source", str(inputs / "portrait.png"),
            "--random-encoders"]
    assert main(base + ["--out", str(inputs / "nope" / "p.npz")]) == 2
    assert "does not exist" in last_error(capsys)
    assert main(base + ["--out", str(inputs / "portrait.png"), "--overwrite"]) == 2
    assert "is the input --source" in last_error(capsys)
    assert main(base + ["--out", str(inputs / "guidance")]) == 2
    assert "is a folder" in last_error(capsys)

"""Guidance image folders (upstream layout) and `mprt render-guidance` end to end."""
from __future__ import annotations

import numpy as np
import pytest

from engine.cli import main
from engine.errors import InputError
from engine.flame.synthetic import synthetic_head
from engine.guidance.demo_motion import demo_flame_params
from engine.guidance.folders import read_guidance_folders, write_guidance_folders
from engine.guidance.pipeline import render_guidance_maps


def _frames(n=3, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8) for k in ("depth", "normal", "render")}


def test_png_round_trip_is_exact_and_named_like_upstream(tmp_path):
    frames = _frames()
    write_guidance_folders(tmp_path / "out", frames)
    assert sorted(p.name for p in (tmp_path / "out/depth").iterdir()) == [
        "frame_0000.png", "frame_0001.png", "frame_0002.png"]
    back = read_guidance_folders(tmp_path / "out")
    for key in frames:
        assert np.array_equal(back[key], frames[key])
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []


def test_jpeg_round_trip_is_close(tmp_path):
    smooth = {k: np.full((2, 32, 32, 3), 100, np.uint8) for k in ("depth", "normal", "render")}
    write_guidance_folders(tmp_path, smooth, image_format="jpg")
    back = read_guidance_folders(tmp_path)
    assert (tmp_path / "render/frame_0001.jpg").is_file()
    assert np.abs(back["render"].astype(int) - 100).max() <= 2


def test_existing_output_needs_overwrite(tmp_path):
    write_guidance_folders(tmp_path, _frames(seed=0))
    with pytest.raises(InputError, match="--overwrite"):
        write_guidance_folders(tmp_path, _frames(seed=1))
    write_guidance_folders(tmp_path, _frames(n=2, seed=1), overwrite=True)
    back = read_guidance_folders(tmp_path)
    assert np.array_equal(back["normal"], _frames(n=2, seed=1)["normal"])


def test_read_errors_name_the_problem(tmp_path):
    write_guidance_folders(tmp_path, _frames())
    (tmp_path / "normal/frame_0002.png").unlink()
    with pytest.raises(InputError, match="frame counts differ"):
        read_guidance_folders(tmp_path)
    (tmp_path / "normal/frame_0002.png").write_bytes(b"definitely not a png")
    with pytest.raises(InputError, match="frame_0002.png: not a readable image"):
        read_guidance_folders(tmp_path)
    with pytest.raises(InputError, match="guidance folder missing"):
        read_guidance_folders(tmp_path / "elsewhere")


def test_render_guidance_cli_end_to_end(tmp_path, capsys):
    params = demo_flame_params(3)
    params.save(tmp_path / "params.npz")
    out = tmp_path / "maps"
    rc = main(["render-guidance", "--flame", str(tmp_path / "params.npz"), "--out", str(out),
               "--batch-size", "2"])
    assert rc == 0
    assert "synthetic head (not FLAME)" in capsys.readouterr().err
    written = read_guidance_folders(out)
    expected = render_guidance_maps(params, synthetic_head())
    for key in ("depth", "normal", "render"):
        assert written[key].shape == (3, 512, 512, 3)
        assert np.array_equal(written[key], expected[key]), key
    assert np.all(written["depth"][..., 0] == written["depth"][..., 2])
    assert (written["render"].max(axis=-1) > 0).mean() > 0.15  # a head, not an empty frame
    # refuses to replace without --overwrite, before rendering
    assert main(["render-guidance", "--flame", str(tmp_path / "params.npz"), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_render_guidance_cli_reports_bad_params(tmp_path, capsys):
    arrays = {k: v for k, v in np.load(_saved(tmp_path)).items() if k != "cam"}
    np.savez(tmp_path / "nocam.npz", **arrays)
    assert main(["render-guidance", "--flame", str(tmp_path / "nocam.npz"), "--out", str(tmp_path / "o")]) == 2
    assert "missing key(s) ['cam']" in capsys.readouterr().err


def _saved(tmp_path):
    path = tmp_path / "ok.npz"
    demo_flame_params(2).save(path)
    return path


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(InputError, match="unknown guidance backend 'vulkan'"):
        render_guidance_maps(demo_flame_params(1), synthetic_head(), backend="vulkan")


def test_auto_backend_picks_a_working_renderer_that_matches_the_reference(capsys):
    """'auto' (the CLI default) falls back from the CUDA kernel to the host build here; its maps equal
    the reference's on the demo motion (the host build is bit-identical on the test scenes)."""
    import numpy as np

    from engine.guidance.pipeline import demo_flame_params, render_guidance_maps, synthetic_head
    head, params = synthetic_head(), demo_flame_params(2)
    auto = render_guidance_maps(params, head, backend="auto")
    chosen = capsys.readouterr().err
    assert "guidance renderer:" in chosen
    reference = render_guidance_maps(params, head, backend="reference")
    for key in ("depth", "normal", "render"):
        diff = np.abs(auto[key].astype(int) - reference[key].astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, key

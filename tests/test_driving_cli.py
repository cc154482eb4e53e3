"""`mprt track` end to end (random encoders, 2 frames) and its user-facing errors."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from helpers.driving import LANDMARKER, MEDIA
from engine.cli import main
from engine.flame.params import FlameParams

pytest.importorskip("mediapipe", reason="face tracking needs the 'mediapipe' package")
pytest.importorskip("skimage", reason="upstream-equivalent crops need scikit-image")


def track_args(shared_dir, out, *extra):
    return ["track", "--driving", str(shared_dir / MEDIA / "driving.mp4"),
            "--source", str(shared_dir / MEDIA / "face_exp_1.jpg"), "--out", str(out),
            "--landmarker", str(shared_dir / LANDMARKER), "--max-frames", "2", *extra]


@pytest.fixture(scope="module")
def tracked(shared_dir, tmp_path_factory):
    """One `mprt track --random-encoders` run: (output path, exit code, stdout, stderr)."""
    tmp = tmp_path_factory.mktemp("track")
    out, stdout, stderr = tmp / "params.npz", io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(track_args(shared_dir, out, "--random-encoders", "--cache-dir", str(tmp / "cache")))
    return out, code, stdout.getvalue(), stderr.getvalue()


@pytest.mark.slow
def test_track_writes_params_file(tracked):
    out, code, stdout, stderr = tracked
    assert code == 0
    assert "RANDOM weights" in stderr and "2 frames, 0 without a face" in stdout
    params = FlameParams.load(out)
    assert params.num_frames == 2 and params.valid.all() and params.pose.shape == (2, 6)
    assert "RANDOM" in params.model  # the file itself says its parameters are meaningless


@pytest.mark.slow
def test_track_refuses_to_overwrite(shared_dir, tracked, capsys):
    out = tracked[0]
    before = out.read_bytes()
    assert main(track_args(shared_dir, out, "--random-encoders")) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == before


@pytest.mark.slow
def test_params_render_a_head_on_the_source_face(shared_dir, tracked):
    """The file feeds the guidance renderer: with the random encoders' neutral code (cam s = 9,
    no rotation) the head lands centred on the source's DECA crop (spec §3 camera chain)."""
    from engine.flame.synthetic import synthetic_head
    from engine.guidance.pipeline import render_guidance_maps

    params = FlameParams.load(tracked[0])
    head = synthetic_head(shared_dir / "assets/deca/head_template.obj")
    one_frame = FlameParams(**{**params.__dict__, "exp": params.exp[:1], "pose": params.pose[:1],
                               "valid": params.valid[:1]})
    covered = render_guidance_maps(one_frame, head)["render"][0].any(axis=-1)
    ys, xs = np.nonzero(covered)
    x0, y0, size = params.crop
    assert 0.05 < covered.mean() < 0.6
    assert abs((xs.min() + xs.max()) / 2 - (x0 + size / 2)) < 0.1 * size


def test_track_names_missing_weights(shared_dir, tmp_path, capsys):
    assert main(track_args(shared_dir, tmp_path / "p.npz", "--weights", str(tmp_path))) == 2
    err = capsys.readouterr().err
    assert "deca_model.tar" in err and "SMIRK_em1.pt" in err and "github.com" in err
    assert not (tmp_path / "p.npz").exists()


def test_track_rejects_non_image_source(shared_dir, tmp_path, capsys):
    bogus = tmp_path / "portrait.png"
    bogus.write_text("not an image")
    args = track_args(shared_dir, tmp_path / "p.npz", "--random-encoders")
    args[args.index("--source") + 1] = str(bogus)
    assert main(args) == 2
    assert "portrait.png" in capsys.readouterr().err

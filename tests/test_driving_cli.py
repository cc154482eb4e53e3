"""`mprt track` end to end (random encoders, 2 frames) and its user-facing errors."""
from __future__ import annotations

import pytest

from driving_helpers import LANDMARKER, MEDIA
from engine.cli import main
from engine.flame.params import FlameParams

pytest.importorskip("mediapipe", reason="face tracking needs the 'mediapipe' package")
pytest.importorskip("skimage", reason="upstream-equivalent crops need scikit-image")


def track_args(shared_dir, out, *extra):
    return ["track", "--driving", str(shared_dir / MEDIA / "driving.mp4"),
            "--source", str(shared_dir / MEDIA / "face_exp_1.jpg"), "--out", str(out),
            "--landmarker", str(shared_dir / LANDMARKER), "--max-frames", "2", *extra]


def test_track_writes_params_file(shared_dir, tmp_path, capsys):
    out = tmp_path / "params.npz"
    assert main(track_args(shared_dir, out, "--random-encoders", "--cache-dir", str(tmp_path / "c"))) == 0
    captured = capsys.readouterr()
    assert "RANDOM weights" in captured.err and "2 frames, 0 without a face" in captured.out
    params = FlameParams.load(out)
    assert params.num_frames == 2 and params.valid.all() and params.pose.shape == (2, 6)

    assert main(track_args(shared_dir, out, "--random-encoders")) == 2  # no silent overwrite
    assert "--overwrite" in capsys.readouterr().err


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

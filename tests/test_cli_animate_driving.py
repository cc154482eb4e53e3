"""`mprt animate --driving`: tracking -> FLAME parameters -> guidance maps -> diffusion, in one command."""
import pytest

from engine.cli import main
from engine.io.video_writer import read_video_frames


@pytest.mark.slow
def test_animate_from_a_driving_video(tiny_weights, shared_dir, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    rc = main(["animate", "--weights", str(tiny_weights), "--source",
               str(shared_dir / "assets/media/portrait_boy_cropped.jpg"),
               "--driving", str(shared_dir / "assets/media/driving.mp4"), "--max-frames", "3",
               "--landmarker", str(shared_dir / "assets/models/face_landmarker.task"), "--random-encoders",
               "--preset", "realtime", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    frames, _ = read_video_frames(out)
    assert frames.shape == (3, 128, 128, 3)
    assert "tracked 3 driving frames" in capsys.readouterr().err


def test_animate_driving_without_encoder_weights_names_the_files(tiny_weights, shared_dir, tmp_path, capsys):
    rc = main(["animate", "--weights", str(tiny_weights), "--source",
               str(shared_dir / "assets/media/portrait_boy_cropped.jpg"),
               "--driving", str(shared_dir / "assets/media/driving.mp4"), "--max-frames", "2",
               "--landmarker", str(shared_dir / "assets/models/face_landmarker.task"),
               "--out", str(tmp_path / "o.mp4")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "deca_model.tar" in err and "SMIRK_em1.pt" in err
    assert not (tmp_path / "o.mp4").exists()

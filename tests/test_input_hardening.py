"""Every input reader: no silent wrong output (EXIF orientation, 16-bit images, alpha, tiny images,
truncated videos, NaN checkpoints, degenerate FLAME cameras, bad numbers) and one clear line, before
any model loads, for every bad file or option."""
import json
import shutil
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.cli_inputs import refuse_model_loads, write_cli_inputs
from engine.cli import main
from engine.errors import CheckpointError, InputError
from engine.io.images import read_rgb_image


@pytest.fixture
def no_model(monkeypatch):
    refuse_model_loads(monkeypatch)


@pytest.fixture
def inputs(tmp_path):
    return write_cli_inputs(tmp_path, frames=2, seed=1)


def last_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1] if lines else ""


def png16(arr: np.ndarray, path) -> None:
    """A 16-bit grayscale PNG written byte by byte (PIL writes these too; this states the format)."""
    h, w = arr.shape
    raw = b"".join(b"\0" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# -- images ----------------------------------------------------------------------------------------

def test_exif_orientation_is_applied(tmp_path):
    img = np.zeros((64, 96, 3), np.uint8)
    img[:, :10] = 255  # a white band on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(img).save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    shown = read_rgb_image(tmp_path / "phone.jpg")
    assert shown.shape == (96, 64, 3)  # upright: taller than wide
    assert shown[:10].mean() > 200 and shown[-10:].mean() < 50  # the band is now on top


def test_16_bit_depth_maps_keep_their_levels(tmp_path):
    from engine.guidance.folders import read_guidance_folders
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))
    for kind in ("depth", "normal", "render"):
        (tmp_path / kind).mkdir()
        png16(ramp, tmp_path / kind / "frame_0000.png")
    maps = read_guidance_folders(tmp_path)
    depth = maps["depth"][0]
    assert len(np.unique(depth)) > 50  # was 2 levels (values clipped at 255)
    assert depth[0, 0, 0] == 0 and depth[0, -1, 0] == 255 and (depth[..., 0] == depth[..., 2]).all()
    assert abs(int(depth[0, 32, 0]) - round(ramp[0, 32] / 257)) <= 1


def test_alpha_is_composited_on_the_stated_background(tmp_path):
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, 32:, 3] = 255  # right half opaque red, left half fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cutout.png")
    portrait = read_rgb_image(tmp_path / "cutout.png")
    assert (portrait[:, :32] == 255).all() and (portrait[:, 32:] == (200, 0, 0)).all()  # on white
    maps = read_rgb_image(tmp_path / "cutout.png", background=(0, 0, 0))
    assert (maps[:, :32] == 0).all()  # guidance maps: on their black background


def test_bad_images_give_one_line_before_the_model(inputs, no_model, capsys):
    Image.new("RGB", (1, 1)).save(inputs / "dot.png")
    (inputs / "bomb.png").write_bytes(_png_header(200_000, 200_000))
    (inputs / "text.png").write_text("not an image")
    cases = [("dot.png", "too small"), ("bomb.png", "too large"), ("text.png", "not a readable image"),
             ("guidance", "it is a folder")]
    for name, needle in cases:
        rc = main(["animate", "--source", str(inputs / name), "--guidance", str(inputs / "guidance"),
                   "--out", str(inputs / "o.mp4")])
        err = last_error(capsys)
        assert rc == 2 and err.startswith("mprt animate: error: --source") and needle in err, err


def _png_header(w: int, h: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


# -- videos ----------------------------------------------------------------------------------------

def _truncated_video(path, frames=12):
    """An MP4 whose index (moov, written first) declares `frames` frames, cut after the first few."""
    import av
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as c:
        s = c.add_stream("mpeg4", rate=24)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(frames):
            img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 3 // 10])


def test_truncated_video_is_refused_not_shortened(tmp_path):
    from engine.driving.media import iter_video_frames
    from engine.io.video_writer import read_video_frames
    _truncated_video(tmp_path / "cut.mp4")
    with pytest.raises(InputError, match="declares 12 frames but only"):
        list(iter_video_frames(tmp_path / "cut.mp4"))
    with pytest.raises(InputError, match="declares 12 frames but only"):
        read_video_frames(tmp_path / "cut.mp4")
    assert len(list(iter_video_frames(tmp_path / "cut.mp4", max_frames=1))) == 1  # asked for fewer: fine


def test_track_refuses_a_truncated_video(shared_dir, tmp_path, capsys):
    pytest.importorskip("mediapipe", reason="face tracking needs the 'mediapipe' package")
    pytest.importorskip("skimage", reason="upstream-equivalent crops need scikit-image")
    _truncated_video(tmp_path / "cut.mp4")
    rc = main(["track", "--driving", str(tmp_path / "cut.mp4"),
               "--source", str(shared_dir / "assets/media/portrait_boy_cropped.jpg"), "--out", str(tmp_path / "p.npz"),
               "--random-encoders", "--landmarker", str(shared_dir / "assets/models/face_landmarker.task"),
               "--cache-dir", ""])
    err = last_error(capsys)
    assert rc == 2 and "declares 12 frames but only" in err, err
    assert not (tmp_path / "p.npz").exists()


# -- FLAME parameters ------------------------------------------------------------------------------

def test_bad_flame_files_are_one_line_before_the_model(inputs, no_model, capsys):
    from engine.guidance.demo_motion import demo_flame_params
    params = demo_flame_params(2)
    np.save(inputs / "params.npy", params.exp)
    arrays = {k: getattr(params, k) for k in ("shape", "tex", "light", "cam", "crop", "exp", "pose")}
    np.savez(inputs / "flat_cam.npz", **{**arrays, "cam": np.array([0.0, 0.0, 0.0], np.float32)})
    np.savez(inputs / "nan_crop.npz", **{**arrays, "crop": np.array([0.0, np.nan, 200.0], np.float32)})
    np.savez(inputs / "neg_crop.npz", **{**arrays, "crop": np.array([0.0, 0.0, -5.0], np.float32)})
    cases = [("params.npy", "a single array (.npy)"), ("flat_cam.npz", "camera scale (cam[0]) must be > 0"),
             ("nan_crop.npz", "'crop' contains NaN"), ("neg_crop.npz", "crop size (crop[2]) must be > 0")]
    for name, needle in cases:
        rc = main(["animate", "--source", str(inputs / "portrait.png"), "--flame", str(inputs / name),
                   "--out", str(inputs / "o.mp4")])
        err = last_error(capsys)
        assert rc == 2 and needle in err, err


# -- numeric options -------------------------------------------------------------------------------

@pytest.mark.parametrize("option, value", [
    ("--fps", "0"), ("--fps", "nan"), ("--fps", "-24"), ("--size", "-8"), ("--size", "0"), ("--size", "100"),
    ("--max-frames", "0"), ("--steps", "0"), ("--guidance-scale", "inf"), ("--overlap", "-1"),
    ("--window", "0"), ("--seed", "-3"), ("--cfg-steps", "-2"), ("--frames-per-stage", "0"),
])
def test_numeric_options_are_checked_at_parse_time(inputs, no_model, capsys, option, value):
    with pytest.raises(SystemExit) as done:
        main(["animate", "--source", str(inputs / "portrait.png"), "--guidance", str(inputs / "guidance"),
              "--out", str(inputs / "o.mp4"), option, value])
    err = last_error(capsys)
    assert done.value.code == 2 and "argument " in err and option in err and repr(value) in err, err


@pytest.mark.parametrize("argv", [
    ["demo", "--frames", "0"], ["demo", "--fps", "nan"],
    ["live", "--source", "p.png", "--video", "v.mp4", "--size", "12"],
    ["track", "--driving", "d", "--source", "s", "--out", "o.npz", "--batch-size", "0"],
    ["render-guidance", "--flame", "f.npz", "--out", "o", "--batch-size", "-1"],
    ["build", "--onnx", "x", "--out", "y", "--workspace-gib", "nan"],
    ["build", "--onnx", "x", "--out", "y", "--opt-level", "9"],
])
def test_numeric_options_of_every_command(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2 and "argument --" in last_error(capsys)


# -- checkpoints and model config ------------------------------------------------------------------

@pytest.fixture
def weights_copy(tiny_weights, tmp_path):
    dst = tmp_path / "w"
    shutil.copytree(tiny_weights, dst)
    return dst


def test_nan_checkpoint_is_named_by_key(weights_copy, tmp_path, capsys):
    path = weights_copy / "guidance_encoder_depth.pth"
    sd = torch.load(path, weights_only=True)
    sd["conv_out.bias"][3] = float("nan")
    torch.save(sd, path)
    rc = main(["animate", "--weights", str(weights_copy), "--source", str(_portrait(tmp_path)),
               "--guidance", str(_guidance(tmp_path)), "--out", str(tmp_path / "o.mp4")])
    err = last_error(capsys)
    assert rc == 2 and "guidance_encoder_depth.pth: tensor 'conv_out.bias' holds 1 NaN or infinite" in err, err
    assert not (tmp_path / "o.mp4").exists()


def test_refused_pickle_says_the_file_contains_code(weights_copy):
    import pickle

    from engine.model import MagicPortraitModel

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    (weights_copy / "reference_unet.pth").write_bytes(pickle.dumps({"x": Evil()}, protocol=2))
    with pytest.raises(CheckpointError, match="reference_unet.pth: the file contains code") as refused:
        MagicPortraitModel.from_weights(weights_copy)
    assert "weights_only" not in str(refused.value)


def test_unknown_field_in_magicportrait_json(weights_copy, tmp_path, capsys):
    cfg = json.loads((weights_copy / "magicportrait.json").read_text())
    cfg["motion"]["head"] = 8  # typo of "heads"
    (weights_copy / "magicportrait.json").write_text(json.dumps(cfg))
    rc = main(["animate", "--weights", str(weights_copy), "--source", str(_portrait(tmp_path)),
               "--guidance", str(_guidance(tmp_path)), "--out", str(tmp_path / "o.mp4")])
    err = last_error(capsys)
    assert rc == 2 and "magicportrait.json: motion: unknown field(s) head" in err, err


def test_sizes_come_from_the_checkpoints_without_magicportrait_json(weights_copy):
    from engine.model import MagicPortraitModel
    from engine.networks.config import GuidanceEncoderConfig
    (weights_copy / "magicportrait.json").unlink()
    model = MagicPortraitModel.from_weights(weights_copy)
    assert model.config.guidance.block_out_channels == (16, 32, 32, 64)  # tiny, not the release (16, 32, 96, 256)
    assert GuidanceEncoderConfig().block_out_channels == (16, 32, 96, 256)
    assert model.config.motion.max_frames == 32 and model.config.motion.attention_blocks == 2


def test_magicportrait_json_disagreeing_with_the_checkpoints_is_named(weights_copy):
    from engine.model import MagicPortraitModel
    cfg = json.loads((weights_copy / "magicportrait.json").read_text())
    cfg["guidance"]["block_out_channels"] = [16, 32, 96, 256]
    (weights_copy / "magicportrait.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"guidance\.block_out_channels is \(16, 32, 96, 256\), but "
                                              r"guidance_encoder_depth\.pth has \(16, 32, 32, 64\)"):
        MagicPortraitModel.from_weights(weights_copy)


def _portrait(tmp_path):
    path = tmp_path / "portrait.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(path)
    return path


def _guidance(tmp_path):
    from engine.guidance.folders import write_guidance_folders
    write_guidance_folders(tmp_path / "g", {t: np.zeros((1, 64, 64, 3), np.uint8)
                                            for t in ("depth", "normal", "render")})
    return tmp_path / "g"

"""The student and the tiny decoder in use: the loader takes them beside the teacher, `realtime` picks
them up and says so, the consistency scheduler drives the streaming runtime."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from engine.errors import InputError


@pytest.fixture(scope="module")
def weights_with_student(tiny_weights, tmp_path_factory):
    """A copy of the tiny model with W/student (a perturbed full student) and W/tiny_decoder."""
    from engine.model import MagicPortraitModel
    from engine.networks.tiny_decoder import TinyDecoder
    from engine.weights.student import write_student
    from engine.weights.tiny_decoder import save_tiny_decoder
    root = tmp_path_factory.mktemp("w") / "tiny"
    shutil.copytree(tiny_weights, root)
    unet = MagicPortraitModel.from_weights(root).denoising_unet
    torch.manual_seed(3)
    tensors = {k: v + 0.01 * torch.randn_like(v) if v.dtype.is_floating_point else v
               for k, v in unet.state_dict().items()}
    write_student(root / "student" / "student.safetensors", tensors, "full", 5, {"test": True}, "denoising_unet")
    (root / "tiny_decoder").mkdir()
    save_tiny_decoder(TinyDecoder(width=8), root / "tiny_decoder" / "taesd_decoder.safetensors", {"steps": "0"})
    return root


def test_backend_opens_the_student_and_tiny_decoder_when_asked(weights_with_student):
    from engine.backends.registry import open_backend
    teacher = open_backend("torch", weights=weights_with_student)
    assert teacher.info.denoiser == "teacher" and teacher.info.decoder == "vae"
    student = open_backend("torch", weights=weights_with_student, student="auto", decoder="auto")
    assert "student" in student.info.denoiser and "5 distillation steps" in student.info.denoiser
    assert student.info.decoder.startswith("taesd:") and "width 8" in student.info.decoder
    t, s = teacher.model.denoising_unet.state_dict(), student.model.denoising_unet.state_dict()
    assert not torch.equal(t["conv_in.weight"], s["conv_in.weight"])
    with pytest.raises(Exception, match="--student .*missing.safetensors: file not found"):
        open_backend("torch", weights=weights_with_student, student=str(weights_with_student / "missing.safetensors"))


@pytest.mark.slow
def test_realtime_uses_the_student_and_says_so(weights_with_student, tmp_path, capsys):
    from engine.cli import main
    from engine.guidance.folders import write_guidance_folders
    rng = np.random.default_rng(0)
    maps = {t: rng.integers(0, 255, (6, 128, 128, 3), dtype=np.uint8) for t in ("depth", "normal", "render")}
    write_guidance_folders(tmp_path / "g", maps)
    from PIL import Image
    Image.fromarray(maps["render"][0]).save(tmp_path / "p.png")
    common = ["animate", "--weights", str(weights_with_student), "--source", str(tmp_path / "p.png"),
              "--guidance", str(tmp_path / "g"), "--preset", "realtime", "--device", "cpu"]
    assert main(common + ["--out", str(tmp_path / "a.mp4"), "--report", str(tmp_path / "a.json")]) == 0
    err = capsys.readouterr().err
    assert "student" in err and "lcm" in err and "taesd:" in err
    import json
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["settings"]["scheduler"] == "lcm" and report["stages"]["decode"]["decoder"].startswith("taesd:")
    assert main(common + ["--out", str(tmp_path / "b.mp4"), "--student", "none", "--decoder", "vae"]) == 0
    err = capsys.readouterr().err
    assert "teacher" in err and "ddim" in err
    assert main(common + ["--out", str(tmp_path / "c.mp4"), "--decoder", f"taesd:{tmp_path / 'nope'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()  # (the weights' load report comes first)
    errors = [line for line in err if "error" in line]
    assert len(errors) == 1 and errors[0] == err[-1] and "folder not found" in errors[0]


@pytest.mark.slow
def test_lcm_scheduler_runs_the_stream_batch_runtime(tiny_model):
    from engine.backends.torch_backend import TorchBackend
    from engine.evaluation.runs import run_runtime
    from engine.runtime.presets import preset_settings
    rng = np.random.default_rng(1)
    maps = {t: rng.integers(0, 255, (5, 128, 128, 3), dtype=np.uint8) for t in ("depth", "normal", "render")}
    out = {s: run_runtime(TorchBackend(tiny_model), preset_settings("realtime", steps=2, scheduler=s), maps["render"][0],
                          maps, 128)[0] for s in ("ddim", "lcm")}
    assert out["lcm"].shape == out["ddim"].shape == (5, 128, 128, 3)
    assert not np.array_equal(out["lcm"], out["ddim"])  # c_skip / c_out and the re-noising differ from DDIM


def test_student_option_rejects_bad_values():
    from engine.weights.student import resolve_student
    assert resolve_student(None, "/x") is None and resolve_student("none", "/x") is None
    assert resolve_student("auto", "/nonexistent") is None
    with pytest.raises(Exception, match="file not found"):
        resolve_student("/nonexistent/s.safetensors", None)
    with pytest.raises(InputError):
        from engine.weights.tiny_decoder import parse_decoder_option
        parse_decoder_option("taesd")
    from engine.backends.registry import open_backend
    with pytest.raises(InputError, match="backend onnxruntime runs the graphs it was given"):
        open_backend("onnxruntime", onnx="/nonexistent", student="s.safetensors")


def test_issue12_benchmark_rows_and_criteria(weights_with_student, tmp_path):
    """bench_quality's issue-12 rows find the student / tiny decoder beside the weights or say why not;
    the done-criteria judge the gap closed, the decode speed-up and its PSNR cost."""
    import argparse
    import pathlib
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the benchmarks package
    from benchmarks.bench_quality import Backends
    from benchmarks.quality_variants import DECODERS, VARIANTS
    from engine.evaluation.criteria import judge_distillation
    student = next(v for v in VARIANTS if v.name == "student 4 stream")
    args = argparse.Namespace(weights=str(weights_with_student), models={}, overlap_export=False, onnx=None)
    found = Backends(args, tmp_path, [])
    assert found._student(student, found.model_dir("student")).endswith("student.safetensors")
    assert DECODERS["tiny"](weights_with_student).startswith("taesd:")
    with pytest.raises(LookupError, match="no student in"):
        found._student(student, tmp_path)
    with pytest.raises(LookupError, match="no tiny decoder in"):
        DECODERS["tiny"](tmp_path)
    rows = {"quality": {"psnr_db": 30.0}, "realtime": {"psnr_db": 20.0, "decode_ms_per_frame": 10.0},
            "student 4 stream": {"psnr_db": 27.5}, "realtime tiny decoder": {"psnr_db": 19.5, "decode_ms_per_frame": 1.5}}
    verdicts = judge_distillation(rows)
    assert [v["pass"] for v in verdicts] == [True, True, True] and abs(verdicts[0]["margin"] - 0.75) < 1e-9
    rows["student 4 stream"]["psnr_db"], rows["realtime tiny decoder"]["decode_ms_per_frame"] = 26.0, 2.5
    assert [v["pass"] for v in judge_distillation(rows)] == [False, False, True]

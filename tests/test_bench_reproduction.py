"""The reproducibility table (benchmarks/bench_reproduction.py): what it counts and when a reference model
is judged within the noise of the training command."""
from __future__ import annotations

import json

import pytest

from benchmarks.bench_reproduction import METRICS, _named, summary, verdicts, write


def _result(psnr: float, iou: float, passes: list[bool]) -> dict:
    rows = [{"variant": "quality", "psnr_db": psnr, "fg_iou": iou, "face_colour_err": 10.0, "bg_err": 25.0},
            {"variant": "realtime", "psnr_db": psnr + 0.2, "fg_iou": iou}]
    criteria = [{"criterion": f"fg_iou: quality >= control {i}", "control": f"control {i}", "pass": ok}
                for i, ok in enumerate(passes)]
    criteria.append({"criterion": "psnr_db: 'student 4 stream' closes >= 0.7 of the gap", "pass": False})
    criteria.append({"criterion": "decode ms/frame: tiny decoder >= 5x faster", "pass": True})
    return {"rows": rows, "criteria": criteria}


def test_summary_reads_the_criteria_metrics_and_counts_only_issue_11_criteria():
    s = summary(_result(17.0, 0.6, [True, False, True]))
    assert s["quality psnr_db"] == 17.0 and s["realtime psnr_db"] == pytest.approx(17.2)
    assert s["quality fg_iou"] == 0.6 and s["realtime fg_iou"] == 0.6
    assert (s["criteria passed"], s["criteria"]) == (2, 3)  # the student / decoder rows are issue 12's
    assert s["failed"] == ["fg_iou: quality >= control 1"]


def test_reference_is_within_noise_only_inside_the_runs_range_widened_by_the_sampling_range():
    reference = [summary(_result(p, 0.63, [True])) for p in (17.4, 17.3, 17.5)]  # sampling range 0.2
    runs = [summary(_result(p, i, [True])) for p, i in ((17.0, 0.58), (16.9, 0.60))]
    by = {c["metric"]: c for c in verdicts(reference[0], runs, reference)}
    psnr = by["quality psnr_db"]
    assert psnr["band"] == pytest.approx([16.7, 17.2]) and not psnr["within"]  # 17.4 > 17.0 + 0.2
    assert psnr["runs_range"] == pytest.approx(0.1) and psnr["sampling_range"] == pytest.approx(0.2)
    iou = by["quality fg_iou"]  # no sampling spread: the runs' range alone, 0.63 outside 0.58..0.60
    assert iou["band"] == pytest.approx([0.58, 0.60]) and not iou["within"]
    closer = [summary(_result(p, 0.63, [True])) for p in (17.3, 17.6)]
    assert all(c["within"] for c in verdicts(reference[0], closer, reference))
    assert {c["metric"] for c in verdicts(reference[0], runs, reference)} == {f"{v} {m}" for v, m in METRICS}


def test_models_must_be_named_trained_folders(tmp_path):
    with pytest.raises(SystemExit, match="NAME=DIR"):
        _named(["nofolder"], "--run")
    with pytest.raises(SystemExit, match="no magicportrait.json"):
        _named([f"x={tmp_path}"], "--run")
    (tmp_path / "magicportrait.json").write_text("{}")
    assert _named([f"seed 1={tmp_path}"], "--run") == [("seed 1", tmp_path)]


def test_the_table_is_written_as_json_and_markdown(tmp_path):
    reference = summary(_result(17.4, 0.63, [True, False]))
    runs = [summary(_result(17.0, 0.58, [True, False]))]
    models = [{"name": "shipped", "kind": "reference", "seed": 42, **reference},
              {"name": "seed 0", "kind": "training command", "seed": 42, **runs[0]}]
    meta = {"processor": "x86_64", "cpu_count": 2}
    write(models, verdicts(reference, runs, [reference]), meta, tmp_path)
    data = json.loads((tmp_path / "reproduction.json").read_text())
    assert [r["name"] for r in data["rows"]] == ["shipped", "seed 0"] and data["checks"]
    md = (tmp_path / "reproduction.md").read_text()
    assert "Within noise?" in md and "| quality psnr_db | 17.4 | 17 |" in md and "| NO |" in md

"""Quality metrics (engine/evaluation) on cases with known answers, the controls and criteria, and
— with a trained model — the `quality` preset against every control on a short held-out clip."""
from __future__ import annotations

import math
import os
import pathlib

import numpy as np
import pytest

from engine.evaluation import metrics as M
from engine.evaluation.controls import ANSWER_CONTROLS, answer_control, make_cases, mean_image, model_control_inputs
from engine.evaluation.criteria import CRITERIA, Criterion, judge_all, judge_on_cases
from engine.synthetic.clips import Clip


def _smooth(seed: int, shape=(3, 32, 32, 3)) -> np.ndarray:
    """A random image with structure at several scales (uint8)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (shape[0], 4, 4, shape[3]))
    big = np.kron(coarse, np.ones((1, shape[1] // 4, shape[2] // 4, 1)))
    return np.clip(big + rng.normal(0, 20, shape), 0, 255).astype(np.uint8)


def test_psnr_identical_is_capped_and_known_offsets_match_the_formula():
    a = _smooth(0)
    assert M.psnr(a, a) == M.PSNR_CAP
    b = np.clip(a.astype(int) + 1, 0, 255).astype(np.uint8)
    mse = np.mean((a.astype(float) - b) ** 2)
    assert M.psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / mse))
    assert M.psnr(a, _smooth(1)) < 20
    assert M.l1(a, a) == 0 and M.l1(np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 7, np.uint8)) == 7


def test_ssim_is_one_for_identical_images_and_falls_for_noise_and_shifts():
    a = _smooth(2)
    assert M.ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert M.ssim(a, _smooth(3)) < 0.5
    assert M.ssim(a, np.roll(a, 3, axis=2)) < 0.9
    darker = (a * 0.8).astype(np.uint8)  # same structure, other luminance: below 1, well above unrelated
    assert M.ssim(a, _smooth(3)) < M.ssim(a, darker) < 1.0


def test_ssim_matches_scikit_image_gaussian_definition():
    metrics = pytest.importorskip("skimage.metrics", reason="scikit-image (extra 'face') not installed")
    a, b = _smooth(4)[0], _smooth(5)[0]
    b = ((a.astype(int) + b) // 2).astype(np.uint8)
    ref = metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                        data_range=255, channel_axis=-1)
    assert M.ssim(a, b) == pytest.approx(ref, abs=1e-6)


def test_mask_iou_of_a_mask_with_itself_is_one_and_known_overlaps():
    m = np.zeros((2, 8, 8), bool)
    m[:, 2:6, 2:6] = True
    assert M.mask_iou(m, m) == 1.0
    assert M.mask_iou(m, ~m) == 0.0
    half = np.zeros_like(m)
    half[:, 2:6, 4:8] = True  # 8 shared of 16 + 16 - 8 = 24
    assert M.mask_iou(m, half) == pytest.approx(8 / 24)
    empty = np.zeros_like(m)
    assert M.mask_iou(empty, empty) == 1.0 and M.mask_iou(m, empty) == 0.0


def test_foreground_recall_and_precision_tell_a_missed_head_from_background_found_as_head():
    head = np.zeros((2, 8, 8), bool)
    head[:, 2:6, 2:6] = True                      # 16 pixels
    shifted = np.roll(head, 2, axis=2)            # a wrong pose: 8 of 16 found, 8 found wrongly
    assert M.mask_recall(shifted, head) == pytest.approx(0.5) and M.mask_precision(shifted, head) == pytest.approx(0.5)
    noisy_bg = head.copy()
    noisy_bg[:, 0, :] = True                      # right pose, a background row not reproduced: 8 more found
    assert M.mask_recall(noisy_bg, head) == 1.0 and M.mask_precision(noisy_bg, head) == pytest.approx(16 / 24)
    assert M.mask_iou(noisy_bg, head) == pytest.approx(16 / 24)  # IoU alone cannot tell the two apart
    empty = np.zeros_like(head)
    assert M.mask_recall(empty, empty) == M.mask_precision(empty, empty) == 1.0
    assert M.mask_recall(empty, head) == 0.0 and M.mask_precision(head[0], head[0]) == 1.0


def test_foreground_finds_what_differs_from_the_known_background():
    rng = np.random.default_rng(6)
    bg = rng.uniform(0, 1, (16, 16, 3))
    frames = np.repeat(np.floor(bg * 255 + 0.5).astype(np.uint8)[None], 2, axis=0)
    noisy = np.clip(frames.astype(int) + rng.integers(-10, 11, frames.shape), 0, 255).astype(np.uint8)
    assert not M.foreground(noisy, bg).any()  # small errors are not a head
    truth = np.zeros((2, 16, 16), bool)
    truth[:, 4:10, 5:12] = True
    far = np.where(bg > 0.5, 0, 255).astype(np.uint8)  # >= 127 levels from the background in every channel
    head = noisy.copy()
    head[truth] = np.broadcast_to(far, head.shape)[truth]
    assert (M.foreground(head, bg) == truth).all()


def test_flicker_is_zero_for_a_static_clip_and_measures_change_the_truth_lacks():
    still = np.repeat(_smooth(7)[:1], 4, axis=0)
    assert M.flicker(still, still) == 0.0
    moving = np.stack([np.roll(still[0], k, axis=1) for k in range(4)])
    assert M.flicker(moving, moving) == 0.0
    assert M.flicker(still, moving) > 5  # a frozen answer to a moving truth
    blink = still.astype(int).copy()
    blink[1::2] = np.clip(blink[1::2] + 20, 0, 255)
    base = still.astype(int)
    expected = np.mean(np.abs(np.diff(blink, axis=0) - np.diff(base, axis=0)))
    assert M.flicker(blink.astype(np.uint8), still) == pytest.approx(expected) and expected > 10


def test_face_colour_and_background_errors_look_only_where_they_should():
    gt = _smooth(8, (2, 16, 16, 3))
    mask = np.zeros((2, 16, 16), np.uint8)
    mask[:, 4:12, 4:12] = 255
    assert M.face_colour_error(gt, gt, mask) == 0 and M.background_error(gt, gt, mask) == 0
    out = gt.astype(int)
    out[mask == 0] = 255 - out[mask == 0]  # wrong background only
    out = out.astype(np.uint8)
    assert M.face_colour_error(out, gt, mask) == 0 and M.background_error(out, gt, mask) > 30
    tinted = gt.astype(int)
    tinted[mask > 127] = np.clip(tinted[mask > 127] + [30, 0, 0], 0, 255)
    tinted = tinted.astype(np.uint8)
    assert 5 < M.face_colour_error(tinted, gt, mask) <= 10 and M.background_error(tinted, gt, mask) == 0


def test_score_clip_refuses_mismatched_shapes_and_names_every_metric():
    gt = np.zeros((2, 16, 16, 3), np.uint8)  # a grey square on a black background
    gt[:, 4:12, 4:12] = 200
    mask = (gt[..., 0] > 0).astype(np.uint8) * 255
    scores = M.score_clip(gt, gt, mask, np.zeros((16, 16, 3)))
    assert set(scores) == set(M.METRICS) and scores["psnr_db"] == M.PSNR_CAP
    assert scores["fg_iou"] == scores["fg_recall"] == scores["fg_precision"] == 1.0
    assert scores["face_colour_err"] == scores["bg_err"] == scores["flicker"] == 0 and scores["ssim"] == 1.0
    with pytest.raises(ValueError, match="shape"):
        M.score_clip(gt[:1], gt, mask, np.zeros((16, 16, 3)))


def _fake_clip(identity: int, motion: int, frames: int = 4, size: int = 16) -> Clip:
    v = np.full((frames, size, size, 3), identity * 10 + motion, np.uint8)
    return Clip(v, {k: v + 1 for k in ("depth", "normal", "render")}, np.zeros((frames, size, size), np.uint8),
                v[0] + 2, np.zeros((size, size), np.uint8), identity, motion)


def test_cases_pair_distinct_identities_and_motions_and_controls_borrow_from_the_partner():
    clips = [_fake_clip(0, 0), _fake_clip(0, 1), _fake_clip(1, 1), _fake_clip(1, 2), _fake_clip(2, 2)]
    cases = make_cases(clips, 2, frames=3)
    assert [(c.clip.identity, c.clip.motion) for c in cases] == [(0, 0), (1, 1)]
    assert (cases[0].other.identity, cases[0].other.motion) == (1, 1)
    assert all(len(c.clip.frames) == 3 and len(c.clip.maps["render"]) == 3 for c in cases)
    ref, maps = model_control_inputs(cases[0], "swapped reference")
    assert (ref == cases[0].other.reference).all() and maps is cases[0].clip.maps
    ref, maps = model_control_inputs(cases[0], "swapped motion")
    assert (ref == cases[0].clip.reference).all() and (maps["depth"] == cases[0].other.maps["depth"][:3]).all()
    mean = mean_image(clips)
    for control in ANSWER_CONTROLS:
        assert answer_control(cases[0], control, mean).shape == cases[0].clip.frames.shape
    with pytest.raises(ValueError, match="distinct"):
        make_cases([_fake_clip(0, 0), _fake_clip(0, 1)], 2, 3)


def test_criteria_pass_and_fail_on_their_bounds():
    iou = Criterion("copy the reference", "fg_iou", "higher_by", 0.15)
    assert iou.judge(0.8, 0.6)["pass"] and not iou.judge(0.7, 0.6)["pass"]
    err = Criterion("swapped reference", "bg_err", "error_ratio", 0.75)
    assert err.judge(7.5, 10)["pass"] and not err.judge(8, 10)["pass"]
    good = {"psnr_db": 30, "fg_iou": 0.9, "face_colour_err": 2, "bg_err": 2}
    bad = {"psnr_db": 10, "fg_iou": 0.3, "face_colour_err": 20, "bg_err": 20}
    controls = {c.control: bad for c in CRITERIA}
    assert all(v["pass"] for v in judge_all(good, controls))
    assert not any(v["pass"] for v in judge_all(bad, controls))


def _per_case_rows(case: str, quality: dict, control: dict) -> list[dict]:
    return [{"variant": "quality", "case": case, **quality}] + [
        {"variant": name, "case": case, **control} for name in {c.control for c in CRITERIA}]


def test_criteria_on_a_subset_average_only_that_subsets_cases():
    good = {"psnr_db": 30, "fg_iou": 0.9, "face_colour_err": 2, "bg_err": 2}
    bad = {"psnr_db": 10, "fg_iou": 0.3, "face_colour_err": 20, "bg_err": 20}
    rows = _per_case_rows("easy", good, bad) + _per_case_rows("hard", bad, good)
    assert all(v["pass"] for v in judge_on_cases(rows, {"easy"}))
    assert not any(v["pass"] for v in judge_on_cases(rows, {"hard"}))
    both = judge_on_cases(rows, {"easy", "hard"})  # means of the two: quality == control everywhere
    assert [v["quality"] for v in both] == [v["control_value"] for v in both] and not any(v["pass"] for v in both)
    assert judge_on_cases(rows, {"absent"}) == []
    assert judge_on_cases([r for r in rows if r["variant"] != "mean image"], {"easy"}) == []


def test_criteria_by_background_rows_name_each_subset_and_its_verdicts():
    from benchmarks.bench_quality import FORMER_DEFAULT_CASES, criteria_by_subset
    good = {"psnr_db": 30, "fg_iou": 0.9, "face_colour_err": 2, "bg_err": 2}
    bad = {"psnr_db": 10, "fg_iou": 0.3, "face_colour_err": 20, "bg_err": 20}
    names = [f"c{i}" for i in range(FORMER_DEFAULT_CASES + 1)]
    kinds = {n: ("stripes" if i == 0 else "solid") for i, n in enumerate(names)}
    rows = [r for i, n in enumerate(names) for r in (_per_case_rows(n, bad, good) if i == 0
                                                     else _per_case_rows(n, good, bad))]
    table = {r["cases"]: r for r in criteria_by_subset(rows, kinds)}
    assert list(table) == [f"all {len(names)} cases", f"first {FORMER_DEFAULT_CASES} (the former default)",
                           "solid backgrounds", "stripes backgrounds"]
    assert table["solid backgrounds"]["pass"] == f"{len(CRITERIA)}/{len(CRITERIA)}"
    assert table["stripes backgrounds"]["pass"] == f"0/{len(CRITERIA)}"
    assert table["stripes backgrounds"]["IoU vs copy the reference"] == "-0.600 FAIL"
    assert table["solid backgrounds"]["bg vs swapped reference"] == "0.10x PASS"
    assert table["solid backgrounds"]["n"] == len(names) - 1


def test_pareto_front_keeps_only_undominated_points():
    from importlib import import_module
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    front = import_module("benchmarks.quality_figures").pareto_front
    pts = [(1.0, 20.0), (2.0, 25.0), (3.0, 24.0), (0.5, 10.0), (4.0, 30.0)]
    assert [pts[i] for i in front(pts)] == [(0.5, 10.0), (1.0, 20.0), (2.0, 25.0), (4.0, 30.0)]


def trained_weights() -> pathlib.Path | None:
    """The built-in trained model (engine.weights.builtin), else $MPRT_QUALITY_WEIGHTS."""
    env = os.environ.get("MPRT_QUALITY_WEIGHTS")
    if env:
        return pathlib.Path(env)
    from engine.weights.builtin import BUILTIN_DIR  # the tests' default model is the tiny one: ask by path
    return BUILTIN_DIR if (BUILTIN_DIR / "magicportrait.json").exists() else None


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="held-out case 0 has a striped background, where the shipped model loses "
                   "to 'copy the reference' on IoU and to the render map on face colour (per case in "
                   "benchmarks/results/quality.md; the 24 cases pass all 8 criteria); strict: passing means "
                   "this clip meets them too")
def test_quality_preset_beats_every_control_on_a_held_out_clip():
    weights = trained_weights()
    if weights is None:
        pytest.skip("no trained model: no built-in synthetic-heads weights and MPRT_QUALITY_WEIGHTS unset")
    from engine.backends.registry import open_backend
    from engine.evaluation.runs import run_runtime
    from engine.runtime.presets import preset_settings, settings_for_backend
    from engine.synthetic.dataset import DatasetSpec, background, render_split
    backend = open_backend("torch", weights=weights, device="cpu")
    size = backend.info.image_size
    clips = render_split(DatasetSpec(), "heldout", size=size, limit=3)
    case = make_cases(clips, 1, frames=6)[0]
    settings = settings_for_backend(preset_settings("quality"), backend.info)  # at the model's CFG scale
    bg = background(case.clip.identity, size)

    def scored(frames):
        return M.score_clip(frames, case.clip.frames, case.clip.mask, bg)

    quality = scored(run_runtime(backend, settings, case.clip.reference, case.clip.maps, size)[0])
    controls = {}
    for control in ("swapped reference", "swapped motion"):
        ref, maps = model_control_inputs(case, control)
        controls[control] = scored(run_runtime(backend, settings, ref, maps, size)[0])
    mean = mean_image(clips)  # the benchmark's is over all 12 held-out clips
    for control in ("copy the reference", "copy the render map", "mean image"):
        controls[control] = scored(answer_control(case, control, mean))
    failed = [v for v in judge_all(quality, controls) if not v["pass"]]
    assert not failed, failed


def test_fidelity_column_compares_each_fast_path_with_the_quality_frames():
    """psnr_vs_quality_db: a row's frames against the `quality` row's frames of the same case; absent for
    `quality` itself and when `quality` did not run."""
    from types import SimpleNamespace
    from benchmarks.bench_quality import fidelity_to_quality
    cases = [SimpleNamespace(name="a"), SimpleNamespace(name="b")]
    q = np.full((2, 8, 8, 3), 100, np.uint8)
    outputs = {("quality", "a"): q, ("quality", "b"): q, ("fast", "a"): q, ("fast", "b"): q + 10}
    got = fidelity_to_quality("fast", cases, outputs)["psnr_vs_quality_db"]
    assert got == round((M.psnr(q, q) + M.psnr(q + 10, q)) / 2, 2) and got < M.psnr(q, q)
    assert fidelity_to_quality("quality", cases, outputs) == {}
    assert fidelity_to_quality("fast", cases, {("fast", "a"): q}) == {}


def test_fg_iou_per_case_keeps_each_case_background_and_the_pose_rows():
    from benchmarks.bench_quality import AUTOENCODER_CEILING, iou_by_case
    per_case = [{"variant": "quality", "case": "a", "fg_iou": 0.9},
                {"variant": "copy the reference", "case": "a", "fg_iou": 0.5},
                {"variant": "balanced", "case": "a", "fg_iou": 0.1},  # not a pose-criterion row
                {"variant": AUTOENCODER_CEILING, "case": "b", "fg_iou": 0.7},
                {"variant": "quality", "case": "b", "fg_iou": 0.4}]
    assert iou_by_case(per_case, {"a": "solid", "b": "stripes"}) == [
        {"case": "a", "background": "solid", "quality": 0.9, "copy the reference": 0.5},
        {"case": "b", "background": "stripes", AUTOENCODER_CEILING: 0.7, "quality": 0.4}]


@pytest.mark.slow
def test_quality_benchmark_end_to_end_on_two_rendered_cases(tmp_path):
    """bench_quality on the built-in model: held-out cases rendered in memory (spawned workers), the
    quality row and its controls, the criteria on all cases and per background, written whole."""
    import json
    from benchmarks import bench_quality
    weights = trained_weights()
    if weights is None:
        pytest.skip("no trained model: no built-in synthetic-heads weights and MPRT_QUALITY_WEIGHTS unset")
    assert bench_quality.run(["--weights", str(weights), "--clips", "2", "--frames", "2", "--variants", "quality",
                              "--backends", "torch", "--threads", "1", "--out-dir", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "quality.json").read_text())
    assert data["meta"]["complete"] and "2 identities x 2 motions" in data["meta"]["data"]
    assert {r["case"] for r in data["per_clip"]} == {"id100000-m100000", "id100001-m100001"}
    assert len(data["criteria"]) == len(CRITERIA)
    md = (tmp_path / "quality.md").read_text()
    assert "## Issue-11 criteria by background" in md
    assert "| all 2 cases | 2 |" in md and "| solid backgrounds | 1 |" in md and "| stripes backgrounds | 1 |" in md

"""Issue 11's done-criteria: the `quality` preset against each control, on the metric that control
lacks. Fixed before the trained model was measured; a failed criterion is reported, not re-tuned.

"Clearly" for an error metric means the preset's error is at most CLEARLY_RATIO of the control's.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

CLEARLY_RATIO = 0.75


@dataclasses.dataclass(frozen=True)
class Criterion:
    control: str
    metric: str
    kind: str        # "higher_by": quality - control >= bound; "error_ratio": quality <= bound * control
    bound: float

    def describe(self) -> str:
        if self.kind == "higher_by":
            return f"{self.metric}: quality >= '{self.control}' + {self.bound:g}"
        return f"{self.metric}: quality <= {self.bound:g} x '{self.control}'"

    def judge(self, quality: float, control: float) -> dict:
        if self.kind == "higher_by":
            margin, ok = quality - control, quality - control >= self.bound
        else:
            margin = quality / control if control else math.inf
            ok = quality <= self.bound * control
        return {"criterion": self.describe(), "control": self.control, "metric": self.metric,
                "quality": quality, "control_value": control,
                "margin": margin, "margin_kind": "difference" if self.kind == "higher_by" else "ratio",
                "required": self.bound, "pass": bool(ok) and not math.isnan(quality)}


CRITERIA = (
    Criterion("copy the reference", "fg_iou", "higher_by", 0.15),
    Criterion("swapped motion", "fg_iou", "higher_by", 0.15),
    Criterion("swapped reference", "face_colour_err", "error_ratio", CLEARLY_RATIO),
    Criterion("swapped reference", "bg_err", "error_ratio", CLEARLY_RATIO),
    Criterion("copy the render map", "face_colour_err", "error_ratio", CLEARLY_RATIO),
    Criterion("copy the render map", "bg_err", "error_ratio", CLEARLY_RATIO),
    Criterion("mean image", "psnr_db", "higher_by", 2.0),
    Criterion("copy the render map", "psnr_db", "higher_by", 2.0),
)


def judge_all(quality: dict, controls: dict[str, dict]) -> list[dict]:
    """quality: metric -> value of the `quality` preset; controls: name -> metric -> value."""
    return [c.judge(quality[c.metric], controls[c.control][c.metric]) for c in CRITERIA]


# Issue 12 (few-step student, tiny decoder), on the rows of benchmarks/quality_variants.py.
GAP_CLOSED = 0.7        # the 4-step student (stream batch) recovers >= 70% of the realtime -> quality PSNR gap
DECODE_SPEEDUP = 5.0    # the tiny decoder decodes >= 5x faster than the VAE decoder, same backend
DECODE_PSNR_COST = 1.0  # ... and costs <= 1 dB PSNR


def judge_distillation(rows: dict[str, dict], decode_alone: dict[str, float] | None = None) -> list[dict]:
    """Verdicts (same keys as Criterion.judge) for the issue-12 rows present in `rows` (variant -> metrics).
    decode_alone: {"vae": ms/frame, "tiny": ms/frame} of the two decoders timed alone on one backend; the
    speed-up is judged on it when given (the runtime's decode stage shares the CPU with the UNet), else on
    the runtime rows' decode stage."""
    out = []
    rows = {k: v for k, v in rows.items() if "psnr_db" in v}  # rows listed as "not run" have no metrics
    q, r, s = rows.get("quality"), rows.get("realtime"), rows.get("student 4 stream")
    if q and r and s:
        gap = q["psnr_db"] - r["psnr_db"]
        closed = (s["psnr_db"] - r["psnr_db"]) / gap if gap > 0 else math.nan
        out.append({"criterion": f"psnr_db: 'student 4 stream' closes >= {GAP_CLOSED:g} of the 'realtime' -> "
                    "'quality' gap", "quality": s["psnr_db"], "control_value": r["psnr_db"], "margin": closed,
                    "margin_kind": "share of gap", "required": GAP_CLOSED, "pass": bool(closed >= GAP_CLOSED)})
    t = rows.get("realtime tiny decoder")
    if decode_alone and decode_alone.get("vae") and decode_alone.get("tiny"):
        what, ms = "both decoders alone, same latents and backend", decode_alone
    elif r and t and r.get("decode_ms_per_frame") and t.get("decode_ms_per_frame"):
        what, ms = "runtime decode stage, 'realtime tiny decoder' vs 'realtime'", {
            "vae": r["decode_ms_per_frame"], "tiny": t["decode_ms_per_frame"]}
    else:
        ms = None
    if ms:
        speedup = ms["vae"] / ms["tiny"]
        out.append({"criterion": f"decode ms/frame: tiny decoder >= {DECODE_SPEEDUP:g}x faster than the VAE ({what})",
                    "quality": ms["tiny"], "control_value": ms["vae"], "margin": speedup, "margin_kind": "speed-up",
                    "required": DECODE_SPEEDUP, "pass": bool(speedup >= DECODE_SPEEDUP)})
        cost = r["psnr_db"] - t["psnr_db"]
        out.append({"criterion": f"psnr_db: tiny decoder costs <= {DECODE_PSNR_COST:g} dB ('realtime tiny decoder' "
                    "vs 'realtime')", "quality": t["psnr_db"], "control_value": r["psnr_db"], "margin": cost,
                    "margin_kind": "dB lost", "required": DECODE_PSNR_COST, "pass": bool(cost <= DECODE_PSNR_COST)})
    return out


def judge_on_cases(per_case: list[dict], cases: set[str]) -> list[dict]:
    """judge_all on a subset of the cases: each row's metrics averaged over the per-case rows (dicts with
    "variant", "case" and the metrics) of `cases` only. [] when `quality` or a control has none there."""
    rows: dict[str, list[dict]] = {}
    for r in per_case:
        if r["case"] in cases:
            rows.setdefault(r["variant"], []).append(r)
    needed = {c.control for c in CRITERIA} | {"quality"}
    if not needed <= rows.keys():
        return []
    means = {name: {c.metric: float(np.nanmean([r[c.metric] for r in rows[name]])) for c in CRITERIA}
             for name in needed}
    return judge_all(means["quality"], means)

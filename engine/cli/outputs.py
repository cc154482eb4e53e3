"""Every output of a command checked up front, before any model is loaded: names free (or
--overwrite), folders there, writable and with room for a first frame, no two outputs (or an output
and an input) on one path."""
from __future__ import annotations

from engine.io.destinations import check_distinct, check_output_path, frame_bytes
from engine.io.frame_folder import check_frame_folder

REPORT_BYTES = 1 << 16  # a JSON report is a few kB


def check_run_outputs(args, inputs: dict[str, object], size_hint: int | None = None) -> None:
    """--out / --grid / --report / --frames-dir of animate, demo and live. size_hint: the output size
    if known (--size), else 512 (the most a first frame of the real model needs)."""
    outputs = {"--out": getattr(args, "out", None), "--grid": getattr(args, "grid", None),
               "--report": getattr(args, "report", None), "--frames-dir": getattr(args, "frames_dir", None)}
    check_distinct(outputs, inputs)
    need = frame_bytes(size_hint or 512)
    for option in ("--out", "--grid"):
        if outputs[option]:
            check_output_path(outputs[option], args.overwrite, option, need)
    if outputs["--report"]:
        check_output_path(outputs["--report"], args.overwrite, "--report", REPORT_BYTES)
    if outputs["--frames-dir"]:
        check_frame_folder(outputs["--frames-dir"], args.overwrite, need_bytes=need)

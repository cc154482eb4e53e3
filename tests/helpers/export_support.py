"""Shared by test_export*.py and test_build*.py: one `mprt export` of the tiny model per test session.

The export is the end-to-end CLI run (fp32 + fp16, parity at 1, 4 and 12 frames, no onnxslim: its
clean-up is tested on its own in test_export.py), cached so the build tests reuse the same folder.
"""
from __future__ import annotations

import functools
import pathlib

PARITY_FRAMES = (1, 4, 12)


@functools.cache
def tiny_export(base: pathlib.Path) -> pathlib.Path:
    from engine.cli import main
    from engine.weights.tiny import ensure_tiny_weights
    out = base / "tiny_onnx"
    rc = main(["export", "--weights", str(ensure_tiny_weights()), "--out", str(out), "--fp16",
               "--parity-frames", ",".join(map(str, PARITY_FRAMES))])
    assert rc == 0
    return out


@functools.cache
def tiny_triton_repo(base: pathlib.Path) -> pathlib.Path:
    """`mprt export --triton` from the session's tiny export: ONNX models on CPU instances."""
    from engine.cli import main
    out = base / "tiny_triton"
    assert main(["export", "--onnx", str(tiny_export(base)), "--triton", str(out), "--triton-kind", "cpu"]) == 0
    return out

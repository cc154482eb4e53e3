"""The weights a command uses when none are given: the shipped trained model, else the tiny
random-weight model (only when the shipped files are absent, e.g. a checkout without them)."""
from __future__ import annotations

import os
import pathlib
import sys

BUILTIN_NAME = "synthetic-heads"
BUILTIN_DIR = pathlib.Path(__file__).resolve().parent.parent / "assets" / "synthetic_heads"
# MPRT_DEFAULT_WEIGHTS=tiny makes the tiny random-weight model the default (the test suite's
# fixtures are sized for it); unset, the built-in trained model is.
DEFAULT_ENV = "MPRT_DEFAULT_WEIGHTS"


def builtin_weights_dir() -> pathlib.Path | None:
    """The shipped small model trained on synthetic people (see its MODEL_CARD.md), if present."""
    if os.environ.get(DEFAULT_ENV) == "tiny":
        return None
    return BUILTIN_DIR if (BUILTIN_DIR / "magicportrait.json").exists() else None


def default_weights(announce: bool = True) -> tuple[pathlib.Path, bool]:
    """(folder, is_random): the built-in trained model, else the tiny random one. Says which on stderr."""
    root = builtin_weights_dir()
    if root is not None:
        if announce:
            print(f"note: no --weights given: using the built-in {BUILTIN_NAME} model (a small model trained "
                  "on synthetic heads, not on real faces; pass --weights DIR for MagicPortrait's weights)",
                  file=sys.stderr)
        return root, False
    from engine.weights.tiny import ensure_tiny_weights
    root = ensure_tiny_weights()
    if announce:
        print(f"note: no --weights given and no built-in model: using the tiny random-weight model at {root} "
              "(outputs are noise-like; pass --weights DIR for real results)", file=sys.stderr)
    return root, True

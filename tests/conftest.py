"""Shared test fixtures: paths to ../shared and small helpers."""
from __future__ import annotations

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Commands run without --weights use the tiny random-weight model in tests (fixtures and expected
# sizes are made for it); tests of the built-in trained model clear this (test_builtin_model.py).
os.environ.setdefault("MPRT_DEFAULT_WEIGHTS", "tiny")
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
    if not SHARED.is_dir():
        pytest.skip(f"../shared not found beside the project root ({SHARED})")
    return SHARED


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> pathlib.Path:
    """A tiny random-weight model in upstream's on-disk layout (written once per test session)."""
    from engine.weights.tiny import write_tiny_weights
    return write_tiny_weights(tmp_path_factory.mktemp("weights") / "tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_weights):
    from engine.model import MagicPortraitModel
    return MagicPortraitModel.from_weights(tiny_weights)


# Streaming-session tests (aiortc, MediaPipe, torch worker threads) can leave native threads whose
# teardown aborts the interpreter at exit ("terminate called without an active exception"), after
# every result has been reported — turning a green run's exit status into 134. End the process with
# pytest's own status instead (MPRT_TEST_HARD_EXIT=0 keeps the normal shutdown, to debug that).
_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if _EXIT_STATUS and os.environ.get("MPRT_TEST_HARD_EXIT", "1") == "1":
        import sys
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])

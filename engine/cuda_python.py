"""cuda-python in one place: its modules under either layout (`cuda.bindings.<name>` since 12.6,
`cuda.<legacy name>` before), and its results — (status, *values) tuples — unwrapped, raising the
caller's error type with the status named."""
from __future__ import annotations

import importlib
from typing import Callable

LEGACY_NAMES = {"runtime": "cudart", "driver": "cuda", "nvrtc": "nvrtc"}


def load(binding: str, error: type[Exception], message: str):
    """The cuda-python module `binding` ("runtime", "driver", "nvrtc"); `error(message)` when absent."""
    for name in (f"cuda.bindings.{binding}", f"cuda.{LEGACY_NAMES[binding]}"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise error(message)


def unwrap(result, what: str, error: type[Exception] = RuntimeError,
           describe: Callable[[object], str] | None = None):
    """`result` of a cuda-python call -> None, its one value, or its values; `error("<what> failed:
    <status>")` when the status is not success (0). describe(status) names it (default: its name)."""
    status, *values = result if isinstance(result, tuple) else (result,)
    if int(status) != 0:
        name = describe(status) if describe else getattr(status, "name", str(status))
        raise error(f"{what} failed: {name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values

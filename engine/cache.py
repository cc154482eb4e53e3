"""The one cache root for what the engine derives and keeps (built kernels, the tiny model, source
portrait parameters): $MPRT_CACHE_DIR, else $XDG_CACHE_HOME/mprt, else ~/.cache/mprt. Every entry's
name carries a key of what made it, so a stale entry is never read."""
from __future__ import annotations

import hashlib
import os
import pathlib

ENV_CACHE_DIR = "MPRT_CACHE_DIR"


def cache_root() -> pathlib.Path:
    if os.environ.get(ENV_CACHE_DIR):
        return pathlib.Path(os.environ[ENV_CACHE_DIR])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "mprt"


def cache_path(*parts: str) -> pathlib.Path:
    """<cache root>/<parts...>."""
    return cache_root().joinpath(*parts)


def files_key(paths, length: int = 16) -> str:
    """Hex key of the contents of `paths` (in the given order): sha256 over their sha256 digests."""
    digests = "".join(hashlib.sha256(pathlib.Path(p).read_bytes()).hexdigest() for p in paths)
    return hashlib.sha256(digests.encode("ascii")).hexdigest()[:length]

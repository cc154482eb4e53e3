"""Files written whole or not at all: a temporary sibling, renamed over the target on success."""
from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """`with atomic_file(p) as f: f.write(...)` — `p` appears only if the block completes.

    The file gets the usual permissions (0666 & ~umask; mkstemp alone would leave 0600).
    """
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, data: bytes | memoryview) -> pathlib.Path:
    """Write `data` to `path` whole or not at all (atomic_file)."""
    path = pathlib.Path(path)
    with atomic_file(path) as f:
        f.write(data)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[pathlib.Path]:
    """`with atomic_path(p) as tmp:` a tool writes the file `tmp` (a compiler, a library's save
    function); it is renamed to `p` if the block completes, removed otherwise."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial" + path.suffix)
    os.close(fd)
    try:
        yield pathlib.Path(tmp)
        os.replace(tmp, path)
    finally:
        pathlib.Path(tmp).unlink(missing_ok=True)

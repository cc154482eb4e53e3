"""Files written whole or not at all: a uniquely named temporary sibling (so two runs never share
one), moved onto the target only when complete — replacing it only when the caller allows."""
from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import tempfile
from typing import IO, Iterator

from engine.errors import InputError


def temp_sibling(path: str | os.PathLike, suffix: str = ".partial") -> pathlib.Path:
    """A new, empty, uniquely named file beside `path` (same folder: the final rename is atomic)."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    return pathlib.Path(tmp)


def publish(tmp: str | os.PathLike, path: str | os.PathLike, overwrite: bool) -> None:
    """Move the finished file `tmp` onto `path`. Without overwrite the step is no-clobber: a file that
    appeared at `path` since the run checked it (another run, another program) is left untouched."""
    tmp, path = pathlib.Path(tmp), pathlib.Path(path)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp alone would leave 0600
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic, and fails if the name is taken
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{path}: appeared while this run was writing it (another run?); "
                         "left untouched (pass --overwrite to replace it)") from None
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV):
            raise
        _publish_without_links(tmp, path)  # e.g. vfat / some network mounts
        return
    tmp.unlink()


def _publish_without_links(tmp: pathlib.Path, path: pathlib.Path) -> None:
    try:  # reserve the name atomically, then replace our own placeholder
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{path}: appeared while this run was writing it (another run?); "
                         "left untouched (pass --overwrite to replace it)") from None
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb", overwrite: bool = True) -> Iterator[IO]:
    """`with atomic_file(p) as f: f.write(...)` — `p` appears only if the block completes.

    overwrite=False: an existing `p` (also one that appears while writing) is never replaced.
    """
    path = pathlib.Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path}: already exists (pass --overwrite to replace it)")
    tmp = temp_sibling(path)
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
        publish(tmp, path, overwrite)
    except BaseException:
        tmp.unlink(missing_ok=True)
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

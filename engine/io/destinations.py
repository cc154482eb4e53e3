"""Output destinations, checked before any work is done: the name is free (or --overwrite), its
folder exists, is writable and has room, and no two outputs (or an output and an input) of one run
are the same file."""
from __future__ import annotations

import os
import pathlib
import shutil

from engine.errors import InputError
from engine.io.atomic import temp_sibling


def check_output_path(path: str | os.PathLike, overwrite: bool, option: str | None = None,
                      need_bytes: int = 0) -> pathlib.Path:
    """A file output: refused if it exists (unless overwrite) or is a folder; its folder is checked
    with `check_folder_writable`."""
    path = pathlib.Path(path)
    name = f"{option} {path}" if option else str(path)
    if path.is_dir():
        raise InputError(f"{name}: is a folder; expected a file name")
    if path.exists() and not overwrite:
        raise InputError(f"{name}: already exists (pass --overwrite to replace it)")
    check_folder_writable(path.parent, name, need_bytes)
    return path


def check_folder_writable(folder: str | os.PathLike, name: str, need_bytes: int = 0) -> None:
    """`folder` exists, a file can be created in it (a real probe: permissions, read-only mounts,
    quotas) and it has at least `need_bytes` free. `name` says which output the error is about."""
    folder = pathlib.Path(folder)
    if not folder.exists():
        raise InputError(f"{name}: output folder {folder} does not exist")
    if not folder.is_dir():
        raise InputError(f"{name}: {folder} is not a folder")
    try:
        temp_sibling(folder / ".mprt-write-test", suffix="").unlink()
    except OSError as err:
        raise InputError(f"{name}: cannot write in {folder} ({err.strerror or err})") from None
    if need_bytes:
        free = shutil.disk_usage(folder).free
        if free < need_bytes:
            raise InputError(f"{name}: {folder} has {_mb(free)} free, at least {_mb(need_bytes)} are needed "
                             "(one output frame)")


def check_distinct(outputs: dict[str, object], inputs: dict[str, object] | None = None) -> None:
    """Refuse two outputs that resolve to one path (`--out x --grid x`), or an output that is an input.
    outputs / inputs: option name -> path or None (unused options)."""
    seen: dict[str, str] = {}
    for option, path in outputs.items():
        if not path:
            continue
        key = os.path.realpath(os.fspath(path))
        if key in seen:
            raise InputError(f"{option} {path}: same path as {seen[key]}; give every output its own path")
        seen[key] = option
    for option, path in (inputs or {}).items():
        if path and os.path.realpath(os.fspath(path)) in seen:
            raise InputError(f"{seen[os.path.realpath(os.fspath(path))]} {path}: is the input {option}; "
                             "an input is never written over")


def frame_bytes(size: int) -> int:
    """Room for one uncompressed square RGB frame: what 'room for at least a first frame' means."""
    return size * size * 3


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def check_output_folder(path: str | os.PathLike, option: str, need_bytes: int = 0) -> pathlib.Path:
    """A folder output that is created if missing (with its parents): the folder, or its nearest
    existing ancestor, must be a writable folder with room."""
    path = pathlib.Path(path)
    name = f"{option} {path}"
    if path.exists() and not path.is_dir():
        raise InputError(f"{name}: exists and is not a folder")
    existing = next(p for p in [path, *path.absolute().parents] if p.exists())
    check_folder_writable(existing, name, need_bytes)
    return path

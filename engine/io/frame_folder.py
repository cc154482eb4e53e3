"""A folder of numbered PNG frames that never deletes what it did not write.

Frames are written to a temporary folder and moved in when the run ends. The folder gets a
manifest (`.mprt-frames.json`) listing the frames mprt wrote; only those are ever replaced or
removed (with overwrite). A non-empty folder without a manifest is refused: it is someone else's.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile

import numpy as np

from engine.errors import InputError
from engine.io.atomic import atomic_file
from engine.io.destinations import check_folder_writable

MANIFEST = ".mprt-frames.json"
FRAME_NAME = "frame_{:06d}.png"


def owned_frames(folder: pathlib.Path) -> list[str] | None:
    """The frame names mprt wrote into `folder` (its manifest), or None where there is no manifest."""
    path = pathlib.Path(folder) / MANIFEST
    if not path.exists():
        return None
    try:
        names = json.loads(path.read_text())["frames"]
        if not all(isinstance(n, str) and "/" not in n and n != MANIFEST for n in names):
            raise ValueError("bad frame names")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{path}: unreadable frames manifest ({err}); remove the folder's contents "
                         "yourself or choose another folder") from None
    return names


def check_frame_folder(path, overwrite: bool, option: str = "--frames-dir", need_bytes: int = 0) -> pathlib.Path:
    """A new folder, an empty one, or one holding frames of an earlier run (with overwrite)."""
    path = pathlib.Path(path)
    name = f"{option} {path}"
    if path.exists():
        if not path.is_dir():
            raise InputError(f"{name}: exists and is not a folder")
        ours = owned_frames(path)
        foreign = [e for e in os.listdir(path) if e != MANIFEST and e not in (ours or ()) and not _our_temp(path, e)]
        if ours is None and foreign:
            raise InputError(f"{name}: holds {len(foreign)} file(s) mprt did not write; frames go only into a "
                             "new or empty folder, or one mprt filled before (nothing else is ever deleted)")
        if ours and not overwrite:
            raise InputError(f"{name}: already holds frames of an earlier run (pass --overwrite to replace "
                             "those; other files there are kept)")
        check_folder_writable(path, name, need_bytes)
    else:
        check_folder_writable(path.parent, name, need_bytes)
    return path


def _our_temp(folder: pathlib.Path, entry: str) -> bool:
    """A temporary folder of an earlier, killed run (see FrameFolder.__init__)."""
    return entry.startswith(f".{folder.name}.") and entry.endswith(".partial")


class FrameFolder:
    """`write(frame)` appends frame_000000.png, ...; `close()` moves them into place; `abort()` leaves
    nothing behind."""

    def __init__(self, path, overwrite: bool = False):
        self.path, self.overwrite = check_frame_folder(path, overwrite), overwrite
        # Inside the target when it exists (same filesystem, parent need not be writable), else beside it.
        where = self.path if self.path.exists() else self.path.parent
        self.tmp = pathlib.Path(tempfile.mkdtemp(dir=where, prefix=f".{self.path.name}.", suffix=".partial"))
        self.names: list[str] = []

    def write(self, frame: np.ndarray) -> None:
        from PIL import Image
        name = FRAME_NAME.format(len(self.names))
        Image.fromarray(frame).save(self.tmp / name)
        self.names.append(name)

    def close(self) -> pathlib.Path | None:
        """Move the frames into place; None (and nothing left behind) when no frame was written."""
        if not self.tmp.exists():
            return None
        if not self.names:
            self.abort()
            return None
        try:
            if not self.path.exists():
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(self.tmp, 0o777 & ~umask)  # mkdtemp alone would leave 0700
                (self.tmp / MANIFEST).write_text(json.dumps({"written_by": "mprt", "frames": self.names}))
                os.rename(self.tmp, self.path)
            else:
                self._merge()
        except BaseException:
            self.abort()
            raise
        return self.path

    def _merge(self) -> None:
        old = owned_frames(self.path) or []
        if old and not self.overwrite:
            raise InputError(f"{self.path}: frames of another run appeared while this one was writing; "
                             "left untouched (pass --overwrite to replace them)")
        clash = [n for n in self.names if (self.path / n).exists() and n not in old]
        if clash:
            raise InputError(f"{self.path / clash[0]}: a file mprt did not write has a frame's name; left untouched")
        # The manifest lists old and new names until the move is done, so an interrupted merge
        # still leaves every frame known as ours.
        self._write_manifest(sorted(set(old) | set(self.names)))
        for name in self.names:
            os.replace(self.tmp / name, self.path / name)
        for name in set(old) - set(self.names):
            (self.path / name).unlink(missing_ok=True)
        self._write_manifest(self.names)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _write_manifest(self, names: list[str]) -> None:
        with atomic_file(self.path / MANIFEST, "w") as fh:
            json.dump({"written_by": "mprt", "frames": names}, fh)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

"""Reading .npz archives the user names (FLAME parameters, FLAME models, texture spaces) with one
clear error for a missing, corrupt or wrong-kind file (a single .npy array included)."""
from __future__ import annotations

import pathlib
import zipfile

import numpy as np

from engine.errors import InputError


def load_npz(path: str | pathlib.Path, what: str, error=InputError) -> dict[str, np.ndarray]:
    """All arrays of the archive (no pickles). `what` names the file kind in errors."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise error(f"{what} not found: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise error(f"{path}: not a readable {what} ({err})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise error(f"{path}: a single array (.npy), expected a {what} (.npz archive of named arrays)")
    try:
        with data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise error(f"{path}: not a readable {what} ({err})") from None

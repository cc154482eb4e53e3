"""Load / save FLAME-format models: `generic_model.pkl` (restricted unpickler) or our `.npz`."""
from __future__ import annotations

import pathlib
import pickle

import numpy as np

from engine.errors import CheckpointError
from engine.flame.model import FlameModel, model_from_arrays, model_to_arrays
from engine.flame.pkl_loader import load_flame_pickle
from engine.io.atomic import atomic_file
from engine.io.npz import load_npz


def load_flame_model(path) -> FlameModel:
    """Load a FLAME model from `generic_model.pkl` or a `.npz` written by `save_flame_npz`."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"FLAME model file not found: {path}")
    try:
        if path.suffix.lower() in (".npz", ".npy"):
            arrays = load_npz(path, "FLAME model (.npz)", CheckpointError)
        else:
            arrays = load_flame_pickle(path)
        return model_from_arrays(arrays, str(path))
    except (pickle.UnpicklingError, ValueError, OSError, EOFError, KeyError, TypeError, IndexError) as err:
        raise CheckpointError(f"{path}: not a usable FLAME model ({err})") from err


def save_flame_npz(model: FlameModel, out_path, overwrite: bool = False) -> None:
    """Write the model as `.npz`, whole or not at all (temp file + os.replace)."""
    out_path = pathlib.Path(out_path)
    if out_path.exists() and not overwrite:
        raise FileExistsError(f"{out_path} exists (pass overwrite to replace it)")
    with atomic_file(out_path, overwrite=overwrite) as fh:
        np.savez(fh, **model_to_arrays(model))

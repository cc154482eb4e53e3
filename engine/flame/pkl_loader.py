"""Chumpy-free loading of FLAME 2020 `generic_model.pkl` (spec guidance_maps.md §2).

The pkl holds chumpy `Ch` objects and a scipy-sparse `J_regressor`. Unpickling them normally needs
chumpy (broken on numpy >= 1.24) and executes whatever classes the file names. This unpickler
resolves only a short allow-list: numpy array reconstruction, chumpy classes (turned into stubs
that keep their state; a leaf `Ch` stores its array under 'x') and scipy sparse matrices
(rebuilt from their CSC/CSR state). Any other global -> `pickle.UnpicklingError`.
"""
from __future__ import annotations

import codecs
import copyreg
import pickle

import numpy as np


class ChumpyStub:
    """Stand-in for any chumpy class: keeps the pickled state dict."""

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {"state": state}

    def to_array(self, key: str) -> np.ndarray:
        if "x" not in self.state:
            raise pickle.UnpicklingError(
                f"{key}: chumpy object without an 'x' array (a derived expression); "
                "convert the file with chumpy once instead"
            )
        return np.asarray(self.state["x"])


class SparseStub:
    """Stand-in for scipy.sparse csc/csr matrices, rebuilt dense from their state."""

    format = ""

    def __setstate__(self, state):
        self.state = state

    def to_array(self, key: str) -> np.ndarray:
        st = self.state
        shape = st.get("_shape", st.get("shape"))
        try:
            data, indices, indptr = (np.asarray(st[k]) for k in ("data", "indices", "indptr"))
            rows, cols = (int(n) for n in shape)
        except (KeyError, TypeError, ValueError) as err:
            raise pickle.UnpicklingError(f"{key}: sparse matrix state is incomplete ({err})") from err
        dense = np.zeros((rows, cols), dtype=data.dtype)
        outer = cols if self.format == "csc" else rows
        if len(indptr) != outer + 1:
            raise pickle.UnpicklingError(f"{key}: sparse indptr length {len(indptr)} != {outer + 1}")
        counts = np.diff(indptr)
        major = np.repeat(np.arange(outer), counts)
        if self.format == "csc":
            dense[indices, major] = data
        else:
            dense[major, indices] = data
        return dense


class CscStub(SparseStub):
    format = "csc"


class CsrStub(SparseStub):
    format = "csr"


def _numpy_globals() -> dict:
    core = getattr(np, "_core", None) or np.core
    names = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        names[(mod, "_reconstruct")] = core.multiarray._reconstruct
        names[(mod, "scalar")] = core.multiarray.scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        names[(mod, "_frombuffer")] = core.numeric._frombuffer
    names[("numpy", "ndarray")] = np.ndarray
    names[("numpy", "dtype")] = np.dtype
    return names


class RestrictedFlameUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global outside the FLAME allow-list."""

    def __init__(self, file):
        super().__init__(file, encoding="latin1")
        self._allowed = _numpy_globals()
        self._allowed[("copy_reg", "_reconstructor")] = copyreg._reconstructor
        self._allowed[("copyreg", "_reconstructor")] = copyreg._reconstructor
        # python 3 writes bytes in protocols <= 2 as _codecs.encode(str, 'latin1'): harmless
        self._allowed[("_codecs", "encode")] = codecs.encode
        self._allowed[("__builtin__", "object")] = object
        self._allowed[("builtins", "object")] = object

    def find_class(self, module, name):
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        if module == "chumpy" or module.startswith("chumpy."):
            return ChumpyStub
        if module.startswith("scipy.sparse"):
            if name == "csc_matrix":
                return CscStub
            if name == "csr_matrix":
                return CsrStub
        raise pickle.UnpicklingError(
            f"refusing to load global '{module}.{name}': not part of a FLAME model file"
        )


def load_flame_pickle(path) -> dict:
    """Read a FLAME pkl into a dict of plain numpy arrays (chumpy / sparse turned dense)."""
    with open(path, "rb") as fh:
        raw = RestrictedFlameUnpickler(fh).load()
    if not isinstance(raw, dict):
        raise pickle.UnpicklingError(f"expected a dict of arrays, got {type(raw).__name__}")
    out = {}
    for key, value in raw.items():
        if isinstance(value, (ChumpyStub, SparseStub)):
            value = value.to_array(key)
        out[key] = value
    return out

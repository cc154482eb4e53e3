"""`FlameModel`: the arrays of a FLAME-format head model (spec guidance_maps.md §2, §6).

Same keys and layouts as FLAME 2020 `generic_model.pkl` (float32), so a real FLAME file and the
shipped synthetic stand-in go through the same LBS. Render topology (obj faces + UVs), albedo and
a default SH light are optional extras: the real pkl has none of them (they come from DECA's
`head_template.obj` and the licence-gated `FLAME_texture.npz`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

NUM_SHAPE = 100  # identity coefficients used (shapedirs[..., :100])
NUM_EXPR = 50  # expression coefficients used (shapedirs[..., 300:350])
EXPR_OFFSET = 300  # FLAME 2020: 300 identity + 100 expression columns
NUM_JOINTS = 5  # root, neck, jaw, left eye, right eye
FLAME_PARENTS = (-1, 0, 1, 1, 1)


@dataclass(frozen=True)
class RenderTopology:
    """Faces and UVs the rasteriser uses (head_template.obj order, spec §4.2)."""

    faces: np.ndarray  # (T, 3) int32
    uv_faces: np.ndarray  # (T, 3) int32
    uvs: np.ndarray  # (U, 2) float32, v up


@dataclass(frozen=True)
class FlameModel:
    v_template: np.ndarray  # (V, 3)
    shapedirs: np.ndarray  # (V, 3, S) with S >= 350
    posedirs: np.ndarray  # (V, 3, 36)
    J_regressor: np.ndarray  # (5, V) dense
    weights: np.ndarray  # (V, 5)
    parents: tuple[int, ...]  # (5,), root = -1
    f: np.ndarray  # (T, 3) int32, the model's own faces
    name: str = "FLAME"
    topology: RenderTopology | None = None
    albedo: np.ndarray | None = None  # (3, 256, 256) float32 RGB
    default_light: np.ndarray | None = None  # (9, 3) float32

    @property
    def num_verts(self) -> int:
        return int(self.v_template.shape[0])

    def blendshapes(self) -> np.ndarray:
        """(V, 3, 150) basis: 100 identity then 50 expression columns (spec §2)."""
        return np.concatenate(
            [self.shapedirs[..., :NUM_SHAPE], self.shapedirs[..., EXPR_OFFSET:EXPR_OFFSET + NUM_EXPR]],
            axis=-1,
        ).astype(np.float32)

    def with_topology(self, topology: RenderTopology) -> "FlameModel":
        if int(topology.faces.max()) >= self.num_verts:
            raise ValueError(
                f"render topology indexes vertex {int(topology.faces.max())} but the model has "
                f"{self.num_verts} vertices"
            )
        return replace(self, topology=topology)


def check_model_arrays(arrays: dict, source: str) -> None:
    """Raise ValueError naming `source` and the key whose shape breaks the FLAME layout."""
    required = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
    missing = [k for k in required if k not in arrays]
    if missing:
        raise ValueError(f"{source}: missing key(s) {missing}; a FLAME model needs {list(required)}")
    v = np.asarray(arrays["v_template"]).shape
    if len(v) != 2 or v[1] != 3:
        raise ValueError(f"{source}: v_template has shape {v}, expected (V, 3)")
    nv = v[0]
    checks = {
        "shapedirs": lambda s: len(s) == 3 and s[:2] == (nv, 3) and s[2] >= EXPR_OFFSET + NUM_EXPR,
        "posedirs": lambda s: s == (nv, 3, 36),
        "J_regressor": lambda s: s == (NUM_JOINTS, nv),
        "weights": lambda s: s == (nv, NUM_JOINTS),
        "kintree_table": lambda s: s == (2, NUM_JOINTS),
        "f": lambda s: len(s) == 2 and s[1] == 3,
    }
    wanted = {
        "shapedirs": f"({nv}, 3, >= {EXPR_OFFSET + NUM_EXPR})",
        "posedirs": f"({nv}, 3, 36)",
        "J_regressor": f"({NUM_JOINTS}, {nv})",
        "weights": f"({nv}, {NUM_JOINTS})",
        "kintree_table": f"(2, {NUM_JOINTS})",
        "f": "(T, 3)",
    }
    for key, ok in checks.items():
        shape = tuple(np.shape(arrays[key]))
        if not ok(shape):
            raise ValueError(f"{source}: {key} has shape {shape}, expected {wanted[key]}")


def model_from_arrays(arrays: dict, source: str) -> FlameModel:
    """Build a FlameModel from FLAME-keyed arrays (pkl/npz), casting to float32 like upstream."""
    check_model_arrays(arrays, source)
    kintree = np.asarray(arrays["kintree_table"]).astype(np.int64)
    parents = [int(p) for p in kintree[0]]
    parents[0] = -1  # upstream forces the root's parent (stored as 2**32-1) to -1 (spec §2)
    topology = None
    if all(k in arrays for k in ("render_faces", "render_uv_faces", "render_uvs")):
        topology = RenderTopology(
            faces=np.asarray(arrays["render_faces"], np.int32),
            uv_faces=np.asarray(arrays["render_uv_faces"], np.int32),
            uvs=np.asarray(arrays["render_uvs"], np.float32),
        )
    name = arrays.get("model_name", "FLAME")
    return FlameModel(
        v_template=np.asarray(arrays["v_template"], np.float32),
        shapedirs=np.asarray(arrays["shapedirs"], np.float32),
        posedirs=np.asarray(arrays["posedirs"], np.float32),
        J_regressor=np.asarray(arrays["J_regressor"], np.float32),
        weights=np.asarray(arrays["weights"], np.float32),
        parents=tuple(parents),
        f=np.asarray(arrays["f"]).astype(np.int32),
        name=str(np.asarray(name)),
        topology=topology,
        albedo=None if "albedo" not in arrays else np.asarray(arrays["albedo"], np.float32),
        default_light=None
        if "default_light" not in arrays
        else np.asarray(arrays["default_light"], np.float32),
    )


def model_to_arrays(model: FlameModel) -> dict:
    """Inverse of `model_from_arrays` (FLAME keys + optional render extras), for `.npz` files."""
    kintree = np.stack([np.array(model.parents, np.int64), np.arange(NUM_JOINTS)])
    out = {
        "v_template": model.v_template,
        "shapedirs": model.shapedirs,
        "posedirs": model.posedirs,
        "J_regressor": model.J_regressor,
        "weights": model.weights,
        "kintree_table": kintree,
        "f": model.f,
        "model_name": np.array(model.name),
    }
    if model.topology is not None:
        out.update(
            render_faces=model.topology.faces,
            render_uv_faces=model.topology.uv_faces,
            render_uvs=model.topology.uvs,
        )
    if model.albedo is not None:
        out["albedo"] = model.albedo
    if model.default_light is not None:
        out["default_light"] = model.default_light
    return out

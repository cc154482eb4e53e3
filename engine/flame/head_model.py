"""Pick the head model a command renders with: a FLAME file, or the shipped synthetic head."""
from __future__ import annotations

from engine.errors import CheckpointError, InputError
from engine.flame.model import FlameModel, RenderTopology


def resolve_head_model(flame_model_path=None, head_obj=None) -> tuple[FlameModel, str]:
    """-> (model, one-line note for the user).

    flame_model_path: generic_model.pkl or a converted .npz; its render topology comes from the
    npz (if stored) or from head_obj (DECA's head_template.obj). Without a FLAME file: the
    synthetic head, on head_obj's topology when given, else on the procedural mesh.
    """
    from engine.flame.obj_mesh import read_obj

    if flame_model_path is None:
        from engine.flame.synthetic import synthetic_head

        try:
            model = synthetic_head(head_obj)
        except ValueError as err:
            raise InputError(str(err)) from err
        return model, f"no FLAME model given: rendering the {model.name}"
    from engine.flame.loaders import load_flame_model

    model = load_flame_model(flame_model_path)
    if head_obj is not None:
        mesh = read_obj(head_obj)
        if len(mesh.verts) != model.num_verts:
            raise InputError(f"{head_obj}: {len(mesh.verts)} vertices, but the FLAME model "
                             f"{flame_model_path} has {model.num_verts}")
        model = model.with_topology(RenderTopology(mesh.faces, mesh.uv_faces, mesh.uvs))
    if model.topology is None:
        raise CheckpointError(f"{flame_model_path}: no UVs / render faces stored; pass --head-obj "
                              "head_template.obj (DECA's data folder)")
    return model, f"head model: {model.name} from {flame_model_path}"

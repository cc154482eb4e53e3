"""`mprt convert-flame`: FLAME 2020 generic_model.pkl -> .npz, read once without chumpy."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "convert-flame", help="convert FLAME generic_model.pkl to a chumpy-free .npz",
        description="Read FLAME 2020 generic_model.pkl with a restricted unpickler (chumpy objects "
        "become arrays, the sparse J_regressor becomes dense, any other class is refused) and write "
        "its arrays (v_template, shapedirs, posedirs, J_regressor, weights, kintree_table, f) to .npz.")
    p.add_argument("--pkl", required=True, metavar="generic_model.pkl", help="FLAME model pickle")
    p.add_argument("--out", required=True, metavar="FLAME.npz", help="output .npz")
    p.add_argument("--head-obj", metavar="OBJ", default=None,
                   help="also store DECA head_template.obj faces + UVs, so rendering needs no --head-obj")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=run)


def run(args) -> int:
    import pathlib

    from engine.errors import InputError
    from engine.flame.head_model import resolve_head_model
    from engine.flame.loaders import load_flame_model, save_flame_npz

    out = pathlib.Path(args.out)
    if out.suffix.lower() != ".npz":
        raise InputError(f"--out {out}: expected a .npz file name")
    from engine.io.destinations import check_distinct, check_output_path
    check_distinct({"--out": out}, {"--pkl": args.pkl, "--head-obj": args.head_obj})
    check_output_path(out, args.overwrite, "--out")
    if args.head_obj is not None:
        model, _ = resolve_head_model(args.pkl, args.head_obj)
    else:
        model = load_flame_model(args.pkl)
    save_flame_npz(model, out, overwrite=args.overwrite)
    print(f"wrote {out} ({model.num_verts} vertices, {len(model.f)} faces"
          f"{', with render topology' if model.topology is not None else ''})")
    return 0

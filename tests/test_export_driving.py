"""`mprt export` also writes the driving encoders' graphs beside the diffusion graphs."""
import onnx

from engine.cli import main
from engine.graph_specs import find_spec, read_export_manifest


def test_export_writes_driving_encoder_graphs(tiny_weights, tmp_path, capsys):
    out = tmp_path / "onnx"
    rc = main(["export", "--weights", str(tiny_weights), "--out", str(out), "--parity-frames", "none",
               "--random-driving-encoders"])
    assert rc == 0
    exported = read_export_manifest(str(out))
    for name in ("deca_coarse_encoder", "smirk_expression_encoder"):
        graph = onnx.load(str(out / f"{name}.fp32.onnx"))
        assert [i.name for i in graph.graph.input] == ["crop_rgb01"]
        spec = find_spec(exported.specs, name, "fp32")  # listed in export.json like every graph
        assert spec.input_names == ["crop_rgb01"] and exported.reports[spec.file_name]["bytes"] > 0
    assert exported.plan.driving
    text = capsys.readouterr().out
    assert "deca_coarse_encoder" in text and "random weights" in text


def test_export_names_missing_driving_weights(tiny_weights, tmp_path, capsys):
    rc = main(["export", "--weights", str(tiny_weights), "--out", str(tmp_path / "o"), "--parity-frames", "none",
               "--driving-weights", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "deca_model.tar" in err and "SMIRK_em1.pt" in err

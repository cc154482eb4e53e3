"""`mprt export` also writes the driving encoders' graphs beside the diffusion graphs."""
import onnx
import pytest

from engine.cli import main
from engine.graph_specs import find_spec, read_export_manifest


@pytest.fixture(scope="module")
def driving_export(tiny_weights, tmp_path_factory):
    """(export folder, stdout) of one export with random driving encoders."""
    import contextlib
    import io
    out, text = tmp_path_factory.mktemp("driving") / "onnx", io.StringIO()
    with contextlib.redirect_stdout(text):
        rc = main(["export", "--weights", str(tiny_weights), "--out", str(out), "--parity-frames", "none",
                   "--random-driving-encoders"])
    assert rc == 0
    return out, text.getvalue()


@pytest.mark.slow
def test_export_writes_driving_encoder_graphs(driving_export):
    out, text = driving_export
    exported = read_export_manifest(str(out))
    for name in ("deca_coarse_encoder", "smirk_expression_encoder"):
        graph = onnx.load(str(out / f"{name}.fp32.onnx"))
        assert [i.name for i in graph.graph.input] == ["crop_rgb01"]
        spec = find_spec(exported.specs, name, "fp32")  # listed in export.json like every graph
        assert spec.input_names == ["crop_rgb01"] and exported.reports[spec.file_name]["bytes"] > 0
    assert exported.plan.driving
    assert "deca_coarse_encoder" in text and "random weights" in text


def test_export_names_missing_driving_weights(tiny_weights, tmp_path, capsys):
    rc = main(["export", "--weights", str(tiny_weights), "--out", str(tmp_path / "o"), "--parity-frames", "none",
               "--driving-weights", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "deca_model.tar" in err and "SMIRK_em1.pt" in err


@pytest.mark.slow
def test_driving_encoders_run_on_onnxruntime_from_the_export(driving_export):
    """OrtDrivingEncoder (the exported graphs) == the torch DrivingEncoder on the same random weights,
    within 1e-4 of each output's scale (fp32 ORT vs torch)."""
    import numpy as np

    from engine.backends.driving_graphs import OrtDrivingEncoder
    from engine.driving import DrivingEncoder, EncoderInputs, random_encoders
    out, _ = driving_export
    rng = np.random.default_rng(0)
    inputs = [EncoderInputs(rng.random((3, 224, 224), np.float32), rng.random((3, 224, 224), np.float32))
              for _ in range(3)]
    got = OrtDrivingEncoder(out, threads=1).encode(inputs)
    want = DrivingEncoder(random_encoders()).encode(inputs)
    for key in ("pose", "exp", "jaw"):
        assert got[key].shape == want[key].shape, key
        scale = max(float(np.abs(want[key]).max()), 1e-6)
        assert float(np.abs(got[key] - want[key]).max()) <= 1e-4 * scale, key


def test_deca_graph_layout_matches_the_encoder():
    from engine.driving.deca_encoder import DECA_LAYOUT
    from engine.graphs import deca_coarse_encoder as graph
    assert graph.PARAM_COUNT == DECA_LAYOUT.total
    assert (graph.GLOBAL_POSE.start, graph.GLOBAL_POSE.stop) == (DECA_LAYOUT.pose.start, DECA_LAYOUT.pose.start + 3)

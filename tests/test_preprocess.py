"""engine/preprocess.py: one torch-free home for the model's numpy-side inputs, used by the torch model
and the graph backends alike."""
import subprocess
import sys

import numpy as np
import pytest

from engine.errors import CheckpointError, InputError
from engine.preprocess import GUIDANCE_TYPES, check_maps, read_text_embedding, reference_image


def test_imports_without_torch():
    code = "import sys; sys.modules['torch'] = None\nimport engine.preprocess, engine.backends.base\nprint('ok')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def test_map_checks_name_what_is_wrong():
    good = {t: np.zeros((2, 16, 16, 3), np.uint8) for t in GUIDANCE_TYPES}
    assert check_maps(good, 8) == 2
    with pytest.raises(InputError, match=r"missing type\(s\) \['render'\]"):
        check_maps({t: good[t] for t in GUIDANCE_TYPES[:2]}, 8)
    with pytest.raises(InputError, match="normal"):
        check_maps({**good, "normal": good["normal"].astype(np.float32)}, 8)
    with pytest.raises(InputError, match="multiple of 32"):
        check_maps(good, 32)


def test_reference_image_range_shape_and_bad_input():
    img = np.full((10, 20, 3), 255, np.uint8)
    img[..., 0] = 0
    x = reference_image(img, (16, 8))
    assert x.shape == (1, 3, 8, 16) and x.dtype == np.float32
    assert np.allclose(x[0, 0], -1) and np.allclose(x[0, 1:], 1)
    with pytest.raises(InputError, match="reference image"):
        reference_image(img[..., :2], (16, 8))


def test_the_torch_model_uses_the_same_reference_image(tiny_model):
    """encode_reference == the VAE encoder on engine.preprocess.reference_image (bit-identical input)."""
    import torch
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    with torch.no_grad():
        direct = tiny_model.vae_encoder(torch.from_numpy(reference_image(img, (64, 64))))
    assert torch.equal(tiny_model.encode_reference(img, (64, 64)), direct)


def test_text_embedding_from_a_folder_or_a_file(tiny_weights, tmp_path):
    from engine.networks.text_embedding import read_text_embedding as read_torch
    from engine.preprocess import TEXT_EMBEDDING_FILE
    emb = read_text_embedding(tiny_weights)
    assert emb.shape[:2] == (1, 77) and emb.dtype == np.float32
    np.testing.assert_array_equal(read_text_embedding(tiny_weights / TEXT_EMBEDDING_FILE), emb)
    np.testing.assert_array_equal(read_torch(tiny_weights / TEXT_EMBEDDING_FILE).numpy(), emb)
    with pytest.raises(CheckpointError, match="not found"):
        read_text_embedding(tmp_path)
    (tmp_path / TEXT_EMBEDDING_FILE).write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="cannot read"):
        read_text_embedding(tmp_path)

"""Tiny (TAESD-format) decoder: shapes, loading TAESD files and diffusers AutoencoderTiny folders
(checked against diffusers' own decoder), clear one-line errors, use by the model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.errors import CheckpointError, InputError
from engine.networks.tiny_decoder import TinyDecoder, taesd_to_diffusers_keys
from engine.weights.tiny_decoder import load_tiny_decoder, parse_decoder_option, save_tiny_decoder


def raw(net, x):
    """The decoder's output before the final clamp to [0, 1]."""
    return torch.nn.Sequential.forward(net, x)


def test_shapes_and_range():
    net = TinyDecoder(width=16).eval()
    with torch.no_grad():
        y = net(torch.randn(2, 4, 16, 12) * 5)
    assert y.shape == (2, 3, 128, 96) and float(y.min()) >= 0 and float(y.max()) <= 1
    keys = set(net.state_dict())
    assert {"1.weight", "3.conv.0.weight", "7.weight", "19.bias"} <= keys and "7.bias" not in keys  # TAESD's names


@pytest.mark.slow
def test_loads_a_diffusers_autoencoder_tiny_and_matches_its_decoder(tmp_path):
    from diffusers import AutoencoderTiny
    torch.manual_seed(0)
    ref = AutoencoderTiny().eval()  # TAESD's layout: width 64, blocks (3,3,3,1)
    ref.save_pretrained(str(tmp_path / "taesd"), safe_serialization=True)
    net, _ = load_tiny_decoder(tmp_path / "taesd")
    assert net.width == 64
    x = torch.randn(1, 4, 8, 8) * 2
    with torch.no_grad():
        want = (ref.decode(x).sample + 1) / 2  # diffusers maps TAESD's [0,1] output to [-1,1]
        got = raw(net, x)
    assert torch.allclose(got, want, atol=1e-5), float((got - want).abs().max())


def test_taesd_file_round_trip_with_metadata(tmp_path):
    torch.manual_seed(1)
    net = TinyDecoder(width=8).eval()
    save_tiny_decoder(net, tmp_path / "taesd_decoder.safetensors", {"trained_from": "vae", "steps": 3})
    with pytest.raises(InputError, match="--overwrite"):
        save_tiny_decoder(net, tmp_path / "taesd_decoder.safetensors", {})
    loaded, meta = load_tiny_decoder(tmp_path)
    x = torch.randn(1, 4, 4, 4)
    with torch.no_grad():
        assert torch.equal(raw(loaded, x), raw(net, x))
    assert meta == {"trained_from": "vae", "steps": "3"} and loaded.width == 8
    # The same tensors under diffusers' names load too (a folder without taesd_decoder.*).
    from safetensors.torch import save_file
    (tmp_path / "d").mkdir()
    save_file(taesd_to_diffusers_keys(net.state_dict()), str(tmp_path / "d" / "diffusion_pytorch_model.safetensors"))
    with torch.no_grad():
        assert torch.equal(raw(load_tiny_decoder(tmp_path / "d")[0], x), raw(net, x))


def test_errors_are_one_clear_line(tmp_path):
    from safetensors.torch import save_file
    with pytest.raises(CheckpointError, match="folder not found") as err:
        load_tiny_decoder(tmp_path / "nope")
    assert "\n" not in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no taesd_decoder.safetensors"):
        load_tiny_decoder(tmp_path / "empty")
    (tmp_path / "wrong").mkdir()
    save_file({"foo": torch.zeros(3)}, str(tmp_path / "wrong" / "taesd_decoder.safetensors"))
    with pytest.raises(CheckpointError, match="not a TAESD-format decoder"):
        load_tiny_decoder(tmp_path / "wrong")
    sd = TinyDecoder(width=8).state_dict()
    del sd["18.conv.2.weight"]
    sd["20.weight"] = torch.zeros(1)
    (tmp_path / "partial").mkdir()
    save_file(sd, str(tmp_path / "partial" / "taesd_decoder.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing keys \['18.conv.2.weight'\]; unexpected keys") as err:
        load_tiny_decoder(tmp_path / "partial")
    assert "\n" not in str(err.value)
    for bad in ("taesd", "taesd:", "tiny:x", "sdxl"):
        with pytest.raises(InputError, match="expected 'vae', 'auto' or 'taesd:DIR'"):
            parse_decoder_option(bad)
    assert parse_decoder_option(None) == ("vae", None) and parse_decoder_option("taesd:/a")[1].name == "a"
    assert parse_decoder_option("auto") == ("auto", None)


def test_model_decodes_with_the_tiny_decoder(tiny_model):
    latents = torch.randn(1, 4, 2, 16, 16)
    full = tiny_model.decode(latents)
    tiny_model.set_decoder(TinyDecoder(width=8), "taesd:test")
    try:
        small = tiny_model.decode(latents)
        assert small.shape == full.shape == (2, 128, 128, 3) and small.dtype == np.uint8
        assert tiny_model.decoder_name == "taesd:test" and not np.array_equal(small, full)
    finally:
        tiny_model.set_decoder(None, "vae")
    assert np.array_equal(tiny_model.decode(latents), full) and tiny_model.decoder_name == "vae"

"""The decoder fine-tune (mprt train's decoder stage, `mprt finetune-decoder`): only the decoder learns,
its loss falls, a rerun resumes; the command replaces a model's VAE folder whole and rewrites its hashes."""
from __future__ import annotations

import json
import shutil

import torch

from tests.test_distill_decoder import smooth_images, write_clip_folder


def _encoder_state(vae) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in vae.state_dict().items() if k.startswith(("encoder.", "quant_conv."))}


def test_only_the_decoder_learns_and_its_loss_falls(tmp_path):
    from engine.training.autoencoder import (EDGE_WEIGHT, edge_loss, encode_means, finetune_decoder,
                                             make_autoencoder, reconstruction_loss)
    from engine.training.data import to_unit
    torch.manual_seed(0)
    vae = make_autoencoder(32).eval().requires_grad_(False)
    images = smooth_images(4, 32)
    latents = encode_means(vae, images, "cpu")
    x = to_unit(images, "cpu") * 2 - 1

    def loss() -> float:
        with torch.no_grad():
            y = vae.decode(latents).sample
            return float(reconstruction_loss(y, x) + EDGE_WEIGHT * edge_loss(y, x))

    encoder, decoder_before, before = _encoder_state(vae), vae.decoder.conv_out.weight.clone(), loss()
    finetune_decoder(vae, images, latents, 30, 4, 1e-3, tmp_path / "decoder.pt", 0, "cpu")
    after = loss()
    assert after < 0.8 * before, (before, after)
    assert all(torch.equal(v, _encoder_state(vae)[k]) for k, v in encoder.items())  # the latents stay valid
    assert not torch.equal(decoder_before, vae.decoder.conv_out.weight)
    assert not any(p.requires_grad for p in vae.parameters())
    trained = {k: v.clone() for k, v in vae.state_dict().items()}
    again = finetune_decoder(make_autoencoder(32), images, latents, 30, 4, 1e-3, tmp_path / "decoder.pt", 0, "cpu")
    assert all(torch.equal(trained[k], v) for k, v in again.state_dict().items())  # done earlier: resumed whole


def test_cli_replaces_the_vae_folder_and_rewrites_the_hashes(tiny_weights, tmp_path, capsys):
    from engine.cli import main
    from engine.io.hashing import sha256_file
    from engine.model import MagicPortraitModel
    from engine.training.package import HASHES_FILE, write_hashes
    from engine.training.refit_decoder import REPORT_FILE
    weights = tmp_path / "model"
    shutil.copytree(tiny_weights, weights)
    write_hashes(weights)
    write_clip_folder(tmp_path / "data", clips=1, frames=3)
    vae_file = weights / "sd-vae-ft-mse" / "diffusion_pytorch_model.safetensors"
    old_hash = sha256_file(vae_file)
    argv = ["finetune-decoder", "--weights", str(weights), "--data", str(tmp_path / "data"), "--steps", "2",
            "--batch", "1"]
    assert main(argv) == 2 and "--overwrite" in capsys.readouterr().err
    assert sha256_file(vae_file) == old_hash  # refused: nothing touched
    old_encoder = _encoder_state(MagicPortraitModel.from_weights(weights).vae_encoder)

    assert main(argv + ["--overwrite"]) == 0
    assert sha256_file(vae_file) != old_hash
    report = json.loads((weights / "sd-vae-ft-mse" / REPORT_FILE).read_text())
    assert report["settings"]["steps"] == 2 and report["settings"]["batch"] == 1 and report["images"] == 4  # 3 frames + the portrait
    listed = dict(line.split("  ")[::-1] for line in (weights / HASHES_FILE).read_text().splitlines())
    assert listed["sd-vae-ft-mse/diffusion_pytorch_model.safetensors"] == sha256_file(vae_file)
    assert not [p for p in weights.iterdir() if p.name.startswith(".")]  # no temporary folder left
    model = MagicPortraitModel.from_weights(weights)
    new_encoder = _encoder_state(model.vae_encoder)
    assert old_encoder and all(torch.equal(old_encoder[k], new_encoder[k]) for k in old_encoder)
    assert all(torch.isfinite(v).all() for v in model.vae_decoder.state_dict().values())


def test_cli_names_a_clip_without_ground_truth(tiny_weights, tmp_path, capsys):
    from engine.cli import main
    write_clip_folder(tmp_path / "data", clips=1, frames=3)
    shutil.rmtree(tmp_path / "data" / "clip0" / "frames")
    argv = ["finetune-decoder", "--weights", str(tiny_weights), "--data", str(tmp_path / "data"), "--overwrite"]
    assert main(argv) == 2
    assert "clip0: no ground-truth frames" in capsys.readouterr().err


def test_a_file_written_into_a_model_folder_is_listed_in_its_hashes(tmp_path):
    """mprt distill / distill-decoder write into WEIGHTS/student, WEIGHTS/tiny_decoder: a folder of ours
    (model card + SHA256SUMS) lists the new file; any other folder is left alone."""
    from engine.io.hashing import sha256_file
    from engine.training.package import CARD_FILE, HASHES_FILE, rehash_model_folder
    model = tmp_path / "model"
    (model / "tiny_decoder").mkdir(parents=True)
    (model / "unet.safetensors").write_bytes(b"u")
    (model / CARD_FILE).write_text("card")
    (model / HASHES_FILE).write_text("stale  unet.safetensors\n")
    written = model / "tiny_decoder" / "taesd_decoder.safetensors"
    written.write_bytes(b"t")
    assert rehash_model_folder(written) == model.resolve()
    listed = dict(line.split("  ")[::-1] for line in (model / HASHES_FILE).read_text().splitlines())
    assert listed == {"tiny_decoder/taesd_decoder.safetensors": sha256_file(written),
                      "unet.safetensors": sha256_file(model / "unet.safetensors")}
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.safetensors").write_bytes(b"x")
    assert rehash_model_folder(other / "x.safetensors") is None and not (other / HASHES_FILE).exists()

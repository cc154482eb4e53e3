"""The fixed prompt's embedding is computed once from an SD1.5 folder's CLIP and then read from cache."""
import json

import pytest
import torch

from engine.errors import CheckpointError
from engine.networks.text_embedding import PROMPT, load_or_compute_text_embedding, read_text_embedding


def _write_tiny_clip(sd15):
    transformers = pytest.importorskip("transformers", reason="the optional 'clip' extra is not installed")
    tok_dir = sd15 / "tokenizer"
    tok_dir.mkdir(parents=True)
    words = sorted({w for w in PROMPT.lower().replace(".", " .").split()})
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for w in words:
        vocab[w + "</w>"] = len(vocab)
    for ch in "abcdefghijklmnopqrstuvwxyz.":
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    (tok_dir / "vocab.json").write_text(json.dumps(vocab))
    (tok_dir / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = transformers.CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"),
                                           model_max_length=77)
    tokenizer.save_pretrained(str(tok_dir))
    cfg = transformers.CLIPTextConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32,
                                      num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=77,
                                      bos_token_id=0, eos_token_id=1, pad_token_id=1)
    torch.manual_seed(0)
    transformers.CLIPTextModel(cfg).save_pretrained(str(sd15 / "text_encoder"))


def test_text_embedding_is_computed_once_then_cached(tmp_path):
    sd15 = tmp_path / "stable-diffusion-v1-5"
    _write_tiny_clip(sd15)
    cache = tmp_path / "text_embedding.safetensors"
    first = load_or_compute_text_embedding(cache, sd15)
    assert first.shape == (1, 77, 16)
    assert cache.exists()
    # Remove CLIP: the cache alone now serves, with identical values.
    import shutil
    shutil.rmtree(sd15)
    assert torch.equal(load_or_compute_text_embedding(cache, sd15), first)
    assert torch.equal(read_text_embedding(cache), first)


def test_no_clip_and_no_cache_is_a_clear_error(tmp_path):
    (tmp_path / "sd").mkdir()
    with pytest.raises(CheckpointError, match="text_encoder|transformers"):
        load_or_compute_text_embedding(tmp_path / "te.safetensors", tmp_path / "sd")

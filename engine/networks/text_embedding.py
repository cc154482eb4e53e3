"""The fixed text embedding of "A close up of a person." (networks.md (d), Text).

It is constant, so it is computed once from the SD1.5 folder's CLIP text encoder (needs the optional
`transformers` package) and cached beside the weights; the runtime only ever reads the cache.
"""
from __future__ import annotations

import pathlib

import torch

from engine import preprocess
from engine.errors import CheckpointError
from engine.io.atomic import atomic_file

PROMPT = "A close up of a person."


def read_text_embedding(path: pathlib.Path) -> torch.Tensor:
    return torch.from_numpy(preprocess.read_text_embedding(path))


def write_text_embedding(path: pathlib.Path, embedding: torch.Tensor) -> None:
    from safetensors.torch import save
    data = save({preprocess.TEXT_EMBEDDING_KEY: embedding.contiguous().float()}, metadata={"prompt": PROMPT})
    with atomic_file(path) as f:
        f.write(data)


def compute_text_embedding(sd15_dir: pathlib.Path) -> torch.Tensor:
    """Run SD1.5's tokenizer + CLIPTextModel once: last_hidden_state (1, 77, 768)."""
    try:
        from transformers import CLIPTextModel, CLIPTokenizer
    except ImportError:
        raise CheckpointError("computing the text embedding needs the 'transformers' package "
                              "(pip install 'magicportrait-rt[clip]') — it runs once, then is cached") from None
    if not (sd15_dir / "text_encoder").is_dir():
        raise CheckpointError(f"{sd15_dir}: no text_encoder/ folder and no cached text embedding")
    tokenizer = CLIPTokenizer.from_pretrained(str(sd15_dir / "tokenizer"), local_files_only=True)
    encoder = CLIPTextModel.from_pretrained(str(sd15_dir / "text_encoder"), local_files_only=True).eval()
    ids = tokenizer([PROMPT], padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        return encoder(ids)[0].float()


def load_or_compute_text_embedding(cache: pathlib.Path, sd15_dir: pathlib.Path) -> torch.Tensor:
    if cache.exists():
        return read_text_embedding(cache)
    embedding = compute_text_embedding(sd15_dir)
    try:
        write_text_embedding(cache, embedding)
    except OSError as err:  # read-only weights folder: keep going, just without the cache
        print(f"note: could not cache the text embedding at {cache} ({err})")
    return embedding

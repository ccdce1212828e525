"""A tiny, randomly initialised CLIP saved as a real transformers checkpoint folder: tests and
offline demos load it through the same code as ``openai/clip-vit-base-patch32``."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["make_tiny_clip"]


def make_tiny_clip(
    folder: str | Path,
    image_size: int = 32,
    dim: int = 16,
    seed: int = 0,
    width: int = 32,
    layers: int = 2,
    heads: int = 2,
    patch_size: int = 8,
) -> Path:
    """Write a randomly initialised CLIP (by default tiny: 2 layers, width 32, projection ``dim``)
    with a byte-level BPE tokenizer and a preprocessor config to ``folder``; returns it.
    ``width=768, layers=12, heads=12, patch_size=32, image_size=224, dim=512`` has ViT-B-32's
    shape (for benchmarks: its cost without its weights).

    Example:
        >>> import tempfile
        >>> folder = make_tiny_clip(tempfile.mkdtemp())
        >>> sorted(p.name for p in folder.iterdir() if p.suffix == ".json")[:2]
        ['config.json', 'preprocessor_config.json']
    """
    import torch

    from rewardgen.errors import require

    transformers = require("transformers", extra="vlm", purpose="a tiny CLIP checkpoint")
    CLIPConfig, CLIPModel, CLIPTokenizer = (
        transformers.CLIPConfig,
        transformers.CLIPModel,
        transformers.CLIPTokenizer,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chars = _byte_symbols()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    bos, eos = len(vocab), len(vocab) + 1
    vocab.update({"<|startoftext|>": bos, "<|endoftext|>": eos})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    try:  # transformers 5: the vocabulary itself; 4.x: its files
        tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    except TypeError:
        tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    tower = {
        "hidden_size": width,
        "intermediate_size": 37 if width == 32 else 4 * width,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
    }
    config = CLIPConfig(
        text_config={
            **tower,
            "vocab_size": len(vocab),
            "max_position_embeddings": 77,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "pad_token_id": eos,
        },
        vision_config={**tower, "image_size": image_size, "patch_size": patch_size},
        projection_dim=dim,
    )
    CLIPModel(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "CLIPImageProcessor",
                "size": {"shortest_edge": image_size},
                "crop_size": {"height": image_size, "width": image_size},
                "do_center_crop": True,
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_std": [0.26862954, 0.26130258, 0.27577711],
            }
        )
    )
    return folder


def _byte_symbols() -> list[str]:
    """One printable character per byte value, as byte-level BPE vocabularies use: printable
    Latin-1 bytes stand for themselves, the others for the code points from 256 on."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in keep else chr(next(extra)) for b in range(256)]

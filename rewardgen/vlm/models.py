"""Image-text models that embed rendered frames and goal prompts in one space: Hugging Face
transformers CLIP / SigLIP (a hub name or a local folder) and open_clip (``MODEL/PRETRAINED`` tags
or a local checkpoint file).

Frames go to the model as one batched tensor on its device: uint8 (n, H, W, 3) -> resize of the
short side, centre crop, the model's mean/std, all in torch (no per-frame PIL round trips).
Embeddings come back L2-normalised. Text embeddings are cached per prompt.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rewardgen.errors import RewardgenError, require

__all__ = ["HFModel", "ImageTextModel", "OpenClipModel", "input_size", "load_model", "resolve_device"]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def resolve_device(device: str = "auto") -> str:
    """``auto``: CUDA when present, else CPU."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class ImageTextModel(Protocol):
    """What a VLM reward needs of a model."""

    name: str
    device: str

    def encode_images(self, frames: np.ndarray) -> Any:
        """uint8 frames (n, H, W, 3) -> L2-normalised embeddings (n, d), a torch tensor."""
        ...

    def encode_text(self, prompts: Sequence[str]) -> Any:
        """Prompts -> L2-normalised embeddings (k, d), a torch tensor."""
        ...


class _Preprocess:
    """Batched CLIP preprocessing in torch: short side to ``size``, centre crop, mean/std."""

    def __init__(
        self, size: int, crop: int, mean: Sequence[float], std: Sequence[float], device: str, dtype: Any
    ):
        import torch

        self.size, self.crop, self.dtype = size, crop, dtype
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1)
        self.device = device

    def __call__(self, frames: np.ndarray) -> Any:
        import torch
        import torch.nn.functional as F

        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise RewardgenError(f"frames must be (n, H, W, 3) RGB images, got shape {frames.shape}")
        x = torch.as_tensor(frames, device=self.device).permute(0, 3, 1, 2).float().div_(255.0)
        h, w = x.shape[-2:]
        if min(h, w) != self.size:
            # as CLIPImageProcessor (and torchvision) size it: the short side exactly, the long side
            # truncated; then 8-bit pixels, as its PIL resize gives
            long = int(self.size * max(h, w) / min(h, w))
            size = (self.size, long) if h <= w else (long, self.size)
            size = (max(self.crop, size[0]), max(self.crop, size[1]))
            x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
            x = x.mul_(255.0).round_().clamp_(0.0, 255.0).div_(255.0)
        h, w = x.shape[-2:]
        top, left = (h - self.crop) // 2, (w - self.crop) // 2
        x = x[..., top : top + self.crop, left : left + self.crop]
        return ((x - self.mean) / self.std).to(self.dtype)


def _dtype(device: str, precision: str) -> Any:
    import torch

    if precision == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def _normalize(x: Any) -> Any:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


class _TextCache:
    """Prompt embeddings computed once per prompt; back ends provide ``_embed_text``."""

    _text: dict[str, Any]

    def _embed_text(self, prompts: list[str]) -> Any:
        raise NotImplementedError

    def encode_text(self, prompts: Sequence[str]) -> Any:
        import torch

        cache = self.__dict__.setdefault("_text", {})
        todo = [p for p in dict.fromkeys(prompts) if p not in cache]
        if todo:
            with torch.no_grad():
                embedded = _normalize(self._embed_text(todo).float())
            cache.update(zip(todo, embedded, strict=True))
        return torch.stack([cache[p] for p in prompts])


class HFModel(_TextCache):
    """A transformers CLIP or SigLIP model: a hub name (``openai/clip-vit-base-patch32``) or a
    local folder with its config, weights, tokenizer and ``preprocessor_config.json``.

    Example:
        >>> model = HFModel("openai/clip-vit-base-patch32")  # doctest: +SKIP
        >>> model.encode_text(["a humanoid robot kneeling"]).shape  # doctest: +SKIP
        torch.Size([1, 512])
    """

    def __init__(self, name_or_path: str, device: str = "auto", precision: str = "auto"):
        transformers = require("transformers", extra="vlm", purpose="a Hugging Face CLIP/SigLIP model")
        self.name, self.device = name_or_path, resolve_device(device)
        dtype = _dtype(self.device, precision)
        try:
            self.model = (
                transformers.AutoModel.from_pretrained(name_or_path, dtype=dtype).to(self.device).eval()
            )
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(name_or_path)
        except OSError as exc:
            raise RewardgenError(
                f"cannot load the model '{name_or_path}': it is not a local folder with its config and "
                "weights, nor in the Hugging Face cache, and it could not be downloaded "
                f"({str(exc).splitlines()[0]}). On a machine with network: hf download "
                f"{name_or_path} --local-dir DIR (huggingface_hub's command), then pass DIR"
            ) from None
        config = self.model.config
        vision = getattr(config, "vision_config", config)
        size = crop = int(getattr(vision, "image_size", 224))
        mean, std = CLIP_MEAN, CLIP_STD
        pre = _preprocessor_config(name_or_path)
        if pre:
            mean, std = pre.get("image_mean", mean), pre.get("image_std", std)
            size = _edge(pre.get("size"), size)
            crop = _edge(pre.get("crop_size"), size) if pre.get("do_center_crop", True) else size
        self.preprocess = _Preprocess(size, crop, mean, std, self.device, dtype)
        self.padding = "max_length" if "siglip" in type(self.model).__name__.lower() else True

    def encode_images(self, frames: np.ndarray) -> Any:
        import torch

        with torch.no_grad():
            out = self.model.get_image_features(pixel_values=self.preprocess(frames))
        return _normalize(_features(out).float())

    def _embed_text(self, prompts: list[str]) -> Any:
        tokens = self.tokenizer(prompts, padding=self.padding, truncation=True, return_tensors="pt")
        out = self.model.get_text_features(**{k: v.to(self.device) for k, v in tokens.items()})
        return _features(out)


def _features(out: Any) -> Any:
    """The projected embeddings, whichever form this transformers version returns them in."""
    import torch

    return out if torch.is_tensor(out) else out.pooler_output


def _edge(value: Any, default: int) -> int:
    if isinstance(value, dict):
        return int(value.get("shortest_edge") or value.get("height") or default)
    return int(value) if value else default


def _preprocessor_config(name_or_path: str) -> dict[str, Any]:
    local = Path(name_or_path) / "preprocessor_config.json"
    if local.is_file():
        return json.loads(local.read_text())
    try:
        from transformers.utils import cached_file

        found = cached_file(name_or_path, "preprocessor_config.json")
    except OSError:
        return {}
    return json.loads(Path(found).read_text()) if found else {}


class OpenClipModel(_TextCache):
    """An open_clip model: ``MODEL/PRETRAINED`` (``ViT-B-32/laion2b_s34b_b79k``; the weights come
    from open_clip's cache or its download) or ``MODEL/PATH`` to a local checkpoint file.

    Example:
        >>> model = OpenClipModel("ViT-B-32/laion2b_s34b_b79k")  # doctest: +SKIP
    """

    def __init__(self, tag: str, device: str = "auto", precision: str = "auto"):
        open_clip = require("open_clip", extra="openclip", purpose="an open_clip model")
        self.name, self.device = tag, resolve_device(device)
        arch, _, pretrained = tag.partition("/")
        if arch not in open_clip.list_models():
            close = _close(arch, open_clip.list_models())
            raise RewardgenError(
                f"unknown open_clip model '{arch}'" + (f": did you mean {close}?" if close else "")
            )
        dtype = _dtype(self.device, precision)
        try:
            model, _, _ = open_clip.create_model_and_transforms(
                arch, pretrained=pretrained or None, device=self.device
            )
        except (RuntimeError, OSError) as exc:
            raise RewardgenError(
                f"cannot load open_clip weights '{pretrained}' for {arch} ({str(exc).splitlines()[0]}): pass "
                f"{arch}/PATH to a local checkpoint file, or download them once where there is network"
            ) from None
        self.model = model.to(dtype).eval()
        self.tokenizer = open_clip.get_tokenizer(arch)
        cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
        size = cfg.get("size", getattr(model.visual, "image_size", 224))
        size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.preprocess = _Preprocess(
            size, size, cfg.get("mean", CLIP_MEAN), cfg.get("std", CLIP_STD), self.device, dtype
        )

    def encode_images(self, frames: np.ndarray) -> Any:
        import torch

        with torch.no_grad():
            return _normalize(self.model.encode_image(self.preprocess(frames)).float())

    def _embed_text(self, prompts: list[str]) -> Any:
        return self.model.encode_text(self.tokenizer(prompts).to(self.device))


def _close(name: str, names: Sequence[str]) -> str:
    import difflib

    return ", ".join(difflib.get_close_matches(name, names, n=3, cutoff=0.5))


def load_model(spec: str, device: str = "auto", precision: str = "auto") -> ImageTextModel:
    """A model from its name: ``open_clip:ViT-B-32/laion2b_s34b_b79k`` (or a bare open_clip tag such
    as ``ViT-B-32/laion2b_s34b_b79k``), ``hf:openai/clip-vit-base-patch32``, a bare hub name, or a
    local folder (transformers)."""
    kind, name = _kind(spec)
    return (OpenClipModel if kind == "open_clip" else HFModel)(name, device, precision)


def _kind(spec: str) -> tuple[str, str]:
    """("open_clip" | "hf", name) of a model spec, as :func:`load_model` reads it."""
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("open_clip", "openclip"):
        return "open_clip", rest
    if sep and kind == "hf":
        return "hf", rest
    if not Path(spec).exists() and spec.split("/")[0].startswith(("ViT-", "RN", "convnext", "EVA", "coca")):
        return "open_clip", spec
    return "hf", spec


def input_size(spec: str, default: int = 224) -> int:
    """The square image size a model takes, from its config alone (no weights are loaded);
    ``default`` when the config cannot be read here (a hub model not downloaded yet)."""
    kind, name = _kind(spec)
    try:
        if kind == "open_clip":
            import open_clip

            size = open_clip.get_model_config(name.partition("/")[0])["vision_cfg"]["image_size"]
        else:
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(name)
            size = getattr(getattr(config, "vision_config", config), "image_size", default)
    except (ImportError, OSError, KeyError, TypeError, ValueError):
        return default
    return int(size[0] if isinstance(size, (tuple, list)) else size)

"""VLM-RM (Rocamonde et al. 2023): a reward from how close a rendered frame's image embedding is to
the goal, along the goal-minus-baseline direction.

x = L2-normalised image embedding; g = mean of the normalised goal embeddings (prompts and goal
images); b = mean of the normalised baseline-prompt embeddings; d = g - b;
P = alpha d d^T / |d|^2 + (1 - alpha) I; r = 1 - 0.5 |(x - g) P|^2.
alpha = 0 is cosine similarity to g (for unit x and g); alpha = 1 keeps only the direction d.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.errors import RewardgenError
from rewardgen.rewards import RewardFn, RewardOutput, RewardSpec, TransitionBatch

__all__ = ["VLMReward", "VLMSpec", "goal_baseline_reward"]


def goal_baseline_reward(x: Any, goal: Any, baseline: Any, alpha: float) -> Any:
    """The VLM-RM reward of embeddings ``x`` (n, d) for goal and baseline embeddings (d,), in torch.

    Example:
        >>> import torch
        >>> x, g = torch.tensor([[1.0, 0.0]]), torch.tensor([1.0, 0.0])
        >>> float(goal_baseline_reward(x, g, torch.tensor([0.0, 1.0]), 0.5)[0])  # at the goal: 1
        1.0
    """
    diff = x - goal
    if alpha == 0:
        return 1 - 0.5 * (diff * diff).sum(-1)
    d = goal - baseline
    norm2 = (d * d).sum()
    if float(norm2) == 0.0:
        raise RewardgenError(
            "the goal and baseline embeddings are equal: there is no direction to project on"
        )
    along = (diff @ d)[:, None] * d / norm2  # the component of x - g along d
    projected = alpha * along + (1 - alpha) * diff  # (x - g) P, P symmetric
    return 1 - 0.5 * (projected * projected).sum(-1)


def as_rgb(image: Any, what: str = "an image") -> np.ndarray:
    """An image as uint8 RGB (H, W, 3): grayscale (H, W) or (H, W, 1), grayscale with alpha, RGBA
    and 16-bit pictures are converted; anything else is refused naming its shape.

    Example:
        >>> as_rgb(np.zeros((4, 5), np.uint8)).shape, as_rgb(np.zeros((4, 5, 4), np.uint8)).shape
        ((4, 5, 3), (4, 5, 3))
    """
    array = np.asarray(image)
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif array.dtype != np.uint8 and np.issubdtype(array.dtype, np.floating) and array.max(initial=0) <= 1.0:
        array = np.round(array * 255)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim == 3 and array.shape[-1] in (1, 2):  # grayscale, with alpha or without
        array = np.repeat(array[..., :1], 3, axis=-1)
    elif array.ndim == 3 and array.shape[-1] == 4:
        array = array[..., :3]
    if array.ndim != 3 or array.shape[-1] != 3:
        raise RewardgenError(
            f"{what} must be a picture (H, W), (H, W, 3) or (H, W, 4), got shape {array.shape}"
        )
    return np.clip(array, 0, 255).astype(np.uint8)


def _load_images(images: Sequence[Any]) -> list[np.ndarray]:
    """Goal images: arrays or image files, each as uint8 RGB."""
    import imageio.v3 as iio

    return [
        as_rgb(iio.imread(image) if isinstance(image, (str, Path)) else image, "a goal image")
        for image in images
    ]


class VLMReward(RewardFn):
    """A zero-shot reward from rendered frames: ``goal`` prompts (and/or ``goal_images``) against
    ``baseline`` prompts, with the goal-baseline projection of strength ``alpha``.

    Example:
        >>> reward = VLMReward("openai/clip-vit-base-patch32", goal=["a humanoid robot kneeling"],
        ...                    baseline=["a humanoid robot"], alpha=0.5)  # doctest: +SKIP
        >>> env = RewardWrapper(make_env("humanoid-kneel", render_mode="rgb_array"), reward)  # doctest: +SKIP
    """

    needs_frames = True
    fields: frozenset[str] | None = frozenset()

    def __init__(
        self,
        model: Any,
        goal: Sequence[str] = (),
        baseline: Sequence[str] = (),
        alpha: float = 0.0,
        goal_images: Sequence[Any] = (),
        batch_size: int = 64,
        device: str = "auto",
        precision: str = "auto",
    ):
        goal, baseline = list(goal), list(baseline)
        if not goal and not goal_images:
            raise RewardgenError("a VLM reward needs a goal: at least one goal prompt or goal image")
        if not 0.0 <= alpha <= 1.0:
            raise RewardgenError(f"alpha must be in [0, 1] (0: cosine similarity to the goal), got {alpha}")
        if alpha > 0 and not baseline:
            raise RewardgenError(f"alpha = {alpha} projects on goal - baseline: give baseline prompts too")
        if batch_size < 1:
            raise RewardgenError(f"batch_size must be at least 1, got {batch_size}")
        if isinstance(model, str):
            from rewardgen.vlm.models import load_model

            model = load_model(model, device, precision)
        self.model, self.alpha, self.batch_size = model, float(alpha), batch_size
        parts = []
        if goal:
            parts.append(model.encode_text(goal))
        if goal_images:
            parts.append(self._encode(_load_images(goal_images)))
        import torch

        self.goal = torch.cat(parts).mean(0)
        self.baseline = model.encode_text(baseline).mean(0) if baseline else torch.zeros_like(self.goal)

    def _encode(self, frames: Any) -> Any:
        import torch

        if isinstance(frames, list):  # goal images of different sizes: one at a time
            return torch.cat([self.model.encode_images(f[None]) for f in frames])
        return torch.cat(
            [
                self.model.encode_images(frames[i : i + self.batch_size])
                for i in range(0, len(frames), self.batch_size)
            ]
        )

    def score(self, frames: np.ndarray) -> np.ndarray:
        """The reward of each frame (n, H, W, 3), in batches of ``batch_size``."""
        x = self._encode(np.asarray(frames))
        return goal_baseline_reward(x, self.goal, self.baseline, self.alpha).cpu().numpy().astype(np.float64)

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        if batch.frames is None:
            raise RewardgenError(
                "a VLM reward scores rendered frames: make the env with render_mode='rgb_array'"
            )
        r = self.score(batch.frames)
        return RewardOutput(r, {"vlm": r})


class VLMSpec(RewardSpec):
    """The spec of a VLM reward: names and numbers only, so it pickles to training processes,
    which load the model there. Envs render ``frame_size`` square frames (MuJoCo's
    ``width``/``height``; ``auto``: the model's input size).

    Example:
        >>> spec = VLMSpec("openai/clip-vit-base-patch32", goal=["a humanoid robot kneeling"],
        ...                baseline=["a humanoid robot"], alpha=0.5)
        >>> spec.describe()["alpha"], spec.deferrable
        (0.5, False)
    """

    deferrable = False  # PPO scores each vector step as one batch; SAC scores chunks of frames (deferred)
    return_label = "VLM reward return"

    def __init__(
        self,
        model: str,
        goal: Sequence[str] = (),
        baseline: Sequence[str] = (),
        alpha: float = 0.0,
        goal_images: Sequence[str] = (),
        batch_size: int = 64,
        device: str = "auto",
        precision: str = "auto",
        frame_size: int | str | None = "auto",
    ):
        if (
            frame_size != "auto"
            and frame_size is not None
            and (not isinstance(frame_size, int) or frame_size < 8)
        ):
            raise RewardgenError(
                f"frame_size must be 'auto' (the model's input size), None (the env's own) or at least "
                f"8 pixels, got {frame_size!r}"
            )
        self.frame_size = frame_size
        self.model, self.goal, self.baseline = model, list(goal), list(baseline)
        self.alpha, self.goal_images = float(alpha), [str(p) for p in goal_images]
        self.batch_size, self.device, self.precision = batch_size, device, precision

    @property
    def name(self) -> str:
        return f"vlm:{self.model}"

    def build(self) -> RewardFn:
        return VLMReward(
            self.model,
            self.goal,
            self.baseline,
            self.alpha,
            self.goal_images,
            self.batch_size,
            self.device,
            self.precision,
        )

    def render_kwargs(self) -> dict[str, Any]:
        """Render square frames of ``frame_size`` (``auto``: the model's input size, read from its
        config, 224 for CLIP ViT-B; None: the env's own size): rendering, not the model, is the
        CPU's bottleneck, and the model would shrink a larger frame anyway."""
        if self.frame_size == "auto":
            from rewardgen.vlm.models import input_size

            self.frame_size = input_size(self.model)
        if self.frame_size is None:
            return {}
        return {"width": self.frame_size, "height": self.frame_size}

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "vlm",
            "frame_size": self.frame_size,
            "model": self.model,
            "goal": self.goal,
            "baseline": self.baseline,
            "alpha": self.alpha,
            "goal_images": self.goal_images,
        }

"""VLM-RM: zero-shot rewards from rendered frames scored by an image-text model (CLIP, SigLIP)
against goal prompts or goal images, with the goal-baseline projection."""

from rewardgen.vlm.models import HFModel, ImageTextModel, OpenClipModel, load_model
from rewardgen.vlm.reward import VLMReward, VLMSpec, goal_baseline_reward

__all__ = [
    "HFModel",
    "ImageTextModel",
    "OpenClipModel",
    "VLMReward",
    "VLMSpec",
    "goal_baseline_reward",
    "load_model",
]

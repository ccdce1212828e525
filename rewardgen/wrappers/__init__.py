"""Gymnasium wrappers that apply a :class:`~rewardgen.rewards.RewardFn` to a single env, a
gymnasium ``VectorEnv`` or a stable-baselines3 ``VecEnv``."""

from rewardgen.wrappers.core import FieldReader, InfoView, RewardMixer, ToInfoFields
from rewardgen.wrappers.single import RewardWrapper
from rewardgen.wrappers.vector import VectorRewardWrapper

__all__ = [
    "FieldReader",
    "InfoView",
    "RewardMixer",
    "RewardWrapper",
    "SB3RewardVecWrapper",
    "ToInfoFields",
    "VectorRewardWrapper",
]


def __getattr__(name: str):
    # SB3 is a core dependency, but importing it costs ~1 s: load it only when asked for.
    if name == "SB3RewardVecWrapper":
        from rewardgen.wrappers.sb3 import SB3RewardVecWrapper

        return SB3RewardVecWrapper
    raise AttributeError(name)

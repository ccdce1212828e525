"""Reward functions: the :class:`RewardFn` protocol, its batch types and combinators."""

from rewardgen.rewards.base import (
    RewardFn,
    RewardOutput,
    RewardOutputError,
    TransitionBatch,
    check_output,
)
from rewardgen.rewards.combinators import Clip, Ensemble, RunningNormalize, Scale, WeightedSum
from rewardgen.rewards.episode import EpisodeReducer

__all__ = [
    "Clip",
    "Ensemble",
    "EpisodeReducer",
    "RewardFn",
    "RewardOutput",
    "RewardOutputError",
    "RunningNormalize",
    "Scale",
    "TransitionBatch",
    "WeightedSum",
    "check_output",
]

"""Reward functions: the :class:`RewardFn` protocol, its batch types, combinators, field
readers and the :class:`RewardSpec` recipes that trainers build rewards from."""

from rewardgen.rewards.base import (
    MissingFieldError,
    RewardFn,
    RewardFnError,
    RewardOutput,
    RewardOutputError,
    TransitionBatch,
    check_output,
)
from rewardgen.rewards.combinators import Clip, Ensemble, RunningNormalize, Scale, WeightedSum
from rewardgen.rewards.episode import EpisodeReducer
from rewardgen.rewards.fields import FieldReader, InfoView, ToInfoFields
from rewardgen.rewards.spec import FnSpec, RewardSpec

__all__ = [
    "Clip",
    "Ensemble",
    "EpisodeReducer",
    "FieldReader",
    "FnSpec",
    "InfoView",
    "MissingFieldError",
    "RewardFn",
    "RewardFnError",
    "RewardOutput",
    "RewardOutputError",
    "RewardSpec",
    "RunningNormalize",
    "Scale",
    "ToInfoFields",
    "TransitionBatch",
    "WeightedSum",
    "check_output",
]

"""Diagnostics of a reward, before and after training: :func:`check_reward` runs random
rollouts through a reward (what each term does, what it costs, refused when too slow), and the
reward-hacking alarm (:func:`hacking_verdict`) reads a finished run's curves for a synthesized
return that climbs while the task's measure does not. Neither changes training.

Example:
    >>> from rewardgen.diagnostics import AlarmSettings
    >>> AlarmSettings().dominant
    0.8
"""

from rewardgen.diagnostics.alarm import AlarmSettings, Verdict, hacking_verdict, recorded_verdict, run_verdict
from rewardgen.diagnostics.check import MAX_REWARD_COST, RewardCost, RewardTooSlowError, check_reward

__all__ = [
    "MAX_REWARD_COST",
    "AlarmSettings",
    "RewardCost",
    "RewardTooSlowError",
    "Verdict",
    "check_reward",
    "hacking_verdict",
    "recorded_verdict",
    "run_verdict",
]

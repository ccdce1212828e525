"""Reward learned from a judge's comparisons of trajectory segments (PrefPPO's reward model): a
bootstrap ensemble of Bradley-Terry models, usable as a :class:`~rewardgen.rewards.RewardFn`.
The judges that answer its queries are :mod:`rewardgen.feedback`'s."""

from rewardgen.preference.model import PreferenceRewardModel, obs_action_features

__all__ = ["PreferenceRewardModel", "obs_action_features"]

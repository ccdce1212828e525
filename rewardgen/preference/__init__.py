"""PrefPPO, beside its model: a reward learned from a judge's comparisons of trajectory
segments (a bootstrap ensemble of Bradley-Terry models, usable as a
:class:`~rewardgen.rewards.RewardFn`: ``model.py``), the segments it scores (``segments.py``),
the clips a person watches (``films.py``), the loop that asks and refits while PPO trains
(``prefppo.py``: :func:`~rewardgen.preference.prefppo.train_prefppo`), and a pluralistic model
for a room of raters who disagree (``pluralistic.py``: PAL's prototypes and mixtures). The judges that answer
its queries are :mod:`rewardgen.feedback`'s."""

from rewardgen.preference.model import PreferenceRewardModel, obs_action_features
from rewardgen.preference.pluralistic import MixtureReward, PluralisticRewardModel

__all__ = ["MixtureReward", "PluralisticRewardModel", "PreferenceRewardModel", "obs_action_features"]

"""Rewards written for other codebases, brought into rewardgen: Text2Reward's
``compute_dense_reward(self, action, obs)`` files become a reward program plus a task YAML whose
state fields stand in for the ``self.env`` reads."""

from rewardgen.interop.text2reward import Text2RewardImport, convert_text2reward, import_text2reward

__all__ = ["Text2RewardImport", "convert_text2reward", "import_text2reward"]

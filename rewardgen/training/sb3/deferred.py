"""Deferred rewards: one reward call per rollout (or per chunk of steps) instead of one per step.

PPO needs rewards only when the rollout ends (to compute returns and advantages), so a reward
that is a pure function of the transitions (a reward program, above all a sandboxed one, whose
every call costs a process round trip) can score the whole rollout in one batch. SAC needs a
transition's reward only when it trains on it, so a reward that scores rendered frames (VLM-RM)
scores everything collected since the last gradient step in one batch (:class:`DeferredReplayBuffer`;
VLM-RM scored whole episodes). The pieces:

- :class:`~rewardgen.wrappers.sb3.SB3RewardVecWrapper` with ``defer=True`` keeps the
  transitions and returns placeholder rewards of 0;
- :class:`DeferredRewardVecNormalize` normalizes observations as usual and the rewards when
  they arrive, step by step with the same running statistics VecNormalize would have kept;
- :class:`DeferredRolloutBuffer` (SB3's ``rollout_buffer_class``) adds the rewards to the buffer
  right before returns and advantages are computed (after SB3 added its bootstrap for
  truncated episodes);
- :class:`DeferredReplayBuffer` (SB3's ``replay_buffer_class``) writes them into the places its
  steps were stored, right before a batch is sampled.

The result equals per-step scoring (``tests/test_train.py`` compares the two rollouts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.buffers import ReplayBuffer, RolloutBuffer
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from rewardgen.errors import RewardgenError

__all__ = [
    "DeferredReplayBuffer",
    "DeferredRewardVecNormalize",
    "DeferredRolloutBuffer",
    "attach_deferred_rewards",
    "load_normalizer",
]


class DeferredRewardVecNormalize(VecNormalize):
    """VecNormalize whose reward statistics advance when deferred rewards arrive
    (:meth:`normalize_rollout`), not on the placeholder rewards of each step."""

    def __init__(self, venv: VecEnv, **kwargs: Any):
        super().__init__(venv, **kwargs)
        self.deferred_returns = np.zeros(self.num_envs)

    def _update_reward(self, reward: np.ndarray) -> None:
        pass  # placeholders: the real rewards come in normalize_rollout

    def set_venv(self, venv: VecEnv) -> None:
        super().set_venv(venv)
        self.deferred_returns = np.zeros(self.num_envs)

    def reset(self) -> Any:
        obs = super().reset()
        self.deferred_returns = np.zeros(self.num_envs)
        return obs

    def normalize_rollout(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """Rewards (T, n) of a rollout -> normalized (T, n), as VecNormalize.step_wait would have
        normalized them one step at a time (statistics updated only in training mode)."""
        out = np.empty(rewards.shape, dtype=np.float32)
        for t in range(len(rewards)):
            if self.training:
                self.deferred_returns = self.deferred_returns * self.gamma + rewards[t]
                self.ret_rms.update(self.deferred_returns)
            out[t] = self.normalize_reward(rewards[t])
            self.deferred_returns[dones[t]] = 0
        return out


class DeferredRolloutBuffer(RolloutBuffer):
    """A rollout buffer that asks ``reward_source()`` for the rollout's rewards (T, n) right
    before computing returns and advantages."""

    reward_source: Callable[[], np.ndarray]

    def compute_returns_and_advantage(self, last_values: Any, dones: np.ndarray) -> None:
        rewards = self.reward_source()
        if rewards.shape != self.rewards.shape:
            raise RewardgenError(
                f"deferred rewards of shape {rewards.shape} for a rollout of shape {self.rewards.shape}"
            )
        self.rewards += rewards.astype(np.float32)
        super().compute_returns_and_advantage(last_values, dones)


class DeferredReplayBuffer(ReplayBuffer):
    """A replay buffer whose rewards arrive later: ``add`` stores the step with a placeholder
    reward and remembers where; before a batch is sampled (or once ``max_pending`` vector steps
    wait, so that kept frames stay bounded in memory) ``reward_source()`` scores every step since
    in one call, (T, n) raw rewards, and they are written in place. Raw, as SB3 stores them: a
    VecNormalize normalizes at sampling time."""

    reward_source: Callable[[], np.ndarray]
    max_pending: int

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_pending = max(1, 2048 // self.n_envs)  # ~300 MB of 224x224 frames
        self._unscored: list[int] = []

    def add(self, *args: Any, **kwargs: Any) -> None:
        self._unscored.append(self.pos)
        super().add(*args, **kwargs)
        if len(self._unscored) >= self.max_pending:
            self.score_pending()

    def score_pending(self) -> None:
        """Write the rewards of the steps added since the last call."""
        if not self._unscored:
            return
        rewards = np.asarray(self.reward_source(), dtype=np.float32)
        if rewards.shape != (len(self._unscored), self.n_envs):
            raise RewardgenError(
                f"deferred rewards of shape {rewards.shape} for {len(self._unscored)} steps of "
                f"{self.n_envs} envs"
            )
        self.rewards[np.asarray(self._unscored)] = rewards
        self._unscored = []

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> Any:
        self.score_pending()
        return super().sample(batch_size, env)


def attach_deferred_rewards(model: Any, wrapper: Any, normalizer: VecNormalize | None) -> None:
    """Make ``model`` take its rewards from ``wrapper.flush()``: PPO/A2C made or loaded with
    ``rollout_buffer_class=DeferredRolloutBuffer`` at each rollout's end, normalized by
    ``normalizer`` (a :class:`DeferredRewardVecNormalize`) when there is one; SAC made with
    ``replay_buffer_class=DeferredReplayBuffer`` before each batch it samples (the normalizer's
    statistics advance; the buffer keeps raw rewards, as SB3's off-policy learners do)."""
    if normalizer is not None and not isinstance(normalizer, DeferredRewardVecNormalize):
        raise RewardgenError("deferred rewards need DeferredRewardVecNormalize, not VecNormalize")
    if isinstance(getattr(model, "replay_buffer", None), DeferredReplayBuffer):

        def raw() -> np.ndarray:
            rewards, dones = wrapper.flush()
            rewards = rewards.astype(np.float32)
            if normalizer is not None:
                normalizer.normalize_rollout(rewards, dones)  # statistics only
            return rewards

        model.replay_buffer.reward_source = raw
        return
    if not isinstance(getattr(model, "rollout_buffer", None), DeferredRolloutBuffer):
        raise RewardgenError(
            "deferred rewards need PPO/A2C made with rollout_buffer_class=DeferredRolloutBuffer "
            "or SAC made with replay_buffer_class=DeferredReplayBuffer"
        )

    def source() -> np.ndarray:
        rewards, dones = wrapper.flush()
        rewards = rewards.astype(np.float32)  # what a per-step wrapper hands VecNormalize
        return normalizer.normalize_rollout(rewards, dones) if normalizer is not None else rewards

    model.rollout_buffer.reward_source = source


def load_normalizer(cls: type[VecNormalize], path: str, venv: VecEnv) -> VecNormalize:
    """A saved VecNormalize's statistics as a ``cls`` (VecNormalize or
    :class:`DeferredRewardVecNormalize`, whichever this run's reward handling needs) on ``venv``."""
    saved = VecNormalize.load(path, venv)
    if type(saved) is cls:
        return saved
    restored = cls.__new__(cls)
    restored.__setstate__(saved.__getstate__())  # pickle's own protocol: statistics and settings
    restored.set_venv(venv)
    return restored

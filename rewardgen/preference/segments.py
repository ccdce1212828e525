"""The segments PrefPPO's judge compares: :class:`SegmentRecorder`, the
:class:`~rewardgen.rewards.RewardFn` PPO trains on (it scores with the
:class:`~rewardgen.preference.model.PreferenceRewardModel` and keeps what it scored), and
:class:`SegmentPool`, which cuts each rollout into segments, never across an episode's end.
The loop that asks the judge and refits is :mod:`rewardgen.preference.prefppo`."""

from __future__ import annotations

import numpy as np

from rewardgen.errors import RewardgenError
from rewardgen.preference.model import PreferenceRewardModel, obs_action_features
from rewardgen.rewards import RewardFn, RewardOutput, TransitionBatch

__all__ = ["SegmentPool", "SegmentRecorder"]


class SegmentPool:
    """The latest ``capacity`` segments cut from PPO's rollouts: features (N, L, d), the reference
    reward per step (N, L) and the env's own reward sum.

    Example:
        >>> pool = SegmentPool(n_envs=2, length=3)
        >>> feats, ref = np.zeros((8, 2, 4)), np.ones((8, 2))
        >>> dones = np.zeros((8, 2), bool); dones[4, 0] = True  # env 0's episode ends at step 4
        >>> pool.add(feats, ref, dones)  # env 0: 0-2 (3-4 too short to fill), 5-7; env 1: 0-2, 3-5
        4
    """

    def __init__(self, n_envs: int, length: int, capacity: int = 4096, seed: int = 0):
        if length < 1:
            raise RewardgenError(f"segments must be at least one step long, got {length}")
        self.n_envs, self.length, self.capacity = n_envs, length, capacity
        self.features: np.ndarray | None = None
        self.reference = np.zeros((0, length))
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.reference)

    def add(self, features: np.ndarray, reference: np.ndarray, dones: np.ndarray) -> int:
        """Cut a rollout (T, n_envs, ...) into whole segments within episodes; returns how many."""
        feats, refs = [], []
        for env in range(features.shape[1]):
            start = 0
            ends = [*(np.flatnonzero(dones[:, env]) + 1), len(dones)]
            for stop in ends:  # one episode's steps: start .. stop
                for s in range(start, stop - self.length + 1, self.length):
                    feats.append(features[s : s + self.length, env])
                    refs.append(reference[s : s + self.length, env])
                start = stop
        if not feats:
            return 0
        new_f, new_r = np.stack(feats).astype(np.float32), np.stack(refs)
        self.features = new_f if self.features is None else np.concatenate([self.features, new_f])
        self.reference = np.concatenate([self.reference, new_r])
        self.features, self.reference = self.features[-self.capacity :], self.reference[-self.capacity :]
        return len(feats)

    def pairs(self, k: int) -> np.ndarray:
        """``k`` random pairs of distinct segments, (k, 2) indices."""
        n = len(self)
        if n < 2:
            raise RewardgenError("at least two segments are needed to compare")
        a = self.rng.integers(0, n, size=k)
        b = (a + self.rng.integers(1, n, size=k)) % n
        return np.stack([a, b], axis=1)


class SegmentRecorder(RewardFn):
    """The reward PPO trains on: ``model``'s, while what it scored is kept for the callback (the
    features, the reference reward, the episode ends), in the wrapper's time-major order.

    ``reference`` scores the same transitions with the task's own reward, for the synthetic judge
    and the correlation check; the person never sees it.
    """

    def __init__(self, model: PreferenceRewardModel, reference: RewardFn):
        self.model, self.reference = model, reference
        self.fields = reference.fields
        self.recording = True
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        features = obs_action_features(batch)
        if self.recording:
            ref = np.asarray(self.reference(batch).total, dtype=np.float64)
            done = np.asarray(batch.terminated, bool) | np.asarray(batch.truncated, bool)
            self._chunks.append((features, ref, done))
        return self.model.score_features(features)

    def take(self, n_envs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """What was scored since the last call: features (T, n_envs, d), reference (T, n_envs),
        episode ends (T, n_envs); None when nothing was."""
        if not self._chunks:
            return None
        feats, ref, done = (np.concatenate(part) for part in zip(*self._chunks, strict=True))
        self._chunks = []
        t = len(ref) // n_envs
        return feats.reshape(t, n_envs, -1), ref.reshape(t, n_envs), done.reshape(t, n_envs)

    def reset(self, env_indices: np.ndarray) -> None:
        self.reference.reset(env_indices)

    def close(self) -> None:
        self.reference.close()

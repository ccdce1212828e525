"""The segments PrefPPO's judge compares: :class:`SegmentRecorder`, the
:class:`~rewardgen.rewards.RewardFn` PPO trains on (it scores with the
:class:`~rewardgen.preference.model.PreferenceRewardModel` and keeps what it scored), and
:class:`SegmentPool`, which cuts each rollout into segments, never across an episode's end.
The loop that asks the judge and refits is :mod:`rewardgen.preference.prefppo`."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from rewardgen.errors import RewardgenError
from rewardgen.preference.model import obs_action_features
from rewardgen.rewards import RewardFn, RewardOutput, TransitionBatch

__all__ = ["ScoresFeatures", "SegmentPool", "SegmentRecorder"]


class ScoresFeatures(Protocol):
    """What PrefPPO trains on: a model that scores features (n, d) as a reward (the ensemble,
    or one rater's view of the pluralistic model)."""

    def score_features(self, features: np.ndarray) -> RewardOutput: ...


class SegmentPool:
    """The latest ``capacity`` segments cut from PPO's rollouts: features (N, L, d), the reference
    reward per step (N, L) and, for synthetic raters' tastes, each measure per step (N, L).

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
        self.measures: dict[str, np.ndarray] = {}
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.reference)

    def add(
        self,
        features: np.ndarray,
        reference: np.ndarray,
        dones: np.ndarray,
        measures: dict[str, np.ndarray] | None = None,
    ) -> int:
        """Cut a rollout (T, n_envs, ...) into whole segments within episodes (``measures``:
        name -> (T, n_envs), cut alike); returns how many."""
        measures = measures or {}
        if self.features is not None and set(measures) != set(self.measures):
            raise RewardgenError(
                f"measures {sorted(measures)} differ from the pool's {sorted(self.measures)}"
            )
        starts = []
        for env in range(features.shape[1]):
            start = 0
            ends = [*(np.flatnonzero(dones[:, env]) + 1), len(dones)]
            for stop in ends:  # one episode's steps: start .. stop
                starts += [(s, env) for s in range(start, stop - self.length + 1, self.length)]
                start = stop
        if not starts:
            return 0

        def cut(per_step: np.ndarray) -> np.ndarray:
            return np.stack([per_step[s : s + self.length, env] for s, env in starts])

        def keep(old: np.ndarray | None, new: np.ndarray) -> np.ndarray:
            return (new if old is None else np.concatenate([old, new]))[-self.capacity :]

        self.features = keep(self.features, cut(features).astype(np.float32))
        self.reference = keep(self.reference, cut(reference))
        self.measures = {k: keep(self.measures.get(k), cut(v)) for k, v in measures.items()}
        return len(starts)

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
    and the correlation check; the person never sees it. ``measures`` (name -> reward function,
    :class:`~rewardgen.feedback.tastes.Measure`) are what synthetic raters' tastes read.
    """

    def __init__(
        self, model: ScoresFeatures, reference: RewardFn, measures: dict[str, RewardFn] | None = None
    ):
        self.model, self.reference, self.measures = model, reference, dict(measures or {})
        fields = [reference.fields, *(m.fields for m in self.measures.values())]
        self.fields = None if any(f is None for f in fields) else frozenset().union(*fields)  # type: ignore[arg-type]
        self.recording = True
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]] = []

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        features = obs_action_features(batch)
        if self.recording:
            ref = np.asarray(self.reference(batch).total, dtype=np.float64)
            done = np.asarray(batch.terminated, bool) | np.asarray(batch.truncated, bool)
            measured = {k: np.asarray(m(batch).total, dtype=np.float64) for k, m in self.measures.items()}
            self._chunks.append((features, ref, done, measured))
        return self.model.score_features(features)

    def take(self, n_envs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]] | None:
        """What was scored since the last call: features (T, n_envs, d), reference (T, n_envs),
        episode ends (T, n_envs), measures (name -> (T, n_envs)); None when nothing was."""
        if not self._chunks:
            return None
        chunks, self._chunks = self._chunks, []
        feats, ref, done = (np.concatenate([c[i] for c in chunks]) for i in range(3))
        t = len(ref) // n_envs
        measured = {k: np.concatenate([c[3][k] for c in chunks]).reshape(t, n_envs) for k in self.measures}
        return feats.reshape(t, n_envs, -1), ref.reshape(t, n_envs), done.reshape(t, n_envs), measured

    def reset(self, env_indices: np.ndarray) -> None:
        for fn in (self.reference, *self.measures.values()):
            fn.reset(env_indices)

    def close(self) -> None:
        for fn in (self.reference, *self.measures.values()):
            fn.close()

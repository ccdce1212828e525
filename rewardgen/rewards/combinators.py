"""Combinators: build one reward function out of others. Each keeps the components visible."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rewardgen.errors import RewardgenError
from rewardgen.rewards.base import RewardFn, RewardOutput, TransitionBatch

__all__ = ["Clip", "Ensemble", "RunningNormalize", "Scale", "WeightedSum"]


def _prefixed(prefix: str, out: RewardOutput) -> dict[str, np.ndarray]:
    return {f"{prefix}/{k}": v for k, v in out.components.items()}


class _Composite(RewardFn):
    def __init__(self, parts: Sequence[RewardFn]):
        self._parts = list(parts)
        self.needs_frames = any(p.needs_frames for p in self._parts)
        used = [p.fields for p in self._parts]
        self.fields = None if any(u is None for u in used) else frozenset().union(*used)

    def reset(self, env_indices: np.ndarray) -> None:
        for p in self._parts:
            p.reset(env_indices)

    def close(self) -> None:
        for p in self._parts:
            p.close()


class WeightedSum(_Composite):
    """``total = sum_i w_i * r_i``; components are ``name/<component>`` plus ``name`` (weighted).

    Example:
        >>> from rewardgen.rewards import WeightedSum
        >>> # WeightedSum({"task": (code_reward, 1.0), "clip": (clip_reward, 0.5)})
    """

    def __init__(self, terms: Mapping[str, tuple[RewardFn, float]]):
        if not terms:
            raise RewardgenError("WeightedSum needs at least one term")
        self._names = list(terms)
        self._weights = [float(w) for _, w in terms.values()]
        super().__init__([fn for fn, _ in terms.values()])

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        total = np.zeros(batch.n)
        comps: dict[str, np.ndarray] = {}
        for name, w, fn in zip(self._names, self._weights, self._parts, strict=True):
            out = fn(batch)
            weighted = w * out.total
            total += weighted
            comps[name] = weighted
            comps.update(_prefixed(name, out))
        return RewardOutput(total=total, components=comps)


class Scale(_Composite):
    """Multiply a reward by a constant; components are kept unscaled."""

    def __init__(self, fn: RewardFn, factor: float):
        super().__init__([fn])
        self.factor = float(factor)

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        out = self._parts[0](batch)
        return RewardOutput(total=self.factor * out.total, components=out.components)


class Clip(_Composite):
    """Clip the total reward to ``[low, high]``; components are kept as computed."""

    def __init__(self, fn: RewardFn, low: float = -np.inf, high: float = np.inf):
        if low > high:
            raise RewardgenError(f"Clip needs low <= high, got low={low}, high={high}")
        super().__init__([fn])
        self.low, self.high = float(low), float(high)

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        out = self._parts[0](batch)
        return RewardOutput(total=np.clip(out.total, self.low, self.high), components=out.components)


class RunningNormalize(_Composite):
    """Standardize the total by a running mean and std (Welford), updated on every batch.

    ``center=False`` only divides by the std (what reward scaling in PPO usually wants).
    """

    def __init__(self, fn: RewardFn, center: bool = True, epsilon: float = 1e-8):
        super().__init__([fn])
        self.center = center
        self.epsilon = epsilon
        self.count = 0
        self.mean = 0.0
        self._m2 = 0.0

    @property
    def std(self) -> float:
        return float(np.sqrt(self._m2 / self.count)) if self.count > 1 else 1.0

    def _update(self, x: np.ndarray) -> None:
        n_b = len(x)
        if n_b == 0:
            return
        mean_b = float(x.mean())
        m2_b = float(((x - mean_b) ** 2).sum())
        delta = mean_b - self.mean
        total = self.count + n_b
        self.mean += delta * n_b / total
        self._m2 += m2_b + delta**2 * self.count * n_b / total
        self.count = total

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        out = self._parts[0](batch)
        self._update(out.total)
        shifted = out.total - self.mean if self.center else out.total
        return RewardOutput(
            total=shifted / (self.std + self.epsilon),
            components={**out.components, "unnormalized": out.total},
        )


class Ensemble(_Composite):
    """Aggregate several reward functions: ``mean``, ``mean_minus_std`` (mean - k*std), ``min``.

    The conservative aggregates reduce (but do not remove) reward hacking when members disagree.
    Components: ``member_i`` totals, plus ``mean`` and ``std`` across members.
    """

    AGGREGATES = ("mean", "mean_minus_std", "min")

    def __init__(self, members: Sequence[RewardFn], aggregate: str = "mean", k: float = 1.0):
        if len(members) < 1:
            raise RewardgenError("Ensemble needs at least one member")
        if aggregate not in self.AGGREGATES:
            raise RewardgenError(
                f"unknown ensemble aggregate {aggregate!r}: choose one of {', '.join(self.AGGREGATES)}"
            )
        super().__init__(members)
        self.aggregate, self.k = aggregate, float(k)

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        totals = np.stack([m(batch).total for m in self._parts])
        mean, std = totals.mean(axis=0), totals.std(axis=0)
        if self.aggregate == "mean":
            total = mean
        elif self.aggregate == "mean_minus_std":
            total = mean - self.k * std
        else:
            total = totals.min(axis=0)
        comps = {f"member_{i}": t for i, t in enumerate(totals)}
        comps.update(mean=mean, std=std)
        return RewardOutput(total=total, components=comps)

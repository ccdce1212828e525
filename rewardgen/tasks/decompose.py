"""Which of the numeric fields an env reports add up to its own reward.

A task whose success metric is the env's own return (a task derived from any env) is measured
by a number the reward program never sees. Most envs report the terms of their reward in
``info`` (Reacher: ``reward_dist`` and ``reward_ctrl``; HalfCheetah: ``reward_forward`` and
``reward_ctrl``): on random rollouts, the smallest set of fields whose weighted sum equals the
reward at every step is that split, and the prompt says so with the weights, so that the LLM
charges what the metric charges (Reacher's ``reward_ctrl`` is ``-1 * sum(action**2)``, not 0.1).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from rewardgen.tasks.spec import RewardTerms

__all__ = ["decompose", "env_reward_terms"]

MAX_TERMS = 4  # the largest split searched for
MAX_SUBSETS = 20_000  # subsets of fields tried at most


def _numeric(info: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in info.items():
        if isinstance(value, bool | int | float | np.number) or (
            isinstance(value, np.ndarray) and value.shape == ()
        ):
            v = float(value)
            if np.isfinite(v) and re.match(r"^[A-Za-z_]\w*$", key):
                out[key] = v
    return out


def _rollout(env: Any, steps: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Rewards, the numeric info entries present at every step, and each step's sum(action**2)."""
    rewards, infos, action_sq = [], [], []
    env.reset(seed=seed)
    env.action_space.seed(seed)
    for _ in range(steps):
        action = env.action_space.sample()
        _, reward, terminated, truncated, info = env.step(action)
        rewards.append(float(reward))
        infos.append(_numeric(info))
        action_sq.append(float(np.sum(np.square(np.asarray(action, dtype=np.float64)))))
        if terminated or truncated:
            env.reset()
    keys = set(infos[0]) if infos else set()
    for row in infos:
        keys &= set(row)
    columns = {k: np.array([row[k] for row in infos]) for k in sorted(keys, key=list(infos[0]).index)}
    return np.array(rewards), columns, np.array(action_sq)


def _fits(x: np.ndarray, y: np.ndarray, tol: float) -> np.ndarray | None:
    w, *_ = np.linalg.lstsq(x, y, rcond=None)
    return w if np.max(np.abs(x @ w - y)) <= tol else None


def _rank(names: Iterable[str], w: np.ndarray) -> tuple[float, float, int]:
    """Prefer round weights (1 above all) and fields named as reward terms."""
    rounding = float(np.sum(np.abs(w - np.round(w, 3))))
    unit = -float(np.sum(np.isclose(np.abs(w), 1.0)))
    named = -sum(bool(re.search(r"reward|cost|penalty|bonus", n)) for n in names)
    return (rounding, unit, named)


def decompose(
    rewards: np.ndarray, columns: dict[str, np.ndarray], action_sq: np.ndarray | None = None
) -> RewardTerms:
    """The smallest set of ``columns`` (at most 4) whose weighted sum equals ``rewards`` at every
    step (to float32 rounding), and which of them are a multiple of ``action_sq``.

    Example:
        >>> a = np.array([0.5, 1.0, 2.0, 0.1]); d = np.array([-1.0, -0.3, -2.0, -0.7])
        >>> terms = decompose(d - a, {"dist": d, "ctrl": -a, "x": np.array([1.0, 2, 3, 4])}, a)
        >>> terms.terms, terms.action_cost
        ({'dist': 1.0, 'ctrl': 1.0}, {'ctrl': -1.0})
    """
    n = len(rewards)
    tol = 1e-5 * max(1.0, float(np.max(np.abs(rewards)))) if n else 0.0
    if n and np.ptp(rewards) <= tol:
        return RewardTerms(constant=float(np.round(rewards[0], 6)), steps=n)
    names = [k for k, v in columns.items() if np.any(v != 0)]
    best: tuple[tuple[float, float, int], tuple[str, ...], np.ndarray] | None = None
    tried = 0
    for size in range(1, min(MAX_TERMS, len(names)) + 1):
        for subset in itertools.combinations(names, size):
            tried += 1
            if tried > MAX_SUBSETS:
                break
            w = _fits(np.stack([columns[k] for k in subset], axis=1), rewards, tol)
            if w is not None and (best is None or _rank(subset, w) < best[0]):
                best = (_rank(subset, w), subset, w)
        if best is not None:
            break
    if best is None:
        return RewardTerms(steps=n)
    _, subset, w = best
    terms = {k: float(np.round(v, 6)) for k, v in zip(subset, w, strict=True)}
    cost = {}
    if action_sq is not None and np.any(action_sq != 0):
        for k in subset:
            c = _fits(action_sq[:, None], columns[k], 1e-5 * max(1.0, float(np.max(np.abs(columns[k])))))
            if c is not None and abs(c[0]) > 0:
                cost[k] = float(np.round(c[0], 6))
    return RewardTerms(terms=terms, action_cost=cost, steps=n)


def env_reward_terms(env: Any, steps: int = 300, seed: int = 0) -> RewardTerms:
    """How ``env``'s own reward splits into the numeric entries of its ``info``, on ``steps``
    random steps (:func:`decompose`); the names are info keys."""
    rewards, columns, action_sq = _rollout(env, steps, seed)
    return decompose(rewards, columns, action_sq)

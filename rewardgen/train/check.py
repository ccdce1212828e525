"""Random-rollout check of a reward program: what each term does before any training."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rewardgen.code import RewardProgramError, SandboxLimits
from rewardgen.tasks import get_task, make_env_fn, wrapper_kwargs
from rewardgen.train.sb3 import load_reward
from rewardgen.wrappers import VectorRewardWrapper

__all__ = ["check_reward"]


def check_reward(
    task: str,
    reward: str | None = None,
    steps: int = 250,
    n_envs: int = 4,
    seed: int = 0,
    sandbox: SandboxLimits | None = None,
) -> dict[str, Any]:
    """Statistics of the total and each component on random actions, and the largest gap
    between the program and the env's own reward (0 for a faithful copy of it).

    Example:
        >>> check_reward("hopper-run", steps=50)["max_abs_diff_to_env"] < 1e-6  # doctest: +SKIP
        True
    """
    spec = get_task(task)
    program, fn = load_reward(spec, reward, sandbox)
    envs = gym.vector.SyncVectorEnv([make_env_fn(spec, fields=fn.fields) for _ in range(n_envs)])
    envs = VectorRewardWrapper(envs, fn, **wrapper_kwargs(spec, fn.fields))
    envs.reset(seed=seed)
    action_space = envs.env.action_space
    action_space.seed(seed)
    terms: dict[str, list[np.ndarray]] = {"total": []}
    max_diff, count, episodes = 0.0, 0, 0
    try:
        for _ in range(steps):
            try:
                step = envs.step(action_space.sample())
            except RewardProgramError as exc:
                if "KeyError" not in str(exc):
                    raise
                raise RewardProgramError(
                    f"{exc}; the task {spec.id} provides: {', '.join(spec.resolved_fields())}"
                ) from exc
            _, r, term, trunc, info = step
            episodes += int((term | trunc).sum())
            live = info["_env_reward"]
            count += int(live.sum())
            terms["total"].append(r[live])
            for name, v in info["reward_components"].items():
                terms.setdefault(name, []).append(v[live])
            if live.any():
                max_diff = max(max_diff, float(np.abs(r - info["env_reward"])[live].max()))
    finally:
        envs.close()  # closes the reward too (and its sandbox worker)
    stats = {}
    for name, chunks in terms.items():
        v = np.concatenate(chunks)
        stats[name] = {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}
    return {
        "program": program.name,
        "env_id": spec.gym_id,
        "transitions": count,
        "episode_ends": episodes,
        "terms": stats,
        "max_abs_diff_to_env": max_diff,
    }

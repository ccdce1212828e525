"""sample-factory's side of the env: the envs of a rollout worker (one per env, or a gymnasium
vector env per split with batched sampling) with rewardgen's reward wrapper inside, and the
finished episodes' summaries carried through ``episode_extra_stats``."""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np

from rewardgen.rewards import RewardSpec
from rewardgen.tasks import TaskSpec, make_env, wrapper_kwargs

__all__ = [
    "EpisodeStats",
    "SFVectorEnv",
    "episodes_from_stats",
    "flatten_episode",
    "make_sf_env",
    "unflatten_episode",
]


class EpisodeStats(gym.Wrapper):
    """Put the reward wrapper's episode summary where sample-factory collects per-episode
    statistics (``info["episode_extra_stats"]``, flat numbers)."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        ep = info.get("reward_episode")
        if ep is not None:
            info["episode_extra_stats"] = flatten_episode(ep)
        return obs, reward, terminated, truncated, info


def flatten_episode(ep: dict[str, Any]) -> dict[str, Any]:
    """A wrapper's ``reward_episode`` row as flat numbers (sample-factory averages each key); a
    vector wrapper's rows (arrays, one entry per env) as flat arrays."""

    def num(value: Any) -> Any:
        return np.asarray(value, dtype=np.float64) if np.ndim(value) else float(value)

    out = {key: num(ep[key]) for key in ("env_return", "reward_return", "length")}
    out.update({f"metric/{k}": num(v) for k, v in ep["metrics"].items()})
    out.update({f"component/{k}": num(v) for k, v in ep["components"].items()})
    return out


def episodes_from_stats(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """The episode summaries in one of sample-factory's episodic reports: one
    ``episode_extra_stats`` dict (non-batched sampling), or ``episode_extra_stats/<key>`` arrays
    with a row per finished episode (batched sampling)."""
    extra = stats.get("episode_extra_stats")
    if isinstance(extra, dict):
        return [unflatten_episode(extra)] if "env_return" in extra else []
    prefix = "episode_extra_stats/"
    flat = {k[len(prefix) :]: np.atleast_1d(v) for k, v in stats.items() if k.startswith(prefix)}
    if "env_return" not in flat:
        return []
    return [unflatten_episode({k: v[i] for k, v in flat.items()}) for i in range(len(flat["env_return"]))]


def unflatten_episode(flat: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`flatten_episode`."""
    return {
        "env_return": float(flat["env_return"]),
        "reward_return": float(flat["reward_return"]),
        "length": int(flat["length"]),
        "metrics": {k[7:]: float(v) for k, v in flat.items() if k.startswith("metric/")},
        "components": {k[10:]: float(v) for k, v in flat.items() if k.startswith("component/")},
    }


def make_sf_env(
    full_env_name: str,
    cfg: Any = None,
    env_config: Any = None,
    render_mode: str | None = None,
    *,
    task: TaskSpec,
    reward: RewardSpec | None,
    mode: str = "replace",
    vector: int = 0,
    env_coef: float = 1.0,
    reward_coef: float = 1.0,
) -> Any:
    """sample-factory's env factory: the task's env with the reward wrapper inside, built in the
    rollout worker that steps it (the reward from its spec, there).

    ``vector`` > 0 (sample-factory's batched sampling): one :class:`SFVectorEnv` of that many
    envs, whose reward is computed for all of them in one call per step. ``reward`` None: the
    env's own reward, no wrapper (the baseline of ``scripts/bench_backends.py``).
    """
    from rewardgen.wrappers import RewardWrapper, VectorRewardWrapper

    fn = reward.build() if reward is not None else None
    frames = fn is not None and fn.needs_frames
    size = reward.render_kwargs() if frames and reward is not None else {}
    render = "rgb_array" if frames else render_mode
    fields = fn.fields if fn is not None else None
    if vector:
        one = functools.partial(make_env, task, render_mode=render, fields=fields, **size)
        envs = gym.vector.SyncVectorEnv([one] * vector)
        if fn is not None:
            envs = VectorRewardWrapper(envs, fn, mode, env_coef, reward_coef, **wrapper_kwargs(task, fields))
        return SFVectorEnv(envs)
    env = make_env(task, render_mode=render, fields=fields, **size)
    if fn is None:
        return env
    env = RewardWrapper(env, fn, mode, env_coef, reward_coef, **wrapper_kwargs(task, fields))
    return EpisodeStats(env)


class SFVectorEnv(gym.Env):
    """A gymnasium vector env (with a :class:`~rewardgen.wrappers.VectorRewardWrapper`) as the
    vectorized env sample-factory's batched sampling steps: its envs are the "agents", the reward
    is computed for all of them in one call, and finished episodes' summaries go out as vectors
    (``infos["episode_extra_stats"][key]``, one row per env) that sample-factory picks the finished
    rows of.

    Example:
        >>> # TrainConfig(task="hopper-run", backend="sf")  trains with it (batched sampling)
    """

    is_multiagent = True

    def __init__(self, envs: Any):
        self.envs = envs
        self.num_agents = envs.num_envs
        self.observation_space = envs.single_observation_space
        self.action_space = envs.single_action_space
        self.render_mode = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        # sample-factory seeds each vectorized env with its id: spread them so the envs of two
        # vectorized envs never share a seed
        obs, _ = self.envs.reset(seed=None if seed is None else seed * self.num_agents, options=options)
        return obs, [{} for _ in range(self.num_agents)]

    def step(self, actions: Any):
        import torch

        if isinstance(actions, torch.Tensor):
            actions = actions.cpu().numpy()
        obs, reward, terminated, truncated, info = self.envs.step(actions)
        infos: dict[str, Any] = {}
        if "reward_episode" in info:
            flat = flatten_episode(info["reward_episode"])
            infos["episode_extra_stats"] = {k: torch.as_tensor(v) for k, v in flat.items()}
        return obs, np.asarray(reward, dtype=np.float32), terminated, truncated, infos

    def close(self) -> None:
        self.envs.close()

"""Apply a :class:`~rewardgen.rewards.RewardFn` to a single gymnasium env."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from rewardgen.rewards import RewardFn
from rewardgen.wrappers.core import FieldReader, ListOfDictsView, RewardMixer, summary_row

__all__ = ["RewardWrapper", "add_batch_axis"]


def add_batch_axis(x: Any) -> Any:
    """``x[None]`` for arrays, applied to every leaf of a dict observation."""
    if isinstance(x, Mapping):
        return {k: add_batch_axis(v) for k, v in x.items()}
    return np.asarray(x)[None]


class RewardWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Replace (or add to) a single env's reward with a :class:`RewardFn`.

    The env's own reward goes to ``info["env_reward"]``, the reward's components to
    ``info["reward_components"]``; at the end of an episode ``info["reward_episode"]`` holds the
    episode sums of both (``env_return``, ``reward_return``, ``components``) and its length.

    Example:
        >>> import gymnasium as gym, numpy as np
        >>> from rewardgen.rewards import RewardFn, RewardOutput
        >>> class Upright(RewardFn):
        ...     def compute(self, batch):
        ...         cos = batch.next_obs[:, 2]
        ...         return RewardOutput(cos, {"upright": cos})
        >>> env = RewardWrapper(gym.make("Pendulum-v1"), Upright())
        >>> _ = env.reset(seed=0)
        >>> _, r, *_, info = env.step(env.action_space.sample())
        >>> sorted(info)
        ['env_reward', 'reward_components']
    """

    def __init__(
        self,
        env: gym.Env,
        reward_fn: RewardFn,
        mode: str = "replace",
        env_coef: float = 1.0,
        reward_coef: float = 1.0,
        fields: FieldReader | None = None,
        episode_metrics: Mapping[str, tuple[str, str]] | None = None,
    ):
        gym.utils.RecordConstructorArgs.__init__(
            self,
            reward_fn=reward_fn,
            mode=mode,
            env_coef=env_coef,
            reward_coef=reward_coef,
            fields=fields,
            episode_metrics=episode_metrics,
        )
        gym.Wrapper.__init__(self, env)
        render = (lambda: add_batch_axis(self.env.render())) if reward_fn.needs_frames else None
        self.mixer = RewardMixer(
            reward_fn,
            1,
            mode,
            env_coef,
            reward_coef,
            fields,
            episode_metrics,
            render=render if env.render_mode == "rgb_array" else None,
        )
        self._obs: Any = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._obs = obs
        self.mixer.restart_all()
        return obs, info

    def step(self, action):
        next_obs, env_reward, terminated, truncated, info = self.env.step(action)
        mixed, out, _ = self.mixer(
            add_batch_axis(self._obs),
            add_batch_axis(action),
            add_batch_axis(next_obs),
            np.array([env_reward], dtype=np.float64),
            np.array([terminated]),
            np.array([truncated]),
            ListOfDictsView([info]),
        )
        info = dict(info)
        info["env_reward"] = float(env_reward)
        info["reward_components"] = {k: float(v[0]) for k, v in out.components.items()}
        if terminated or truncated:
            info["reward_episode"] = summary_row(self.mixer.end_episodes(np.array([True])), 0)
        self._obs = next_obs
        return next_obs, float(mixed[0]), terminated, truncated, info

    def close(self):
        self.mixer.reward_fn.close()
        super().close()

"""Apply a :class:`~rewardgen.rewards.RewardFn` to a stable-baselines3 ``VecEnv``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from rewardgen.rewards import RewardFn
from rewardgen.wrappers.core import FieldReader, ListOfDictsView, RewardMixer, summary_row
from rewardgen.wrappers.vector import _replace_rows

__all__ = ["SB3RewardVecWrapper"]


class SB3RewardVecWrapper(VecEnvWrapper):
    """Replace (or add to) an SB3 ``VecEnv``'s rewards with a :class:`RewardFn`.

    Finished envs are scored on their ``terminal_observation`` (SB3 resets them in the same
    step); ``TimeLimit.truncated`` separates truncation from termination. Per env info keys:
    ``env_reward``, ``reward_components`` and, at episode end, ``reward_episode``. Put it
    *under* ``VecNormalize`` so the reward program sees raw observations.

    Example:
        >>> from stable_baselines3.common.env_util import make_vec_env
        >>> from rewardgen.rewards import RewardFn, RewardOutput
        >>> class Upright(RewardFn):
        ...     def compute(self, batch):
        ...         return RewardOutput(batch.next_obs[:, 2], {})
        >>> venv = SB3RewardVecWrapper(make_vec_env("Pendulum-v1", n_envs=2), Upright())
        >>> _ = venv.reset()
        >>> venv.step(venv.action_space.sample()[None].repeat(2, 0))[1].shape
        (2,)
    """

    def __init__(
        self,
        venv: VecEnv,
        reward_fn: RewardFn,
        mode: str = "replace",
        env_coef: float = 1.0,
        reward_coef: float = 1.0,
        fields: FieldReader | None = None,
        episode_metrics: Mapping[str, tuple[str, str]] | None = None,
    ):
        super().__init__(venv)
        render = (lambda: np.stack(self.venv.get_images())) if reward_fn.needs_frames else None
        self.mixer = RewardMixer(
            reward_fn,
            venv.num_envs,
            mode,
            env_coef,
            reward_coef,
            fields,
            episode_metrics,
            render=render if venv.render_mode == "rgb_array" else None,
        )
        self._obs: Any = None
        self._actions: np.ndarray | None = None

    def reset(self):
        obs = self.venv.reset()
        self._obs = obs
        self.mixer.restart_all()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions
        self.venv.step_async(actions)

    def step_wait(self):
        obs, env_reward, dones, infos = self.venv.step_wait()
        dones = np.asarray(dones, dtype=bool)
        next_obs = obs
        if dones.any():
            idx = np.flatnonzero(dones)
            truncated = np.zeros_like(dones)
            truncated[idx] = [infos[i].get("TimeLimit.truncated", False) for i in idx]
            next_obs = _replace_rows(obs, {int(i): infos[i]["terminal_observation"] for i in idx})
        else:
            truncated = dones
        mixed, out, _ = self.mixer(
            self._obs,
            self._actions,
            next_obs,
            env_reward,
            dones & ~truncated,
            truncated,
            ListOfDictsView(infos),
        )
        names = list(out.components)
        rows = np.stack(list(out.components.values()), axis=1).tolist() if names else [[]] * len(infos)
        for info, r_env, row in zip(infos, env_reward.tolist(), rows, strict=True):
            info["env_reward"] = r_env
            info["reward_components"] = dict(zip(names, row, strict=True))
        if dones.any():
            summary = self.mixer.end_episodes(dones)
            for pos, j in enumerate(np.flatnonzero(dones)):
                infos[j]["reward_episode"] = summary_row(summary, pos)
        self._obs = obs
        return obs, mixed.astype(np.float32), dones, infos

    def close(self) -> None:
        self.mixer.reward_fn.close()
        self.venv.close()

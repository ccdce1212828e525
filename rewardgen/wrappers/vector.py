"""Apply a :class:`~rewardgen.rewards.RewardFn` to a gymnasium ``VectorEnv``: one reward call
per vector step, whatever the autoreset mode."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from rewardgen.rewards import RewardFn
from rewardgen.wrappers.core import DictOfArraysView, FieldReader, InfoView, RewardMixer

__all__ = ["VectorRewardWrapper"]

_GYM_1 = int(gym.__version__.split(".")[0]) >= 1
_VectorWrapper = gym.vector.VectorWrapper if _GYM_1 else gym.vector.VectorEnvWrapper


def _autoreset_mode(env: Any) -> str:
    """'next_step', 'same_step', 'disabled' (gymnasium >= 1) or 'legacy_same_step' (< 1)."""
    if not _GYM_1:
        return "legacy_same_step"
    mode = env.metadata.get("autoreset_mode")
    if mode is None:
        return "next_step"
    value = getattr(mode, "value", mode)
    return {"NextStep": "next_step", "SameStep": "same_step", "Disabled": "disabled"}[value]


class _FinalRowsView:
    """An info view whose finished rows come from the episodes' final infos (same-step autoreset)."""

    def __init__(self, base: InfoView, final_rows: dict[int, Mapping[str, Any]]):
        self.base, self.n, self.rows = base, base.n, final_rows

    def keys(self):
        return self.base.keys()

    def get(self, name: str) -> np.ndarray | None:
        arr = self.base.get(name)
        finals = {i: row[name] for i, row in self.rows.items() if name in row}
        if not finals:
            return arr
        first = np.asarray(next(iter(finals.values())))
        arr = np.zeros((self.n, *first.shape), first.dtype) if arr is None else arr.copy()
        for i, value in finals.items():
            arr[i] = value
        return arr


class _ResetStepView:
    """Under NEXT_STEP autoreset a reset step's info comes from ``reset()`` and may lack step
    keys; those rows are masked out anyway, so a key no env reported reads as zeros."""

    def __init__(self, base: InfoView):
        self.base, self.n = base, base.n

    def keys(self):
        return self.base.keys()

    def get(self, name: str) -> np.ndarray | None:
        value = self.base.get(name)
        return np.zeros(self.n) if value is None else value


def _replace_rows(obs: Any, rows: dict[int, Any]) -> Any:
    if isinstance(obs, Mapping):
        return {k: _replace_rows(v, {i: r[k] for i, r in rows.items()}) for k, v in obs.items()}
    out = np.array(obs, copy=True)
    for i, row in rows.items():
        out[i] = row
    return out


def _scatter(summary: Mapping[str, Any], done: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, Mapping):
            out[key] = _scatter(value, done)
        else:
            full = np.zeros(len(done), dtype=value.dtype)
            full[done] = value
            out[key] = full
    return out


class VectorRewardWrapper(_VectorWrapper):
    """Replace (or add to) a gymnasium vector env's rewards with a :class:`RewardFn`.

    Infos follow the vector convention: ``info["env_reward"]`` (n,), ``info["reward_components"]``
    (name -> (n,)), and at episode ends ``info["reward_episode"]`` with mask
    ``info["_reward_episode"]``. Under autoreset ``NEXT_STEP`` the reset step of an env gets
    reward 0 and does not count towards its next episode.

    Example:
        >>> import gymnasium as gym
        >>> from rewardgen.rewards import RewardFn, RewardOutput
        >>> class Upright(RewardFn):
        ...     def compute(self, batch):
        ...         return RewardOutput(batch.next_obs[:, 2], {})
        >>> envs = gym.vector.SyncVectorEnv([lambda: gym.make("Pendulum-v1")] * 2)
        >>> envs = VectorRewardWrapper(envs, Upright())
        >>> _ = envs.reset(seed=0)
        >>> obs, rewards, *_ = envs.step(envs.action_space.sample())
        >>> rewards.shape
        (2,)
    """

    def __init__(
        self,
        env: Any,
        reward_fn: RewardFn,
        mode: str = "replace",
        env_coef: float = 1.0,
        reward_coef: float = 1.0,
        fields: FieldReader | None = None,
        episode_metrics: Mapping[str, tuple[str, str]] | None = None,
    ):
        super().__init__(env)
        self.n = env.num_envs
        self.autoreset = _autoreset_mode(env)
        render = None
        if reward_fn.needs_frames and env.get_attr("render_mode")[0] == "rgb_array":
            render = lambda: np.stack(self.env.call("render"))  # noqa: E731
        self.mixer = RewardMixer(
            reward_fn, self.n, mode, env_coef, reward_coef, fields, episode_metrics, render
        )
        self._obs: Any = None
        self._resetting = np.zeros(self.n, dtype=bool)
        self._all_live = np.ones(self.n, dtype=bool)
        self._all_live.flags.writeable = False

    def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._obs = obs
        self._resetting[:] = False
        self.mixer.restart_all()
        return obs, info

    def step(self, actions):
        obs, env_reward, terminated, truncated, info = self.env.step(actions)
        view: InfoView = DictOfArraysView(info, self.n)
        next_obs, active = obs, None
        done = terminated | truncated
        if self.autoreset == "next_step":
            if self._resetting.any():
                active = ~self._resetting
                view = _ResetStepView(view)
            self._resetting = done
        elif done.any() and self.autoreset in ("same_step", "legacy_same_step"):
            idx = np.flatnonzero(done)
            if self.autoreset == "same_step":
                final_obs, final_info = info["final_obs"], info.get("final_info", {})
                rows = {
                    int(i): {k: v[i] for k, v in final_info.items() if not k.startswith("_")} for i in idx
                }
            else:
                final_obs, final_info = info["final_observation"], info["final_info"]
                rows = {int(i): final_info[i] for i in idx}
            next_obs = _replace_rows(obs, {int(i): final_obs[i] for i in idx})
            view = _FinalRowsView(view, rows)
        mixed, out, _ = self.mixer(
            self._obs, actions, next_obs, env_reward, terminated, truncated, view, active
        )
        info = dict(info)  # the caller may hold on to the env's dict
        mask = self._all_live if active is None else active
        info["env_reward"], info["_env_reward"] = env_reward, mask
        info["reward_components"], info["_reward_components"] = out.components, mask
        if done.any():
            info["reward_episode"] = _scatter(self.mixer.end_episodes(done), done)
            info["_reward_episode"] = done
        self._obs = obs
        return obs, mixed, terminated, truncated, info

    def close(self, **kwargs):
        if hasattr(self, "mixer"):  # a failed __init__ still gets closed by VectorEnv.__del__
            self.mixer.reward_fn.close()
        return self.env.close(**kwargs)

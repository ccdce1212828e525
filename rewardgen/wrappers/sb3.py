"""Apply a :class:`~rewardgen.rewards.RewardFn` to a stable-baselines3 ``VecEnv``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from rewardgen.rewards import RewardFn, TransitionBatch
from rewardgen.wrappers.core import FieldReader, ListOfDictsView, RewardMixer, summary_row
from rewardgen.wrappers.vector import _replace_rows

__all__ = ["SB3RewardVecWrapper"]


class _ComponentRow(Mapping):
    """One env's reward components in one step, read from the batch's arrays when looked at
    (most steps' infos are never read: building eight dicts per step cost more than the reward)."""

    __slots__ = ("_components", "_j")

    def __init__(self, components: Mapping[str, np.ndarray], j: int):
        self._components, self._j = components, j

    def __getitem__(self, name: str) -> float:
        return float(self._components[name][self._j])

    def __iter__(self):
        return iter(self._components)

    def __len__(self) -> int:
        return len(self._components)

    def __repr__(self) -> str:
        return repr(dict(self))

    def __reduce__(self):  # pickles (and deep-copies) as the plain dict it stands for
        return dict, (dict(self),)


def _stack(steps: list[Any]) -> Any:
    """Per-step batches (n, ...) -> one batch (T * n, ...), time-major; dicts key by key."""
    if isinstance(steps[0], Mapping):
        return {k: _stack([s[k] for s in steps]) for k in steps[0]}
    return np.concatenate([np.asarray(s) for s in steps], axis=0)


class SB3RewardVecWrapper(VecEnvWrapper):
    """Replace (or add to) an SB3 ``VecEnv``'s rewards with a :class:`RewardFn`.

    Finished envs are scored on their ``terminal_observation`` (SB3 resets them in the same
    step); ``TimeLimit.truncated`` separates truncation from termination. Per env info keys:
    ``env_reward``, ``reward_components`` and, at episode end, ``reward_episode``. Put it
    *under* ``VecNormalize`` so the reward program sees raw observations.

    ``defer=True`` (a stateless reward, e.g. a sandboxed program, or one that scores frames):
    steps return a placeholder reward of 0 and keep the transitions (and the frames rendered at
    each step); :meth:`flush` scores them all in one reward call and returns the rewards (T, n),
    and episode summaries come from :meth:`pop_episodes`. PPO does not need a reward before the
    rollout ends, nor SAC before its next gradient step, so one call per rollout (or per
    ``train_freq`` chunk) replaces one per step: a sandbox round trip, or a model's batch.

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
        defer: bool = False,
    ):
        super().__init__(venv)
        self.defer = defer
        self._pending: list[tuple[Any, ...]] = []
        self._episodes: list[dict[str, Any]] = []
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
        self._pending.clear()
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
        if self.defer:
            return self._keep(obs, next_obs, env_reward, dones, truncated, infos)
        mixed, out, _ = self.mixer(
            self._obs,
            self._actions,
            next_obs,
            env_reward,
            dones & ~truncated,
            truncated,
            ListOfDictsView(infos),
        )
        components = out.components
        for j, (info, r_env) in enumerate(zip(infos, env_reward.tolist(), strict=True)):
            info["env_reward"] = r_env
            info["reward_components"] = _ComponentRow(components, j)
        if dones.any():
            summary = self.mixer.end_episodes(dones)
            for pos, j in enumerate(np.flatnonzero(dones)):
                infos[j]["reward_episode"] = summary_row(summary, pos)
        self._obs = obs
        return obs, mixed.astype(np.float32), dones, infos

    def _keep(self, obs, next_obs, env_reward, dones, truncated, infos):
        # references only: SB3's VecEnvs hand out fresh arrays and info dicts every step
        frames = self.mixer.render() if self.mixer.reward_fn.needs_frames else None  # now, not at flush
        kept = (self._obs, self._actions, next_obs, env_reward, dones, truncated, infos, frames)
        self._pending.append(kept)
        for info, r_env in zip(infos, env_reward.tolist(), strict=True):
            info["env_reward"] = r_env
        self._obs = obs
        return obs, np.zeros(len(dones), dtype=np.float32), dones, infos

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """Score the steps kept since the last flush in one reward call: the mixed rewards and
        the done flags, (T, n) each, time-major; episodes advance as if scored step by step."""
        n = self.num_envs
        if not self._pending:
            return np.zeros((0, n)), np.zeros((0, n), dtype=bool)
        steps, self._pending = self._pending, []
        obs, actions, next_obs, env_reward, dones, truncated, infos, frames = zip(*steps, strict=True)
        t = len(steps)
        dones = np.stack(dones).astype(bool)
        truncated = np.stack(truncated).astype(bool)
        next_flat = _stack(next_obs)
        fields = self.mixer.fields(next_flat, ListOfDictsView([i for step in infos for i in step]))
        batch = TransitionBatch(
            obs=_stack(obs),
            action=_stack(actions),
            next_obs=next_flat,
            terminated=(dones & ~truncated).reshape(-1),
            truncated=truncated.reshape(-1),
            info=fields,
            frames=np.concatenate(frames) if frames[0] is not None else None,
        )
        out = self.mixer.reward_fn(batch)
        synth = out.total.reshape(t, n)
        comps = {k: v.reshape(t, n) for k, v in out.components.items()}
        by_step = {k: np.asarray(v).reshape(t, n, *np.shape(v)[1:]) for k, v in fields.items()}
        env = np.stack(env_reward).astype(np.float64)
        start = 0
        for stop in [*(np.flatnonzero(dones.any(axis=1)) + 1), t]:  # blocks end where an episode does
            if stop <= start:
                continue
            part = slice(start, stop)
            self.mixer.accumulate_block(
                env[part],
                synth[part],
                {k: v[part] for k, v in comps.items()},
                {k: v[part] for k, v in by_step.items()},
            )
            if dones[stop - 1].any():
                summary = self.mixer.end_episodes(dones[stop - 1])
                self._episodes.extend(summary_row(summary, pos) for pos in range(int(dones[stop - 1].sum())))
            start = stop
        return self.mixer.mix(env, synth), dones

    def pop_episodes(self) -> list[dict[str, Any]]:
        """Summaries of the episodes that ended in flushed steps (``reward_episode`` rows)."""
        out, self._episodes = self._episodes, []
        return out

    def close(self) -> None:
        self.mixer.reward_fn.close()
        self.venv.close()

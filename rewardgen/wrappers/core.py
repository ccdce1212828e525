"""What every reward wrapper shares: the one reward call, reward mixing and per-episode
accounting (field reading is :mod:`rewardgen.rewards.fields`). The wrappers in this package only
translate their env's conventions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from rewardgen.errors import RewardgenError
from rewardgen.rewards import EpisodeReducer, RewardFn, RewardOutput, TransitionBatch
from rewardgen.rewards.fields import (
    DictOfArraysView,
    FieldReader,
    InfoView,
    ListOfDictsView,
    ToInfoFields,
)

__all__ = ["DictOfArraysView", "FieldReader", "InfoView", "ListOfDictsView", "RewardMixer", "ToInfoFields"]

MODES = ("replace", "add")
_BLOCK = 64  # steps kept before they are added to the episode sums


class RewardMixer:
    """Calls the reward function once per batch, mixes it with the env's reward and keeps
    per-env episode sums of the env reward, the synthesized reward and every component.

    ``mode="replace"``: ``r = reward_coef * synth``; ``mode="add"``:
    ``r = env_coef * r_env + reward_coef * synth``.
    """

    def __init__(
        self,
        reward_fn: RewardFn,
        n_envs: int,
        mode: str = "replace",
        env_coef: float = 1.0,
        reward_coef: float = 1.0,
        fields: FieldReader | None = None,
        episode_metrics: Mapping[str, tuple[str, str]] | None = None,
        render: Callable[[], np.ndarray] | None = None,
    ):
        if mode not in MODES:
            raise RewardgenError(f"unknown reward mode {mode!r}: choose 'replace' or 'add'")
        self.reward_fn, self.n, self.mode = reward_fn, n_envs, mode
        self.env_coef, self.reward_coef = float(env_coef), float(reward_coef)
        self.fields = fields or ToInfoFields()
        self.render = render
        if reward_fn.needs_frames and render is None:
            raise RewardgenError(
                "this reward scores rendered frames: make the env with render_mode='rgb_array'"
            )
        self._metrics = {
            name: (field, EpisodeReducer(how, n_envs))
            for name, (field, how) in (episode_metrics or {}).items()
        }
        self._env_return = np.zeros(n_envs)
        self._synth_return = np.zeros(n_envs)
        self._length = np.zeros(n_envs, dtype=np.int64)
        self._comp_sums: dict[str, np.ndarray] = {}
        # Steps not yet added to the episode sums, copied into a buffer (k, rows, n): env reward,
        # reward, components, metric values; and their active masks (k, n). Adding them in blocks
        # costs a few numpy calls per block instead of a dozen per step.
        self._names: tuple[str, ...] | None = None  # the components' names; None: no step kept yet
        self._buf = np.zeros((0, 0, n_envs))
        self._live = np.ones((_BLOCK, n_envs), dtype=bool)
        self._k = 0
        self._masked = False

    def __call__(
        self,
        obs: Any,
        action: np.ndarray,
        next_obs: Any,
        env_reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        info: InfoView,
        active: np.ndarray | None = None,
    ) -> tuple[np.ndarray, RewardOutput, dict[str, np.ndarray]]:
        """Return the mixed reward (n,), the reward output and the batch's fields.

        ``active`` is False for envs whose step is an autoreset step: they get reward 0
        and nothing is added to their episode.
        """
        fields = self.fields(next_obs, info)
        batch = TransitionBatch(
            obs=obs,
            action=action,
            next_obs=next_obs,
            terminated=terminated,
            truncated=truncated,
            info=fields,
            frames=self.render() if self.reward_fn.needs_frames else None,
        )
        out = self.reward_fn(batch)
        env_reward = np.asarray(env_reward, dtype=np.float64)
        synth = out.total
        mixed = self.mix(env_reward, synth)
        if active is not None:
            mixed = np.where(active, mixed, 0.0)
        self.accumulate(env_reward, synth, out.components, fields, active)
        return mixed, out, fields

    def mix(self, env_reward: np.ndarray, synth: np.ndarray) -> np.ndarray:
        """The reward the agent gets from the env's reward and the synthesized one."""
        if self.mode == "replace":
            return synth if self.reward_coef == 1.0 else self.reward_coef * synth
        return self.env_coef * np.asarray(env_reward, dtype=np.float64) + self.reward_coef * synth

    def accumulate(
        self,
        env_reward: np.ndarray,
        synth: np.ndarray,
        components: Mapping[str, np.ndarray],
        fields: Mapping[str, np.ndarray],
        active: np.ndarray | None = None,
    ) -> None:
        """Add one step's rewards, components and metric fields to the running episodes
        (``active`` False: an autoreset step, which counts for no episode)."""
        if self._names is None or len(components) != len(self._names) or tuple(components) != self._names:
            self._fold()
            self._names = tuple(components)
            self._buf = np.zeros((_BLOCK, 2 + len(self._names) + len(self._metrics), self.n))
        row = self._buf[self._k]  # a copy: the env may reuse its arrays before the block is added
        row[0] = env_reward
        row[1] = synth
        i = 2
        for value in components.values():
            row[i] = value
            i += 1
        for value in self._metric_values(env_reward, fields):
            row[i] = value
            i += 1
        if active is not None:
            self._live[self._k] = active
            self._masked = True
        self._k += 1
        if self._k == _BLOCK:
            self._fold()

    def accumulate_block(
        self,
        env_reward: np.ndarray,
        synth: np.ndarray,
        components: Mapping[str, np.ndarray],
        fields: Mapping[str, np.ndarray],
    ) -> None:
        """Add ``k`` consecutive steps at once (arrays (k, n, ...)) in which no episode ends
        before the last step: the same as ``k`` calls of :meth:`accumulate`."""
        self._fold()
        values = [env_reward, synth, *components.values(), *self._metric_values(env_reward, fields)]
        self._add_block(np.stack(values, axis=1), None, tuple(components))

    def _fold(self) -> None:
        """Add the steps kept since the last fold to the episode sums."""
        if self._k == 0:
            return
        k, self._k = self._k, 0
        mask = self._live[:k].copy() if self._masked else None
        if self._masked:
            self._live[:] = True
            self._masked = False
        self._add_block(self._buf[:k], mask, self._names or ())

    def _add_block(self, block: np.ndarray, mask: np.ndarray | None, names: tuple[str, ...]) -> None:
        """``block`` (k, rows, n) in the layout of :meth:`accumulate`; ``mask`` (k, n) or None."""
        n_sums = 2 + len(names)
        sums = block[:, :n_sums] if mask is None else block[:, :n_sums] * mask[:, None]
        sums = sums.sum(axis=0)
        self._env_return += sums[0]
        self._synth_return += sums[1]
        self._length += len(block) if mask is None else mask.sum(axis=0)
        for name, value in zip(names, sums[2:], strict=True):
            acc = self._comp_sums.get(name)
            if acc is None:
                acc = self._comp_sums[name] = np.zeros(self.n)
            acc += value
        for j, (_, reducer) in enumerate(self._metrics.values()):
            reducer.update_block(block[:, n_sums + j], mask)

    def _metric_values(self, env_reward, fields) -> list[np.ndarray]:
        """This step's values of every episode metric, in the order of ``self._metrics``."""
        values = []
        for name, (field, _) in self._metrics.items():
            value = env_reward if field == "env_reward" else fields.get(field)
            if value is None:
                raise RewardgenError(
                    f"episode metric '{name}' reads field '{field}', which this env does not "
                    f"provide (fields: {', '.join(sorted(fields))})"
                )
            values.append(value)
        return values

    def end_episodes(self, done: np.ndarray) -> dict[str, Any]:
        """Episode summaries of the ``done`` envs (arrays in index order), then restart them."""
        self._fold()
        idx = np.flatnonzero(done)
        summary: dict[str, Any] = {
            "env_return": self._env_return[idx].copy(),
            "reward_return": self._synth_return[idx].copy(),
            "length": self._length[idx].copy(),
            "components": {k: v[idx].copy() for k, v in self._comp_sums.items()},
            "metrics": {k: r.pop(done) for k, (_, r) in self._metrics.items()},
        }
        self._env_return[idx] = 0.0
        self._synth_return[idx] = 0.0
        self._length[idx] = 0
        for v in self._comp_sums.values():
            v[idx] = 0.0
        self.reward_fn.reset(idx)
        return summary

    def restart_all(self) -> None:
        self.end_episodes(np.ones(self.n, dtype=bool))


def summary_row(summary: Mapping[str, Any], j: int) -> dict[str, Any]:
    """The ``j``-th env's episode summary as plain floats."""
    return {
        "env_return": float(summary["env_return"][j]),
        "reward_return": float(summary["reward_return"][j]),
        "length": int(summary["length"][j]),
        "components": {k: float(v[j]) for k, v in summary["components"].items()},
        "metrics": {k: float(v[j]) for k, v in summary["metrics"].items()},
    }

"""Periodic evaluation while training: how soon the policy meets the task's success metric.

Every ``every`` steps the current policy runs deterministic episodes (in parallel, one env each;
at least the task's success rule asks for, as the final evaluation) on fresh envs; the env's own
return, the success metric and the rule's verdict go to ``evals.csv``. With ``stop_on_success``
training ends at the first evaluation that meets the rule:
``rewardgen train --until-success`` and the demo stop there instead of spending the whole budget.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.rewards import RewardFn, RewardOutput, TransitionBatch
from rewardgen.runs import episode_means
from rewardgen.tasks import TaskSpec, make_env_fn, wrapper_kwargs
from rewardgen.training.policy import Policy, normalizer_of

__all__ = ["EVAL_COLUMNS", "PeriodicEvaluator", "read_evals"]

#: wall_time_s counts from the start of training, evaluations included; eval_time_s is the part
#: the evaluations took (so wall_time_s - eval_time_s is the training's own time).
EVAL_COLUMNS = [
    "timesteps",
    "wall_time_s",
    "eval_time_s",
    "episodes",
    "env_return_mean",
    "success_metric_mean",
    "success_rate",
    "succeeded",
]


class _NoReward(RewardFn):
    """Scores nothing: the evaluation needs only the env's return and the success metric."""

    fields = frozenset()

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        return RewardOutput(np.zeros(batch.n))


class PeriodicEvaluator:
    """Deterministic episodes of the policy being trained, written to ``path`` (``evals.csv``).

    Example:
        >>> ev = PeriodicEvaluator(get_task("hopper-run"), Path("evals.csv"))  # doctest: +SKIP
        >>> ev(policy, timesteps=50_000, wall_s=61.2)["success_rate"]  # doctest: +SKIP
        0.0
    """

    def __init__(
        self,
        spec: TaskSpec,
        path: Path,
        episodes: int = 2,
        seed: int = 30_000,
        append: bool = False,
        until_decided: bool = False,
    ):
        from stable_baselines3.common.vec_env import DummyVecEnv

        from rewardgen.wrappers.sb3 import SB3RewardVecWrapper

        self.spec, self.path, self.episodes = spec, path, spec.metric.episodes(episodes)
        self.until_decided = until_decided  # stop once the verdict is settled (a final seed's)
        reward = _NoReward()
        venv = DummyVecEnv([make_env_fn(spec, fields=reward.fields) for _ in range(self.episodes)])
        venv.seed(seed)
        self.venv = SB3RewardVecWrapper(venv, reward, **wrapper_kwargs(spec, reward.fields))
        from rewardgen.runs.tensorboard import ScalarLog

        self.rows: list[dict[str, Any]] = []
        self.spent_s = 0.0
        self.scalars = ScalarLog(path.parent)
        if not (append and path.is_file()):  # a continued run adds to its rows
            with path.open("w", newline="") as f:
                csv.writer(f).writerow(EVAL_COLUMNS)

    def __call__(self, policy: Policy, timesteps: int, wall_s: float) -> dict[str, Any]:
        t0 = time.monotonic()
        norm = normalizer_of(policy)
        obs = self.venv.reset()
        episodes: dict[int, dict[str, Any]] = {}
        while len(episodes) < self.episodes:
            policy_obs = norm.normalize_obs(obs) if norm is not None else obs
            action, _ = policy.predict(policy_obs, deterministic=True)
            obs, _, dones, infos = self.venv.step(action)
            for i in np.flatnonzero(dones):
                episodes.setdefault(int(i), infos[i]["reward_episode"])  # each env's first episode
            if self.until_decided and dones.any() and len(episodes) < self.episodes:
                values = [e["metrics"]["success_metric"] for e in episodes.values()]
                if self.spec.metric.decided(values, self.episodes) is not None:
                    break
        self.spent_s += time.monotonic() - t0
        finished = list(episodes.values())
        means = episode_means(finished, self.spec.metric)
        row = {
            "timesteps": int(timesteps),
            "wall_time_s": round(wall_s + time.monotonic() - t0, 2),
            "eval_time_s": round(self.spent_s, 2),
            "episodes": len(finished),
            **{k: means[k] for k in ("env_return_mean", "success_metric_mean", "success_rate")},
            "succeeded": int(
                self.spec.metric.decided([e["metrics"]["success_metric"] for e in finished], self.episodes)
                or False
            ),
        }
        self.rows.append(row)
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([row[c] for c in EVAL_COLUMNS])
        self.scalars.row(row, prefix="eval/")
        return row

    def first_success(self) -> dict[str, Any] | None:
        """The first evaluation that met the task's success rule."""
        return next((r for r in self.rows if r["succeeded"]), None)

    def close(self) -> None:
        self.venv.close()
        self.scalars.close()


def read_evals(path: Path) -> list[dict[str, float]]:
    """The rows of an ``evals.csv`` (one written before the rule was kept reads ``succeeded``
    as every episode succeeding)."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = [
            {k: float(v) for k, v in row.items() if k is not None and isinstance(v, str) and v}
            for row in csv.DictReader(f)
        ]
    for row in rows:
        row.setdefault("succeeded", float(row.get("success_rate", 0.0) >= 1.0))
    return rows

"""Periodic evaluation while training: how soon the policy meets the task's success metric.

Every ``every`` steps the current policy runs deterministic episodes (in parallel, one env each;
at least the task's success rule asks for, as the final evaluation) on fresh envs; the env's own
return, the success metric and the rule's verdict go to ``evals.csv``; an evaluation that asks
only for the verdict (a final seed's) runs a few episodes first and the rest only where those
leave it open (a standing hopper's ten 1000-step episodes cost half the steps trained between
two evaluations). With ``stop_on_success``
training ends at the first evaluation that meets the rule:
``rewardgen train --until-success`` and the demo stop there instead of spending the whole budget.
"""

from __future__ import annotations

import csv
import math
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
    "confirmation_mean",
    "succeeded",
]


class _NoReward(RewardFn):
    """Scores nothing: the evaluation needs only the env's return and the success metric."""

    fields = frozenset()

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        return RewardOutput(np.zeros(batch.n))


def _eval_venv(spec: TaskSpec, n: int) -> Any:
    """``n`` envs of the task stepped together, scoring nothing but the env's return and metric."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rewardgen.wrappers.sb3 import SB3RewardVecWrapper

    reward = _NoReward()
    venv = DummyVecEnv([make_env_fn(spec, fields=reward.fields) for _ in range(n)])
    return SB3RewardVecWrapper(venv, reward, **wrapper_kwargs(spec, reward.fields))


#: The fewest episodes an evaluation that asks only for the verdict runs first (its curve point).
FIRST_STAGE = 3


def _first_stage(spec: TaskSpec, n: int) -> int:
    """How many of ``n`` episodes run first where only the verdict matters: enough that their
    failures could settle it (a rule on each episode; a rule on the mean needs all ``n``)."""
    metric = spec.metric
    if metric.line is None or metric.over == "mean":
        return n
    need = math.ceil(metric.share * n - 1e-9)  # episodes that must meet the line
    return min(n, max(FIRST_STAGE, n - need + 1))


def _values(episodes: list[dict[str, Any]]) -> list[float]:
    return [e["metrics"]["success_metric"] for e in episodes]


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
        confirm_seed: int | None = None,
        confirm_episodes: int = 1,
    ):
        self.spec, self.path, self.episodes = spec, path, spec.metric.episodes(episodes)
        self.until_decided = until_decided  # stop once the verdict is settled (a final seed's)
        # the envs run in stages: with ``until_decided`` a first few episodes (as many as could
        # settle a failure, at least FIRST_STAGE) and the rest only where those leave the
        # verdict open; without it all at once (a candidate's curve wants every episode)
        first = self.episodes if not until_decided else _first_stage(spec, self.episodes)
        self.stages = [_eval_venv(spec, first)]
        if first < self.episodes:
            self.stages.append(_eval_venv(spec, self.episodes - first))
        for offset, venv in zip((0, first), self.stages, strict=False):
            venv.seed(seed + offset)  # env i's episodes from seed + i; each evaluation goes on
        # the final evaluation's episodes (its seed), that confirm a success before it counts
        self.confirm_seed, self.confirm_episodes = confirm_seed, spec.metric.episodes(confirm_episodes)
        self._confirm_venv: Any = None
        from rewardgen.runs.tensorboard import ScalarLog

        self.rows: list[dict[str, Any]] = []
        self.spent_s = 0.0
        self.scalars = ScalarLog(path.parent)
        if not (append and path.is_file()):  # a continued run adds to its rows
            with path.open("w", newline="") as f:
                csv.writer(f).writerow(EVAL_COLUMNS)

    def __call__(self, policy: Policy, timesteps: int, wall_s: float) -> dict[str, Any]:
        t0 = time.monotonic()
        finished: list[dict[str, Any]] = []
        for venv in self.stages:
            finished += self._episodes(venv, policy, self.until_decided, finished)
            if self.spec.metric.decided(_values(finished), self.episodes) is not None:
                break
        means = episode_means(finished, self.spec.metric)
        succeeded = bool(self.spec.metric.decided(_values(finished), self.episodes))
        confirmed: float | str = ""
        if succeeded and self.confirm_seed is not None:
            # a success counts once the final evaluation's own episodes confirm it: ten lucky
            # episodes among many evaluations are not a success the saved policy keeps
            if self._confirm_venv is None:
                self._confirm_venv = _eval_venv(self.spec, self.confirm_episodes)
            self._confirm_venv.seed(self.confirm_seed)  # the same episodes every time
            again = self._episodes(self._confirm_venv, policy, until_decided=False)
            confirmed = episode_means(again, self.spec.metric)["success_metric_mean"]
            succeeded = self.spec.metric.succeeds(_values(again))
        self.spent_s += time.monotonic() - t0
        row = {
            "timesteps": int(timesteps),
            "wall_time_s": round(wall_s + time.monotonic() - t0, 2),
            "eval_time_s": round(self.spent_s, 2),
            "episodes": len(finished),
            **{k: means[k] for k in ("env_return_mean", "success_metric_mean", "success_rate")},
            "confirmation_mean": confirmed,
            "succeeded": int(succeeded),
        }
        self.rows.append(row)
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([row[c] for c in EVAL_COLUMNS])
        self.scalars.row({k: v for k, v in row.items() if v != ""}, prefix="eval/")
        return row

    def _episodes(
        self, venv: Any, policy: Policy, until_decided: bool, before: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """Each of ``venv``'s envs' first episode under the deterministic ``policy`` (fewer once
        the verdict, with the episodes ``before`` them, is settled, with ``until_decided``)."""
        norm = normalizer_of(policy)
        obs = venv.reset()
        n = venv.num_envs
        episodes: dict[int, dict[str, Any]] = {}
        while len(episodes) < n:
            policy_obs = norm.normalize_obs(obs) if norm is not None else obs
            action, _ = policy.predict(policy_obs, deterministic=True)
            obs, _, dones, infos = venv.step(action)
            for i in np.flatnonzero(dones):
                episodes.setdefault(int(i), infos[i]["reward_episode"])  # each env's first episode
            if until_decided and dones.any() and len(episodes) < n:
                values = _values([*(before or []), *episodes.values()])
                if self.spec.metric.decided(values, self.episodes) is not None:
                    break
        return list(episodes.values())

    def first_success(self) -> dict[str, Any] | None:
        """The first evaluation that met the task's success rule."""
        return next((r for r in self.rows if r["succeeded"]), None)

    def close(self) -> None:
        for venv in self.stages:
            venv.close()
        if self._confirm_venv is not None:
            self._confirm_venv.close()
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

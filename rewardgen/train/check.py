"""Random-rollout check of a reward: what each term does, and what it costs, before any
training."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rewardgen.rewards import (
    MissingFieldError,
    RewardFn,
    RewardFnError,
    RewardOutput,
    RewardSpec,
    TransitionBatch,
)
from rewardgen.tasks import get_task, make_env_fn, wrapper_kwargs
from rewardgen.wrappers import VectorRewardWrapper

__all__ = ["RewardCost", "RewardTooSlowError", "check_reward"]

#: A reward may cost this many times the env's own step, per transition, before it is refused
#: as too slow to train on (``SearchConfig.max_reward_cost``).
MAX_REWARD_COST = 20.0
#: ...but never less than this many seconds per transition: a fast env must not make an
#: ordinary program (or the sandbox's round trip) look slow.
MIN_REWARD_BUDGET_S = 1e-3


class RewardTooSlowError(RewardFnError):
    """A reward costs too much per transition to train on."""


class _Timed(RewardFn):
    """Times every call of a reward function (the first, which may start a sandbox worker, apart)."""

    def __init__(self, inner: RewardFn):
        self.inner, self.fields, self.needs_frames = inner, inner.fields, inner.needs_frames
        self.first_s: float | None = None
        self.calls: list[tuple[float, int]] = []  # (seconds, transitions)

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        t0 = time.perf_counter()
        out = self.inner(batch)
        dt = time.perf_counter() - t0
        if self.first_s is None:
            self.first_s = dt
        else:
            self.calls.append((dt, batch.n))
        return out

    def reset(self, env_indices: np.ndarray) -> None:
        self.inner.reset(env_indices)

    def close(self) -> None:
        self.inner.close()


@dataclass(frozen=True)
class RewardCost:
    """What a reward costs on random rollouts, beside the env's own step (seconds)."""

    call_s: float  # median seconds per call
    transitions_per_call: int
    env_step_s: float  # env (and wrapper) seconds per transition
    calls: int

    @property
    def per_transition_s(self) -> float:
        return self.call_s / max(self.transitions_per_call, 1)

    @property
    def ratio(self) -> float:
        """Reward seconds per transition over env seconds per transition."""
        return self.per_transition_s / max(self.env_step_s, 1e-9)

    def describe(self) -> str:
        return (
            f"{_seconds(self.call_s)} per call of {self.transitions_per_call} "
            f"transition{'s' if self.transitions_per_call != 1 else ''} "
            f"({_seconds(self.per_transition_s)} per transition); the env step costs "
            f"{_seconds(self.env_step_s)} per transition"
        )


def _seconds(s: float) -> str:
    return f"{s:.2g} s" if s >= 0.1 else f"{s * 1e3:.2g} ms"


def _limit_s(cost: RewardCost, max_ratio: float) -> float:
    return max(max_ratio * cost.env_step_s, MIN_REWARD_BUDGET_S)


def check_reward(
    task: str,
    reward: RewardSpec | None = None,
    steps: int = 250,
    n_envs: int = 4,
    seed: int = 0,
    max_cost: float | None = None,
) -> dict[str, Any]:
    """Statistics of the total and each component on random actions, the largest gap between
    the reward and the env's own reward (0 for a faithful copy of it), and what a call costs.
    ``reward``: a spec (None: the task's reference reward).

    With ``max_cost``, a reward that costs more than ``max_cost`` times the env's own step per
    transition (at least :data:`MIN_REWARD_BUDGET_S`) is refused with
    :class:`RewardTooSlowError`, as soon as a few calls show it.

    Example:
        >>> check_reward("hopper-run", steps=50)["max_abs_diff_to_env"] < 1e-6  # doctest: +SKIP
        True
    """
    spec = get_task(task)
    reward_spec = reward if reward is not None else spec.reference_reward()
    fn = reward_spec.build()
    timed = _Timed(fn)
    envs = gym.vector.SyncVectorEnv([make_env_fn(spec, fields=fn.fields) for _ in range(n_envs)])
    envs = VectorRewardWrapper(envs, timed, **wrapper_kwargs(spec, fn.fields))
    envs.reset(seed=seed)
    action_space = envs.env.action_space
    action_space.seed(seed)
    terms: dict[str, list[np.ndarray]] = {"total": []}
    max_diff, count, episodes = 0.0, 0, 0
    step_s, reward_s, timed_steps = 0.0, 0.0, 0
    try:
        for _ in range(steps):
            calls_before = len(timed.calls)
            t0 = time.perf_counter()
            try:
                step = envs.step(action_space.sample())
            except MissingFieldError as exc:
                raise MissingFieldError(
                    f"{exc}; the task {spec.id} provides: {', '.join(spec.resolved_fields())}", exc.field
                ) from exc
            if len(timed.calls) > calls_before:  # the first call (worker start) is not counted
                step_s += time.perf_counter() - t0
                reward_s += timed.calls[-1][0]
                timed_steps += 1
                if max_cost is not None:
                    _refuse_if_slow(
                        reward_spec.name, timed, step_s - reward_s, timed_steps * n_envs, max_cost
                    )
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
    cost = _cost(timed, step_s - reward_s, timed_steps * n_envs)
    return {
        "program": reward_spec.name,
        "env_id": spec.gym_id,
        "transitions": count,
        "episode_ends": episodes,
        "terms": stats,
        "max_abs_diff_to_env": max_diff,
        "cost": None
        if cost is None
        else {
            "call_s": cost.call_s,
            "transitions_per_call": cost.transitions_per_call,
            "per_transition_s": cost.per_transition_s,
            "env_step_s": cost.env_step_s,
            "ratio": cost.ratio,
            "calls": cost.calls,
            "summary": cost.describe(),
        },
    }


def _cost(timed: _Timed, env_s: float, env_transitions: int) -> RewardCost | None:
    if not timed.calls:
        return None
    seconds = [s for s, _ in timed.calls]
    n = int(np.median([k for _, k in timed.calls]))
    return RewardCost(
        call_s=float(np.median(seconds)),
        transitions_per_call=n,
        env_step_s=max(env_s, 0.0) / max(env_transitions, 1),
        calls=len(seconds),
    )


def _refuse_if_slow(name: str, timed: _Timed, env_s: float, env_transitions: int, max_ratio: float) -> None:
    """Refuse after two timed calls over the limit, or after one that is ten times over it (a
    program that costs seconds per call is not watched for long)."""
    cost = _cost(timed, env_s, env_transitions)
    assert cost is not None
    limit = _limit_s(cost, max_ratio)
    if cost.per_transition_s <= limit or (cost.calls < 2 and cost.per_transition_s < 10 * limit):
        return
    calls = f"{cost.calls} call" + ("s" if cost.calls > 1 else "")
    raise RewardTooSlowError(
        f"reward {name} is too slow to train on: {cost.describe()} (measured over {calls}); "
        "a reward may cost at most "
        f"{max_ratio:g}x the env step per transition ({_seconds(limit)}; setting max_reward_cost): "
        "compute on whole arrays instead of looping over the batch"
    )

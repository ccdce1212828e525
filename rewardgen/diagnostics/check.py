"""Random-rollout check of a reward: what each term does, and what it costs, before any
training."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
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
from rewardgen.tasks import TaskSpec, get_task, make_env_fn, wrapper_kwargs
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
    """Measures the CPU time of every call of a reward function (the first, which may start a
    sandbox worker, apart): this process's CPU time plus the sandbox worker's, never the wall
    clock, so that a busy machine's scheduling delay is not counted as the program's cost. Keeps
    the first ``keep`` transitions for a measurement at the size training scores at once."""

    def __init__(self, inner: RewardFn, keep: int = 0):
        self.inner, self.fields, self.needs_frames = inner, inner.fields, inner.needs_frames
        self.first_s: float | None = None
        self.calls: list[tuple[float, int]] = []  # (CPU seconds, transitions)
        self.local_cpu_s = 0.0  # of those, spent in this process (the env step is timed beside it)
        self.keep, self.kept = keep, []  # type: ignore[var-annotated]

    def measure(self, batch: TransitionBatch) -> tuple[RewardOutput, float, float]:
        """The output, the call's CPU seconds in all, and those spent in this process."""
        c0 = time.process_time()
        out = self.inner(batch)
        local = time.process_time() - c0
        return out, local + (getattr(self.inner, "worker_cpu_s", None) or 0.0), local

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        if sum(b.n for b in self.kept) < self.keep:
            self.kept.append(copy.deepcopy(batch))
        out, cpu, local = self.measure(batch)
        if self.first_s is None:
            self.first_s = cpu
        else:
            self.calls.append((cpu, batch.n))
            self.local_cpu_s += local
        return out

    def reset(self, env_indices: np.ndarray) -> None:
        self.inner.reset(env_indices)

    def close(self) -> None:
        self.inner.close()


@dataclass(frozen=True)
class RewardCost:
    """What a reward costs on random rollouts, beside the env's own step (CPU seconds)."""

    call_s: float  # CPU seconds per call (median of the per-step calls; best of a few large ones)
    transitions_per_call: int
    env_step_s: float  # env (and wrapper) CPU seconds per transition
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
            f"{_seconds(self.call_s)} of CPU per call of {self.transitions_per_call} "
            f"transition{'s' if self.transitions_per_call != 1 else ''} "
            f"({_seconds(self.per_transition_s)} per transition); the env step costs "
            f"{_seconds(self.env_step_s)} per transition"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_s": self.call_s,
            "transitions_per_call": self.transitions_per_call,
            "per_transition_s": self.per_transition_s,
            "env_step_s": self.env_step_s,
            "ratio": self.ratio,
            "calls": self.calls,
            "summary": self.describe(),
        }


def _seconds(s: float) -> str:
    return f"{s:.2g} s" if s >= 0.1 else f"{s * 1e3:.2g} ms"


def _limit_s(cost: RewardCost, max_ratio: float) -> float:
    return max(max_ratio * cost.env_step_s, MIN_REWARD_BUDGET_S)


def check_reward(
    task: str | TaskSpec,
    reward: RewardSpec | None = None,
    steps: int = 250,
    n_envs: int = 4,
    seed: int = 0,
    max_cost: float | None = None,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Statistics of the total and each component on random actions, the largest gap between
    the reward and the env's own reward (0 for a faithful copy of it), and what a call costs.
    ``reward``: a spec (None: the task's reference reward).

    Cost is CPU time (this process's and the sandbox worker's), so a loaded machine does not make
    a cheap program look slow. With ``max_cost``, a reward whose CPU time per transition is more
    than ``max_cost`` times the env step's (at least :data:`MIN_REWARD_BUDGET_S`) is refused with
    :class:`RewardTooSlowError`: judged on calls of ``batch_size`` transitions, the size training
    scores at once (a whole PPO rollout when rewards are deferred; the best of a few calls), or on
    the per-step calls when ``batch_size`` is not larger. A program ten times over is refused as
    soon as two per-step calls show it.

    Example:
        >>> check_reward("hopper-run", steps=50)["max_abs_diff_to_env"] < 1e-6  # doctest: +SKIP
        True
    """
    spec = get_task(task)
    reward_spec = reward if reward is not None else spec.reference_reward()
    fn = reward_spec.build()
    big = batch_size if max_cost is not None and batch_size is not None and batch_size > n_envs else None
    timed = _Timed(fn, keep=min(big or 0, steps * n_envs))
    envs = gym.vector.SyncVectorEnv([make_env_fn(spec, fields=fn.fields) for _ in range(n_envs)])
    envs = VectorRewardWrapper(envs, timed, **wrapper_kwargs(spec, fn.fields))
    envs.reset(seed=seed)
    action_space = envs.env.action_space
    action_space.seed(seed)
    terms: dict[str, list[np.ndarray]] = {"total": []}
    max_diff, count, episodes = 0.0, 0, 0
    step_s, timed_steps = 0.0, 0
    try:
        for _ in range(steps):
            calls_before = len(timed.calls)
            local_before = timed.local_cpu_s
            t0 = time.process_time()
            try:
                step = envs.step(action_space.sample())
            except MissingFieldError as exc:
                raise MissingFieldError(
                    f"{exc}; the task {spec.id} provides: {', '.join(spec.resolved_fields())}", exc.field
                ) from exc
            if len(timed.calls) > calls_before:  # the first call (worker start) is not counted
                step_s += time.process_time() - t0 - (timed.local_cpu_s - local_before)
                timed_steps += 1
                if max_cost is not None:
                    _refuse_if_slow(
                        reward_spec.name,
                        timed,
                        step_s,
                        timed_steps * n_envs,
                        max_cost,
                        only_gross=big is not None,
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
        cost = _cost(timed, step_s, timed_steps * n_envs)
        batch_cost = None
        if big is not None and cost is not None and timed.kept:
            batch_cost = _batch_cost(timed, big, cost, max_cost)  # type: ignore[arg-type]
            _refuse(reward_spec.name, batch_cost, max_cost)  # type: ignore[arg-type]
    finally:
        walls = getattr(getattr(fn, "runner", None), "wall_report", None)  # a sandboxed program's
        envs.close()  # closes the reward too (and its sandbox worker)
    stats = {}
    for name, chunks in terms.items():
        v = np.concatenate(chunks)
        stats[name] = {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}
    return {
        "program": reward_spec.name,
        "env_id": spec.gym_id,
        "transitions": count,
        "episode_ends": episodes,
        "terms": stats,
        "max_abs_diff_to_env": max_diff,
        "sandbox": dict(walls) if walls else None,
        "cost": None
        if cost is None
        else {**cost.to_dict(), "batch": batch_cost.to_dict() if batch_cost is not None else None},
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


def _batch_cost(timed: _Timed, size: int, step_cost: RewardCost, max_ratio: float) -> RewardCost:
    """The best of up to three calls on ``size`` transitions (the kept ones, repeated to that
    size; fewer when the per-step calls say that would take over a second): the cost per
    transition training pays when it scores a whole rollout at once. Stops early when a call is
    clearly within the limit or clearly over it."""
    # never a call the per-step calls say would take more than a second: a slow program is
    # judged on fewer transitions (its cost per transition does not shrink with the batch)
    size = min(size, max(step_cost.transitions_per_call, int(1.0 / max(step_cost.per_transition_s, 1e-9))))
    batch = _tile(timed.kept, size)
    limit = _limit_s(step_cost, max_ratio)
    best, calls = float("inf"), 0
    for _ in range(3):
        _, cpu, _ = timed.measure(batch)
        best, calls = min(best, cpu), calls + 1
        per = best / size
        if per <= limit / 2 or per > 10 * limit:
            break
    return RewardCost(call_s=best, transitions_per_call=size, env_step_s=step_cost.env_step_s, calls=calls)


def _tile(batches: list[TransitionBatch], size: int) -> TransitionBatch:
    """One batch of ``size`` transitions from ``batches``, repeated as often as needed."""
    rows = np.arange(size) % sum(b.n for b in batches)

    def join(parts: list[Any]) -> Any:
        if isinstance(parts[0], Mapping):
            return {k: join([p[k] for p in parts]) for k in parts[0]}
        return np.concatenate([np.asarray(p) for p in parts])[rows]

    return TransitionBatch(
        obs=join([b.obs for b in batches]),
        action=join([b.action for b in batches]),
        next_obs=join([b.next_obs for b in batches]),
        terminated=join([b.terminated for b in batches]),
        truncated=join([b.truncated for b in batches]),
        info=join([dict(b.info) for b in batches]),
        frames=join([b.frames for b in batches]) if batches[0].frames is not None else None,
    )


def _refuse_if_slow(
    name: str, timed: _Timed, env_s: float, env_transitions: int, max_ratio: float, only_gross: bool = False
) -> None:
    """Refuse after two timed calls over the limit, or after one that is ten times over it (a
    program that costs seconds per call is not watched for long). ``only_gross``: when a larger
    batch decides later, refuse here only a program ten times over the limit after two calls."""
    cost = _cost(timed, env_s, env_transitions)
    assert cost is not None
    limit = _limit_s(cost, max_ratio)
    if only_gross:
        if cost.calls >= 2 and cost.per_transition_s > 10 * limit:
            _refuse(name, cost, max_ratio)
        return
    if cost.per_transition_s <= limit or (cost.calls < 2 and cost.per_transition_s < 10 * limit):
        return
    _refuse(name, cost, max_ratio)


def _refuse(name: str, cost: RewardCost, max_ratio: float) -> None:
    """Refuse ``cost`` when it is over the limit."""
    limit = _limit_s(cost, max_ratio)
    if cost.per_transition_s <= limit:
        return
    calls = f"{cost.calls} call" + ("s" if cost.calls > 1 else "")
    raise RewardTooSlowError(
        f"reward {name} is too slow to train on: {cost.describe()} (measured over {calls}); "
        "a reward may cost at most "
        f"{max_ratio:g}x the env step per transition ({_seconds(limit)}; setting max_reward_cost): "
        "compute on whole arrays instead of looping over the batch"
    )

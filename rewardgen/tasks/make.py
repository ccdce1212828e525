"""Build a task's environments, fields and metric for the wrappers and trainers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym

from rewardgen.errors import RewardgenError, require
from rewardgen.tasks.fields import StateFieldsWrapper, TaskFields, parse_source
from rewardgen.tasks.spec import TaskSpec, get_task

__all__ = ["episode_metrics", "make_env", "make_env_fn", "task_fields"]


def _sources(task: TaskSpec) -> dict[str, tuple[str, Any]]:
    return {name: parse_source(name, f.source) for name, f in task.resolved_fields().items()}


def task_fields(task: TaskSpec | str) -> TaskFields:
    """The field reader that hands the task's named fields to a reward."""
    return TaskFields(_sources(get_task(task)))


def episode_metrics(task: TaskSpec | str) -> dict[str, tuple[str, str]]:
    """The metric the wrappers track per episode, as ``{"success_metric": (field, reduce)}``."""
    m = get_task(task).metric
    return {"success_metric": (m.field, m.reduce)}


def make_env(task: TaskSpec | str, render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    """One env of the task (with its state fields in ``info``).

    Example:
        >>> env = make_env("halfcheetah-run")  # doctest: +SKIP
    """
    spec = get_task(task)
    if spec.gym_id.split("-")[0] in {"HalfCheetah", "Hopper", "Walker2d", "Ant", "Humanoid"}:
        require("mujoco", extra="mujoco", purpose=f"task {spec.id}")
    try:
        env = gym.make(spec.gym_id, render_mode=render_mode, **{**spec.resolved_env_kwargs(), **kwargs})
    except gym.error.Error as exc:
        raise RewardgenError(f"cannot make {spec.gym_id} for task {spec.id}: {exc}") from exc
    state = {n: code for n, (kind, code) in _sources(spec).items() if kind == "state"}
    return StateFieldsWrapper(env, state) if state else env


def make_env_fn(task: TaskSpec | str, render_mode: str | None = None, **kwargs: Any) -> Callable[[], gym.Env]:
    """A picklable-enough factory for vector envs (SB3 ``SubprocVecEnv`` uses cloudpickle)."""
    spec = get_task(task)
    return lambda: make_env(spec, render_mode=render_mode, **kwargs)

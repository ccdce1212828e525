"""Build a task's environments, fields and metric for the wrappers and trainers."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import gymnasium as gym

from rewardgen.errors import MissingExtraError, RewardgenError, require
from rewardgen.tasks.fields import StateFieldsWrapper, TaskFields, parse_source
from rewardgen.tasks.spec import TaskSpec, get_task

__all__ = [
    "episode_metrics",
    "make_env",
    "make_env_fn",
    "quiet_mujoco_warnings",
    "task_fields",
    "wrapper_kwargs",
]


MUJOCO_ENVS = {"HalfCheetah", "Hopper", "Walker2d", "Ant", "Humanoid", "rewardgen/HumanoidVLM"}
#: A task's ``package`` -> the pip extra that installs it, where their names differ.
PACKAGE_EXTRAS = {"nle": "nethack"}


def _sources(task: TaskSpec, only: Iterable[str] | None = None) -> dict[str, tuple[str, Any]]:
    """Parsed field sources; ``only`` keeps the named fields plus the success metric's."""
    keep = None if only is None else {*only, task.metric.field, *_env_terms(task)}
    return {
        name: parse_source(name, f.source)
        for name, f in task.resolved_fields().items()
        if keep is None or name in keep
    }


def task_fields(task: TaskSpec | str, only: Iterable[str] | None = None) -> TaskFields:
    """The field reader that hands the task's named fields (or ``only`` those) to a reward."""
    spec = get_task(task)
    return TaskFields(_sources(spec, only))


def _env_terms(task: TaskSpec) -> list[str]:
    """The fields that add up to the env's own reward, where the task knows them."""
    terms = task.env_reward_terms
    return list(terms.terms) if terms is not None else []


def episode_metrics(task: TaskSpec | str) -> dict[str, tuple[str, str]]:
    """What the wrappers track per episode: ``{"success_metric": (field, reduce)}``, and the
    episode sum of each term of the env's reward where the task knows them
    (``env_term/<field>``: the reward reflection shows them beside the reward's components)."""
    spec = get_task(task)
    m = spec.metric
    return {"success_metric": (m.field, m.reduce), **{f"env_term/{f}": (f, "sum") for f in _env_terms(spec)}}


def wrapper_kwargs(task: TaskSpec | str, reads: Iterable[str] | None = None) -> dict[str, Any]:
    """The task-specific arguments of every reward wrapper: its field reader (``reads``: the
    fields the reward reads, None for all) and the success metric tracked per episode.

    Example:
        >>> # VectorRewardWrapper(envs, reward, **wrapper_kwargs("hopper-run", reward.fields))
    """
    return {"fields": task_fields(task, reads), "episode_metrics": episode_metrics(task)}


def _mujoco_warning(message: str) -> None:
    # gymnasium's MuJoCo XMLs use `settotalmass`, which MuJoCo >= 3.3 reports as deprecated on
    # every env made (to stdout and a MUJOCO_LOG.TXT in the working directory). Harmless: drop it.
    if "settotalmass" not in message:
        warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)


def quiet_mujoco_warnings() -> None:
    """Drop MuJoCo's known-harmless warnings (``settotalmass`` in gymnasium's XMLs) and turn the
    others into Python warnings; make_env does it for every MuJoCo task (benchmarks call it for
    envs they make themselves)."""
    _quiet_mujoco(require("mujoco", extra="mujoco", purpose="MuJoCo envs"))


def _quiet_mujoco(mujoco: Any) -> None:
    if hasattr(mujoco, "set_mju_user_warning") and mujoco.get_mju_user_warning() is not _mujoco_warning:
        mujoco.set_mju_user_warning(_mujoco_warning)


def make_env(
    task: TaskSpec | str, render_mode: str | None = None, fields: Iterable[str] | None = None, **kwargs: Any
) -> gym.Env:
    """One env of the task, with its state fields (or those in ``fields``) in ``info``.

    Example:
        >>> env = make_env("halfcheetah-run")  # doctest: +SKIP
    """
    spec = get_task(task)
    mujoco_env = spec.gym_id.split("-")[0] in MUJOCO_ENVS
    if mujoco_env:
        _quiet_mujoco(require("mujoco", extra="mujoco", purpose=f"task {spec.id}"))
    if spec.package == "metaworld" and int(gym.__version__.split(".")[0]) < 1:
        raise MissingExtraError(
            f"task {spec.id} needs Meta-World, which needs gymnasium >= 1.1; this environment has "
            f"gymnasium {gym.__version__} (the sample-factory stack): train it on the current stack "
            "(--backend sb3, the .venv that `make` builds)"
        )
    if spec.package:  # the package that registers its envs, from its extra
        require(spec.package, extra=PACKAGE_EXTRAS.get(spec.package, spec.package), purpose=f"task {spec.id}")
    if spec.gym_id.startswith("rewardgen/NetHack"):
        import rewardgen.tasks.nethack  # registers rewardgen's NetHack envs
    elif spec.gym_id.startswith("rewardgen/"):
        import rewardgen.tasks.scenes  # noqa: F401  (registers rewardgen's own envs)
    size = {} if mujoco_env else {k: kwargs.pop(k) for k in ("width", "height") if k in kwargs}
    if render_mode == "rgb_array" and not mujoco_env:  # pygame draws off screen, without sound
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        entry = str(getattr(gym.spec(spec.gym_id), "entry_point", "")) if spec.gym_id in gym.registry else ""
        if "classic_control" in entry or "box2d" in entry:
            require("pygame", extra="vlm", purpose=f"rendering {spec.gym_id} (task {spec.id})")
    try:
        env = gym.make(spec.gym_id, render_mode=render_mode, **{**spec.resolved_env_kwargs(), **kwargs})
    except gym.error.Error as exc:
        raise RewardgenError(f"cannot make {spec.gym_id} for task {spec.id}: {exc}") from exc
    if size and hasattr(env.unwrapped, "screen_width"):  # classic control draws at screen_width/height
        env.unwrapped.screen_width = size.get("width", env.unwrapped.screen_width)
        env.unwrapped.screen_height = size.get("height", env.unwrapped.screen_height)
    if spec.terminate_on_success is not None:
        try:
            toggle = env.get_wrapper_attr("toggle_terminate_on_success")
        except AttributeError:
            raise RewardgenError(
                f"task {spec.id} sets terminate_on_success, but {spec.gym_id} has no such switch"
            ) from None
        toggle(spec.terminate_on_success)
    state = {n: code for n, (kind, code) in _sources(spec, fields).items() if kind == "state"}
    return StateFieldsWrapper(env, state) if state else env


def make_env_fn(
    task: TaskSpec | str, render_mode: str | None = None, fields: Iterable[str] | None = None, **kwargs: Any
) -> Callable[[], gym.Env]:
    """An env factory for vector envs (SB3's ``SubprocVecEnv`` pickles it with cloudpickle)."""
    spec = get_task(task)
    return lambda: make_env(spec, render_mode=render_mode, fields=fields, **kwargs)

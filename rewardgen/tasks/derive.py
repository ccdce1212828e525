"""A task for any gymnasium env: its compact description derived from the spaces and the info
it reports, plus the user's field notes.

Box observations become one field per component (``obs_3`` reads ``obs[3]``), Dict observations
one field per entry (``obs.KEY``), numeric ``info`` keys one field each. Notes (a dict or YAML
file shaped like a task file) name and explain fields, and may set the metric, action text, id
and budget; a notes field replaces the derived field that reads the same source. Without a
metric the env's own return ranks candidates (``sum`` of ``env_reward``), with the env's
``reward_threshold`` as the success line when it has one.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml

from rewardgen.errors import RewardgenError
from rewardgen.tasks.decompose import env_reward_terms
from rewardgen.tasks.spec import ENV_REWARD, RewardTerms, TaskSpec, save_task_file

__all__ = ["derive_task", "derived_id", "materialize"]

MAX_COMPONENT_FIELDS = 64  # larger Box observations become one `obs` field
_NOTE_KEYS = {"id", "fields", "action", "metric", "budget", "package", "env_kwargs"}


def _bounds(space: gym.spaces.Box, i: int | None = None) -> str:
    lo, hi = (space.low, space.high) if i is None else (space.low[i], space.high[i])
    lo, hi = float(np.min(lo)), float(np.max(hi))
    if not (np.isfinite(lo) or np.isfinite(hi)):
        return "unbounded"
    return f"in [{lo:.3g}, {hi:.3g}]"


def _obs_fields(space: gym.Space) -> dict[str, dict[str, str]]:
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        n = space.shape[0]
        if n > MAX_COMPONENT_FIELDS:
            return {
                "obs": {"source": f"obs[0:{n}]", "doc": f"(n, {n}) the whole observation, {_bounds(space)}"}
            }
        return {
            f"obs_{i}": {"source": f"obs[{i}]", "doc": f"observation component {i}, {_bounds(space, i)}"}
            for i in range(n)
        }
    if isinstance(space, gym.spaces.Dict):
        out = {}
        for key, sub in space.spaces.items():
            if not isinstance(sub, gym.spaces.Box) or not re.match(r"^[A-Za-z_]\w*$", key):
                raise RewardgenError(
                    f"Dict observation entry '{key}' ({sub}) cannot be a field: only Box entries with "
                    "identifier names; describe the fields in --notes"
                )
            shape = ", ".join(str(d) for d in sub.shape)
            out[key] = {
                "source": f"obs.{key}",
                "doc": f"(n, {shape}) observation entry '{key}', {_bounds(sub)}",
            }
        return out
    raise RewardgenError(
        f"cannot derive fields from a {type(space).__name__} observation space ({space}): "
        "give every field in --notes (obs[i], obs.KEY, info.KEY or state.EXPR sources)"
    )


def _action_text(space: gym.Space) -> str:
    if isinstance(space, gym.spaces.Box):
        shape = ", ".join(str(d) for d in space.shape)
        return f"array (n, {shape}) {_bounds(space)}"
    if isinstance(space, gym.spaces.Discrete):
        return f"integer array (n,) in {space.start}..{space.start + space.n - 1}"
    return f"batch of {space}"


def _read_notes(notes: str | Path | dict[str, Any] | None) -> dict[str, Any]:
    if notes is None:
        return {}
    if isinstance(notes, dict):
        data = notes
    else:
        path = Path(notes)
        if not path.is_file():
            raise RewardgenError(f"notes file '{path}' not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise RewardgenError(f"cannot read notes file {path}: {' '.join(str(exc).split())}") from exc
    if not isinstance(data, dict) or set(data) - _NOTE_KEYS:
        extra = sorted(set(data) - _NOTE_KEYS) if isinstance(data, dict) else data
        raise RewardgenError(f"field notes may set {', '.join(sorted(_NOTE_KEYS))}; not {extra}")
    return data


def derived_id(env_id: str, notes: str | Path | dict[str, Any] | None = None) -> str:
    """The id a task derived from ``env_id`` gets: the notes' ``id``, else ``env-<env id>``.

    Example:
        >>> derived_id("Meta-World/MT1")
        'env-meta-world_mt1'
    """
    note = notes if isinstance(notes, dict) else _read_notes(notes)
    return note.get("id") or "env-" + re.sub(r"[^A-Za-z0-9_.-]", "_", env_id).lower()


def derive_task(
    env_id: str, goal: str, notes: str | Path | dict[str, Any] | None = None, **env_kwargs: Any
) -> TaskSpec:
    """A :class:`TaskSpec` for ``env_id`` (any registered gymnasium id, ``module:Id`` included).

    Example:
        >>> notes = {"fields": {"cos_theta": {"source": "obs[0]", "doc": "cos of the angle"}}}
        >>> task = derive_task("Pendulum-v1", "Swing up and stay up", notes)
        >>> sorted(task.fields)
        ['cos_theta', 'obs_1', 'obs_2']
    """
    note = _read_notes(notes)
    kwargs = {**note.get("env_kwargs", {}), **env_kwargs}
    if note.get("package") and ":" not in env_id:  # the package registers the env when imported
        try:
            importlib.import_module(str(note["package"]))
        except ImportError as exc:
            raise RewardgenError(f"the notes' package '{note['package']}' cannot be imported: {exc}") from exc
    try:
        env = gym.make(env_id, **kwargs)
    except (gym.error.Error, ModuleNotFoundError, TypeError) as exc:
        hint = ""
        if isinstance(exc, gym.error.NamespaceNotFound | gym.error.NameNotFound) and ":" not in env_id:
            hint = (
                f" (if a package registers it, name it: 'PACKAGE:{env_id}', or 'package: PACKAGE' in "
                "the notes)"
            )
        raise RewardgenError(f"cannot make env '{env_id}': {exc}{hint}") from exc
    try:
        fields = _obs_fields(env.observation_space)
        env.reset(seed=0)
        *_, info = env.step(env.action_space.sample())
        for key, value in info.items():
            arr = np.asarray(value) if isinstance(value, int | float | np.ndarray | np.generic) else None
            if arr is not None and arr.dtype.kind in "biuf" and re.match(r"^[A-Za-z_]\w*$", key):
                fields.setdefault(key, {"source": f"info.{key}", "doc": f"info['{key}'] reported by the env"})
        action = _action_text(env.action_space)
        threshold = env.spec.reward_threshold if env.spec is not None else None
        terms = env_reward_terms(env)  # random steps: which info entries add up to its reward
    finally:
        env.close()
    noted = note.get("fields", {})
    covered = {f["source"].replace(" ", "") for f in noted.values() if isinstance(f, dict) and "source" in f}
    fields = {k: v for k, v in fields.items() if v["source"].replace(" ", "") not in covered}
    fields.update(noted)
    metric = note.get("metric") or {
        "field": ENV_REWARD,
        "reduce": "sum",
        "above": threshold,
        "over": "mean",  # gymnasium's reward_threshold is on the mean return over episodes
        "doc": "the env's own return" + ("" if threshold is not None else " (no success threshold)"),
    }
    data = {
        "env_reward_terms": _by_field(terms, fields),
        "id": derived_id(env_id, note),
        "env_id": env_id,
        "goal": goal,
        "fields": fields,
        "action": note.get("action") or action,
        "metric": metric,
        "env_kwargs": kwargs,
        **{k: note[k] for k in ("budget", "package") if k in note},
    }
    try:
        return TaskSpec(**data)
    except ValueError as exc:
        raise RewardgenError(f"cannot build a task for {env_id} from these notes: {exc}") from exc


def _by_field(terms: RewardTerms, fields: dict[str, Any]) -> RewardTerms:
    """``terms`` named by the fields that read them (``info.KEY``: notes may rename a field);
    a term no field reads leaves the split unknown to the program, so none is kept."""
    reads = {
        f["source"].replace(" ", "").removeprefix("info."): name
        for name, f in fields.items()
        if isinstance(f, dict) and str(f.get("source", "")).replace(" ", "").startswith("info.")
    }
    if any(k not in reads for k in terms.terms):
        return RewardTerms(steps=terms.steps)
    return RewardTerms(
        terms={reads[k]: w for k, w in terms.terms.items()},
        action_cost={reads[k]: c for k, c in terms.action_cost.items()},
        constant=terms.constant,
        steps=terms.steps,
    )


def materialize(
    env_id: str, goal: str, notes: str | Path | dict[str, Any] | None, folder: str | Path
) -> TaskSpec:
    """A task derived from ``env_id`` (see :func:`derive_task`) written as ``folder/task.yaml`` and
    loaded back from there: worker processes, Ray nodes and a resumed run find it by that path.
    ``folder`` is the run the caller reserved (:meth:`rewardgen.runs.RunDir.reserve`)."""
    return save_task_file(derive_task(env_id, goal, notes), Path(folder) / "task.yaml")

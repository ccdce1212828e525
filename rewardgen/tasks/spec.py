"""Task specs: the YAML files under ``envs/<family>/<task>.yaml``, and the catalog of them."""

from __future__ import annotations

import difflib
import functools
import math
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rewardgen.errors import RewardgenError

__all__ = [
    "ENV_REWARD",
    "VERDICT_EPISODES",
    "FieldSpec",
    "MetricSpec",
    "RewardTerms",
    "TaskSpec",
    "UnknownTaskError",
    "VLMPrompts",
    "catalog_dir",
    "env_version",
    "get_task",
    "list_tasks",
    "load_task_file",
    "save_task_file",
]

GYM_MAJOR = int(gym.__version__.split(".")[0])
#: A metric may read the env's own reward under this name (e.g. the return: ``sum`` of it).
ENV_REWARD = "env_reward"


def env_version() -> str:
    """The MuJoCo env version this gymnasium provides: ``v5`` on gymnasium >= 1, else ``v4``."""
    return "v5" if GYM_MAJOR >= 1 else "v4"


class UnknownTaskError(RewardgenError, KeyError):
    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Model):
    """One named quantity the reward program can read from ``info``."""

    source: str
    doc: str
    unit: str = ""


#: The fewest episodes an evaluation runs for a task with a success line: periodic and final
#: evaluations alike, in parallel (one env each), so that a verdict is not a coin toss.
VERDICT_EPISODES = 10


class MetricSpec(_Model):
    """The task's success metric: ``reduce`` of a field over an episode, against a threshold
    (``above`` or ``below``). Without one, success is never claimed and higher is better.

    The success rule (``over``) is stated once and every evaluation applies it
    (:meth:`succeeds`): ``"episode"`` judges each episode against the line and a policy succeeds
    when at least ``share`` of its evaluation's episodes do; ``"mean"`` judges the mean over the
    episodes, as gymnasium defines ``reward_threshold``. Evaluations run at least
    :data:`VERDICT_EPISODES` episodes for either (:meth:`episodes`).

    Example:
        >>> m = MetricSpec(field="env_reward", reduce="sum", above=475, over="mean")
        >>> m.succeeds([500.0] * 9 + [460.0]), m.succeeds([500.0] * 5 + [400.0] * 5)
        (True, False)
        >>> MetricSpec(field="torso_z", reduce="max", above=1.6).succeeds([1.7] * 9 + [1.5])
        False
    """

    field: str
    reduce: Literal["mean", "sum", "max", "min", "final"] = "mean"
    above: float | None = None
    below: float | None = None
    doc: str = ""
    over: Literal["episode", "mean"] = "episode"
    share: float = Field(1.0, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _one_threshold(self) -> MetricSpec:
        if self.above is not None and self.below is not None:
            raise ValueError("give one of 'above' or 'below', not both")
        return self

    @property
    def line(self) -> float | None:
        """The success threshold (``above`` or ``below``); None without one."""
        return self.above if self.above is not None else self.below

    def success(self, value: float) -> bool:
        """Whether one value (an episode's, or a mean) meets the line."""
        if self.above is None and self.below is None:
            return False
        return value > self.above if self.above is not None else value < self.below  # type: ignore[operator]

    def succeeds(self, values: Any) -> bool:
        """The verdict on an evaluation's episodes (their metric values) by the task's rule."""
        values = [float(v) for v in values]
        if not values or self.line is None:
            return False
        if self.over == "mean":
            return self.success(sum(values) / len(values))
        return sum(self.success(v) for v in values) >= self.share * len(values) - 1e-9

    def decided(self, values: Any, n: int) -> bool | None:
        """The verdict on ``n`` episodes once ``values`` (those finished so far) settle it whatever
        the others do; None while they do not (a rule on the mean waits for all ``n``).

        Example:
            >>> m = MetricSpec(field="torso_z", reduce="max", above=1.6)
            >>> m.decided([1.7, 1.5], 10), m.decided([1.7, 1.8], 10), m.decided([1.7] * 10, 10)
            (False, None, True)
        """
        values = [float(v) for v in values]
        if self.line is None:
            return False if len(values) >= n else None
        if self.over == "mean":
            return self.succeeds(values) if len(values) >= n else None
        need = math.ceil(self.share * n - 1e-9)  # episodes that must meet the line
        met = sum(self.success(v) for v in values)
        if met >= need:
            return True
        if len(values) - met > n - need:
            return False
        return None

    def episodes(self, asked: int = 1) -> int:
        """How many episodes an evaluation runs: ``asked``, and at least :data:`VERDICT_EPISODES`
        for a task with a success line."""
        return max(int(asked), VERDICT_EPISODES) if self.line is not None else max(1, int(asked))

    def rule(self) -> str:
        """The success rule in words.

        Example:
            >>> MetricSpec(field="env_reward", reduce="sum", above=-3.75, over="mean").rule()
            'the mean over at least 10 evaluation episodes meets the line'
        """
        if self.line is None:
            return "no success line"
        if self.over == "mean":
            return f"the mean over at least {VERDICT_EPISODES} evaluation episodes meets the line"
        if self.share >= 1.0:
            return f"every one of at least {VERDICT_EPISODES} evaluation episodes meets the line"
        return f"at least {self.share:.0%} of at least {VERDICT_EPISODES} evaluation episodes meet the line"

    def score(self, value: float) -> float:
        """Higher is better: the value for ``above`` metrics, its negative for ``below``."""
        return -value if self.below is not None else value

    def formula(self) -> str:
        """The metric as a formula over an episode's steps t of the field the program reads (the
        env's own reward for ``env_reward``).

        Example:
            >>> print(MetricSpec(field="x_velocity", reduce="mean", above=3.0).formula())
            np.mean(info["x_velocity"][t] over the episode's steps t) > 3.0
        """
        value = ENV_REWARD if self.field == ENV_REWARD else f'info["{self.field}"]'
        how = {
            "mean": f"np.mean({value}[t] over the episode's steps t)",
            "sum": f"sum of {value}[t] over the episode's steps t",
            "max": f"max of {value}[t] over the episode's steps t",
            "min": f"min of {value}[t] over the episode's steps t",
            "final": f"{value} at the episode's last step",
        }[self.reduce]
        if self.above is None and self.below is None:
            return how + " (higher is better)"
        op, threshold = (">", self.above) if self.above is not None else ("<", self.below)
        if self.over == "mean":
            return f"the mean over evaluation episodes of ({how}) {op} {threshold}"
        return f"{how} {op} {threshold}"

    def describe(self) -> str:
        if self.above is None and self.below is None:
            return f"{self.reduce} of {self.field} over an episode (higher is better; no success threshold)"
        op, thr = (">", self.above) if self.above is not None else ("<", self.below)
        mean = ", its mean over the evaluation's episodes" if self.over == "mean" else ""
        return f"{self.reduce} of {self.field} over an episode{mean} {op} {thr}"


class RewardTerms(_Model):
    """How the env's own reward splits into the numeric fields it reports, found on random
    rollouts (:func:`rewardgen.tasks.decompose.env_reward_terms`): per step,
    ``env_reward == sum(weight * info[field])`` over ``terms``; ``action_cost`` names the terms
    that are ``c * np.sum(action**2, axis=1)``. Empty ``terms``: no such split was found.

    Example:
        >>> t = RewardTerms(terms={"reward_dist": 1.0, "reward_ctrl": 1.0}, action_cost={"reward_ctrl": -1.0})
        >>> t.formula()
        'info["reward_dist"] + info["reward_ctrl"]'
    """

    terms: dict[str, float] = Field(default_factory=dict)
    action_cost: dict[str, float] = Field(default_factory=dict)
    constant: float | None = None  # the reward was this at every step (CartPole's 1)
    steps: int = 0  # random steps it held on

    def formula(self) -> str:
        """The env's reward per step as a Python expression over the fields."""
        parts = []
        for name, w in self.terms.items():
            term = f'info["{name}"]'
            coef = "" if w == 1 else "-" if w == -1 else f"{w:.6g} * "
            parts.append(f"{coef}{term}")
        return " + ".join(parts).replace("+ -", "- ")

    def describe(self) -> list[str]:
        """Comment lines for the task description shown to the LLM."""
        checked = f"(checked on {self.steps} random steps)"
        if self.constant is not None:
            return [f"#   the env's reward is {self.constant:.6g} at every step {checked}"]
        if not self.terms:
            return [
                "#   its terms are unknown: no weighted sum of the env's numeric info entries matched it "
                f"on {self.steps} random steps"
            ]
        lines = [f"#   the env's reward per step is exactly {self.formula()} {checked}"]
        for name, c in self.action_cost.items():
            lines.append(f'#   where info["{name}"] = {c:.6g} * np.sum(action**2, axis=1)')
        return lines


class VersionOverride(_Model):
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    reward_params: dict[str, Any] = Field(default_factory=dict)


class Budget(_Model):
    steps: int = 1_000_000
    algo: Literal["ppo", "sac"] = "ppo"
    n_envs: int = 1


class VLMPrompts(_Model):
    """A task's VLM-RM prompts: what its goal looks like, what any frame of the env looks like, and
    how strongly to project on the difference (``rewardgen vlm train`` uses them by default)."""

    goal: list[str]
    baseline: list[str] = Field(default_factory=list)
    alpha: float = 0.0

    @model_validator(mode="after")
    def _paired(self) -> VLMPrompts:
        if self.baseline and len(self.baseline) != len(self.goal):
            raise ValueError("vlm: goal and baseline prompt lists must have equal length")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"vlm: alpha must be in [0, 1], got {self.alpha}")
        return self


class TaskSpec(_Model):
    """A task: an env, a goal sentence, named fields, a success metric, a reference reward."""

    id: str
    env_id: str
    goal: str
    fields: dict[str, FieldSpec]
    action: str
    metric: MetricSpec
    reward: str | None = None  # the reference reward program; None for tasks derived from any env
    standard: bool = False
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    reward_params: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, VersionOverride] = Field(default_factory=dict)
    budget: Budget = Field(default_factory=Budget)
    package: str | None = (
        None  # module that registers the env, e.g. metaworld (its extra: make.PACKAGE_EXTRAS)
    )
    terminate_on_success: bool | None = None  # override the env's own choice, where it has one
    vlm: VLMPrompts | None = None  # prompts for a zero-shot VLM reward of rendered frames
    env_reward_terms: RewardTerms | None = None  # the env reward's split into fields (derived tasks)
    path: Path | None = None

    @model_validator(mode="after")
    def _metric_field_exists(self) -> TaskSpec:
        if self.metric.field not in self.fields and self.metric.field != ENV_REWARD:
            raise ValueError(
                f"metric field '{self.metric.field}' is not among the task's fields (or '{ENV_REWARD}')"
            )
        return self

    @property
    def family(self) -> str:
        return self.id.split("-", 1)[0]

    @property
    def version(self) -> str:
        return env_version()

    @property
    def gym_id(self) -> str:
        """The gymnasium id: versioned (``HalfCheetah-v5``) unless ``env_id`` has a version or a
        namespace of its own (``Meta-World/MT1``)."""
        if "-v" in self.env_id or "/" in self.env_id:
            return self.env_id
        return f"{self.env_id}-{self.version}"

    def _override(self) -> VersionOverride:
        return self.versions.get(self.version, VersionOverride())

    def resolved_env_kwargs(self) -> dict[str, Any]:
        return {**self.env_kwargs, **self._override().env_kwargs}

    def resolved_fields(self) -> dict[str, FieldSpec]:
        return {**self.fields, **self._override().fields}

    def resolved_reward_params(self) -> dict[str, Any]:
        return {**self.reward_params, **self._override().reward_params}

    @property
    def reward_path(self) -> Path:
        if self.reward is None:
            raise RewardgenError(
                f"task {self.id} has no reference reward: pass a reward program (--reward FILE)"
            )
        base = self.path.parent if self.path else catalog_dir()
        return base / self.reward

    def reference_reward(self, sandbox: Any = None) -> Any:
        """The :class:`~rewardgen.rewards.RewardSpec` of the task's reference reward program
        (with this env version's parameters); ``sandbox``: :class:`SandboxLimits` to run it as
        untrusted code."""
        from rewardgen.programs.spec import ProgramSpec  # the catalog's rewards are programs

        return ProgramSpec.from_file(self.reward_path, self.resolved_reward_params(), sandbox)

    def describe(self) -> str:
        """The compact, Pythonic description of the env shown to a person or an LLM."""
        env = self.gym_id
        if "env_name" in self.resolved_env_kwargs():
            env += f" ({self.resolved_env_kwargs()['env_name']})"
        lines = [
            f"# Task {self.id} on {env}",
            f"# Goal: {self.goal}",
            "",
            "# action: " + self.action,
            "# info fields (each a numpy array, batch axis first):",
        ]
        for name, f in self.resolved_fields().items():
            unit = f" [{f.unit}]" if f.unit else ""
            lines.append(f'info["{name}"]{unit}: {f.doc}')
        lines.append(f"# success: {self.metric.describe()}")
        lines.append(f"#   measured as {self.metric.formula()}")
        if self.metric.field == ENV_REWARD:
            lines.append("#   env_reward: the env's own reward per step (your function does not receive it)")
            if self.env_reward_terms is not None:
                lines += self.env_reward_terms.describe()
        return "\n".join(lines)


def catalog_dir() -> Path:
    """The shipped ``envs/`` folder: inside the wheel (``rewardgen/_envs``) or the source tree."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_envs", here.parent / "envs"):
        if candidate.is_dir():
            return candidate
    raise RewardgenError(f"task catalog not found next to {here}: reinstall rewardgen")


FAMILY_FILE = "_family.yaml"


def _read_yaml(p: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())
        raise RewardgenError(f"cannot read task file {p}: {reason}") from exc
    if not isinstance(data, dict):
        raise RewardgenError(f"invalid task file {p}: expected a mapping of keys, got {data!r}")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_task_file(path: str | Path) -> TaskSpec:
    """Load a task YAML, on top of the ``_family.yaml`` beside it when there is one."""
    p = Path(path)
    data = _read_yaml(p)
    family = p.parent / FAMILY_FILE
    if family.is_file():
        data = _merge(_read_yaml(family), data)
    try:
        return TaskSpec(**data, path=p)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors())
        raise RewardgenError(f"invalid task file {p}: {problems}") from exc


def save_task_file(task: TaskSpec, path: str | Path) -> TaskSpec:
    """Write ``task`` as a self-contained task YAML (its reward file named relative to it) and
    return it loaded from there, so worker processes can find it by path."""
    p = Path(path)
    data = task.model_dump(mode="json", exclude={"path"}, exclude_defaults=True)
    data.setdefault("fields", {})
    if task.reward is not None:  # named so that it resolves from the new file's folder
        source = task.reward_path.resolve()
        folder = p.parent.resolve()
        data["reward"] = str(source.relative_to(folder) if source.is_relative_to(folder) else source)
    p.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return load_task_file(p)


@functools.cache
def _catalog() -> dict[str, TaskSpec]:
    tasks = [load_task_file(p) for p in sorted(catalog_dir().glob("*/[!_]*.yaml"))]
    return {t.id: t for t in tasks}


def task_ref(task: TaskSpec) -> str:
    """How a manifest (and a resumed run) names ``task``: its catalog id when it is the catalog's
    own, else the YAML file it was loaded from.

    Example:
        >>> task_ref(get_task("hopper-run"))
        'hopper-run'
    """
    try:
        return task.id if get_task(task.id) == task else str(task.path)
    except UnknownTaskError:
        return str(task.path)


def list_tasks() -> list[TaskSpec]:
    return list(_catalog().values())


def get_task(task: str | TaskSpec) -> TaskSpec:
    """A task by id (or a path to a task YAML); unknown ids list the closest ones."""
    if isinstance(task, TaskSpec):
        return task
    catalog = _catalog()
    if task in catalog:
        return catalog[task]
    if task.endswith((".yaml", ".yml")) and Path(task).is_file():
        return load_task_file(task)
    close = difflib.get_close_matches(task, list(catalog), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else "run `rewardgen tasks` to list them"
    raise UnknownTaskError(f"unknown task '{task}': {hint}")

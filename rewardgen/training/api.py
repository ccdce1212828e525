"""The one training API: :class:`TrainConfig`, :class:`TrainResult`, :func:`train`, and the
table of back ends it dispatches to.

A back end is one package (``train/sb3/``, ``train/sf/``) plus one :class:`Backend` entry in
:data:`BACKENDS`: the package defines ``train(config, out, method, hooks) -> TrainResult``,
``load_policy(run, task)`` (a :class:`~rewardgen.training.policy.Policy`) and ``check()`` (raises
when its packages are missing); the entry says what it can do. Around its learner, a back end
uses the run's shared life (:mod:`rewardgen.training.lifecycle`: ``begin_run``, a ``RunWatch`` that
logs, evaluates and stops, ``finish_run``), so a third back end copies none of it. Nothing
outside ``rewardgen.training`` tests a back end's name: callers ask the entry
(``get_backend(name).worker_processes``). The modules are imported on first use, so this table
costs nothing to import and knows no back end's dependencies.

Example:
    >>> sorted(BACKENDS)
    ['sb3', 'sf']
    >>> get_backend("sf").worker_processes, get_backend("sf").hooks
    (True, False)
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import ModuleType
from typing import Any

from rewardgen.errors import RewardgenError
from rewardgen.rewards import RewardSpec
from rewardgen.runs import EvalSummary
from rewardgen.tasks import TaskSpec, task_ref
from rewardgen.training.policy import Policy

__all__ = [
    "BACKENDS",
    "Backend",
    "TrainConfig",
    "TrainResult",
    "check_backend",
    "get_backend",
    "load_policy",
    "register_backend",
    "resolve_device",
    "train",
]


@dataclass
class TrainConfig:
    """Everything a training run needs; stored in the run's manifest (``config``).

    Attributes:
        task: A task id (``hopper-jump``), a task YAML's path, or the resolved
            :class:`~rewardgen.tasks.TaskSpec` itself (it pickles to workers).
        reward: What to train on (any :class:`~rewardgen.rewards.RewardSpec`: a program, a
            function, a VLM or ONI spec); None: the task's reference reward.
        steps: Environment steps to train; None: the task's budget (``budget.steps``).
        algo: ``"ppo"`` or ``"sac"`` (sb3), ``"appo"`` (sf); None: the task's budget.
        n_envs: Parallel environments; None: the back end's default for the algorithm.
        seed: Seeds the envs, the learner and the evaluations (``seed + 10_000``, ``+ 30_000``).
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        eval_episodes: Final evaluation episodes; at least what the task's success rule asks
            for (10 for a rule over the mean: :data:`~rewardgen.tasks.VERDICT_EPISODES`).
        video: Film the first evaluation episode (``video.mp4``).
        video_steps: The film's length in env steps.
        checkpoint_every: Steps between checkpoints; None: 10 over the run.
        hyperparams: Learner settings over the profile's (``{"learning_rate": 1e-4}``).
        profile: ``"default"`` (rewardgen's, fast on CPU) or ``"zoo"`` (rl-baselines3-zoo's).
        mode: How the reward meets the env's own: ``"replace"`` (``reward_coef * synth``) or
            ``"add"`` (``env_coef * env + reward_coef * synth``).
        env_coef: The env reward's weight with ``mode="add"``.
        reward_coef: The synthesized reward's weight.
        progress: Show a progress bar.
        resume_from: A run directory whose saved model (and normalizer) training continues.
        defer_reward: Score whole PPO rollouts at once; None: where the reward spec allows it.
        time_budget_s: Wall-clock seconds for training and evaluation; None: no limit. Past it
            the run stops, saved, and raises :class:`~rewardgen.training.OverBudgetError`.
        eval_every: Evaluate the policy every this many steps (``evals.csv``); None: only at
            the end (or every ``max(steps // 20, 10_000)`` with ``stop_on_success``).
        stop_on_success: End training at the first evaluation that meets the task's success rule.
        eval_until_decided: Periodic evaluations end as soon as the success rule's verdict is
            settled (one episode below the line, for a rule that every episode must meet); their
            means then cover the episodes finished. For a run that asks only whether it succeeds
            (a search's final seeds), not how its curve rises.
        stop_file: A search's :class:`~rewardgen.runs.StopSignal` file: training ends (saved,
            evaluated) once it exists, and records its first line as ``stopped_early``.
        verbose: sf: sample-factory's own log lines on the terminal too (else in
            ``<run>/sf_output.log``).
        backend: A name in :data:`BACKENDS`: ``"sb3"`` (SB3 PPO/SAC) or ``"sf"``
            (sample-factory APPO).
        threads: Torch threads; None: ``OMP_NUM_THREADS``, else the free cores
            (:mod:`rewardgen.training.threads`).

    Example:
        >>> TrainConfig(task="hopper-run", steps=200_000, backend="sb3").eval_episodes
        3
    """

    task: str | TaskSpec
    reward: RewardSpec | None = None
    steps: int | None = None
    algo: str | None = None
    n_envs: int | None = None
    seed: int = 0
    device: str = "auto"
    eval_episodes: int = 3
    video: bool = True
    video_steps: int = 400
    checkpoint_every: int | None = None
    hyperparams: dict[str, Any] = field(default_factory=dict)
    profile: str = "default"
    mode: str = "replace"
    env_coef: float = 1.0
    reward_coef: float = 1.0
    progress: bool = True
    resume_from: str | None = None
    defer_reward: bool | None = None
    time_budget_s: float | None = None
    eval_every: int | None = None
    stop_on_success: bool = False
    eval_until_decided: bool = False
    stop_file: str | None = None
    verbose: bool = False
    backend: str = "sb3"
    threads: int | None = None

    def record(self, reward: RewardSpec) -> dict[str, Any]:
        """The config as the manifest keeps it (JSON values): the reward as its spec describes it."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "reward"}
        if isinstance(self.task, TaskSpec):
            out["task"] = task_ref(self.task)
        return {**out, "reward": reward.describe()}


@dataclass
class TrainResult:
    """Where the run went and how its policy did (``eval.success_rate``, ``eval.episodes``...)."""

    run_dir: Path
    eval: EvalSummary
    alarm: Any = None  # the reward-hacking alarm's Verdict (rewardgen.diagnostics.alarm)


@dataclass(frozen=True)
class Backend:
    """One training back end: the module that implements it and what it can do."""

    name: str
    module: str  # defines train(config, out, method, hooks), load_policy(run, task), check()
    summary: str
    periodic_evaluation: bool = False  # TrainConfig.eval_every / stop_on_success
    dict_observations: bool = False  # NetHack's Dict observations
    worker_processes: bool = False  # rollout worker processes (hyperparams num_workers, num_envs_per_worker)
    hooks: bool = False  # runs RolloutHooks (train/hooks.py; PrefPPO refits its reward model in one)
    deferred_rewards: bool = False  # on-policy: scores a program's rewards a whole rollout at a time

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


#: The back ends by name, in the order the CLI lists them.
BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> Backend:
    """Add (or replace) a back end in :data:`BACKENDS`; returns it."""
    BACKENDS[backend.name] = backend
    return backend


register_backend(
    Backend(
        "sb3",
        "rewardgen.training.sb3",
        "stable-baselines3 PPO/SAC",
        periodic_evaluation=True,
        dict_observations=True,
        hooks=True,
        deferred_rewards=True,
    )
)
register_backend(
    Backend(
        "sf",
        "rewardgen.training.sf",
        "sample-factory APPO: asynchronous rollout workers (the sample-factory stack)",
        periodic_evaluation=True,
        dict_observations=True,
        worker_processes=True,
    )
)


def get_backend(name: str) -> Backend:
    """The entry of back end ``name``; an unknown name lists the known ones."""
    if name not in BACKENDS:
        raise RewardgenError(f"unknown back end '{name}': choose one of {', '.join(BACKENDS)}")
    return BACKENDS[name]


def check_backend(name: str) -> Backend:
    """An unknown back end, or one whose packages this stack lacks, is an error that says what to
    do (before anything else starts: an LLM call, an annotation service)."""
    backend = get_backend(name)
    backend.load().check()
    return backend


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``; anything else is checked."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RewardgenError(
            f"device '{device}' asked for, but torch sees no CUDA GPU: use --device auto or cpu"
        )
    if device.split(":")[0] not in ("cpu", "cuda", "mps"):
        raise RewardgenError(f"unknown device '{device}': use auto, cpu, cuda or cuda:N")
    return device


def train(
    config: TrainConfig, out: str | Path | None = None, method: str = "train", hooks: Sequence[Any] = ()
) -> TrainResult:
    """Train a policy on ``config.reward`` for ``config.task`` with ``config.backend`` and write a
    run directory (``out``; default ``runs/<utc>-<task>-<method>``). ``hooks``:
    :class:`~rewardgen.training.hooks.RolloutHook` s run after each rollout (PrefPPO's refits its
    reward model), whatever the back end.

    Example:
        >>> result = train(TrainConfig(task="halfcheetah-run", steps=2048))  # doctest: +SKIP
        >>> result.eval.success_rate  # doctest: +SKIP
    """
    backend = check_backend(config.backend)
    periodic = (("--eval-every", config.eval_every), ("--until-success", config.stop_on_success))
    asked = [name for name, value in periodic if value]
    if asked and not backend.periodic_evaluation:
        raise RewardgenError(
            f"the {backend.name} back end does not do {', '.join(asked)} yet: use --backend "
            + " or ".join(b.name for b in BACKENDS.values() if b.periodic_evaluation)
        )
    if hooks and not backend.hooks:
        raise RewardgenError(f"the {backend.name} back end runs no rollout hooks (PrefPPO's): use sb3")
    from rewardgen.runs import ended_if_it_fails

    with ended_if_it_fails():  # a run that fails at start (a missing extra) says so, never "running"
        return backend.load().train(config, out=out, method=method, hooks=hooks)


def load_policy(run_dir: str | Path, task: Any) -> Policy:
    """The trained policy of the run at ``run_dir`` (a :class:`~rewardgen.training.policy.Policy`),
    loaded by the back end that trained it (its manifest says which)."""
    from rewardgen.runs import RunDir

    run = RunDir.open(run_dir)
    return get_backend(run.manifest.get("backend") or "sb3").load().load_policy(run, task)

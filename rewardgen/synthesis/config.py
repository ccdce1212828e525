"""What a reward search does: its configuration, stored in the run manifest and read back to
resume or refine it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rewardgen.diagnostics.check import MAX_REWARD_COST
from rewardgen.errors import RewardgenError
from rewardgen.methods import METHODS as METHOD_INFO
from rewardgen.methods import SEARCH_METHODS
from rewardgen.programs import SandboxLimits
from rewardgen.runs import RunDir
from rewardgen.tasks import TaskSpec, task_ref

__all__ = ["METHODS", "SearchConfig", "candidate_budget"]

#: The search methods (the method table, :data:`rewardgen.methods.METHODS`, says what each is).
METHODS = SEARCH_METHODS


def candidate_budget(steps: int) -> float:
    """The default wall-clock budget of a candidate: 2 minutes plus 20 ms per step, i.e. it may
    train at 50 steps/s, several times slower than PPO on 2 CPU cores, before it is stopped.

    Example:
        >>> candidate_budget(200_000)
        4120.0
    """
    return 120.0 + 0.02 * steps


@dataclass
class SearchConfig:
    """What a reward search does; stored in the run's manifest (``config``), read back by
    ``--resume`` and ``rewardgen refine`` (:meth:`from_run`).

    Attributes:
        task: A task id, a task YAML's path, or the resolved :class:`~rewardgen.tasks.TaskSpec`
            (the manifest keeps its reference).
        method: ``"text2reward"`` (one round), ``"evolution"`` (Eureka) or ``"icpl"``
            (preference rounds).
        judge: ICPL's judge: ``"web"``, ``"terminal"`` or ``"synthetic[:by=,noise=,taste=]"``;
            several (a tuple) sit as a room of raters.
        follow: with a room of raters, ICPL's next prompts follow the ``"room"`` (one lineage,
            from the room's vote) or ``"each"`` rater (a lineage per rater, a reward per taste).
        regenerate: ICPL: how many times a round asks again for rewards to replace refused or
            failed ones.
        samples: K, the rewards the LLM writes per round.
        iterations: Rounds.
        steps: Training steps per candidate.
        goal: The goal in words; None: the task's.
        seed: Seeds the LLM's sampling (where the endpoint takes one) and training.
        temperature: The LLM's sampling temperature.
        eval_episodes: Final evaluation episodes per candidate (at least the task's rule asks).
        hyperparams: Learner settings over the profile's.
        profile: Training hyperparameters: rewardgen's (``"default"``) or the zoo's (``"zoo"``).
        sandbox: The reward programs' sandbox limits (:class:`~rewardgen.programs.SandboxLimits`).
        smoke_steps: Random-rollout steps a program must run before it trains.
        workers: Candidates trained at once, each in its own process.
        few_shot: Text2Reward few-shot: k reference rewards of the closest goals in the prompt.
        retrieval: How those are found: ``"minilm"`` (the ``embed`` extra), ``"tfidf"`` or
            ``"auto"``.
        final_seeds: Retrain the best reward with this many more seeds (each until success or
            1.5 times the steps the best needed) and report how many succeed.
        early_stop: Successive halving: train all for a fraction of the steps, continue the
            better half.
        halving_tolerance: Drop only candidates worse than the cutoff by more than this share
            of the success threshold.
        videos: Film this many best policies for report.html.
        backend: Candidates train with stable-baselines3 (``"sb3"``) or sample-factory
            (``"sf"``).
        executor: Where candidates train: ``"local"`` (a process pool) or ``"ray"``.
        ray_address: A running Ray cluster; None: a local Ray instance.
        gpus_per_candidate: Ray's GPU request per candidate (fractions share a GPU).
        max_reward_cost: A reward may cost this many times the env's own step per transition
            (measured by the smoke test, at least 1 ms allowed) before it is refused as too slow.
        candidate_budget_s: Wall-clock seconds a candidate may spend training and evaluating
            (and filming); None: :func:`candidate_budget` of its steps, so that a reward slow
            only later cannot stall the search.
        time_budget_s: The search's wall-clock seconds (None: no limit): rounds and steps are
            planned to fit, the clock continues what is still learning, candidates in training
            stop when it is spent, and everything so far is kept.
        until_success: End the search at the first candidate whose policy succeeds.
        eval_every: Candidates' periodic evaluations every this many steps (None: ``steps //
            10``, at least 10,000; 0: none); a candidate stops at the first that meets the
            task's success rule.

    Example:
        >>> SearchConfig("hopper-jump", samples=2, time_budget_s=300).iterations
        3
    """

    task: str | TaskSpec
    method: str = "evolution"
    judge: str | tuple[str, ...] = "synthetic"
    follow: str = "room"
    regenerate: int = 2
    samples: int = 4
    iterations: int = 3
    steps: int = 200_000
    goal: str | None = None
    seed: int = 0
    temperature: float = 1.0
    eval_episodes: int = 3
    hyperparams: dict[str, Any] = field(default_factory=dict)
    profile: str = "default"
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)
    smoke_steps: int = 20
    workers: int = 1
    few_shot: int = 0
    retrieval: str = "auto"
    final_seeds: int = 0
    early_stop: bool = False
    halving_tolerance: float = 0.02
    videos: int = 3
    backend: str = "sb3"
    executor: str = "local"
    ray_address: str | None = None
    gpus_per_candidate: float = 0
    max_reward_cost: float = MAX_REWARD_COST
    candidate_budget_s: float | None = None
    time_budget_s: float | None = None
    until_success: bool = False
    eval_every: int | None = None

    def candidate_eval_every(self, steps: int) -> int:
        """How often a candidate trained for ``steps`` steps is evaluated (0: never).

        Example:
            >>> SearchConfig("hopper-run").candidate_eval_every(200_000)
            20000
        """
        if self.eval_every is not None:
            return max(0, int(self.eval_every))
        return max(steps // 10, 10_000)

    @staticmethod
    def default_samples(method: str) -> int:
        """K, the candidates per round: 6 for ICPL (its paper's), else 4.

        Example:
            >>> SearchConfig.default_samples("icpl"), SearchConfig.default_iterations("icpl")
            (6, 5)
        """
        return METHOD_INFO[method].samples if method in METHOD_INFO else 4

    @staticmethod
    def default_iterations(method: str) -> int:
        """Rounds: 5 for ICPL (its paper's), else 3 (text2reward runs one whatever it is given)."""
        return METHOD_INFO[method].iterations if method in METHOD_INFO else 3

    def record(self) -> dict[str, Any]:
        """The config as the manifest keeps it (JSON values; the task by its id or YAML path), what
        ``--resume`` and ``rewardgen refine`` read back with :meth:`from_run`."""
        out = asdict(self)
        if isinstance(self.task, TaskSpec):
            out["task"] = task_ref(self.task)
        return out

    def candidate_budget_for(self, steps: int) -> float:
        """The wall-clock budget of a candidate trained for ``steps`` steps."""
        return self.candidate_budget_s if self.candidate_budget_s is not None else candidate_budget(steps)

    @classmethod
    def from_run(cls, run: Path) -> SearchConfig:
        """The configuration a search stored in ``run/manifest.json``."""
        if not (Path(run) / RunDir.MANIFEST).is_file():
            raise RewardgenError(f"{run} is not a search run directory: it has no manifest.json")
        saved = dict(RunDir.read_manifest(run).get("config") or {})
        if "task" not in saved:
            raise RewardgenError(
                f"{Path(run) / RunDir.MANIFEST} holds no search configuration "
                "(was it made by `rewardgen synthesize`?)"
            )
        if isinstance(saved.get("judge"), list):  # a room of judges, as JSON keeps it
            saved["judge"] = tuple(saved["judge"])
        if saved.get("sandbox") is not None:
            saved["sandbox"] = SandboxLimits(**saved["sandbox"])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in saved.items() if k in known})

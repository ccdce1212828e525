"""What a benchmark runs: tasks x methods x seeds, the two baselines of each task, and the plan.

A *cell* is one (task, method, seed): a reward search run as a user would (``synthesize``), a
reward made without a search and trained once (``oni``: an LLM labels NetHack messages while the
agent trains; ``vlm``: a CLIP model scores rendered frames), or a baseline trained the same way:
the task's ``reference`` reward (the human reward of Eureka's tables), a ``sparse`` one that pays
1 on the steps where the success condition holds (Eureka's floor), or ``extrinsic``: the env's
own reward (ONI's baseline). Every cell has its own run directory under
``<bench>/cells/<task>/<method>/seed<k>``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rewardgen.errors import RewardgenError
from rewardgen.methods import DIRECT_METHODS, get_method_info
from rewardgen.synthesis.config import METHODS, SearchConfig
from rewardgen.tasks import ENV_REWARD, TaskSpec, get_task, list_tasks

__all__ = [
    "BASELINES",
    "DIRECT_METHODS",
    "SUITES",
    "BenchConfig",
    "Cell",
    "extrinsic_program",
    "oni_goal",
    "sparse_program",
    "suite_tasks",
    "task_name",
]

BASELINES = ("reference", "sparse", "extrinsic")

#: Named task suites: the folder of the catalog their tasks come from, the methods and baselines
#: they run unless told otherwise, and what to say of them.
SUITES: dict[str, dict[str, Any]] = {
    "locomotion": {
        "families": ("halfcheetah", "hopper", "walker2d", "ant", "humanoid"),
        "methods": ("text2reward", "evolution"),
        "baselines": ("reference", "sparse"),
        "note": "MuJoCo",
    },
    "metaworld": {
        "families": ("metaworld",),
        "methods": ("text2reward", "evolution"),
        "baselines": ("reference", "sparse"),
        "note": "Meta-World manipulation (the current stack)",
    },
    "nethack": {
        "families": ("nethack",),
        "methods": ("oni",),
        "baselines": ("extrinsic", "reference", "sparse"),
        "note": "NetHack: ONI against the env's own reward (the nethack extra)",
    },
    "vlm": {
        "families": ("humanoid_vlm",),
        "methods": ("vlm",),
        "baselines": ("reference", "sparse"),
        "note": "humanoid poses scored by a CLIP model: every frame rendered and scored, slow on CPU "
        "(see README's VLM frames/s); use --device cuda where there is a GPU",
    },
}

#: ONI's goal for a NetHack task (what a helpful message is evidence of); others: "default".
ONI_GOALS = {"nethack-gold": "gold", "nethack-staircase": "stairs", "nethack-oracle": "stairs"}


def task_name(task: str) -> str:
    """A task as a file name: its id, or a task file's stem.

    Example:
        >>> task_name("hopper-run"), task_name("tasks/my-hopper.yaml")
        ('hopper-run', 'my-hopper')
    """
    return Path(task).stem if task.endswith((".yaml", ".yml")) else task


def oni_goal(task: TaskSpec) -> str:
    """ONI's labelling goal for ``task``.

    Example:
        >>> oni_goal(get_task("nethack-staircase")), oni_goal(get_task("nethack-score"))
        ('stairs', 'default')
    """
    return ONI_GOALS.get(task.id, "default")


def suite_tasks(name: str) -> list[str]:
    """The task ids of suite ``name``.

    Example:
        >>> "halfcheetah-run" in suite_tasks("locomotion")
        True
    """
    if name not in SUITES:
        raise RewardgenError(
            f"unknown suite '{name}': choose one of {', '.join(SUITES)} (or list tasks with --tasks)"
        )
    families = SUITES[name]["families"]
    return [t.id for t in list_tasks() if t.path is not None and t.path.parent.name in families]


@dataclass(frozen=True)
class Cell:
    """One run of the benchmark: a search (``method`` in METHODS) or a baseline."""

    task: str
    method: str
    seed: int

    @property
    def baseline(self) -> bool:
        return self.method in BASELINES

    @property
    def search(self) -> bool:
        """A reward search (``synthesize``); the others train one policy on one reward."""
        return self.method in METHODS

    def folder(self, root: Path) -> Path:
        return Path(root) / "cells" / task_name(self.task) / self.method / f"seed{self.seed}"

    @property
    def label(self) -> str:
        return f"{self.task}/{self.method}/seed{self.seed}"


@dataclass
class BenchConfig:
    """What ``rewardgen bench`` runs; stored in ``bench.json`` and read back to resume.

    Example:
        >>> cfg = BenchConfig(tasks=["hopper-run"], methods=["evolution"], seeds=2)
        >>> [c.label for c in cfg.cells()]  # doctest: +NORMALIZE_WHITESPACE
        ['hopper-run/reference/seed0', 'hopper-run/sparse/seed0', 'hopper-run/reference/seed1',
         'hopper-run/sparse/seed1', 'hopper-run/evolution/seed0', 'hopper-run/evolution/seed1']
    """

    tasks: list[str]
    methods: list[str]
    seeds: int = 1
    steps: int = 200_000
    samples: int | None = None  # candidates per round; None: each method's default
    iterations: int | None = None  # rounds; None: each method's default
    judge: str = "synthetic"  # ICPL's judge in a benchmark: a proxy, no person
    baselines: list[str] = field(default_factory=lambda: ["reference", "sparse"])
    eval_episodes: int = 3
    workers: int = 1  # candidates (and baselines) trained at once
    parallel_cells: int = 1  # searches run at once, sharing the executor's workers (the pool, Ray)
    executor: str = "local"
    ray_address: str | None = None
    time_budget_s: float | None = None  # each search cell's --time-budget
    until_success: bool = False  # each search stops at its first success
    few_shot: int = 0
    hyperparams: dict[str, Any] = field(default_factory=dict)
    profile: str = "default"
    backend: str = "sb3"
    suite: str | None = None
    n_envs: int | None = None  # envs of the policies trained once (baselines, oni, vlm); None: the task's
    vlm_model: str = "openai/clip-vit-base-patch32"  # vlm cells: hub name, local folder or open_clip:...
    device: str = "auto"  # vlm cells' scoring and every policy's training
    oni_reward: str = "retrieval"  # oni cells' reward model: retrieval, classification or ranking

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS and m not in DIRECT_METHODS]
        if unknown:
            raise RewardgenError(
                f"unknown method {', '.join(unknown)}: choose among {', '.join([*METHODS, *DIRECT_METHODS])}"
            )
        wrong = [b for b in self.baselines if b not in BASELINES]
        if wrong:
            raise RewardgenError(f"unknown baseline {', '.join(wrong)}: choose among {', '.join(BASELINES)}")
        if not self.tasks or not self.methods:
            raise RewardgenError("a benchmark needs at least one task (--tasks or --suite) and one method")
        if "oni" in self.methods:
            from rewardgen.oni.reward import REWARD_MODELS

            if self.oni_reward not in REWARD_MODELS:
                raise RewardgenError(
                    f"unknown ONI reward model '{self.oni_reward}': choose one of {', '.join(REWARD_MODELS)}"
                )
        if self.parallel_cells < 1:
            raise RewardgenError(f"--parallel-cells must be at least 1, got {self.parallel_cells}")
        if self.seeds < 1:
            raise RewardgenError(f"--seeds must be at least 1, got {self.seeds}")
        for t in self.tasks:
            task = get_task(t)  # an unknown task is said before anything runs
            if "oni" in self.methods and "message" not in task.fields:
                raise RewardgenError(
                    f"method oni needs a NetHack task with a message field; {task.id} has none "
                    "(try --suite nethack)"
                )
            if "vlm" in self.methods and task.vlm is None:
                raise RewardgenError(
                    f"method vlm needs a task with VLM prompts (a `vlm:` entry); {task.id} has none "
                    "(try --suite vlm, or `rewardgen vlm train --prompt ...` for one task)"
                )

    def cells(self) -> list[Cell]:
        """Baselines first (they train without an LLM), then the searches, task by task."""
        base = [Cell(t, b, s) for t in self.tasks for s in range(self.seeds) for b in self.baselines]
        return base + [Cell(t, m, s) for t in self.tasks for m in self.methods for s in range(self.seeds)]

    def search_config(self, cell: Cell, task: TaskSpec) -> SearchConfig:
        """How a search cell runs: the method's defaults, this benchmark's steps and seed."""
        return SearchConfig(
            task=task,
            method=cell.method,
            judge=self.judge,
            samples=self.samples or SearchConfig.default_samples(cell.method),
            iterations=self.iterations or SearchConfig.default_iterations(cell.method),
            steps=self.steps,
            seed=cell.seed,
            eval_episodes=self.eval_episodes,
            workers=self.workers,
            executor=self.executor,
            ray_address=self.ray_address,
            few_shot=self.few_shot,
            hyperparams=dict(self.hyperparams),
            profile=self.profile,
            backend=self.backend,
            final_seeds=0,  # the benchmark's seeds are its own cells
            videos=1,
            time_budget_s=self.time_budget_s,
            until_success=self.until_success,
        )

    def expected_calls(self, method: str) -> int:
        """LLM requests a search cell makes when nothing fails: one per round, plus ICPL's
        summary of each round after the first (an ONI cell's depend on the messages it sees)."""
        if method in DIRECT_METHODS:
            return 0
        info = get_method_info(method)
        rounds = 1 if info.one_round else self.iterations or SearchConfig.default_iterations(method)
        return rounds + (rounds - 1 if info.judged else 0)

    def record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> BenchConfig:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def extrinsic_program(task: TaskSpec) -> str:
    """The extrinsic baseline's program: nothing beside the env's own reward (trained with
    ``mode="add"``, so the policy learns from the env's reward alone).

    Example:
        >>> "np.zeros" in extrinsic_program(get_task("nethack-score"))
        True
    """
    return (
        f'"""Extrinsic baseline for {task.id}: the env\'s own reward, nothing added."""\n\n'
        "import numpy as np\n\n\n"
        "def compute_reward(obs, action, next_obs, info):\n"
        "    zero = np.zeros(len(action))\n"
        '    return zero, {"added": zero}\n'
    )


def sparse_program(task: TaskSpec) -> str:
    """The sparse baseline's reward program: 1 on the steps where the success condition holds
    (the metric's field against its threshold, Eureka's success-only reward); for a metric summed
    over the episode or measured on the env's own return, no step says success: a zero reward
    (the untrained floor).

    Example:
        >>> print(sparse_program(get_task("halfcheetah-run")).splitlines()[-2])
            success = (info["x_velocity"] > 3.0).astype(np.float64)
    """
    m = task.metric
    head = f'"""Sparse baseline for {task.id}: {m.describe()}."""\n\nimport numpy as np\n\n\n'
    if m.field == ENV_REWARD or m.reduce == "sum" or (m.above is None and m.below is None):
        return (
            head + "def compute_reward(obs, action, next_obs, info):\n"
            "    # no step says success for this metric: the untrained floor\n"
            "    zero = np.zeros(len(action))\n"
            '    return zero, {"success": zero}\n'
        )
    op, threshold = (">", m.above) if m.above is not None else ("<", m.below)
    return (
        head + "def compute_reward(obs, action, next_obs, info):\n"
        f'    success = (info["{m.field}"] {op} {threshold!r}).astype(np.float64)\n'
        '    return success, {"success": success}\n'
    )

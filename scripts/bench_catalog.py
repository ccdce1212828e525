#!/usr/bin/env python
"""Where the catalog stands: how long each task's reference reward takes to meet the task's
success rule on this machine (rewardgen's default PPO, or SAC where the task's budget names it),
capped per task.

Every run trains until its first periodic evaluation meets the rule (the same rule and episodes
as the final evaluation: :meth:`rewardgen.tasks.MetricSpec.succeeds`) or the cap. A row per task:
the steps and training seconds to success, or, where the cap came first, the steps reached, the
best evaluation against the line and the steps that the last evaluations' slope projects to the
line (``rewardgen.synthesis.continuation.slope``; "not rising" when it does not). Meta-World tasks
get a row with PPO (their default: 16 envs) and one with SAC (one env), so the table
says which is sooner here; Reacher-v5 comes through ``--env`` (the env's own reward as a program:
``reward_dist + reward_ctrl``) against gymnasium's threshold on the mean return.

    python scripts/bench_catalog.py                                  # locomotion, classic, reacher
    python scripts/bench_catalog.py --families metaworld --cap-minutes 10
    python scripts/bench_catalog.py --families metaworld --algo ppo --cap-minutes 3
    python scripts/bench_catalog.py --tasks hopper-run,cartpole-balance --cap-minutes 5

Thresholds mean the behaviour: the script never lowers one to fit the clock. Evaluation time is
not counted in the seconds. The table is Markdown, the rows also go to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

from rewardgen.programs import ProgramSpec
from rewardgen.runs import package_versions
from rewardgen.tasks import TaskSpec, derive_task, get_task, list_tasks
from rewardgen.training import OverBudgetError, TrainConfig, train
from rewardgen.training.periodic import read_evals

FAMILIES = {
    "locomotion": ("ant", "halfcheetah", "hopper", "humanoid", "walker2d"),
    "classic": ("classic",),
    "metaworld": ("metaworld",),
    "reacher": (),
}
DEFAULT_FAMILIES = ("locomotion", "classic", "reacher")
REACHER_REWARD = '''def compute_reward(obs, action, next_obs, info):
    """Reacher-v5's own reward: minus the fingertip's distance to the target, minus sum(action**2)."""
    return info["reward_dist"] + info["reward_ctrl"], {
        "distance": info["reward_dist"], "torque": info["reward_ctrl"],
    }
'''


@dataclass
class Row:
    task: str
    algo: str
    steps: int  # at success, or where the cap stopped it
    train_s: float  # training seconds to success or to the cap (evaluations not counted)
    succeeded: bool
    best: float | None  # the best evaluation's success metric (mean over its episodes)
    line: float | None
    needs: str  # where the cap came first: the steps the slope projects, or why none


def family(task: TaskSpec) -> str:
    folder = task.path.parent.name if task.path is not None else ""
    return next((name for name, folders in FAMILIES.items() if folder in folders), folder)


def reacher_task(tmp: Path) -> tuple[TaskSpec, ProgramSpec]:
    notes = Path(__file__).resolve().parent.parent / "examples" / "reacher_notes.yaml"
    import yaml

    note = yaml.safe_load(notes.read_text()) if notes.is_file() else {}
    task = derive_task("Reacher-v5", "Touch the red target with the arm's fingertip", note)
    program = tmp / "reacher_env_reward.py"
    program.write_text(REACHER_REWARD)
    return task, ProgramSpec.from_file(program)


def projection(task: TaskSpec, rows: list[dict[str, float]]) -> str:
    """The steps more that the last evaluations' slope projects to the line, in words."""
    from rewardgen.synthesis.continuation import slope

    if task.metric.line is None:
        return "no success line"
    rate = slope(task, [r["timesteps"] for r in rows], [r["success_metric_mean"] for r in rows])
    if rate is None:
        return f"{len(rows)} evaluations: too few for a slope"
    last = rows[-1]
    gap = task.metric.score(task.metric.line) - task.metric.score(last["success_metric_mean"])
    if gap <= 0:  # the mean is over the line, but the rule asks every episode (or a share) to be
        return f"mean over the line, {last['success_rate']:.0%} of the episodes over it (all must be)"
    if rate <= 0:
        return "not rising at the cap"
    return f"~{int(last['timesteps'] + gap / rate):,} steps by its slope"


def run_one(task: TaskSpec, reward, algo: str | None, cap_s: float, seed: int, out: Path) -> Row:
    algo = algo or task.budget.algo
    every = 5_000 if algo == "sac" else 20_000
    config = TrainConfig(
        task=task, reward=reward, steps=100_000_000, algo=algo, seed=seed, video=False, progress=False,
        eval_every=every, stop_on_success=True, time_budget_s=cap_s,
    )  # fmt: skip
    try:
        train(config, out=out)
    except OverBudgetError:
        pass  # the cap: what was evaluated so far is the row
    rows = read_evals(out / "evals.csv")
    hit = next((r for r in rows if r.get("succeeded")), None)
    last = hit or (rows[-1] if rows else {"timesteps": 0, "wall_time_s": 0.0, "eval_time_s": 0.0})
    values = [r["success_metric_mean"] for r in rows]
    best = max(values, key=task.metric.score) if values else None
    return Row(
        task=task.id,
        algo=algo,
        steps=int(last["timesteps"]),
        train_s=round(last["wall_time_s"] - last["eval_time_s"], 1),
        succeeded=hit is not None,
        best=best,
        line=task.metric.line,
        needs="" if hit is not None else projection(task, rows),
    )


def markdown(rows: list[Row], cap_min: float) -> str:
    out = [
        "| task | algorithm | success | steps | training time | best evaluation (line) "
        f"| needs (cap {cap_min:g} min) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        best = (
            "–" if r.best is None else f"{r.best:.4g} ({r.line:g})" if r.line is not None else f"{r.best:.4g}"
        )
        out.append(
            f"| {r.task} | {r.algo} | {'yes' if r.succeeded else 'no'} | {r.steps:,} | {r.train_s:.0f} s | "
            f"{best} | {r.needs or '–'} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--families", default=",".join(DEFAULT_FAMILIES), help=f"of {', '.join(FAMILIES)}")
    parser.add_argument(
        "--tasks", default=None, help="task ids (reacher for Reacher-v5), instead of families"
    )
    parser.add_argument(
        "--algo", choices=("both", "ppo", "sac"), default="both",
        help="Meta-World's rows: SAC and PPO (their default), or one of them",
    )  # fmt: skip
    parser.add_argument("--cap-minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-catalog.json"))
    args = parser.parse_args()
    if not math.isfinite(args.cap_minutes) or args.cap_minutes <= 0:
        parser.error(f"--cap-minutes {args.cap_minutes}: give a positive number of minutes")
    unknown = set(args.families.split(",")) - set(FAMILIES)
    if unknown and args.tasks is None:
        parser.error(f"unknown families {sorted(unknown)}: choose from {', '.join(FAMILIES)}")
    if args.tasks:
        names = args.tasks.split(",")
        wanted = [get_task(n) for n in names if n != "reacher"]
        reacher = "reacher" in names
    else:
        families = args.families.split(",")
        wanted = [t for t in list_tasks() if family(t) in families]
        reacher = "reacher" in families
    v = package_versions()
    print(
        f"{os.cpu_count()} CPU cores; cap {args.cap_minutes:g} min a run; "
        + ", ".join(f"{k} {v.get(k)}" for k in ("mujoco", "gymnasium", "torch", "stable-baselines3")),
        flush=True,
    )
    cap_s = args.cap_minutes * 60
    results: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        jobs: list[tuple[TaskSpec, object, str | None]] = []
        for task in wanted:
            algos = [None]  # the task's own
            if family(task) == "metaworld":
                algos = {"both": ["ppo", "sac"], "ppo": ["ppo"], "sac": ["sac"]}[args.algo]
            jobs += [(task, task.reference_reward(), algo) for algo in algos]
        if reacher:
            jobs.append((*reacher_task(Path(tmp)), None))
        for k, (task, reward, algo) in enumerate(jobs):
            row = run_one(task, reward, algo, cap_s, args.seed, Path(tmp) / f"run{k}")
            results.append(row)
            print(
                f"{row.task} ({row.algo}): "
                + (f"success at {row.steps:,} steps, {row.train_s:.0f} s" if row.succeeded else
                   f"no success in {row.train_s:.0f} s ({row.steps:,} steps); needs {row.needs}"),
                flush=True,
            )  # fmt: skip
    print()
    print(markdown(results, args.cap_minutes))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([r.__dict__ for r in results], indent=2))


if __name__ == "__main__":
    main()

"""``rewardgen train``, ``demo``, ``tasks``, ``methods`` and ``check``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rewardgen.cli import app, console, parse_steps
from rewardgen.cli.common import EvalEpisodes, HpOverrides, Hyperparams, _report, train_config
from rewardgen.errors import RewardgenError
from rewardgen.runs import RunDir

DEMO_TASK = "halfcheetah-run"
DEMO_STEPS = 1_000_000  # a cap: the demo stops at the first successful evaluation (~400k steps)
DEMO_EVAL_EVERY = 25_000


RewardFormat = Annotated[
    str,
    typer.Option(help="rewardgen (compute_reward) or text2reward (compute_dense_reward(self, action, obs))"),
]


def program_spec(task: str, reward: Path | None, sandbox: bool, origin: dict | None = None):
    """The reward spec of ``--reward FILE`` (default: the task's reference program), sandboxed
    with the default limits when ``sandbox``."""
    from rewardgen.programs import ProgramSpec, SandboxLimits
    from rewardgen.tasks import get_task

    limits = SandboxLimits() if sandbox else None
    if reward is None:
        return get_task(task).reference_reward(limits)
    return ProgramSpec.from_file(reward, sandbox=limits, origin=origin)


def _reward_format(
    reward_format: str, task: str, reward: Path | None, sandbox: bool, out: Path | None, method: str
) -> tuple[str, Path | None, bool, dict | None]:
    """(task, reward, sandbox, origin) to run: a Text2Reward file becomes a task YAML with its
    state fields plus a sandboxed program, written into the run directory (``text2reward/``);
    ``origin`` (the original file and its hash) goes to the manifest."""
    if reward_format == "rewardgen":
        return task, reward, sandbox, None
    if reward_format != "text2reward":
        raise RewardgenError(f"unknown --reward-format '{reward_format}': use rewardgen or text2reward")
    from rewardgen.interop import import_text2reward
    from rewardgen.tasks import get_task

    if reward is None:
        raise RewardgenError("--reward-format text2reward needs --reward FILE (a compute_dense_reward file)")
    folder = RunDir.reserve(get_task(task).id, method, out) / "text2reward"
    imp = import_text2reward(reward, task, out=folder)
    console.print(
        f"text2reward: {len(imp.fields)} self.env reads became state fields; sandboxed ({folder}). "
        f"{imp.origin['note']}.",
        highlight=False,
        soft_wrap=True,
    )
    return str(imp.task.path), imp.reward, True, imp.origin


@app.command()
def train(
    task: Annotated[str, typer.Option(help="task id (see `rewardgen tasks`) or a task YAML file")],
    reward: Annotated[
        Path | None, typer.Option(help="reward program (.py); default: the task's reference")
    ] = None,
    steps: Annotated[
        str | None, typer.Option(help="training steps, e.g. 1e6; default: the task's budget")
    ] = None,
    algo: Annotated[str | None, typer.Option(help="ppo or sac; default: the task's")] = None,
    n_envs: Annotated[int | None, typer.Option(help="parallel envs")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda, cuda:N")] = "auto",
    out: Annotated[Path | None, typer.Option(help="run directory; default runs/<utc>-<task>-train")] = None,
    mode: Annotated[str, typer.Option(help="replace the env reward, or add to it")] = "replace",
    video: Annotated[bool, typer.Option(help="record an MP4 of the final policy")] = True,
    eval_episodes: EvalEpisodes = 3,
    hyperparams: Hyperparams = "default",
    hp: HpOverrides = None,
    until_success: Annotated[
        bool, typer.Option(help="stop at the first periodic evaluation that meets the success metric")
    ] = False,
    eval_every: Annotated[
        int | None, typer.Option(help="evaluate the policy every N steps (evals.csv)")
    ] = None,
    reward_format: RewardFormat = "rewardgen",
    sandbox: Annotated[bool, typer.Option(help="run the reward as untrusted code in a sandbox")] = False,
    backend: Annotated[
        str,
        typer.Option(
            help="sb3 (stable-baselines3 PPO/SAC) or sf (sample-factory APPO: asynchronous rollout "
            "workers; needs the sample-factory stack)"
        ),
    ] = "sb3",
    num_workers: Annotated[
        int | None, typer.Option(help="sf: rollout worker processes; default: one per CPU core")
    ] = None,
    num_envs_per_worker: Annotated[
        int | None, typer.Option(help="sf: envs each rollout worker steps (even); default 4")
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(help="continue this run directory's training (after a kill, or for more --steps)"),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(help="torch threads; default: OMP_NUM_THREADS, else the cores free now (at most 4)"),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="sf: sample-factory's own log lines here too (else <run>/sf_output.log)",
        ),
    ] = False,
) -> None:
    """Train an agent on a reward program and evaluate it on the task's success metric."""
    from rewardgen.training import train as run_train

    task, reward, sandbox, origin = _reward_format(reward_format, task, reward, sandbox, out, "train")
    config = train_config(
        task=task,
        reward=program_spec(task, reward, sandbox, origin),
        steps=steps,
        algo=algo,
        n_envs=n_envs,
        seed=seed,
        device=device,
        video=video,
        eval_episodes=eval_episodes,
        mode=mode,
        hyperparams=hyperparams,
        hp=hp,
        eval_every=eval_every,
        until_success=until_success,
        backend=backend,
        resume=resume,
        threads=threads,
        verbose=verbose,
    )
    from rewardgen.training import BACKENDS, get_backend

    if (num_workers or num_envs_per_worker) and not get_backend(backend).worker_processes:
        with_workers = " or ".join(b.name for b in BACKENDS.values() if b.worker_processes)
        raise RewardgenError(
            f"--num-workers and --num-envs-per-worker set rollout worker processes, which the {backend} "
            f"back end does not have: add --backend {with_workers}"
        )
    if num_workers:
        config.hyperparams["num_workers"] = num_workers
    if num_envs_per_worker:
        config.hyperparams["num_envs_per_worker"] = num_envs_per_worker
    _report(run_train(config, out=out or resume))


@app.command()
def demo(
    steps: Annotated[str, typer.Option(help="most training steps, if success comes later")] = str(DEMO_STEPS),
    out: Annotated[Path | None, typer.Option(help="run directory")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda")] = "auto",
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """Train HalfCheetah with PPO on its bundled reference reward until it runs at 3 m/s."""
    from rewardgen.runs import package_versions
    from rewardgen.training import train as run_train

    n = parse_steps(steps)
    console.print(
        f"[bold]rewardgen demo[/bold]: PPO on {DEMO_TASK} with its reference reward, until the policy "
        f"meets the task's success metric (at most {n:,} steps)",
        soft_wrap=True,
    )
    v = package_versions()
    names = ("mujoco", "gymnasium", "numpy", "torch", "stable-baselines3")
    console.print("versions: " + ", ".join(f"{k} {v.get(k)}" for k in names), highlight=False, soft_wrap=True)
    config = train_config(
        task=DEMO_TASK,
        steps=n,
        algo="ppo",
        seed=seed,
        device=device,
        eval_episodes=2,
        eval_every=DEMO_EVAL_EVERY,
        until_success=True,
    )
    result = run_train(config, out=out, method="demo")
    if _report(result) is None:
        console.print(f"[yellow]not yet successful[/yellow] after {n:,} steps: try --steps {2 * n:.0e}")


@app.command()
def tasks(
    show: Annotated[str | None, typer.Option(help="print one task's full description")] = None,
    env: Annotated[str | None, typer.Option(help="describe any gymnasium env id as a task")] = None,
    notes: Annotated[Path | None, typer.Option(help="field notes (YAML) for --env")] = None,
) -> None:
    """List the task catalog, show one task's description, or derive one for any env."""
    from rewardgen.tasks import derive_task, get_task, list_tasks

    if env:
        console.print(derive_task(env, "(your goal)", notes).describe(), markup=False, highlight=False)
        return
    if show:
        console.print(get_task(show).describe(), markup=False, highlight=False)
        return
    rows = [(t.id, t.gym_id, t.goal, t.metric.describe(), "yes" if t.standard else "") for t in list_tasks()]
    if not console.is_terminal:  # piped: one task a line, tab-separated, nothing cut (grep, cut, awk)
        for row in rows:
            print("\t".join(row))
        return
    table = Table(title="rewardgen tasks")
    for col in ("id", "env", "goal", "success", "standard"):
        # an id is never cut: the other columns fold to make room
        table.add_column(
            col, no_wrap=col == "id", min_width=max(len(r[0]) for r in rows) if col == "id" else None
        )
    for row in rows:
        table.add_row(*row)
    console.print(table)


@app.command()
def methods() -> None:
    """List the methods: what each does, what it needs, the command that runs it."""
    from rewardgen.methods import METHODS

    rows = [(m.name, m.family, m.summary, ", ".join(m.needs), m.command) for m in METHODS.values()]
    if not console.is_terminal:  # piped: one method a line, tab-separated
        for row in rows:
            print("\t".join(row))
        return
    table = Table(title="rewardgen methods")
    for col in ("method", "family", "what it does", "needs", "command"):
        table.add_column(col, no_wrap=col in ("method", "command"))
    for row in rows:
        table.add_row(*row)
    console.print(table)


@app.command()
def check(
    task: Annotated[str | None, typer.Option(help="task id or task YAML")] = None,
    reward: Annotated[Path | None, typer.Option(help="reward program; default: the task's reference")] = None,
    env: Annotated[
        str | None, typer.Option(help="any gymnasium env id instead of a task (with --reward)")
    ] = None,
    notes: Annotated[Path | None, typer.Option(help="field notes (YAML) for --env")] = None,
    steps: Annotated[int, typer.Option(help="random steps per env")] = 250,
    n_envs: Annotated[int, typer.Option(help="parallel envs")] = 4,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    reward_format: RewardFormat = "rewardgen",
    sandbox: Annotated[bool, typer.Option(help="run the reward as untrusted code in a sandbox")] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="keep what the check made (a converted Text2Reward file, a derived task) here"),
    ] = None,
) -> None:
    """Run a reward on random rollouts: each term's statistics, the env's reward, the cost.
    Nothing is written unless --out says where."""
    import tempfile

    from rewardgen.diagnostics.check import check_reward

    if (task is None) == (env is None):
        raise RewardgenError("give --task or --env (any gymnasium env id, with --reward)")
    with tempfile.TemporaryDirectory(prefix="rewardgen-check-") as scratch:
        folder = out if out is not None else Path(scratch)
        if env is not None:
            from rewardgen.tasks import derive_task, save_task_file

            folder.mkdir(parents=True, exist_ok=True)
            task = str(save_task_file(derive_task(env, "(your goal)", notes), folder / "task.yaml").path)
        assert task is not None
        task, reward, sandbox, origin = _reward_format(reward_format, task, reward, sandbox, folder, "check")
        spec = program_spec(task, reward, sandbox, origin)
        stats = check_reward(task, spec, steps=steps, n_envs=n_envs, seed=seed)
    table = Table(title=f"{stats['program']} on {stats['env_id']}: {stats['transitions']} random transitions")
    for col in ("term", "mean", "min", "max"):
        table.add_column(col, justify="right" if col != "term" else "left")
    for name, s in stats["terms"].items():
        table.add_row(name, f"{s['mean']:.4g}", f"{s['min']:.4g}", f"{s['max']:.4g}")
    console.print(table)
    console.print(f"max |reward - env reward| = {stats['max_abs_diff_to_env']:.3g}")
    if stats["sandbox"]:
        walls = "; ".join(f"{k}: {v}" for k, v in stats["sandbox"].items())
        console.print(f"sandbox walls: {walls}", highlight=False, soft_wrap=True)
    if stats["cost"]:
        console.print(f"cost: {stats['cost']['summary']}", highlight=False, soft_wrap=True)

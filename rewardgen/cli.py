"""The ``rewardgen`` command. Each sub-command is a thin shell over the packages."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rewardgen.errors import RewardgenError

app = typer.Typer(
    help="Turn a sentence into a reward and train an agent on it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

DEMO_TASK = "halfcheetah-run"
DEMO_STEPS = 100_000


def parse_steps(value: str | None) -> int | None:
    """``"1e6"``, ``"200000"`` or ``"200_000"`` -> int; anything else is a clear error."""
    if value is None:
        return None
    try:
        steps = float(value.replace("_", ""))
    except ValueError:
        raise RewardgenError(f"--steps must be a number such as 200000 or 1e6, got '{value}'") from None
    if steps <= 0 or steps != int(steps):
        raise RewardgenError(f"--steps must be a positive whole number, got '{value}'")
    return int(steps)


def _report(result) -> None:
    ev = result.eval
    table = Table(title=f"evaluation ({len(ev['episodes'])} episodes)")
    for col in ("env return", "synthesized return", "success metric", "success rate"):
        table.add_column(col, justify="right")
    table.add_row(
        f"{ev['env_return_mean']:.1f}",
        f"{ev['reward_return_mean']:.1f}",
        f"{ev['success_metric_mean']:.3f}",
        f"{ev['success_rate']:.0%}",
    )
    console.print(table)
    console.print(f"success metric: {ev['metric']}")
    console.print(f"run directory: [bold]{result.run_dir}[/bold]")
    for name in ("learning_curve.png", "video.mp4", "metrics.csv", "reward.py", "manifest.json"):
        if (result.run_dir / name).exists():
            console.print(f"  {name}")


RewardFormat = Annotated[
    str,
    typer.Option(help="rewardgen (compute_reward) or text2reward (compute_dense_reward(self, action, obs))"),
]


def _reward_format(
    reward_format: str, task: str, reward: Path | None, sandbox: bool, out: Path | None, method: str
) -> tuple[str, Path | None, bool]:
    """(task, reward, sandbox) to run: a Text2Reward file becomes a task YAML with its state
    fields plus a sandboxed program, written into the run directory (``text2reward/``)."""
    if reward_format == "rewardgen":
        return task, reward, sandbox
    if reward_format != "text2reward":
        raise RewardgenError(f"unknown --reward-format '{reward_format}': use rewardgen or text2reward")
    from rewardgen.code import import_text2reward
    from rewardgen.tasks import get_task
    from rewardgen.train.rundir import default_run_path

    if reward is None:
        raise RewardgenError("--reward-format text2reward needs --reward FILE (a compute_dense_reward file)")
    folder = (out or default_run_path(get_task(task).id, method)) / "text2reward"
    imp = import_text2reward(reward, task, out=folder)
    console.print(
        f"text2reward: {len(imp.fields)} self.env reads became state fields; sandboxed ({folder})",
        highlight=False,
        soft_wrap=True,
    )
    return str(imp.task.path), imp.reward, True


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
    eval_episodes: Annotated[int, typer.Option(help="evaluation episodes")] = 3,
    fast: Annotated[bool, typer.Option(help="quick PPO settings for short budgets")] = False,
    reward_format: RewardFormat = "rewardgen",
    sandbox: Annotated[bool, typer.Option(help="run the reward as untrusted code in a sandbox")] = False,
) -> None:
    """Train an agent on a reward program and evaluate it on the task's success metric."""
    from rewardgen.code import SandboxLimits
    from rewardgen.train import TrainConfig
    from rewardgen.train import train as run_train
    from rewardgen.train.hyperparams import FAST_PPO

    task, reward, sandbox = _reward_format(reward_format, task, reward, sandbox, out, "train")
    config = TrainConfig(
        task=task,
        reward=str(reward) if reward else None,
        steps=parse_steps(steps),
        algo=algo,
        n_envs=n_envs,
        seed=seed,
        device=device,
        video=video,
        eval_episodes=eval_episodes,
        mode=mode,
        hyperparams=dict(FAST_PPO) if fast else {},
        sandbox=SandboxLimits() if sandbox else None,
    )
    _report(run_train(config, out=out))


@app.command()
def demo(
    steps: Annotated[str, typer.Option(help="training steps")] = str(DEMO_STEPS),
    out: Annotated[Path | None, typer.Option(help="run directory")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda")] = "auto",
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """Train HalfCheetah with PPO on its bundled reference reward for a short budget."""
    from rewardgen.train import TrainConfig
    from rewardgen.train import train as run_train
    from rewardgen.train.hyperparams import FAST_PPO

    n = parse_steps(steps)
    console.print(f"[bold]rewardgen demo[/bold]: PPO on {DEMO_TASK} with its reference reward, {n:,} steps")
    config = TrainConfig(
        task=DEMO_TASK,
        steps=n,
        algo="ppo",
        seed=seed,
        device=device,
        eval_episodes=2,
        hyperparams=dict(FAST_PPO),
    )
    _report(run_train(config, out=out, method="demo"))


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
    table = Table(title="rewardgen tasks")
    for col in ("id", "env", "goal", "success", "standard"):
        table.add_column(col)
    for t in list_tasks():
        table.add_row(t.id, t.gym_id, t.goal, t.metric.describe(), "yes" if t.standard else "")
    console.print(table)


@app.command()
def check(
    task: Annotated[str, typer.Option(help="task id or task YAML")],
    reward: Annotated[Path | None, typer.Option(help="reward program; default: the task's reference")] = None,
    steps: Annotated[int, typer.Option(help="random steps per env")] = 250,
    n_envs: Annotated[int, typer.Option(help="parallel envs")] = 4,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    reward_format: RewardFormat = "rewardgen",
    sandbox: Annotated[bool, typer.Option(help="run the reward as untrusted code in a sandbox")] = False,
    out: Annotated[Path | None, typer.Option(help="where a converted Text2Reward file is written")] = None,
) -> None:
    """Run a reward program on random rollouts: component statistics, the env's own reward, and
    what a call costs."""
    from rewardgen.code import SandboxLimits
    from rewardgen.train.check import check_reward

    task, reward, sandbox = _reward_format(reward_format, task, reward, sandbox, out, "check")
    stats = check_reward(
        task,
        str(reward) if reward else None,
        steps=steps,
        n_envs=n_envs,
        seed=seed,
        sandbox=SandboxLimits() if sandbox else None,
    )
    table = Table(title=f"{stats['program']} on {stats['env_id']}: {stats['transitions']} random transitions")
    for col in ("term", "mean", "min", "max"):
        table.add_column(col, justify="right" if col != "term" else "left")
    for name, s in stats["terms"].items():
        table.add_row(name, f"{s['mean']:.4g}", f"{s['min']:.4g}", f"{s['max']:.4g}")
    console.print(table)
    console.print(f"max |reward - env reward| = {stats['max_abs_diff_to_env']:.3g}")
    if stats["cost"]:
        console.print(f"cost: {stats['cost']['summary']}", highlight=False, soft_wrap=True)


llm_app = typer.Typer(
    help="Talk to the configured LLM endpoint (check settings, cost, replay).", no_args_is_help=True
)
app.add_typer(llm_app, name="llm")

LLMModel = Annotated[str | None, typer.Option("--llm-model", help="model name (REWARDGEN_LLM_MODEL)")]
LLMBaseURL = Annotated[
    str | None, typer.Option("--llm-base-url", help="OpenAI-compatible URL, e.g. http://localhost:8000/v1")
]
LLMBudget = Annotated[float | None, typer.Option("--llm-budget-usd", help="stop when this much is spent")]
LLMMaxCalls = Annotated[int | None, typer.Option("--llm-max-calls", help="stop after this many API calls")]
LLMMode = Annotated[str | None, typer.Option("--llm", help="replay:RUN_DIR re-runs a recorded run offline")]
LLMConfig = Annotated[
    Path | None, typer.Option("--llm-config", help="settings file (default ~/.config/rewardgen/llm.yaml)")
]


@contextlib.contextmanager
def _llm_client(run, model, base_url, budget_usd, max_calls, llm, config):
    """The run's LLM client; a budget stop marks the run `stopped`, any other error `failed`."""
    from rewardgen.llm import BudgetExceededError
    from rewardgen.llm.options import client_from_options

    client = client_from_options(run.path, model, base_url, budget_usd, max_calls, llm, config)
    run.update(llm={"model": client.settings.model, "endpoint": client.settings.endpoint})
    try:
        yield client
    except BudgetExceededError as exc:
        run.update(status="stopped", reason=str(exc), llm_usage=client.usage.__dict__)
        raise
    except RewardgenError as exc:
        run.update(status="failed", error=str(exc), llm_usage=client.usage.__dict__)
        raise
    finally:
        client.close()


@llm_app.command("ask")
def llm_ask(
    prompt: Annotated[str, typer.Argument(help="the user message")],
    n: Annotated[int, typer.Option(help="samples")] = 1,
    temperature: Annotated[float, typer.Option(help="sampling temperature")] = 1.0,
    out: Annotated[Path | None, typer.Option(help="run directory")] = None,
    llm_model: LLMModel = None,
    llm_base_url: LLMBaseURL = None,
    llm_budget_usd: LLMBudget = None,
    llm_max_calls: LLMMaxCalls = None,
    llm: LLMMode = None,
    llm_config: LLMConfig = None,
) -> None:
    """Send one prompt; print the replies and what they cost. Checks your LLM settings end to end."""
    from rewardgen.train.rundir import RunDir

    run = RunDir.create("llm", "ask", {"prompt": prompt, "n": n, "temperature": temperature}, out=out)
    with _llm_client(run, llm_model, llm_base_url, llm_budget_usd, llm_max_calls, llm, llm_config) as client:
        replies = client.complete([{"role": "user", "content": prompt}], n=n, temperature=temperature)
    for i, reply in enumerate(replies):
        console.rule(f"sample {i}" + (" (cached)" if reply.cached else ""))
        console.print(reply.text, markup=False, highlight=False)
    run.update(status="finished", llm_usage=client.usage.__dict__)
    console.print(client.usage.summary())
    console.print(f"run directory: [bold]{run.path}[/bold]")


@app.command()
def synthesize(
    task: Annotated[str | None, typer.Option(help="task id or task YAML")] = None,
    env: Annotated[
        str | None, typer.Option(help="any gymnasium env id instead of a task (needs --goal)")
    ] = None,
    notes: Annotated[
        Path | None, typer.Option(help="field notes (YAML) for --env: names, meanings, metric")
    ] = None,
    method: Annotated[str, typer.Option(help="text2reward (one round) or evolution")] = "evolution",
    samples: Annotated[int, typer.Option(help="candidates per round (K)")] = 4,
    iterations: Annotated[int, typer.Option(help="rounds (evolution)")] = 3,
    steps: Annotated[str, typer.Option(help="training steps per candidate")] = "200000",
    goal: Annotated[str | None, typer.Option(help="the goal sentence; default: the task's")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    workers: Annotated[int | None, typer.Option(help="candidates trained at once; default: cores")] = None,
    final_seeds: Annotated[
        int, typer.Option(help="retrain the best reward with N more seeds and report each (0: skip)")
    ] = 2,
    few_shot: Annotated[int, typer.Option(help="show K reference rewards of the closest goals")] = 0,
    early_stop: Annotated[
        bool, typer.Option(help="successive halving: drop the worse half after a fraction of the steps")
    ] = False,
    videos: Annotated[int, typer.Option(help="film the N best policies for report.html")] = 3,
    executor: Annotated[str, typer.Option(help="local (process pool) or ray")] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster address (ray://host:10001 or auto); default: local Ray")
    ] = None,
    gpus_per_candidate: Annotated[float, typer.Option(help="Ray: GPUs per candidate, e.g. 0.25")] = 0,
    fast: Annotated[bool, typer.Option(help="quick PPO settings for short budgets")] = False,
    max_reward_cost: Annotated[
        float, typer.Option(help="refuse rewards costing more than this many env steps per transition")
    ] = 20.0,
    candidate_budget: Annotated[
        float | None,
        typer.Option(help="wall-clock seconds per candidate (training + evaluation); default 120 + steps/50"),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="run directory")] = None,
    resume: Annotated[Path | None, typer.Option(help="continue a killed search in RUN_DIR")] = None,
    llm_model: LLMModel = None,
    llm_base_url: LLMBaseURL = None,
    llm_budget_usd: LLMBudget = None,
    llm_max_calls: LLMMaxCalls = None,
    llm: LLMMode = None,
    llm_config: LLMConfig = None,
) -> None:
    """Write reward code with an LLM, train a policy on each candidate, keep the best."""
    import json
    from dataclasses import asdict

    from rewardgen.synthesis import SearchConfig
    from rewardgen.synthesis import synthesize as run_search
    from rewardgen.tasks import get_task
    from rewardgen.train.hyperparams import FAST_PPO
    from rewardgen.train.rundir import RunDir

    if resume is not None:
        config = SearchConfig.from_run(resume)
        run = RunDir(resume, json.loads((resume / "manifest.json").read_text()))
        run.update(status="running", resumed=True)
    else:
        if (task is None) == (env is None):
            raise RewardgenError("give --task or --env (or --resume RUN_DIR)")
        if env is not None:
            if not goal:
                raise RewardgenError("--env needs --goal: the sentence the reward should achieve")
            from rewardgen.tasks import derive_task, save_task_file
            from rewardgen.train.rundir import default_run_path

            derived = derive_task(env, goal, notes)
            out = out or default_run_path(derived.id, method)
            out.mkdir(parents=True, exist_ok=True)
            task = str(save_task_file(derived, out / "task.yaml").path)
            console.print(f"task derived from {env}: {out / 'task.yaml'} ({derived.metric.describe()})")
        config = SearchConfig(
            task=task,
            method=method,
            samples=samples,
            iterations=iterations,
            steps=parse_steps(steps) or 0,
            goal=goal,
            seed=seed,
            workers=workers or min(samples, os.cpu_count() or 1),
            final_seeds=final_seeds,
            few_shot=few_shot,
            early_stop=early_stop,
            videos=videos,
            executor=executor,
            ray_address=ray_address,
            gpus_per_candidate=gpus_per_candidate,
            hyperparams=dict(FAST_PPO) if fast else {},
            max_reward_cost=max_reward_cost,
            candidate_budget_s=candidate_budget,
        )
        run = RunDir.create(get_task(task).id, method, asdict(config), out=out)
    spec = get_task(config.task)
    with _llm_client(run, llm_model, llm_base_url, llm_budget_usd, llm_max_calls, llm, llm_config) as client:
        console.print(f"run directory: [bold]{run.path}[/bold] (report.html is rewritten after every round)")
        summary = run_search(config, client, run, log=lambda line: console.print(line, highlight=False))
    table = Table(title=f"{spec.id}: {config.method}")
    for col in ("round", "cand", "status", "success metric", "reason"):
        table.add_column(col)
    _candidate_rows(table, summary["candidates"])
    console.print(table)
    if summary["stopped"]:
        console.print(f"[yellow]stopped early:[/yellow] {summary['stopped']}")
    for f in summary["final_seeds"]:
        console.print(
            f"best reward, seed {f['seed']}: success metric {f.get('success_metric_mean', float('nan')):.3f}"
        )
    console.print(client.usage.summary())
    best = summary["best"]
    if best:
        metric = best["eval"]["success_metric_mean"]
        console.print(f"best reward: {run.file('best_reward.py')} (success metric {metric:.3f})")
    console.print(f"run directory: [bold]{run.path}[/bold]")
    console.print(f"report: [bold]{run.file('report.html')}[/bold]")


def _candidate_rows(table: Table, candidates: list[dict]) -> None:
    for c in candidates:
        metric = f"{c['eval']['success_metric_mean']:.3f}" if c.get("eval") else ""
        status = c["status"] + (" (stopped early)" if c.get("pruned") else "")
        reason = (c.get("reason") or "").replace(f"{c.get('path')}/", "")  # the folder is in the table
        table.add_row(str(c["iteration"]), str(c["index"]), status, metric, reason[:90])


@app.command()
def refine(
    run_dir: Annotated[Path, typer.Argument(help="a run directory of `rewardgen synthesize`")],
    feedback: Annotated[str, typer.Option(help="what you saw the policy do wrong, in your words")],
    candidate: Annotated[
        str | None, typer.Option(help="refine this one, e.g. iter1/cand0; default: latest refinement or best")
    ] = None,
    samples: Annotated[int, typer.Option(help="refined rewards to write and train")] = 1,
    steps: Annotated[str | None, typer.Option(help="training steps; default: the search's")] = None,
    llm_model: LLMModel = None,
    llm_base_url: LLMBaseURL = None,
    llm_budget_usd: LLMBudget = None,
    llm_max_calls: LLMMaxCalls = None,
    llm: LLMMode = None,
    llm_config: LLMConfig = None,
) -> None:
    """Improve a synthesized reward from your words about its policy (Text2Reward refinement)."""
    import json

    from rewardgen.synthesis import refine as run_refine
    from rewardgen.train.rundir import RunDir

    manifest = run_dir / "manifest.json"
    if not manifest.is_file():
        raise RewardgenError(f"{run_dir} is not a run directory: it has no manifest.json")
    run = RunDir(run_dir, json.loads(manifest.read_text()))
    status = run.manifest.get("status")
    with _llm_client(run, llm_model, llm_base_url, llm_budget_usd, llm_max_calls, llm, llm_config) as client:
        record = run_refine(run, feedback, client, candidate, samples, parse_steps(steps))
    run.update(status=status)  # refining does not change how the search itself ended
    table = Table(title=f"{record['round']}: refined from {record['parent']}")
    for col in ("round", "cand", "status", "success metric", "reason"):
        table.add_column(col)
    _candidate_rows(table, record["candidates"])
    console.print(table)
    console.print(client.usage.summary())
    if record["best"]:
        console.print(f"refined reward: {run.file('refined_reward.py')}")
        video = run.path / record["best"] / "train" / "video.mp4"
        if video.is_file():
            console.print(f"watch it: {video}")
    console.print(f"report: [bold]{run.file('report.html')}[/bold]")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="a run directory of `rewardgen synthesize`")],
) -> None:
    """(Re)write RUN_DIR/report.html: every candidate's curves, videos of the best, the code."""
    from rewardgen.synthesis import write_report

    if not (run_dir / "manifest.json").is_file():
        raise RewardgenError(f"{run_dir} is not a run directory: it has no manifest.json")
    console.print(f"report: [bold]{write_report(run_dir)}[/bold]")


def _is_click(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is click's ``name`` class: from click itself or from the copy of click
    that newer typer releases vendor (``typer._click``), which click's own classes do not match."""
    return any(c.__name__ == name and "click" in c.__module__ for c in type(exc).__mro__)


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        app(args=argv, standalone_mode=False)
    except RewardgenError as exc:
        err_console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    except Exception as exc:
        if _is_click(exc, "ClickException"):  # usage errors: the usage line, the problem, exit 2
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        if _is_click(exc, "Abort"):  # click turns Ctrl-C into Abort
            _interrupted()
        raise


def _interrupted() -> None:
    err_console.print("interrupted: the run directory keeps the model and metrics saved so far")
    sys.exit(130)


if __name__ == "__main__":
    main()

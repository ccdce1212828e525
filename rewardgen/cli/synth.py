"""``rewardgen synthesize``, ``refine`` and ``report``: reward code written by an LLM."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rewardgen.cli import app, console, parse_duration, parse_steps
from rewardgen.cli.common import Hyperparams
from rewardgen.cli.llm import LLMBaseURL, LLMBudget, LLMConfig, LLMMaxCalls, LLMMode, LLMModel, _llm_client
from rewardgen.errors import RewardgenError
from rewardgen.runs import CandidateRecord


@app.command()
def synthesize(
    task: Annotated[str | None, typer.Option(help="task id or task YAML")] = None,
    env: Annotated[
        str | None, typer.Option(help="any gymnasium env id instead of a task (needs --goal)")
    ] = None,
    notes: Annotated[
        Path | None, typer.Option(help="field notes (YAML) for --env: names, meanings, metric")
    ] = None,
    method: Annotated[
        str,
        typer.Option(help="text2reward (one round), evolution (Eureka) or icpl (a judge compares policies)"),
    ] = "evolution",
    judge: Annotated[
        list[str] | None,
        typer.Option(
            metavar="JUDGE",
            help="icpl: web (a page in your browser; web:host=0.0.0.0,port=8765 to share it; "
            "web:raters=ana+bob for a room), terminal (numbered videos, for SSH) or synthetic[:noise=0.1] "
            "(ranks by the success metric; taste=x_velocity or taste=-ctrl for a rater's taste). "
            "Repeat it to seat several raters. Default: web",
        ),
    ] = None,
    follow: Annotated[
        str,
        typer.Option(
            help="icpl with several raters: room (one reward from the room's vote) or each "
            "(a reward lineage per rater, a reward per taste)"
        ),
    ] = "room",
    samples: Annotated[
        int | None, typer.Option(help="candidates per round (K); default 4, icpl 6 (as in the paper)")
    ] = None,
    iterations: Annotated[
        int | None, typer.Option(help="rounds (evolution, icpl); default 3, icpl 5 (as in the paper)")
    ] = None,
    steps: Annotated[str, typer.Option(help="training steps per candidate")] = "200000",
    goal: Annotated[str | None, typer.Option(help="the goal sentence; default: the task's")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    workers: Annotated[int | None, typer.Option(help="candidates trained at once; default: cores")] = None,
    final_seeds: Annotated[
        int, typer.Option(help="retrain the best reward with N more seeds, each until success (0: skip)")
    ] = 2,
    few_shot: Annotated[int, typer.Option(help="show K reference rewards of the closest goals")] = 0,
    early_stop: Annotated[
        bool, typer.Option(help="successive halving: drop the worse half after a fraction of the steps")
    ] = False,
    videos: Annotated[
        int | None,
        typer.Option(
            help="film the N best policies for report.html, after the result; default 3, 1 with --time-budget"
        ),
    ] = None,
    backend: Annotated[
        str,
        typer.Option(help="train candidates with sb3 (stable-baselines3 PPO) or sf (sample-factory APPO)"),
    ] = "sb3",
    executor: Annotated[str, typer.Option(help="local (process pool) or ray")] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster address (ray://host:10001 or auto); default: local Ray")
    ] = None,
    gpus_per_candidate: Annotated[float, typer.Option(help="Ray: GPUs per candidate, e.g. 0.25")] = 0,
    hyperparams: Hyperparams = "default",
    max_reward_cost: Annotated[
        float, typer.Option(help="refuse rewards costing more than this many env steps per transition")
    ] = 20.0,
    candidate_budget: Annotated[
        float | None,
        typer.Option(help="wall-clock seconds per candidate (training + evaluation); default 120 + steps/50"),
    ] = None,
    time_budget: Annotated[
        str | None,
        typer.Option(
            help="the whole search's wall-clock time, e.g. 5m: rounds and steps planned to fit, "
            "training stopped when it is spent, everything kept"
        ),
    ] = None,
    until_success: Annotated[
        bool, typer.Option(help="end the search at the first candidate whose policy meets the success metric")
    ] = False,
    eval_every: Annotated[
        str | None,
        typer.Option(
            help="evaluate candidates every N steps and stop each at its first success; "
            "default steps/10 (at least 10000); 0: never"
        ),
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

    from rewardgen.runs import RunDir
    from rewardgen.synthesis import SearchConfig
    from rewardgen.synthesis import synthesize as run_search
    from rewardgen.tasks import get_task

    if resume is not None:
        config = SearchConfig.from_run(resume)
        if time_budget is not None:  # a resumed search gets a new clock
            import dataclasses

            config = dataclasses.replace(config, time_budget_s=parse_duration(time_budget))
        run = RunDir.open(resume)
        was = run.manifest.get("status")
        if was in ("interrupted", "running"):  # "running": killed outright (SIGKILL, a power cut)
            how = (
                "was interrupted"
                if was == "interrupted"
                else "was cut short (its manifest still says running)"
            )
            console.print(
                f"resuming {run.path}: the search {how}; finished candidates are kept", highlight=False
            )
        run.update(status="running", resumed=True)
        going_on = "interrupted" if was in ("interrupted", "running") else was
    else:
        going_on = None
        if (task is None) == (env is None):
            raise RewardgenError("give --task or --env (or --resume RUN_DIR)")
        if method != "icpl" and (follow != "room" or len(judge or ()) > 1):
            raise RewardgenError(f"several --judge and --follow are for --method icpl, not {method}")
        if env is not None:
            if not goal:
                raise RewardgenError("--env needs --goal: the sentence the reward should achieve")
            from rewardgen.tasks.derive import derived_id, materialize

            out = RunDir.reserve(derived_id(env, notes), method, out)
            derived = materialize(env, goal, notes, out)
            task = str(derived.path)
            console.print(f"task derived from {env}: {derived.path} ({derived.metric.describe()})")
        config = SearchConfig(
            task=task,
            method=method,
            judge=judges[0] if len(judges := tuple(judge or ("web",))) == 1 else judges,
            follow=follow,
            samples=samples or SearchConfig.default_samples(method),
            iterations=iterations or SearchConfig.default_iterations(method),
            steps=parse_steps(steps) or 0,
            goal=goal,
            seed=seed,
            workers=workers or min(samples or SearchConfig.default_samples(method), os.cpu_count() or 1),
            final_seeds=final_seeds,
            few_shot=few_shot,
            early_stop=early_stop,
            videos=videos if videos is not None else (1 if time_budget is not None else 3),
            backend=backend,
            executor=executor,
            ray_address=ray_address,
            gpus_per_candidate=gpus_per_candidate,
            profile=hyperparams,
            max_reward_cost=max_reward_cost,
            candidate_budget_s=candidate_budget,
            time_budget_s=parse_duration(time_budget),
            until_success=until_success,
            eval_every=_eval_every(eval_every),
        )
        run = RunDir.create(get_task(task).id, method, config.record(), out=out)
    spec = get_task(config.task)
    llm_options = (llm_model, llm_base_url, llm_budget_usd, llm_max_calls, llm, llm_config)
    with _llm_client(run, *llm_options, going_on=going_on) as client:
        console.print(f"run directory: [bold]{run.path}[/bold] (report.html is rewritten after every round)")
        with _candidate_progress() as progress:
            summary = run_search(config, client, run, log=_log, progress=progress)
    table = Table(title=f"{spec.id}: {config.method}")
    _candidate_columns(table)
    _candidate_rows(table, summary["candidates"])
    console.print(table)
    if summary["stopped"]:
        console.print(f"[yellow]stopped early:[/yellow] {summary['stopped']}")
    for f in summary["final_seeds"]:
        verdict = ""
        if summary.get("seeds") is not None:
            verdict = ", succeeded" if f.get("succeeded") else ", did not succeed"
        console.print(
            f"best reward, seed {f['seed']}: success metric {f.get('success_metric_mean', float('nan')):.3f}"
            + verdict
        )
    if summary.get("seeds") and summary["final_seeds"]:  # its own seed alone says nothing more
        won = summary["seeds"]
        console.print(f"the best reward succeeds on {won['succeeded']} of its {won['of']} seeds")
    console.print(client.usage.summary())
    best = CandidateRecord.from_dict(summary["best"]) if summary["best"] else None
    if best is not None and best.success_metric is not None:
        console.print(f"best reward: {run.file('best_reward.py')} (success metric {best.success_metric:.3f})")
    for rater, kept in (summary.get("raters") or {}).items():  # a room: each rater's reward
        console.print(f"{rater}'s reward: {run.file(kept['file'])} ({CandidateRecord.from_dict(kept).label})")
    console.print(f"run directory: [bold]{run.path}[/bold]")
    console.print(f"report: [bold]{run.file('report.html')}[/bold]")


def _log(line: str) -> None:
    console.print(line, highlight=False, markup=False)


@contextlib.contextmanager
def _candidate_progress():
    """Live bars of the candidates in training on a terminal; a line a minute in a log."""
    from rewardgen.synthesis.progress import LineProgress, TerminalProgress

    reporter = TerminalProgress(console) if console.is_terminal else LineProgress(_log)
    try:
        yield reporter
    finally:
        reporter.close()


def _candidate_columns(table: Table) -> None:
    for col in ("round", "cand", "status", "success metric"):
        table.add_column(col)
    table.add_column("reason", overflow="fold")  # whole: "too slow ... per call of 2 transitions"


def _candidate_rows(table: Table, candidates: list[dict]) -> None:
    from rewardgen.diagnostics.alarm import recorded_verdict

    for c in map(CandidateRecord.from_dict, candidates):
        metric = f"{c.success_metric:.3f}" if c.success_metric is not None else ""
        status = c.status + (" (stopped early)" if c.pruned else "")
        reason = (c.reason or "").replace(f"{c.path}/", "")  # the folder is in the table
        alarm = recorded_verdict(c.path / "train") if c.path is not None else None
        if alarm is not None and alarm.hacked:
            status, reason = status + " (reward hacking?)", "; ".join(alarm.reasons)
        table.add_row(str(c.iteration), str(c.index), status, metric, reason)


@app.command()
def refine(
    run_dir: Annotated[Path, typer.Argument(help="a run directory of `rewardgen synthesize`")],
    feedback: Annotated[str, typer.Option(help="what you saw the policy do wrong, in your words")],
    candidate: Annotated[
        str | None, typer.Option(help="refine this one, e.g. iter1/cand0; default: latest refinement or best")
    ] = None,
    samples: Annotated[int, typer.Option(help="refined rewards to write and train")] = 1,
    steps: Annotated[str | None, typer.Option(help="training steps; default: the search's")] = None,
    time_budget: Annotated[
        str | None,
        typer.Option(
            help="wall-clock time for this refinement, e.g. 3m: steps fitted, training stopped at it"
        ),
    ] = None,
    until_success: Annotated[
        bool, typer.Option(help="stop the other refined rewards' training once one policy succeeds")
    ] = False,
    llm_model: LLMModel = None,
    llm_base_url: LLMBaseURL = None,
    llm_budget_usd: LLMBudget = None,
    llm_max_calls: LLMMaxCalls = None,
    llm: LLMMode = None,
    llm_config: LLMConfig = None,
) -> None:
    """Improve a synthesized reward from your words about its policy (Text2Reward refinement)."""

    from rewardgen.runs import RunDir
    from rewardgen.synthesis import refine as run_refine

    run = RunDir.open(run_dir)
    status = run.manifest.get("status")
    llm_options = (llm_model, llm_base_url, llm_budget_usd, llm_max_calls, llm, llm_config)
    with _llm_client(run, *llm_options, going_on=status) as client:
        with _candidate_progress() as progress:
            record = run_refine(
                run,
                feedback,
                client,
                candidate,
                samples,
                parse_steps(steps),
                log=_log,
                progress=progress,
                time_budget_s=parse_duration(time_budget),
                until_success=until_success,
            )
    run.update(status=status)  # refining does not change how the search itself ended
    table = Table(title=f"{record['round']}: refined from {record['parent']}")
    _candidate_columns(table)
    _candidate_rows(table, record["candidates"])
    console.print(table)
    console.print(client.usage.summary())
    if record["best"]:
        console.print(f"refined reward: {run.file('refined_reward.py')}")
        video = run.path / record["best"] / "train" / RunDir.VIDEO
        if video.is_file():
            console.print(f"watch it: {video}")
    console.print(f"report: [bold]{run.file('report.html')}[/bold]")


def _eval_every(value: str | None) -> int | None:
    """``--eval-every``: steps (``0``: never), as ``--steps`` reads them."""
    if value is None or value.strip() == "0":
        return None if value is None else 0
    return parse_steps(value)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="a run directory of `rewardgen synthesize`")],
) -> None:
    """(Re)write RUN_DIR/report.html: every candidate's curves, videos of the best, the code."""
    from rewardgen.runs import RunDir
    from rewardgen.synthesis import write_report
    from rewardgen.synthesis.config import METHODS

    run = RunDir.open(run_dir)
    method = run.manifest.get("method")
    if method not in METHODS:
        raise RewardgenError(
            f"{run.path} is a `{method}` run, not a search: report.html compares the candidates of "
            f"`rewardgen synthesize` ({', '.join(METHODS)}); this run's learning_curve.png, eval.json "
            "and manifest.json say how it went"
        )
    console.print(f"report: [bold]{write_report(run.path)}[/bold]")

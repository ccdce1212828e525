"""``rewardgen prefs serve``: the preference page of a run, and ``rewardgen prefppo``."""

from pathlib import Path
from typing import Annotated

import typer

from rewardgen.cli import app, console, parse_steps
from rewardgen.cli.common import HpOverrides, _report, parse_hp

prefs = typer.Typer(
    help="Preference rounds: the page where a person compares policies.", no_args_is_help=True
)
app.add_typer(prefs, name="prefs")


@prefs.command()
def serve(
    run_dir: Annotated[Path, typer.Argument(help="a run directory with preference rounds (ICPL, PrefPPO)")],
    host: Annotated[
        str, typer.Option(help="127.0.0.1: this machine only; any other host needs the printed token")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (the next free one of the ten after it if taken)")] = 8765,
) -> None:
    """Serve the page of RUN_DIR's open preference round until Ctrl-C: the answer goes to the
    run's preferences.jsonl, where the waiting search (--judge web) picks it up."""
    from rewardgen.feedback.server import PreferenceServer
    from rewardgen.runs import RunDir

    run = RunDir.open(run_dir)
    server = PreferenceServer(run.path, host=host, port=port)
    try:  # from the first line on: a Ctrl-C right after it ends the page the same way
        urls = " or ".join(server.urls)
        console.print(f"preference page of {run.path}: [bold]{urls}[/bold] (Ctrl-C to stop)")
        if server.token:
            console.print("anyone with this URL (it holds the token) can answer: give it to the judge alone")
        server.serve()
    except KeyboardInterrupt:  # how a page is meant to end: Ctrl-C, or a signal from a supervisor
        console.print(f"the preference page of {run.path} stopped", highlight=False)


@app.command()
def prefppo(
    task: Annotated[str, typer.Option(help="task id (see `rewardgen tasks`) or a task YAML file")],
    queries: Annotated[
        int,
        typer.Option(help="comparisons of two segments to ask per policy trained (each rater answers each)"),
    ] = 200,
    judge: Annotated[
        list[str] | None,
        typer.Option(
            metavar="JUDGE",
            help="synthetic[:noise=0.1] (compares the segments' return under the task's reward), or a "
            "person: web or terminal (two short clips of the current policy; training waits for the "
            "answer). Repeat it for several raters, e.g. --judge synthetic:taste=x_velocity --judge "
            "synthetic:taste=-ctrl (raters who want speed, and less torque)",
        ),
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            help="auto (ensemble for one judge, pal for several), ensemble (one Bradley-Terry reward "
            "for everyone) or pal (a pluralistic model: a reward per rater)"
        ),
    ] = "auto",
    prototypes: Annotated[
        int | None, typer.Option(help="PAL's prototype rewards; default one per rater, at least 2")
    ] = None,
    policy_for: Annotated[
        str, typer.Option(help="with PAL: train a policy for 'each' rater, or for the rater named")
    ] = "each",
    steps: Annotated[str | None, typer.Option(help="training steps; default: the task's budget")] = None,
    segment_length: Annotated[int, typer.Option(help="steps per compared segment")] = 25,
    members: Annotated[int, typer.Option(help="reward models in the ensemble")] = 3,
    risk: Annotated[
        float, typer.Option(help="train on mean - RISK * std of the ensemble (0: the mean)")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    n_envs: Annotated[int | None, typer.Option(help="parallel envs")] = None,
    hp: HpOverrides = None,
    video: Annotated[bool, typer.Option(help="record an MP4 of the final policy")] = True,
    out: Annotated[Path | None, typer.Option(help="run directory; default runs/<utc>-<task>-prefppo")] = None,
) -> None:
    """PrefPPO: PPO on a reward learned from a judge's comparisons of trajectory segments, asked
    (where the ensemble disagrees most) and fitted while PPO trains (Christiano et al. 2017)."""
    from rewardgen.preference.prefppo import PrefPPOConfig, train_prefppo

    config = PrefPPOConfig(
        task=task,
        queries=queries,
        judge=tuple(judge or ("synthetic",)),
        model=model,
        prototypes=prototypes,
        policy_for=policy_for,
        steps=parse_steps(steps),
        segment_length=segment_length,
        members=members,
        risk=risk,
        seed=seed,
        n_envs=n_envs,
        hyperparams=parse_hp(hp),
        video=video,
    )
    result, summary = train_prefppo(config, out=out, log=_log)
    if not summary["preferred"]:
        _report(result)
    for target, fit in summary["policies"].items() if summary["preferred"] else ():
        ev = fit["eval"]
        measured = ", ".join(f"{m} {v:.3g}" for m, v in summary["measured"].get(target, {}).items())
        console.print(
            f"policy for {target}: env return {ev['env_return_mean']:.1f}, success metric "
            f"{ev['success_metric_mean']:.3g}"
            + (f"; per episode: {measured}" if measured else "")
            + f" -> {fit['run_dir']}",
            highlight=False,
            markup=False,
        )
    corr = summary["learned_vs_reference_correlation"]
    console.print(
        f"{summary['answers']} answers to {summary['queries_asked']} queries; learned reward vs the "
        f"task's reward per step: correlation {corr:.2f}"
        if corr is not None
        else f"{summary['queries_asked']} answers"
    )
    for rater, chosen in summary["preferred"].items():
        own = " (their own)" if chosen == rater else ""
        console.print(
            f"  {rater} prefers the policy trained for {chosen}{own}", highlight=False, markup=False
        )
    where = Path(result.run_dir).parent if summary["preferred"] else result.run_dir
    console.print(f"  preferences.jsonl, reward_model.pt, prefppo.json in {where}")


def _log(line: str) -> None:
    console.print(line, highlight=False, markup=False)

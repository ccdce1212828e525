"""What the commands share: the end-of-training table (:func:`report_result`), the SB3
hyperparameter options and their parsing, and the one place flags become a ``TrainConfig``
(:func:`train_config`). One definition each; the LLM options are in :mod:`rewardgen.cli.llm`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from rewardgen.cli import console, parse_steps
from rewardgen.errors import RewardgenError
from rewardgen.runs import RunDir
from rewardgen.text import plural

__all__ = ["EvalEpisodes", "HpOverrides", "Hyperparams", "parse_hp", "report_result", "train_config"]

#: The flags whose ``TrainConfig`` field has another name; every other flag is its field's name.
FLAG_FIELDS = {
    "hp": "hyperparams",  # --hp key=value pairs: the learner's settings
    "hyperparams": "profile",  # --hyperparams default|zoo
    "until_success": "stop_on_success",
    "resume": "resume_from",
}


def train_config(**flags: Any) -> Any:
    """The :class:`~rewardgen.training.TrainConfig` a command's flags ask for, the one place a
    flag becomes a field: ``--steps 2e5`` parsed (:func:`parse_steps`), ``--hp`` pairs parsed
    (:func:`parse_hp`), a ``--resume`` path as text, and the flags of :data:`FLAG_FIELDS` by
    their field's name. A flag that names no field is a bug, said at once (TypeError).

    Example:
        >>> c = train_config(task="hopper-run", steps="2e5", hp=["learning_rate=1e-4"], until_success=True)
        >>> c.steps, c.hyperparams, c.stop_on_success
        (200000, {'learning_rate': 0.0001}, True)
    """
    from rewardgen.training import TrainConfig

    parse = {"steps": parse_steps, "hp": parse_hp, "resume": lambda p: None if p is None else str(p)}
    return TrainConfig(**{FLAG_FIELDS.get(k, k): parse[k](v) if k in parse else v for k, v in flags.items()})


#: ``--eval-episodes``: the final evaluation's episodes; the task's success rule sets the fewest.
EvalEpisodes = Annotated[
    int, typer.Option(help="evaluation episodes (at least 10 for a task with a success line)")
]


def _no_episode(manifest: dict) -> str:
    """Why a run has no metrics.csv or learning curve: no training episode finished."""
    import gymnasium as gym

    steps, n_envs = manifest.get("config", {}).get("steps"), manifest.get("config", {}).get("n_envs")
    try:
        length = gym.spec(manifest.get("env_id", "")).max_episode_steps
    except Exception:
        length = None
    per_env = f" ({steps:,} steps over {n_envs} envs: {steps // n_envs:,} each)" if steps and n_envs else ""
    lasts = f"; an episode of this task lasts up to {length:,} steps" if length else ""
    return (
        f"no training episode finished{per_env}{lasts}: metrics.csv and the learning curve need at "
        "least one. Train for more steps (--steps)."
    )


def spec_rule(manifest: dict) -> str:
    """The success rule of the run's task in words (its task named in the manifest)."""
    from rewardgen.tasks import get_task

    try:
        return get_task(manifest.get("config", {}).get("task", "")).metric.rule()
    except RewardgenError:
        return "the task's success rule"


def _report(result) -> dict | None:
    """Print the evaluation and the run directory; when its final evaluation meets the task's
    success rule, returns when periodic evaluations first met it (the trained steps where none
    did); None when the final evaluation does not confirm a success."""
    ev = result.eval
    table = Table(title=f"evaluation ({plural(len(ev.episodes), 'episode')})")
    for col in ("env return", "synthesized return", "success metric", "success rate"):
        table.add_column(col, justify="right")
    table.add_row(
        f"{ev.env_return_mean:.1f}",
        f"{ev.reward_return_mean:.1f}",
        f"{ev.success_metric_mean:.3f}",
        f"{ev.success_rate:.0%}",
    )
    console.print(table)
    console.print(f"success metric: {ev.metric}")
    alarm = getattr(result, "alarm", None)
    if alarm is not None and alarm.hacked:
        console.print(
            f"[bold red]{escape(alarm.summary())}[/bold red] (learning_curve.png shows it)", soft_wrap=True
        )
    console.print(f"run directory: [bold]{result.run_dir}[/bold]")
    for name in (RunDir.CURVE, RunDir.VIDEO, RunDir.METRICS, RunDir.EVALS, RunDir.REWARD, RunDir.MANIFEST):
        if (result.run_dir / name).exists():
            console.print(f"  {name}")
    manifest = RunDir.read_manifest(result.run_dir)
    if not (result.run_dir / RunDir.METRICS).exists():
        console.print(_no_episode(manifest), soft_wrap=True, highlight=False, markup=False)
    hit = manifest.get("first_success")
    met = sum(bool(e.success) for e in ev.episodes)
    if ev.succeeded:  # the final evaluation is the verdict; a periodic one says when
        when = ""
        if hit:
            when = f" after {hit['timesteps']:,} steps and {hit['wall_time_s']:.0f} s of training"
        console.print(
            f"[green]success[/green]: the policy meets the task's success rule{when} "
            f"({spec_rule(manifest)}; {met} of {len(ev.episodes)} episodes met the line)",
            soft_wrap=True,
        )
        return hit or {"timesteps": int(manifest.get("trained_steps") or 0)}
    if hit:  # a periodic evaluation met it, the final one (other starting states) did not
        console.print(
            f"[yellow]not confirmed[/yellow]: a periodic evaluation met the success rule after "
            f"{hit['timesteps']:,} steps, but the final evaluation, from other starting states, did not "
            f"({met} of {len(ev.episodes)} episodes met the line, mean {ev.success_metric_mean:.4g}): the "
            "policy is near the line (more steps make it surer)",
            soft_wrap=True,
            highlight=False,
        )
    return None


Hyperparams = Annotated[
    str,
    typer.Option(
        "--hyperparams",
        help="default (rewardgen's: fast on a CPU) or zoo (rl-baselines3-zoo's tuned settings)",
    ),
]
HpOverrides = Annotated[
    list[str] | None,
    typer.Option(
        "--hp",
        help="override one of the profile's hyperparameters, KEY=VALUE (JSON value), e.g. "
        "--hp gradient_steps=1 --hp learning_rate=1e-3; repeat for more",
    ),
]


def parse_hp(pairs: list[str] | None) -> dict:
    """``["lr=1e-3", "net=[64, 64]"]`` -> ``{"lr": 0.001, "net": [64, 64]}`` (JSON values; a
    value that is not JSON stays a string)."""
    out: dict = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise RewardgenError(f"--hp {pair!r}: write KEY=VALUE, e.g. --hp learning_rate=3e-4")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


report_result = _report  # the public name

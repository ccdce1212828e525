"""``rewardgen oni train``: an agent on NetHack with ONI's intrinsic reward, labelled by an LLM
while it trains."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from rewardgen.cli import app, console
from rewardgen.cli.common import EvalEpisodes, HpOverrides, _report, train_config
from rewardgen.cli.llm import LLMBaseURL, LLMBudget, LLMConfig, LLMMaxCalls, LLMModel
from rewardgen.errors import RewardgenError
from rewardgen.oni.reward import C_EXT, C_INT

oni = typer.Typer(
    help="ONI: an LLM labels in-game messages while the agent trains; the labels become a reward.",
    no_args_is_help=True,
)
app.add_typer(oni, name="oni")


@oni.command("train")
def train_cmd(
    task: Annotated[str, typer.Option(help="a NetHack task: nethack-score, -staircase, -oracle, -gold")] = (
        "nethack-score"
    ),
    reward: Annotated[
        str,
        typer.Option(
            help="the reward model: retrieval (the LLM's label), classification (a character-level "
            "model trained on the labels while the agent trains) or ranking (a Bradley-Terry model "
            "trained on the LLM's preferences between messages)"
        ),
    ] = "retrieval",
    goal: Annotated[str, typer.Option(help="what a helpful message shows: default, gold, stairs, combat")] = (
        "default"
    ),
    backend: Annotated[
        str, typer.Option(help="sb3 (stable-baselines3 PPO) or sf (sample-factory APPO, its stack)")
    ] = "sb3",
    steps: Annotated[str | None, typer.Option(help="env steps; default: the task's budget")] = None,
    c_ext: Annotated[float, typer.Option(help="weight of the game's own reward")] = C_EXT,
    c_int: Annotated[float, typer.Option(help="weight of the intrinsic reward")] = C_INT,
    beta: Annotated[float, typer.Option(help="a message repeated N times in an episode pays 1/N^beta")] = 3.0,
    store: Annotated[
        Path | None,
        typer.Option(
            help="label store (SQLite), shared across runs; default ~/.cache/rewardgen/oni_labels.sqlite"
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="messages per LLM call")] = 32,
    n_envs: Annotated[int | None, typer.Option(help="envs stepped together")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    eval_episodes: EvalEpisodes = 3,
    hp: HpOverrides = None,
    out: Annotated[Path | None, typer.Option(help="run directory")] = None,
    llm_model: LLMModel = None,
    llm_base_url: LLMBaseURL = None,
    llm_budget_usd: LLMBudget = None,
    llm_max_calls: LLMMaxCalls = None,
    llm_config: LLMConfig = None,
) -> None:
    """Train on NetHack with ONI: env reward x c_ext + LLM-labelled message reward x c_int."""
    from rewardgen.llm.options import settings_from_options
    from rewardgen.oni import DEFAULT_STORE, OniSpec
    from rewardgen.oni.session import labelling, oni_mixing, service_config
    from rewardgen.runs import RunDir
    from rewardgen.tasks import get_task
    from rewardgen.training import check_backend
    from rewardgen.training import train as run_train

    check_backend(backend)  # before the annotation service starts: a missing stack is said at once
    spec = get_task(task)
    if "message" not in spec.fields:
        raise RewardgenError(
            f"task {spec.id} has no message field: ONI needs a NetHack task (nethack-score...)"
        )
    for name, value in (("--c-ext", c_ext), ("--c-int", c_int)):
        if not math.isfinite(value):
            raise RewardgenError(f"{name} must be a finite number, got {value}")
    service_config(reward, batch_size)  # checks --batch-size before anything starts
    settings = settings_from_options(llm_model, llm_base_url, llm_budget_usd, llm_max_calls, llm_config)
    settings.check()  # a missing API key fails now, not in the service
    reward_spec = OniSpec(store or DEFAULT_STORE, goal=goal, model=settings.model, reward=reward, beta=beta)
    reward_spec.store().check()  # a damaged, read-only or directory store fails now, not mid-run
    out = RunDir.reserve(spec.id, "oni", out)
    config = train_config(
        task=task,
        reward=reward_spec,
        steps=steps,
        n_envs=n_envs,
        seed=seed,
        video=False,
        eval_episodes=eval_episodes,
        hp=hp,
        backend=backend,
        **oni_mixing(c_ext, c_int),
    )
    console.print(f"labels: [bold]{reward_spec.store_path}[/bold] ({settings.model} at {settings.endpoint})")
    with labelling(reward_spec, out, settings, batch_size) as service:
        result = run_train(config, out=out, method="oni")
    counts = reward_spec.store().counts()
    restarts = service.restarts if service is not None else 0
    console.print(
        f"label store for goal '{goal}': "
        + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        + (f"; the annotation service was restarted {restarts} times" if restarts else "")
    )
    _report(result)


@oni.command("labels")
def labels_cmd(
    goal: Annotated[str, typer.Option(help="the goal the labels answer: default, gold, stairs, combat")] = (
        "default"
    ),
    store: Annotated[
        Path | None, typer.Option(help="label store; default ~/.cache/rewardgen/oni_labels.sqlite")
    ] = None,
    llm_model: LLMModel = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="put every failed message back in the queue")
    ] = False,
    show_failed: Annotated[int, typer.Option(help="list this many failed messages with their reasons")] = 10,
) -> None:
    """What a label store holds for a goal: messages per status for each model that labelled
    them (or only --llm-model's), the failed ones with their reasons; --retry-failed asks them
    again in the next run."""
    from dataclasses import replace

    from rewardgen.oni import DEFAULT_STORE, OniSpec
    from rewardgen.oni.store import LabelStore

    spec = OniSpec(store or DEFAULT_STORE, goal=goal, model=llm_model or "")
    if not Path(spec.store_path).exists():
        raise RewardgenError(f"no label store at {spec.store_path}: `rewardgen oni train` makes one")
    first = spec.store().check()
    key = first.key
    held = [k for k in first.keys() if (k.goal, k.prompt) == (key.goal, key.prompt)]
    models = [llm_model] if llm_model else [k.model for k in held]
    if not models:
        others = sorted({f"'{k.goal}'" for k in first.keys()})
        raise RewardgenError(
            f"{spec.store_path} holds no messages for goal '{goal}'"
            + (f" (it holds goals {', '.join(others)}: pass --goal)" if others else "")
        )
    for model in models:
        _show_labels(LabelStore(first.path, replace(key, model=model)), goal, retry_failed, show_failed)


def _show_labels(labels, goal: str, retry_failed: bool, show_failed: int) -> None:
    if retry_failed:
        console.print(
            f"{labels.retry_failed()} failed messages are pending again", highlight=False, soft_wrap=True
        )
    counts = labels.counts()
    console.print(
        f"{labels.path} (goal '{goal}', model {labels.key.model}): "
        + (", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no messages"),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    for message, reason in list(labels.reasons().items())[:show_failed]:
        console.print(f"  failed: {message!r}: {reason}", highlight=False, markup=False, soft_wrap=True)

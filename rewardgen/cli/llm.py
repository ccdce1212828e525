"""``rewardgen llm ask`` and the LLM options every command that talks to a model shares."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from rewardgen.cli import app, console
from rewardgen.errors import RewardgenError

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
def _llm_client(run, model, base_url, budget_usd, max_calls, llm, config, going_on: str | None = None):
    """The run's LLM client; a budget stop marks the run `stopped`, any other error `failed`.

    ``going_on``: the status the run had when a command took it up again (``--resume``,
    ``refine``): the client then asks the model and endpoint the run recorded, unless the
    command line names others, and an error leaves the run as it was (still resumable)."""
    from rewardgen.llm import BudgetExceededError
    from rewardgen.llm.options import client_from_options, follow_record

    if going_on is not None and not llm:
        model, base_url, line = follow_record(run.manifest.get("llm"), model, base_url)
        console.print(line, highlight=False, soft_wrap=True)
    client = client_from_options(run.path, model, base_url, budget_usd, max_calls, llm, config)
    run.update(llm={"model": client.settings.model, "endpoint": client.settings.endpoint})
    try:
        yield client
    except BudgetExceededError as exc:
        run.update(status="stopped", reason=str(exc), llm_usage=client.usage.__dict__)
        raise
    except RewardgenError as exc:
        if going_on is not None:
            run.update(status=going_on, resume_error=str(exc), llm_usage=client.usage.__dict__)
        else:
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
    """Send one prompt; print the replies and what they cost. Checks your LLM settings end to end.
    Nothing is kept unless --out names a run directory for the transcript."""
    import tempfile

    from rewardgen.runs import RunDir

    with tempfile.TemporaryDirectory(prefix="rewardgen-ask-") as scratch:
        folder = out if out is not None else Path(scratch) / "run"
        run = RunDir.create("llm", "ask", {"prompt": prompt, "n": n, "temperature": temperature}, out=folder)
        options = (llm_model, llm_base_url, llm_budget_usd, llm_max_calls, llm, llm_config)
        with _llm_client(run, *options) as client:
            replies = client.complete([{"role": "user", "content": prompt}], n=n, temperature=temperature)
        run.update(status="finished", llm_usage=client.usage.__dict__)
    for i, reply in enumerate(replies):
        console.rule(f"sample {i}" + (" (cached)" if reply.cached else ""))
        console.print(reply.text, markup=False, highlight=False)
    console.print(client.usage.summary())
    if out is not None:
        console.print(f"run directory: [bold]{run.path}[/bold]")

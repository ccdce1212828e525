"""``rewardgen runs``: the run directories under runs/, and one of them in detail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rewardgen.cli import app, console
from rewardgen.errors import RewardgenError

runs_app = typer.Typer(help="List the run directories under runs/, or show one (runs show RUN).")
app.add_typer(runs_app, name="runs")


def _when(stamp: str | None) -> str:
    return (stamp or "")[:16].replace("T", " ")


def _duration(seconds: float | None) -> str:
    from rewardgen.synthesis.clock import format_seconds

    return format_seconds(seconds) if seconds is not None else ""


@runs_app.callback(invoke_without_command=True)
def runs(
    ctx: typer.Context,
    root: Annotated[Path, typer.Option(help="the folder that holds the runs")] = Path("runs"),
    task: Annotated[str | None, typer.Option(help="only runs whose task contains this")] = None,
    status: Annotated[
        str | None, typer.Option(help="only runs with this status: finished, failed, running, ...")
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="only this kind: train, evolution, text2reward, icpl, bench, ...")
    ] = None,
) -> None:
    """List the run directories under runs/ (newest first): kind, task, status, success, when."""
    if ctx.invoked_subcommand is not None:
        return
    from rewardgen.runs.listing import list_runs

    found = list_runs(root, task, status, kind)
    if not found:
        console.print(f"no run directories under {root}" + (" that match" if task or status or kind else ""))
        return
    rows = [
        (
            s.name,
            s.kind,
            s.task,
            s.status,
            f"{s.success_metric:.4g}" if s.success_metric is not None else "",
            f"{s.success_rate:.0%}" if s.success_rate is not None else "",
            _when(s.started_at),
            _duration(s.duration_s),
        )
        for s in found
    ]
    if not console.is_terminal:  # piped: one run a line, tab-separated
        for row in rows:
            print("\t".join(row))
        return
    columns = ["run", "kind", "task", "status", "success metric", "success", "started (UTC)", "took"]
    shown = _columns_that_fit(columns, rows, console.width)
    table = Table(title=f"runs under {root} ({len(rows)})")
    for col in shown:
        # every column but the run's whole (the run's name folds, never to an ellipsis)
        table.add_column(col, no_wrap=col != "run", overflow="fold", min_width=12 if col == "run" else None)
    for row in rows:
        cells = dict(zip(columns, row, strict=True))
        table.add_row(*(cells[c] for c in shown), style="red" if row[3] in ("failed", "killed") else None)
    console.print(table)
    if len(shown) < len(columns):
        left = ", ".join(c for c in columns if c not in shown)
        console.print(
            f"(left out at {console.width} columns: {left}; `rewardgen runs | cat` prints every one)"
        )


#: The columns a narrow terminal leaves out first.
_DROPPED_FIRST = ("started (UTC)", "success", "kind", "took", "success metric")


def _columns_that_fit(columns: list[str], rows: list[tuple[str, ...]], width: int) -> list[str]:
    """The columns whose whole values fit ``width`` (the run's name may fold to 12 characters)."""

    def need(col: str) -> int:
        k = columns.index(col)
        natural = max([len(col) if col != "run" else 3, *(len(r[k]) for r in rows)])
        return (min(natural, 12) if col == "run" else natural) + 3  # padding and a border

    shown = list(columns)
    for col in _DROPPED_FIRST:
        if sum(need(c) for c in shown) + 1 <= width:
            break
        shown.remove(col)
    return shown


@runs_app.command("show")
def runs_show(run: Annotated[Path, typer.Argument(help="a run directory")]) -> None:
    """One run: what it was, how it went, the alarm's verdict, its files."""
    from rewardgen.runs import RunDir
    from rewardgen.runs.listing import summarize_run

    summary = summarize_run(run)
    if summary is None:
        raise RewardgenError(f"{run} is not a run directory: it has no manifest.json (or bench.json)")
    manifest = RunDir.read_manifest(run) or json.loads((run / "bench.json").read_text())
    config = manifest.get("config") or {}
    when = [f"started {_when(summary.started_at)} UTC"] if summary.started_at else []
    if summary.duration_s is not None:
        when.append(f"took {_duration(summary.duration_s)}")
    lines = [f"{summary.path}: {summary.kind} on {summary.task}, {summary.status}"]
    if when:
        lines.append(", ".join(when))
    if summary.success_metric is not None:
        lines.append(
            f"success metric {summary.success_metric:.4g}, success rate {summary.success_rate:.0%}"
            + (f" (best: {summary.best})" if summary.best else "")
        )
    for key in ("reason", "error", "ended", "stopped_early"):
        if manifest.get(key):
            lines.append(f"{key}: {manifest[key]}")
    alarm = manifest.get("alarm")
    if alarm:
        lines.append("reward-hacking alarm: " + ("; ".join(alarm.get("reasons") or []) or "quiet"))
    shown = {
        k: config.get(k)
        for k in ("steps", "seed", "backend", "algo", "method", "samples", "iterations")
        if k in config
    }
    if shown:
        lines.append("config: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    if manifest.get("llm_usage"):
        u = manifest["llm_usage"]
        tokens = (u.get("prompt_tokens") or 0) + (u.get("completion_tokens") or 0)
        lines.append(
            f"LLM: {u.get('calls', 0)} calls, {u.get('cache_hits', 0)} from cache, {tokens:,} tokens, "
            f"${u.get('cost_usd', 0):.4f}"
        )
    files = sorted(p.name + ("/" if p.is_dir() else "") for p in Path(run).iterdir())
    lines.append("files: " + "  ".join(files))
    console.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)

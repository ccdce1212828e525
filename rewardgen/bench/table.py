"""A benchmark's tables: per-cell numbers gathered per task and method, Eureka's human-normalized
score, and the outputs (``bench.json``, ``bench.md``, ``bench.html`` with its plots)."""

from __future__ import annotations

import html
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewardgen.bench.config import BenchConfig, Cell, task_name
from rewardgen.methods import METHODS as ALL_METHODS
from rewardgen.tasks import get_task

__all__ = ["aggregate", "normalized_score", "write_outputs"]

NORMALIZED = (
    "normalized score = (method - sparse) / |reference - sparse| (Eureka's human-normalized score), "
    "on scores oriented so that higher is better (the success metric, negated for metrics that must "
    "stay below a threshold), each the mean over seeds of the final policy's evaluation: 0 is the "
    "sparse reward's policy, 1 the reference reward's"
)


def normalized_score(method: float | None, reference: float | None, sparse: float | None) -> float | None:
    """Eureka's human-normalized score ``(method - sparse) / |reference - sparse|`` (None when a
    number is missing or the reference does no better or worse than the sparse reward).

    Example:
        >>> normalized_score(2.0, 3.0, 1.0), normalized_score(-1.0, -0.5, -3.0)
        (0.5, 0.8)
    """
    if method is None or reference is None or sparse is None or reference == sparse:
        return None
    return (method - sparse) / abs(reference - sparse)


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def aggregate(config: BenchConfig, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per task and method: means over seeds, the normalized score; per method: the normalized
    score's mean, median and the share of tasks at or above 1 (as good as the reference)."""
    tasks: dict[str, dict[str, Any]] = {}
    for task in config.tasks:
        rows = {}
        for method in [*config.baselines, *config.methods]:
            cells = [r for r in results if r["task"] == task and r["method"] == method]
            llm = [r.get("llm") or {} for r in cells]
            rows[method] = {
                "seeds": len(cells),
                "finished": sum(r.get("status") == "finished" for r in cells),
                "score": _mean([r.get("score") for r in cells]),
                "success_metric": _mean([r.get("success_metric") for r in cells]),
                "success_rate": _mean([r.get("success_rate") for r in cells]),
                "first_success_s": _mean([r.get("first_success_s") for r in cells]),
                "succeeded_seeds": sum(r.get("first_success_s") is not None for r in cells),
                "wall_s": _mean([r.get("wall_s") for r in cells]),
                "llm_calls": sum(u.get("calls") or 0 for u in llm),
                "tokens": sum((u.get("prompt_tokens") or 0) + (u.get("completion_tokens") or 0) for u in llm),
                "cost_usd": sum(u.get("cost_usd") or 0.0 for u in llm),
                "refused": sum(len(r.get("refused") or []) for r in cells),
                "failed": sum(len(r.get("failed") or []) for r in cells),
                "alarms": sum(r.get("alarm") is not None for r in cells),
            }
        ref, sparse = rows.get("reference", {}).get("score"), rows.get("sparse", {}).get("score")
        for row in rows.values():
            row["normalized"] = normalized_score(row["score"], ref, sparse)
        tasks[task] = rows
    summary = {}
    for method in config.methods:
        scores = [tasks[t][method]["normalized"] for t in config.tasks]
        kept = [s for s in scores if s is not None]
        summary[method] = {
            "tasks": len(kept),
            "mean": sum(kept) / len(kept) if kept else None,
            "median": statistics.median(kept) if kept else None,
            "share_at_least_1": sum(s >= 1 for s in kept) / len(kept) if kept else None,
        }
    return {"tasks": tasks, "summary": summary}


def _f(value: Any, spec: str = ".3g") -> str:
    return "–" if value is None else format(value, spec)


def markdown(config: BenchConfig, agg: dict[str, Any], caption: str) -> str:
    """The benchmark's tables in Markdown: one row per task and method, then the summary."""
    lines = [
        f"*{caption}*",
        "",
        "| task | method | success rate | success metric | normalized | first success | time | LLM calls "
        "| tokens | $ | refused / failed | alarm |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for task, rows in agg["tasks"].items():
        for method, r in rows.items():
            first = "–" if r["first_success_s"] is None else f"{r['first_success_s']:.0f} s"
            first += f" ({r['succeeded_seeds']}/{r['seeds']})"
            llm = method in ALL_METHODS and "llm" in ALL_METHODS[method].needs  # those that ask an LLM
            lines.append(
                f"| {task_name(task)} | {method} | {_f(r['success_rate'], '.0%')} | "
                f"{_f(r['success_metric'])} | "
                f"{_f(r['normalized'], '.2f')} | {first} | {_f(r['wall_s'], '.0f')} s | "
                f"{r['llm_calls'] if llm else '–'} | {r['tokens'] if llm else '–'} | "
                f"{_f(r['cost_usd'], '.4f') if llm else '–'} | {r['refused']} / {r['failed']} | "
                f"{r['alarms']} |"
            )
    lines += [
        "",
        "| method | tasks | normalized: mean | median | share of tasks >= 1 |",
        "|---|---|---|---|---|",
    ]
    for method, s in agg["summary"].items():
        lines.append(
            f"| {method} | {s['tasks']} | {_f(s['mean'], '.2f')} | {_f(s['median'], '.2f')} | "
            f"{_f(s['share_at_least_1'], '.0%')} |"
        )
    lines += ["", NORMALIZED + ".", ""]
    return "\n".join(lines)


def _plots(config: BenchConfig, agg: dict[str, Any], results: list[dict[str, Any]], root: Path) -> list[str]:
    """bench_bars.png (each task's score per method, baselines included; the normalized score's
    mean per method) and curves_<task>.png (each cell's success metric along training)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rewardgen.runs import read_metrics

    names = []
    methods = [*config.baselines, *config.methods]
    fig, axes = plt.subplots(
        1, len(config.tasks) + 1, figsize=(4 * (len(config.tasks) + 1), 3.6), squeeze=False
    )
    for ax, task in zip(axes[0], config.tasks, strict=False):
        # the success metric as the table prints it (its sign included), with the task's line
        values = [agg["tasks"][task][m]["success_metric"] for m in methods]
        ax.bar(range(len(methods)), [v if v is not None else 0 for v in values], color="tab:blue")
        ax.set_xticks(range(len(methods)), methods, rotation=30, fontsize=8)
        metric = get_task(task).metric
        line = metric.above if metric.above is not None else metric.below
        if line is not None:
            ax.axhline(line, color="grey", linestyle=":")
        ax.set_title(f"{task_name(task)}\nsuccess metric ({metric.reduce} {metric.field})", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    ax = axes[0][-1]
    means = [agg["summary"][m]["mean"] for m in config.methods]
    ax.bar(range(len(config.methods)), [v if v is not None else 0 for v in means], color="tab:green")
    ax.axhline(1.0, color="grey", linestyle=":")
    ax.set_xticks(range(len(config.methods)), config.methods, rotation=30, fontsize=8)
    ax.set_title("normalized score, mean over tasks", fontsize=9)
    fig.tight_layout()
    fig.savefig(root / "bench_bars.png", dpi=90)
    plt.close(fig)
    names.append("bench_bars.png")
    for task in config.tasks:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        drawn = False
        for r in results:
            path = root / r["curve"] if r.get("task") == task and r.get("curve") else None
            if path is not None and path.is_file() and (m := read_metrics(path)):
                ax.plot(
                    m["timesteps"], m["success_metric_mean"], label=f"{r['method']} s{r['seed']}", alpha=0.8
                )
                drawn = True
        if not drawn:
            plt.close(fig)
            continue
        metric = get_task(task).metric
        threshold = metric.above if metric.above is not None else metric.below
        if threshold is not None:
            ax.axhline(threshold, color="grey", linestyle=":")
        ax.set_title(
            f"{task_name(task)}: success metric along training (best candidate of each search)", fontsize=9
        )
        ax.set_xlabel("environment steps")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(root / f"curves_{task_name(task)}.png", dpi=90)
        plt.close(fig)
        names.append(f"curves_{task_name(task)}.png")
    return names


def write_outputs(
    config: BenchConfig, root: Path, results: list[dict[str, Any]], caption: str | None = None
) -> dict[str, Any]:
    """``bench.json`` (every number, the settings and versions), ``bench.md`` and ``bench.html``."""
    from rewardgen.runs.rundir import package_versions

    agg = aggregate(config, results)
    path = root / "bench.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    caption = caption or old.get("caption") or _caption(config, results, root)
    bench = {
        "config": config.record(),
        "caption": caption,
        "status": "finished" if all(r.get("status") == "finished" for r in results) else "incomplete",
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": package_versions(),
        "normalized_score": NORMALIZED,
        "cells": results,
        **agg,
    }
    path.write_text(json.dumps(bench, indent=2, default=str))
    md = markdown(config, agg, caption)
    (root / "bench.md").write_text(md)
    images = _plots(config, agg, results, root)
    e = html.escape
    body = [
        "<!doctype html><html><head><meta charset='utf-8'><title>rewardgen bench</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px}"
        "table{border-collapse:collapse;font-size:.9em}"
        "td,th{border:1px solid #ccc;padding:.3em .6em}</style>",
        "</head><body><h1>rewardgen bench</h1>",
        _html_table(md),  # the caption, the tables and the normalized score's definition, once each
        *[f"<p><img src='{e(n)}' alt='{e(n)}'></p>" for n in images],
        "</body></html>",
    ]
    (root / "bench.html").write_text("\n".join(body))
    return bench


def _caption(config: BenchConfig, results: list[dict[str, Any]], root: Path) -> str:
    from rewardgen.runs import RunDir

    llm = next(
        (
            m["llm"]
            for r in results
            if (m := RunDir.read_manifest(Cell(r["task"], r["method"], r["seed"]).folder(root))).get("llm")
        ),
        None,
    )
    if llm and llm.get("replayed_from"):  # a replay asks no endpoint: say whose answers it replayed
        who = f"LLM answers replayed from {llm['replayed_from']} (recorded from {llm.get('model') or '?'})"
    elif llm:
        who = f"LLM {llm.get('model')} at {llm.get('endpoint') or 'the default endpoint'}"
    else:
        who = "no LLM call made"
    return (
        f"{len(config.tasks)} task(s), {config.seeds} seed(s), {config.steps:,} training steps per policy, "
        f"{config.backend} back end; {who}"
    )


def _html_table(md: str) -> str:
    """The Markdown tables as HTML tables (no Markdown dependency)."""
    out, table = [], False
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            tag = "th" if not table else "td"
            if not table:
                out.append("<table>")
                table = True
            out.append("<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>")
        else:
            if table:
                out.append("</table>")
                table = False
            if line.strip():
                out.append(f"<p>{html.escape(line.strip('*'))}</p>")
    if table:
        out.append("</table>")
    return "\n".join(out)

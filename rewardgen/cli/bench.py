"""``rewardgen bench``: reward-design methods and LLMs compared across tasks, with baselines."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from rewardgen.cli import app, console, parse_duration, parse_steps
from rewardgen.cli.common import Hyperparams
from rewardgen.cli.llm import LLMBaseURL, LLMBudget, LLMConfig, LLMMaxCalls, LLMMode, LLMModel
from rewardgen.errors import RewardgenError


def _names(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@app.command()
def bench(
    tasks: Annotated[
        str | None, typer.Option(help="comma-separated task ids, e.g. hopper-run,halfcheetah-run")
    ] = None,
    suite: Annotated[
        str | None,
        typer.Option(
            help="a named set of tasks: locomotion, metaworld, nethack (ONI against the env's own "
            "reward) or vlm (humanoid poses scored by CLIP; slow on CPU)"
        ),
    ] = None,
    methods: Annotated[
        str | None,
        typer.Option(
            help="comma-separated: text2reward, evolution, icpl (searches), oni, vlm; default: the "
            "suite's, else text2reward,evolution"
        ),
    ] = None,
    baselines: Annotated[
        str | None,
        typer.Option(
            help="reference (the task's own reward), sparse (success only), extrinsic (the env's "
            "reward); '' for none; default: the suite's, else reference,sparse"
        ),
    ] = None,
    judge: Annotated[
        str, typer.Option(help="ICPL's judge: synthetic[:noise=0.1] (a proxy, no person)")
    ] = "synthetic",
    seeds: Annotated[int, typer.Option(help="seeds per task and method")] = 1,
    steps: Annotated[str, typer.Option(help="training steps of every policy")] = "200000",
    samples: Annotated[int | None, typer.Option(help="candidates per round; default each method's")] = None,
    iterations: Annotated[int | None, typer.Option(help="rounds; default each method's")] = None,
    time_budget: Annotated[str | None, typer.Option(help="each search's --time-budget, e.g. 5m")] = None,
    until_success: Annotated[bool, typer.Option(help="each search stops at its first success")] = False,
    workers: Annotated[int | None, typer.Option(help="policies trained at once; default: cores")] = None,
    parallel_cells: Annotated[
        int, typer.Option(help="searches run at once, their candidates sharing the --workers (or Ray)")
    ] = 1,
    executor: Annotated[str, typer.Option(help="local (process pool) or ray")] = "local",
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster address")] = None,
    backend: Annotated[str, typer.Option(help="sb3 or sf")] = "sb3",
    n_envs: Annotated[
        int | None, typer.Option(help="envs of the policies trained once (baselines, oni, vlm)")
    ] = None,
    vlm_model: Annotated[
        str, typer.Option(help="vlm cells' model: hub name, local folder or open_clip:MODEL/PRETRAINED")
    ] = "openai/clip-vit-base-patch32",
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda")] = "auto",
    oni_reward: Annotated[
        str, typer.Option(help="oni cells' reward model: retrieval, classification or ranking")
    ] = "retrieval",
    hyperparams: Hyperparams = "default",
    caption: Annotated[
        str | None, typer.Option(help="the tables' caption; default: tasks, steps, the LLM")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="print the plan (cells, steps, LLM calls, time) and stop")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="benchmark directory; default runs/bench-<utc>")] = None,
    resume: Annotated[Path | None, typer.Option(help="continue a killed benchmark in DIR")] = None,
    llm_model: LLMModel = None,
    llm_base_url: LLMBaseURL = None,
    llm_budget_usd: LLMBudget = None,
    llm_max_calls: LLMMaxCalls = None,
    llm: LLMMode = None,
    llm_config: LLMConfig = None,
) -> None:
    """Compare reward-design methods (and LLMs) across tasks: each method per task and seed (a
    search, or ONI / VLM-RM trained once), baselines trained the same way, Eureka's normalized
    score; bench.json, bench.md and bench.html in the benchmark directory."""
    import json
    import time

    from rewardgen.bench import SUITES, BenchConfig, plan_text, run_bench, suite_tasks
    from rewardgen.methods import METHODS, SEARCH_METHODS

    if resume is not None:
        saved = resume / "bench.json"
        if not saved.is_file():
            raise RewardgenError(f"{resume} holds no benchmark (no bench.json)")
        config = BenchConfig.from_record(json.loads(saved.read_text())["config"])
        root = resume
    else:
        if (tasks is None) == (suite is None):
            raise RewardgenError("give --tasks T1,T2 or --suite NAME (or --resume DIR)")
        chosen = suite_tasks(suite) if suite else _names(tasks)
        defaults = SUITES[suite] if suite else {}
        if methods is None:
            # the searches that need no person: a benchmark's judge would be synthetic anyway
            unjudged = [m for m in SEARCH_METHODS if not METHODS[m].judged]
            methods = ",".join(defaults.get("methods", unjudged))
        if baselines is None:
            baselines = ",".join(defaults.get("baselines", ("reference", "sparse")))
        config = BenchConfig(
            tasks=chosen,
            methods=_names(methods),
            seeds=seeds,
            steps=parse_steps(steps) or 0,
            samples=samples,
            iterations=iterations,
            judge=judge,
            baselines=_names(baselines),
            workers=workers or (os.cpu_count() or 1),
            parallel_cells=parallel_cells,
            executor=executor,
            ray_address=ray_address,
            time_budget_s=parse_duration(time_budget),
            until_success=until_success,
            profile=hyperparams,
            backend=backend,
            suite=suite,
            n_envs=n_envs,
            vlm_model=vlm_model,
            device=device,
            oni_reward=oni_reward,
        )
        root = out or Path("runs") / time.strftime("bench-%Y%m%d-%H%M%S", time.gmtime())
    console.print(plan_text(config, root), highlight=False, soft_wrap=True)
    if dry_run:
        return
    replay = llm[len("replay:") :] if llm and llm.startswith("replay:") else None
    if llm and replay is None:
        raise RewardgenError(f"--llm {llm!r} not understood: use --llm replay:BENCH_DIR")
    if resume is not None and replay is None:  # the cells' LLM, unless the command line names another
        from rewardgen.llm.options import follow_record
        from rewardgen.runs import RunDir

        cells = sorted(root.glob("cells/*/*/seed*"))
        recorded = next((m["llm"] for p in cells if (m := RunDir.read_manifest(p)).get("llm")), None)
        if recorded is not None:
            llm_model, llm_base_url, line = follow_record(recorded, llm_model, llm_base_url)
            console.print(line, highlight=False, soft_wrap=True)

    def client_for(cell, folder):
        from rewardgen.llm import LLMClient
        from rewardgen.llm.options import settings_from_options

        settings = settings_from_options(
            llm_model,
            llm_base_url,
            llm_budget_usd,
            llm_max_calls,
            llm_config,
            cache_path=root / "llm-cache.sqlite",
        )
        return LLMClient(
            settings,
            transcript=folder / "llm" / "transcript.jsonl",
            replay=cell.folder(Path(replay)) if replay else None,
            replay_in_order=replay is not None,
        )

    from rewardgen.cli.synth import _log

    result = run_bench(
        config, root, client_for, log=_log, caption=caption, replay=Path(replay) if replay else None
    )
    print((root / "bench.md").read_text())  # Markdown as it is: tables a terminal must not fold
    console.print(f"bench: [bold]{root / 'bench.html'}[/bold] (every number in {root / 'bench.json'})")
    if result["status"] != "finished":
        console.print("some cells did not finish: `rewardgen bench --resume " + str(root) + "` goes on")
        raise typer.Exit(1)

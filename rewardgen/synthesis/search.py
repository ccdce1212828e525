"""The reward-code search: Text2Reward (one round) and Eureka-style evolution (several rounds).

Each round asks the LLM for K rewards, trains and evaluates them (:mod:`.halving`,
:mod:`.candidate`), and a :class:`~rewardgen.synthesis.selection.Selector` picks the round's
best and writes the next round's feedback: by the success metric and reward statistics
(Eureka's reflection) by default; a judge of the policies' videos for ICPL.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable
from typing import Any

from rewardgen.llm import BudgetExceededError, LLMClient
from rewardgen.runs import RunDir
from rewardgen.synthesis.candidate import Candidate, final_seeds, record_videos
from rewardgen.synthesis.config import SearchConfig
from rewardgen.synthesis.executor import Executor, make_executor
from rewardgen.synthesis.halving import evaluate_round, top_up_round
from rewardgen.synthesis.methods import get_method
from rewardgen.synthesis.progress import ProgressFn, quiet
from rewardgen.synthesis.prompts import initial_messages
from rewardgen.synthesis.report import write_report
from rewardgen.synthesis.retrieval import few_shot_examples
from rewardgen.synthesis.selection import Selector
from rewardgen.tasks import get_task
from rewardgen.train import check_backend

__all__ = ["synthesize"]


def synthesize(
    config: SearchConfig,
    client: LLMClient,
    run: RunDir,
    executor: Executor | None = None,
    log: Callable[[str], None] = quiet,
    progress: ProgressFn | None = None,
    selector: Selector | None = None,
) -> dict[str, Any]:
    """Run the search in ``run``; returns the summary also written to ``summary.json``.

    Candidates already finished in ``run`` (a killed run) are not evaluated again, and the LLM
    cache answers the repeated requests, so calling it again on the same run directory resumes.
    A budget stop ends the search cleanly: candidates so far are kept and the manifest says why.
    ``report.html`` is rewritten after every round; ``log`` receives one line per stage and
    ``progress`` the steps and success metric of the candidates in training, every few seconds.
    ``selector`` chooses the best candidates and writes each round's feedback (default: by the
    success metric, with Eureka's reflection on the reward components; for ICPL, the judge of
    ``config.judge`` compares each round's policies).
    """
    method = get_method(config.method)
    check_backend(config.backend)  # before any LLM call: a missing stack is said up front
    task = get_task(config.task)
    run.update(config=config.record())  # what `--resume` and `rewardgen refine` read back
    own_executor = executor is None
    executor = executor or make_executor(
        config.executor, config.workers, config.ray_address, config.gpus_per_candidate
    )
    selector = selector or method.selector(config, task, run, executor, client, log)
    iterations = method.rounds(config)
    examples = few_shot_examples(task, config.goal, config.few_shot, config.retrieval)
    messages = initial_messages(task, config.goal, examples)
    candidates: list[Candidate] = []
    best: Candidate | None = None
    stopped = None
    # the executor, then the selector, close after the run's end is written
    with contextlib.ExitStack() as closing, _marked_if_interrupted(run):
        closing.callback(selector.close)  # e.g. the web judge's page: it tells an open tab
        if own_executor:
            closing.callback(executor.close)
        for it in range(iterations):
            round_dir = run.path / f"iter{it}"
            round_dir.mkdir(exist_ok=True)
            (round_dir / "prompt.md").write_text(messages[-1]["content"])
            log(f"round {it + 1}/{iterations}: asking {client.settings.model} for {config.samples} rewards")
            try:
                replies = client.complete(
                    messages, n=config.samples, temperature=config.temperature, seed=config.seed + it
                )
            except BudgetExceededError as exc:
                stopped = str(exc)
                break
            round_cands = evaluate_round(
                task, [r.text for r in replies], round_dir, it, config, executor, log, progress
            )
            if selector.top_up:  # a judge compares K policies: replace those that did not train
                round_cands, stopped = top_up_round(
                    task, round_cands, messages, round_dir, it, config, client, executor, log, progress
                )
            candidates.extend(round_cands)
            best = selector.keep(best, selector.select(task, round_dir.name, round_cands))
            run.update(
                progress={
                    "iteration": it,
                    "candidates": [c.summary() for c in candidates],
                    "best": best.summary() if best else None,
                },
                best=best.summary() if best else None,
            )
            write_report(run.path)
            if best is not None:
                log(f"round {it + 1}: best so far {best.path.relative_to(run.path)}, score {best.score:.4g}")  # type: ignore[union-attr]
            if it + 1 < iterations:
                try:  # a selector may ask the LLM too (ICPL's summary of earlier rounds)
                    messages = [*messages[:2], selector.feedback(task, round_cands, best)]
                except BudgetExceededError as exc:
                    stopped = str(exc)
                    break
        if best and not stopped and config.final_seeds > 0:
            log(f"retraining the best reward with {config.final_seeds} more seeds")
        final = final_seeds(task, best, run, config, executor) if best and not stopped else []
        if not stopped and config.videos > 0:
            log(f"filming the {config.videos} best policies")
            record_videos(task, candidates, config, executor, best, log)
        if best is not None and best.path is not None:
            shutil.copy(best.path / "reward.py", run.file("best_reward.py"))
        summary = {
            "task": task.id,
            "goal": config.goal or task.goal,
            "method": config.method,
            "candidates": [c.summary() for c in candidates],
            "best": best.summary() if best else None,
            "final_seeds": final,
            "llm_usage": client.usage.__dict__,
            "stopped": stopped,
        }
        run.file("summary.json").write_text(json.dumps(summary, indent=2, default=str))
        run.update(
            status="stopped" if stopped else "finished",
            reason=stopped,
            best=summary["best"],
            final_seeds=final,
            llm_usage=client.usage.__dict__,
        )
        write_report(run.path)
    return summary


@contextlib.contextmanager
def _marked_if_interrupted(run: RunDir) -> Any:
    """Ctrl-C or SIGTERM (the CLI turns it into KeyboardInterrupt): the manifest says
    ``interrupted``, not ``running`` forever; ``--resume`` carries on from what was kept."""
    try:
        yield
    except KeyboardInterrupt:
        run.update(status="interrupted")
        raise

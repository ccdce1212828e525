"""Text2Reward's refinement with a person's words: ``rewardgen refine RUN_DIR --feedback "..."``.

A person watches the policy of a reward (the search's best, or the latest refinement) and says
what is wrong ("it flips over"). The model gets its own code back, what the policy did and the
person's words, and writes corrected rewards; each is checked, trained and filmed like any
candidate, in ``RUN_DIR/refine<n>/``. Refinements chain: the next one starts from this one.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rewardgen.errors import RewardgenError
from rewardgen.llm import LLMClient
from rewardgen.llm.transcript import transcript_usage
from rewardgen.runs import CandidateRecord, RunDir, StopSignal
from rewardgen.synthesis.candidate import Candidate, curves, record_videos
from rewardgen.synthesis.clock import SearchClock, format_seconds
from rewardgen.synthesis.config import SearchConfig
from rewardgen.synthesis.executor import Executor, make_executor
from rewardgen.synthesis.halving import evaluate_round
from rewardgen.synthesis.progress import ProgressFn
from rewardgen.synthesis.prompts import initial_messages, refine_message
from rewardgen.synthesis.report import round_dirs, write_report
from rewardgen.synthesis.retrieval import few_shot_examples
from rewardgen.synthesis.selection import best_candidate
from rewardgen.tasks import get_task

__all__ = ["refine"]


def _parent(run: RunDir, candidate: str | None) -> Candidate:
    if candidate is not None:
        folder = run.path / candidate
        cand = Candidate.load(folder)
        if cand is None:
            raise RewardgenError(
                f"no finished candidate at {folder}: give one such as iter0/cand1 (see report.html)"
            )
        return cand
    for ref in reversed(run.manifest.get("refinements", [])):
        if ref.get("best"):
            cand = Candidate.load(run.path / ref["best"])
            if cand is not None:
                return cand
    best = run.manifest.get("best")
    cand = Candidate.load(Path(best["path"])) if best and best.get("path") else None
    if cand is None:
        raise RewardgenError(
            f"{run.path} has no trained reward to refine yet: finish the search, or pick a "
            "candidate with --candidate iter0/cand0"
        )
    return cand


def refine(
    run: RunDir,
    feedback: str,
    client: LLMClient,
    candidate: str | None = None,
    samples: int = 1,
    steps: int | None = None,
    executor: Executor | None = None,
    log: Callable[[str], None] | None = None,
    progress: ProgressFn | None = None,
    time_budget_s: float | None = None,
    until_success: bool = False,
) -> dict[str, Any]:
    """Write ``samples`` rewards that answer ``feedback`` about ``candidate`` (default: the
    latest refinement, else the search's best); train, film and score them in ``refine<n>/``.
    ``time_budget_s``: the refinement's wall-clock time (its steps fitted to it at the speed the
    search's candidates trained; training stopped when it is spent); ``until_success``: the
    others stop once one refined reward's policy succeeds.

    Returns the refinement record also appended to the manifest's ``refinements``.
    """
    if not feedback.strip():
        raise RewardgenError("--feedback is empty: say what the policy does wrong, e.g. 'it flips over'")
    if samples < 1:
        raise RewardgenError(f"--samples must be at least 1, got {samples}")
    clock = SearchClock(time_budget_s)
    log = log or (lambda line: None)
    config = SearchConfig.from_run(run.path)
    config = dataclasses.replace(
        config, steps=steps or config.steps, time_budget_s=time_budget_s, until_success=until_success
    )
    if time_budget_s is not None:
        earlier = [
            CandidateRecord.from_dict(c) for c in (run.manifest.get("progress") or {}).get("candidates", [])
        ]
        plan = clock.plan(config.steps, samples, min(samples, config.workers), earlier)
        if not plan.fits:
            raise RewardgenError(f"--time-budget {format_seconds(time_budget_s)} is too short: {plan.why}")
        if plan.steps != config.steps:
            log(f"{plan.steps:,} steps per refined reward to fit the time budget ({plan.why})")
        config = dataclasses.replace(config, steps=plan.steps)
    task = get_task(config.task)
    parent = _parent(run, candidate)
    assert parent.path is not None
    number = 1 + sum(1 for d in round_dirs(run.path) if d.name.startswith("refine"))
    round_dir = run.path / f"refine{number}"
    round_dir.mkdir()
    (round_dir / "feedback.txt").write_text(feedback.strip() + "\n")
    code = parent.code or (parent.path / "reward.py").read_text()
    parent_run = parent.path / "train"
    evaluation = (RunDir.open(parent_run).eval_summary() if parent_run.is_dir() else None) or parent.eval
    trained = parent.status == "trained"
    examples = few_shot_examples(task, config.goal, config.few_shot, config.retrieval)
    messages = [
        *initial_messages(task, config.goal, examples),
        {"role": "assistant", "content": f"```python\n{code.strip()}\n```"},
        refine_message(task, parent, evaluation, curves(parent) if trained else None, feedback),
    ]
    (round_dir / "prompt.md").write_text(messages[-1]["content"])
    replies = client.complete(
        messages, n=samples, temperature=config.temperature, seed=config.seed + 1000 + number
    )
    own_executor = executor is None
    executor = executor or make_executor(
        config.executor, min(samples, config.workers), config.ray_address, config.gpus_per_candidate
    )
    # after the rounds the search ran (not the ones it planned: it may have ended early)
    iteration = sum(1 for d in round_dirs(run.path) if d.name.startswith("iter")) + number - 1
    stop = StopSignal.of_search(run.path)
    stop.clear()
    clock.start_alarm(stop)
    try:
        log(f"training {samples} refined reward{'s' if samples > 1 else ''} for {config.steps:,} steps")
        cands = evaluate_round(
            task, [r.text for r in replies], round_dir, iteration, config, executor, log, progress
        )
        record_videos(task, cands, dataclasses.replace(config, videos=samples), executor, log=log)
    finally:
        clock.cancel()
        stop.clear()
        if own_executor:
            executor.close()
    best = best_candidate(cands)
    record = {
        "round": round_dir.name,
        "feedback": feedback.strip(),
        "parent": str(parent.path.relative_to(run.path)),
        "candidates": [c.summary() for c in cands],
        "best": str(best.path.relative_to(run.path)) if best and best.path else None,
        "llm": dict(client.usage.__dict__),  # this refinement's own calls
    }
    if best is not None and best.path is not None:
        shutil.copy(best.path / "reward.py", run.file("refined_reward.py"))
    # the run's use in all: every request it made is in its transcript, the search's and each
    # refinement's (the client here counted only its own)
    total = transcript_usage(run.file("llm") / "transcript.jsonl")
    run.update(refinements=[*run.manifest.get("refinements", []), record], llm_usage=total)
    summary_path = run.file("summary.json")
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        summary["refinements"] = run.manifest["refinements"]
        summary_path.write_text(json.dumps(summary, indent=2, default=str))
    write_report(run.path)
    return record

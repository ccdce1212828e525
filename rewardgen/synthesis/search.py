"""The reward-code search: Text2Reward (one round) and Eureka-style evolution (several rounds).

Each round asks the LLM for K rewards, trains and evaluates them (:mod:`.halving`,
:mod:`.candidate`), and a :class:`~rewardgen.synthesis.selection.Selector` picks the round's
best and writes the next round's feedback: by the success metric and reward statistics
(Eureka's reflection) by default; a judge of the policies' videos for ICPL.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from typing import Any

from rewardgen.feedback.room import rater_slug
from rewardgen.llm import BudgetExceededError, LLMClient
from rewardgen.programs import check_sandbox
from rewardgen.runs import RunDir, StopSignal
from rewardgen.synthesis.candidate import (
    Candidate,
    final_seeds,
    record_videos,
    seeds_and_films,
    seeds_succeeded,
)
from rewardgen.synthesis.clock import SearchClock, format_seconds, time_spent
from rewardgen.synthesis.config import SearchConfig
from rewardgen.synthesis.executor import Executor, make_executor
from rewardgen.synthesis.halving import ask_lineages, evaluate_round, top_up_round, write_prompts
from rewardgen.synthesis.methods import get_method
from rewardgen.synthesis.progress import ProgressFn, quiet
from rewardgen.synthesis.prompts import initial_messages
from rewardgen.synthesis.report import write_report
from rewardgen.synthesis.retrieval import few_shot_examples
from rewardgen.synthesis.selection import Selector
from rewardgen.tasks import get_task
from rewardgen.text import plural
from rewardgen.training import check_backend

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
    run.update(sandbox=check_sandbox(config.sandbox))  # its walls stand here, or we stop now
    own_executor = executor is None
    executor = executor or make_executor(
        config.executor, config.workers, config.ray_address, config.gpus_per_candidate
    )
    selector = selector or method.selector(config, task, run, executor, client, log)
    iterations = method.rounds(config)
    examples = few_shot_examples(task, config.goal, config.few_shot, config.retrieval)
    messages = initial_messages(task, config.goal, examples)
    prompts = {"": messages}  # the next round's messages by lineage (ICPL following each rater: theirs)
    candidates: list[Candidate] = []
    best: Candidate | None = None
    stopped = None  # why the search ended early against its will (the LLM budget)
    ended = None  # why it ended before its rounds: its first success, its time budget
    clock = SearchClock(config.time_budget_s)
    stop = StopSignal.of_search(run.path)
    stop.clear()  # a resumed search goes on
    wall_start = time.time()
    if config.time_budget_s is not None or config.until_success:
        log(_plan_line(config, clock, iterations))
    # the executor, then the selector, close after the run's end is written
    with contextlib.ExitStack() as closing, _marked_if_interrupted(run):
        closing.callback(selector.close)  # e.g. the web judge's page: it tells an open tab
        if own_executor:
            closing.callback(executor.close)
        closing.callback(clock.cancel)
        clock.start_alarm(stop)
        cut_at = None  # the steps a round cut at its share reached: the next may train as short
        for it in range(iterations):
            plan = clock.plan(config.steps, config.samples, config.workers, candidates, cut_at=cut_at)
            if not plan.fits or stop.requested():
                ended = stop.reason() or plan.why
                log(f"the search ends before round {it + 1}: {ended}")
                break
            round_config = (
                config if plan.steps == config.steps else dataclasses.replace(config, steps=plan.steps)
            )
            if plan.steps != config.steps:
                log(f"round {it + 1}: {plan.steps:,} steps per candidate ({plan.why})")
            round_dir = run.path / f"iter{it}"
            round_dir.mkdir(exist_ok=True)
            write_prompts(round_dir, prompts)
            asked = plural(config.samples, "reward")
            lines = f" ({len(prompts)} lineages: {', '.join(prompts)})" if len(prompts) > 1 else ""
            log(f"round {it + 1}/{iterations}: asking {client.settings.model} for {asked}{lines}")
            round_start = time.monotonic()
            # a round spends at most its share of the time left: the rounds after it (new rewards,
            # or the best continued) get theirs, rather than the first round spending it all
            clock.start_round_alarm(stop, rounds_left=iterations - it)
            usage_before = dataclasses.asdict(client.usage)
            try:
                texts, lineage = ask_lineages(client, prompts, config.samples, config, seed=config.seed + it)
            except BudgetExceededError as exc:
                clock.end_round(stop)
                stopped = str(exc)
                break
            record = {"round": round_dir.name, "llm_s": round(time.monotonic() - round_start, 2)}
            record["steps"] = plan.steps
            clock.rounds.append(record)
            round_cands = evaluate_round(
                task, texts, round_dir, it, round_config, executor, log, progress, earlier=candidates
            )
            if (
                selector.top_up and not stop.requested()
            ):  # a judge compares K policies: replace those that did not train
                round_cands, lineage, stopped = top_up_round(
                    task, round_cands, prompts, lineage, round_dir, it, round_config, client, executor, log,
                    progress,
                )  # fmt: skip
            if len(prompts) > 1:  # which candidates each lineage's prompt wrote
                record["lineages"] = {
                    name: [c.path.name for c, of in zip(round_cands, lineage, strict=True) if of == name]  # type: ignore[union-attr]
                    for name in prompts
                }
            if (cut := clock.end_round(stop)) is not None:
                record["cut"] = cut
                log(f"round {it + 1}: {cut}: its candidates stopped, saved and evaluated")
                cut_at = max((c.steps or 0 for c in round_cands if c.status == "trained"), default=0) or None
            record["wall_s"] = round(time.monotonic() - round_start, 2)
            record["llm"] = _usage_since(usage_before, client)
            candidates.extend(round_cands)
            best = selector.keep(best, selector.select(task, round_dir.name, round_cands))
            winners = [c for c in round_cands if c.status == "trained" and c.succeeded]
            if winners and not any("first_success_s" in r for r in clock.rounds[:-1]):
                record["first_success_s"] = _first_success_s(winners, round_start - clock.started)
            if not winners and not stop.requested():  # a rising curve may need time, not a new reward
                # no round after this one (the last, or none fits the time left): the time is the best's
                last = it + 1 >= iterations
                last = (
                    last
                    or not clock.plan(
                        config.steps, config.samples, config.workers, candidates, cut_at=cut_at
                    ).fits
                )
                best, won = _continue_learning(
                    task,
                    best,
                    candidates,
                    clock,
                    round_config,
                    executor,
                    log,
                    stop,
                    last_chance=last,
                )
                if won is not None:
                    winners = [won]
                    record.setdefault("first_success_s", round(time.monotonic() - clock.started, 1))
            if config.until_success and winners:
                ended = f"{winners[0].label} succeeded"
                if (asked := stop.asked_at()) is not None:  # the winner's own stop signal: to the second
                    record["first_success_s"] = round(asked - wall_start, 1)
            run.update(
                progress={
                    "iteration": it,
                    "candidates": [c.summary() for c in candidates],
                    "best": best.summary() if best else None,
                },
                best=best.summary() if best else None,
                rounds=clock.rounds,
            )
            write_report(run.path)
            if best is not None and best.success_metric is not None:  # as the task states it
                log(f"round {it + 1}: best so far {best.label}, success metric {best.success_metric:.4g}")
            if ended is None:
                ended = stop.reason()
            if ended is not None:
                log(f"the search ends: {ended}")
                break
            if it + 1 < iterations:
                try:  # a selector may ask the LLM too (ICPL's summary of earlier rounds)
                    t0 = time.monotonic()
                    if selector.lineages:  # a prompt per lineage (ICPL following each rater)
                        feedback = selector.lineage_feedback(task, round_cands, best)
                        prompts = {name: [*messages[:2], fb] for name, fb in feedback.items()}
                    else:
                        prompts = {"": [*messages[:2], selector.feedback(task, round_cands, best)]}
                    record["llm_s"] = round(record["llm_s"] + time.monotonic() - t0, 2)
                    record["llm"] = _usage_since(usage_before, client)
                except BudgetExceededError as exc:
                    stopped = str(exc)
                    break
        clock.cancel()
        stop.clear()  # the final seeds and videos are not the search's candidates
        if best is not None and best.path is not None:  # the result first, then seeds and films
            shutil.copy(best.path / "reward.py", run.file("best_reward.py"))
            run.update(best=best.summary())
            log(_result_line(task, best, run))
        raters = _raters_rewards(selector.preferred_by(), run, log)  # a room: each rater's reward
        final: list[dict[str, Any]] = []
        capped = None
        if best and not stopped and config.final_seeds > 0:
            if (left := _time_left(clock, "retraining the best reward with more seeds", log)) is not None:
                steps = _final_steps(best, config)
                log(
                    f"retraining the best reward with {plural(config.final_seeds, 'more seed')}, "
                    f"until success or {steps:,} steps"
                )
                capped = dataclasses.replace(
                    config,
                    steps=steps,
                    candidate_budget_s=min(left, config.candidate_budget_for(steps)),
                    # evaluated as often as the candidates were, not ten times over fewer steps
                    eval_every=config.candidate_eval_every(config.steps),
                )
        filming = None
        if not stopped and config.videos > 0:
            if (left := _time_left(clock, "filming", log)) is not None:
                filmed = min(config.videos, sum(1 for c in candidates if c.status == "trained"))
                log("filming the best policy" if filmed == 1 else f"filming the {filmed} best policies")
                filming = left
        if capped is not None and best is not None and filming is not None:  # films beside the seeds
            final, _ = seeds_and_films(
                task, best, run, capped, candidates, config, executor, log, within_s=filming
            )
        elif capped is not None and best is not None:
            final = final_seeds(task, best, run, capped, executor)
        elif filming is not None:
            record_videos(task, candidates, config, executor, best, log, within_s=filming)
        if capped is not None and best is not None and task.metric.line is not None:
            seeds = seeds_succeeded(best, final)
            log(f"the best reward succeeds on {seeds['succeeded']} of its {seeds['of']} seeds")
        spent = time_spent(clock.rounds, candidates, time.monotonic() - clock.started)
        summary = {
            "task": task.id,
            "goal": config.goal or task.goal,
            "method": config.method,
            "candidates": [c.summary() for c in candidates],
            "best": best.summary() if best else None,
            "raters": raters,
            "final_seeds": final,
            "seeds": seeds_succeeded(best, final) if best and task.metric.line is not None else None,
            "llm_usage": client.usage.__dict__,
            "stopped": stopped,
            "ended": ended,
            "rounds": clock.rounds,
            "time": spent,
        }
        run.file("summary.json").write_text(json.dumps(summary, indent=2, default=str))
        run.update(
            status="stopped" if stopped else "finished",
            reason=stopped,
            ended=ended,
            best=summary["best"],
            raters=raters,
            final_seeds=final,
            seeds=summary["seeds"],
            llm_usage=client.usage.__dict__,
            rounds=clock.rounds,
            time=spent,
        )
        write_report(run.path)
        log("time: " + ", ".join(f"{k.removesuffix('_s')} {format_seconds(v)}" for k, v in spent.items()))
    return summary


def _continue_learning(
    task: Any,
    best: Candidate | None,
    candidates: list[Candidate],
    clock: SearchClock,
    config: SearchConfig,
    executor: Executor,
    log: Callable[[str], None],
    stop: StopSignal,
    last_chance: bool = False,
) -> tuple[Candidate | None, Candidate | None]:
    """Train the search's best candidate on, from its saved state, while its curve projects to
    the task's line within the time left (:mod:`.continuation`); each decision is logged and kept
    in the round's record; after the last round (``last_chance``) the time left goes to the best
    unless its curve clearly falls below the line. Returns the best and, if it succeeded, the
    candidate that did."""
    from rewardgen.synthesis.candidate import _trained_steps, continue_candidate
    from rewardgen.synthesis.clock import _steps_per_s
    from rewardgen.synthesis.continuation import _curve, outlook

    if clock.time_budget_s is None:  # a search without a time budget trains its rounds as planned
        return best, None
    while best is not None and best.status == "trained" and best.path is not None and not stop.requested():
        speed = _steps_per_s(candidates)
        seen = outlook(task, best, clock, speed, clock.overhead_s(candidates), last_chance=last_chance)
        log("  " + seen.text())
        clock.rounds[-1].setdefault("decisions", []).append(seen.to_dict())
        if not seen.go_on:
            return best, None
        trained = max(int(best.steps or 0), _trained_steps(best.path / "train"))  # rollouts round up
        target = trained + int(seen.more_steps or 0)
        points = len(_curve(best.path, task))
        going_on = dataclasses.replace(config, eval_every=seen.every)  # as often as its curve so far
        (result,) = executor.map(
            continue_candidate,
            [(task, best, going_on, target)],
            folders=[[best.path]],
            signals=[[stop.path]],
        )
        if isinstance(result, BaseException):
            log(f"  {best.label} could not go on: {result}")
            return best, None
        candidates[:] = [result if c.label == result.label else c for c in candidates]
        best = result
        if best.succeeded:
            return best, best
        if best.path is None or len(_curve(best.path, task)) <= points:  # nothing new to judge by
            log(f"  {best.label}: its continuation added no evaluation to its curve; the clock stops it")
            return best, None
    return best, None


def _raters_rewards(
    preferred: dict[str, Candidate], run: RunDir, log: Callable[[str], None]
) -> dict[str, Any] | None:
    """Each rater's reward (a room: the one they preferred last; following each rater, their
    lineage's) as ``best_reward-<rater>.py``, said in a line each; None without a room."""
    if not preferred:
        return None
    out = {}
    for rater, cand in preferred.items():
        assert cand.path is not None
        saved = run.file(f"best_reward-{rater_slug(rater)}.py")
        shutil.copy(cand.path / "reward.py", saved)
        log(f"{rater}'s reward: {saved} ({cand.label})")
        out[rater] = {**cand.summary(), "file": saved.name}
    return out


def _final_steps(best: Candidate, config: SearchConfig) -> int:
    """The steps each final seed may train (it stops at its first success): half as many again as
    the best needed where it succeeded (a reward that works on other seeds needs about as many),
    else the search's steps.

    Example:
        >>> from rewardgen.runs import EvalSummary
        >>> won = EvalSummary((), 0.0, 0.0, 0.0, 1.0, succeeded=True)
        >>> _final_steps(Candidate(0, 0, "trained", steps=40_960, eval=won), SearchConfig("hopper-jump"))
        61440
    """
    if best.succeeded and best.steps:
        return min(config.steps, int(1.5 * best.steps))
    return config.steps


def _result_line(task: Any, best: Candidate, run: RunDir) -> str:
    """The search's result in one line, as soon as it is known (before final seeds and films)."""
    metric = best.success_metric
    if metric is None:
        return f"best reward: {run.file('best_reward.py')} ({best.label})"
    verdict = ""
    if task.metric.line is not None:  # the verdict of its final evaluation, by the task's rule
        verdict = "; it meets" if best.succeeded else "; short of"
        verdict += " the task's success rule"
    return (
        f"best reward: {run.file('best_reward.py')} ({best.label}, success metric {metric:.4g}{verdict}: "
        f"{task.metric.describe()})"
    )


def _time_left(clock: SearchClock, doing: str, log: Callable[[str], None]) -> float | None:
    """Seconds of the search's time budget left for ``doing`` (inf without a budget); None, said,
    when less than a few are."""
    left = clock.left()
    if left < 5.0:
        log(f"no time left for {doing} (the search's --time-budget is spent)")
        return None
    return left


def _first_success_s(winners: list[Candidate], round_offset_s: float) -> float:
    """Seconds from the search's start to its first policy that met the success metric: the
    round's start, the candidate's smoke test, then its training time to the first successful
    evaluation (its whole training and evaluation where only the final evaluation succeeded)."""
    times = []
    for c in winners:
        within = c.first_success["wall_time_s"] if c.first_success else (c.wall_s or 0.0)
        times.append(round_offset_s + c.timing.get("smoke_s", 0.0) + float(within))
    return round(min(times), 1)


def _usage_since(before: dict[str, Any], client: LLMClient) -> dict[str, Any]:
    """What the client spent since ``before`` (a snapshot of its usage)."""
    now = dataclasses.asdict(client.usage)
    return {
        k: round(now[k] - before.get(k, 0), 6)
        for k in ("calls", "cache_hits", "prompt_tokens", "completion_tokens", "cost_usd")
    }


def _plan_line(config: SearchConfig, clock: SearchClock, iterations: int) -> str:
    """The search's plan in one line, before it starts."""
    parts = [f"plan: up to {iterations} round(s) of {config.samples} candidates x {config.steps:,} steps"]
    parts.append(f"{config.workers} at a time")
    if config.time_budget_s is not None:
        parts.append(
            f"within {format_seconds(config.time_budget_s)} (training stops "
            f"{format_seconds(clock.reserve_s())} before it; a round spends at most its share of the time "
            "left, and later rounds' steps fit the time left)"
        )
    every = config.candidate_eval_every(config.steps)
    if every:
        parts.append(f"candidates evaluated every {every:,} steps and stopped at success")
    if config.until_success:
        parts.append("the search stops at the first candidate that succeeds")
    return "; ".join(parts)


@contextlib.contextmanager
def _marked_if_interrupted(run: RunDir) -> Any:
    """Ctrl-C or SIGTERM (the CLI turns it into KeyboardInterrupt): the manifest says
    ``interrupted``, not ``running`` forever; ``--resume`` carries on from what was kept."""
    try:
        yield
    except KeyboardInterrupt:
        run.update(status="interrupted")
        raise

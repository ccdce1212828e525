"""One round of a search: its candidates trained in parallel, by successive halving when asked
(all train a fraction of the budget, the better half goes on)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rewardgen.llm import BudgetExceededError, LLMClient
from rewardgen.runs import RunDir, StopSignal
from rewardgen.synthesis.candidate import (
    Candidate,
    continue_candidate,
    evaluate_candidate,
    program_key,
    reuse,
    saved,
)
from rewardgen.synthesis.config import SearchConfig
from rewardgen.synthesis.executor import Executor
from rewardgen.synthesis.progress import ProgressFn, quiet, watch_candidates
from rewardgen.tasks import TaskSpec
from rewardgen.text import plural

__all__ = [
    "ask_lineages",
    "evaluate_round",
    "halving_rungs",
    "rung_score",
    "split_samples",
    "top_up_round",
    "write_prompts",
]


def halving_rungs(steps: int, samples: int, early_stop: bool) -> list[int]:
    """Training steps of each successive-halving rung: K candidates train ``steps / 2**r`` steps,
    the better half goes on, until one is left (``[s/4, s/2, s]`` for K=4), or ``[steps]``.

    Example:
        >>> halving_rungs(200_000, 4, early_stop=True)
        [50000, 100000, 200000]
    """
    if not early_stop or samples < 2:
        return [steps]
    halvings = math.ceil(math.log2(samples))
    return [steps // 2**k for k in range(halvings, 0, -1)] + [steps]


def evaluate_round(
    task: TaskSpec,
    replies: list[str],
    round_dir: Path,
    it: int,
    config: SearchConfig,
    executor: Executor,
    log: Callable[[str], None] = quiet,
    progress: ProgressFn | None = None,
    first: int = 0,
    earlier: list[Candidate] | None = None,
) -> list[Candidate]:
    """Evaluate one round's replies in ``round_dir/cand<i>`` (``i`` from ``first``: replies that
    top a round up follow the earlier ones); with ``config.early_stop`` by successive halving.
    Finished work of a killed run is loaded, not redone, and a program that an ``earlier``
    candidate (or one of this round) has trained is reused, not trained again from scratch."""
    ids = range(first, first + len(replies))
    folders = {i: round_dir / f"cand{i}" for i in ids}
    cands: dict[int, Candidate] = {i: c for i in ids if (c := Candidate.load(folders[i])) is not None}
    rungs = halving_rungs(config.steps, len(replies), config.early_stop)
    keys = {i: program_key(replies[i - first]) for i in ids}
    trained: dict[str | None, Candidate] = {}  # by program, the first that trained it
    for c in earlier or ():
        if c.status == "trained" and c.code:
            trained.setdefault(program_key(code=c.code), c)
    twins: dict[int, int] = {}  # a duplicate in this round -> the one that trains
    if len(rungs) == 1:
        for i in ids:
            if i in cands or keys[i] is None:
                continue
            if keys[i] in trained:
                cands[i] = reuse(trained[keys[i]], replies[i - first], it, i, folders[i])
                log(f"  {round_dir.name}/cand{i}: {cands[i].reason}")
                continue
            same = [j for j in ids if j < i and keys[j] == keys[i] and j not in twins]
            if same:
                twins[i] = same[0]
    for r, rung_steps in enumerate(rungs):
        if r == 0:
            todo = [i for i in ids if i not in cands and i not in twins]
            jobs = [(task, replies[i - first], it, i, folders[i], config, rung_steps) for i in todo]
            fn: Any = evaluate_candidate
        else:
            if StopSignal.of_candidate(round_dir / "cand").requested():
                break  # the search has stopped: no rung goes on
            todo = [
                i
                for i, c in cands.items()
                if c.status == "trained" and not c.pruned and not c.stopped and (c.steps or 0) < rung_steps
            ]
            jobs = [(task, cands[i], config, rung_steps) for i in todo]
            fn = continue_candidate
        if todo:
            rung = f" (successive halving: rung {r + 1}/{len(rungs)})" if len(rungs) > 1 else ""
            log(f"  training {plural(len(todo), 'candidate')} to {rung_steps:,} steps{rung}")
        with watch_candidates([folders[i] for i in todo], rung_steps, progress):
            results = executor.map(
                fn,
                jobs,
                folders=[[folders[i]] for i in todo],
                signals=[
                    [StopSignal.of_candidate(folders[i]).path] for i in todo
                ],  # the search's stop, on every node
            )
        for i, result in zip(todo, results, strict=True):
            if isinstance(result, BudgetExceededError):
                raise result
            if isinstance(result, BaseException):  # the worker itself crashed: the candidate failed
                reply = folders[i] / "reply.md"  # a node that was lost took its copy with it
                if not reply.is_file():
                    folders[i].mkdir(parents=True, exist_ok=True)
                    reply.write_text(replies[i - first])
                result = saved(
                    Candidate(it, i, "failed", reason=f"its worker crashed: {result!r}", path=folders[i])
                )
            cands[i] = result
            c = cands[i]
            detail = (
                f"success metric {c.success_metric:.4g}"  # as the task states it, as the table shows it
                if c.status == "trained" and c.success_metric is not None
                else (c.reason or "")[:100]
            )
            log(f"  {round_dir.name}/cand{i}: {c.status}, {detail}")
        if r + 1 < len(rungs):
            dropped = _prune(
                cands, config.halving_tolerance * _metric_scale(task, cands), lambda c: rung_score(task, c)
            )
            if dropped:
                log(f"  successive halving drops {', '.join(f'cand{c.index}' for c in dropped)}")
    for i, j in twins.items():  # a duplicate takes what its twin's training gave
        if i not in cands:
            cands[i] = reuse(cands[j], replies[i - first], it, i, folders[i])
            log(f"  {round_dir.name}/cand{i}: {cands[i].reason}")
    return [cands[i] for i in ids]


def _metric_scale(task: TaskSpec, cands: dict[int, Candidate]) -> float:
    """The size of a meaningful score difference: the success threshold's magnitude, or the
    scores' own when the metric has none."""
    m = task.metric
    threshold = m.above if m.above is not None else m.below
    if threshold is not None and threshold != 0:
        return abs(threshold)
    scores = [abs(c.score) for c in cands.values() if c.score is not None]
    return max(scores, default=0.0)


def rung_score(task: TaskSpec, cand: Candidate, last: int = 3) -> float | None:
    """What successive halving ranks a candidate by: the mean score of its last ``last``
    evaluations (its periodic ones in ``evals.csv`` and the final one), so that one lucky or
    unlucky evaluation does not decide; its final score when it has no periodic evaluation."""
    if cand.score is None or cand.path is None:
        return cand.score
    from rewardgen.training.periodic import read_evals

    rows = read_evals(cand.path / "train" / RunDir.EVALS)
    scores = [
        task.metric.score(r["success_metric_mean"]) for r in rows if r["timesteps"] <= (cand.steps or 0)
    ]
    scores = [*scores[-(last - 1) :], cand.score] if last > 1 else [cand.score]
    return sum(scores) / len(scores)


def _prune(
    cands: dict[int, Candidate],
    tolerance: float = 0.0,
    score: Callable[[Candidate], float | None] | None = None,
) -> list[Candidate]:
    """Successive halving: keep the better half of the candidates still training (by ``score``,
    default their final score), and every candidate within ``tolerance`` of the cutoff (not
    clearly worse). Candidates that stopped (at their success) are not dropped. Returns the
    dropped ones."""
    score = score or (lambda c: c.score)
    ranked = {
        c.index: s
        for c in cands.values()
        if c.status == "trained" and not c.pruned and not c.stopped and (s := score(c)) is not None
    }
    alive = sorted(
        (c for c in cands.values() if c.index in ranked), key=lambda c: ranked[c.index], reverse=True
    )
    if len(alive) < 2:
        return []
    cutoff = ranked[alive[math.ceil(len(alive) / 2) - 1].index]
    dropped = [c for c in alive if ranked[c.index] < cutoff - tolerance]
    for c in dropped:
        c.pruned = True
        saved(c)
    return dropped


def split_samples(samples: int, names: list[str]) -> dict[str, int]:
    """How many rewards each lineage's prompt asks for: ``samples`` shared out, the first lineages
    taking the remainder, each at least one.

    Example:
        >>> split_samples(6, ["ana", "bob"]), split_samples(5, ["ana", "bob"]), split_samples(1, ["a", "b"])
        ({'ana': 3, 'bob': 3}, {'ana': 3, 'bob': 2}, {'a': 1, 'b': 1})
    """
    base, extra = divmod(samples, len(names))
    return {name: max(1, base + (k < extra)) for k, name in enumerate(names)}


def ask_lineages(
    client: LLMClient,
    prompts: dict[str, list[dict[str, str]]],
    n: int | dict[str, int],
    config: SearchConfig,
    seed: int,
) -> tuple[list[str], list[str]]:
    """The replies to each lineage's prompt (``n`` shared out by :func:`split_samples`, or given
    per lineage) and, for each reply, its lineage's name."""
    wants = n if isinstance(n, dict) else split_samples(n, list(prompts))
    texts: list[str] = []
    names: list[str] = []
    for name, count in wants.items():
        if count <= 0:
            continue
        replies = client.complete(prompts[name], n=count, temperature=config.temperature, seed=seed)
        texts += [r.text for r in replies]
        names += [name] * len(replies)
    return texts, names


def write_prompts(round_dir: Path, prompts: dict[str, list[dict[str, str]]]) -> None:
    """Each lineage's last message: ``prompt.md`` (one lineage) or ``prompt-<name>.md``."""
    from rewardgen.feedback.room import rater_slug

    for name, messages in prompts.items():
        file = "prompt.md" if len(prompts) == 1 else f"prompt-{rater_slug(name)}.md"
        (round_dir / file).write_text(messages[-1]["content"])


def top_up_round(
    task: TaskSpec,
    round_cands: list[Candidate],
    prompts: dict[str, list[dict[str, str]]],
    lineage: list[str],
    round_dir: Path,
    it: int,
    config: SearchConfig,
    client: LLMClient,
    executor: Executor,
    log: Callable[[str], None],
    progress: ProgressFn | None,
) -> tuple[list[Candidate], list[str], str | None]:
    """Ask again (at most ``config.regenerate`` times) for as many rewards as were refused or
    failed, each lineage (``lineage``: each candidate's) from its own prompt, and evaluate them as
    the next candidates of the round; returns the round's candidates, their lineages and the
    reason the LLM budget stopped it, if it did."""
    quotas = split_samples(config.samples, list(prompts))
    for top_up in range(1, config.regenerate + 1):
        trained = [of for c, of in zip(round_cands, lineage, strict=True) if c.status == "trained"]
        wants = {name: quota - trained.count(name) for name, quota in quotas.items()}
        missing = sum(max(0, v) for v in wants.values())
        if missing <= 0:
            break
        log(f"  {missing} of {config.samples} did not train: asking for {missing} more")
        try:
            texts, names = ask_lineages(client, prompts, wants, config, seed=config.seed + it + 1000 * top_up)
        except BudgetExceededError as exc:
            return round_cands, lineage, str(exc)
        round_cands = round_cands + evaluate_round(
            task, texts, round_dir, it, config, executor, log, progress, first=len(round_cands)
        )
        lineage = lineage + names
    return round_cands, lineage, None

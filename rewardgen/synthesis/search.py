"""The reward-code search: Text2Reward (one round) and Eureka-style evolution (several rounds).

Every candidate goes through the same pipeline: extract the code from the reply, static checks,
a sandboxed smoke test on random rollouts, training in the sandbox, evaluation on the task's
success metric. A broken or hostile candidate is recorded with its reason and the search goes on.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rewardgen.code import CodeCheckError, SandboxLimits, extract_code, static_check
from rewardgen.errors import RewardgenError
from rewardgen.llm import BudgetExceededError, LLMClient
from rewardgen.synthesis.executor import Executor, LocalExecutor
from rewardgen.synthesis.prompts import feedback_message, initial_messages
from rewardgen.synthesis.retrieval import few_shot_examples
from rewardgen.tasks import TaskSpec, get_task
from rewardgen.train.check import check_reward
from rewardgen.train.report import read_metrics
from rewardgen.train.rundir import RunDir

__all__ = ["Candidate", "SearchConfig", "evaluate_candidate", "synthesize"]

METHODS = ("text2reward", "evolution")


@dataclass
class SearchConfig:
    """What the search does; stored in the run manifest."""

    task: str
    method: str = "evolution"
    samples: int = 4
    iterations: int = 3
    steps: int = 200_000
    goal: str | None = None
    seed: int = 0
    temperature: float = 1.0
    eval_episodes: int = 3
    hyperparams: dict[str, Any] = field(default_factory=dict)
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)
    smoke_steps: int = 20
    workers: int = 1  # candidates trained at once, each in its own process
    few_shot: int = 0  # Text2Reward few-shot: k reference rewards of the closest goals in the prompt
    retrieval: str = "auto"  # "minilm" (extra embed), "tfidf", or auto
    final_seeds: int = 0  # retrain the best reward with this many more seeds and report them


@dataclass
class Candidate:
    """One reply of the model and what became of it."""

    iteration: int
    index: int
    status: str  # "refused" | "failed" | "trained"
    reason: str | None = None
    code: str | None = None
    eval: dict[str, Any] | None = None
    score: float | None = None
    path: Path | None = None

    @classmethod
    def load(cls, folder: Path) -> Candidate | None:
        """A candidate a previous (killed) run already finished, or None."""
        path = folder / "candidate.json"
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            return None  # cut short by the kill: evaluate it again
        data["path"] = folder
        return cls(**data)

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path) if self.path else None
        if self.eval:
            d["eval"] = {k: v for k, v in self.eval.items() if k != "episodes"}
        return d


def evaluate_candidate(
    task: TaskSpec, reply: str, iteration: int, index: int, folder: Path, config: SearchConfig
) -> Candidate:
    """Check, smoke-test, train and evaluate one reply; never raises for a bad program."""
    from rewardgen.train import TrainConfig, train

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reply.md").write_text(reply)
    cand = Candidate(iteration, index, status="refused", path=folder)
    try:
        cand.code = extract_code(reply)
    except CodeCheckError as exc:
        cand.reason = str(exc)
        return _saved(cand)
    (folder / "reward.py").write_text(cand.code)
    check = static_check(cand.code)
    if not check.ok:
        cand.reason = "refused by the static checks: " + "; ".join(check.problems)
        return _saved(cand)
    cand.status = "failed"
    ref = _task_ref(task)
    try:
        smoke = check_reward(
            ref,
            str(folder / "reward.py"),
            steps=config.smoke_steps,
            n_envs=2,
            seed=config.seed,
            sandbox=config.sandbox,
        )
        (folder / "smoke.json").write_text(json.dumps(smoke, indent=2))
        result = train(
            TrainConfig(
                task=ref,
                reward=str(folder / "reward.py"),
                steps=config.steps,
                seed=config.seed,
                video=False,
                eval_episodes=config.eval_episodes,
                hyperparams=dict(config.hyperparams),
                progress=False,
                sandbox=config.sandbox,
            ),
            out=folder / "train",
            method="candidate",
        )
    except BudgetExceededError:
        raise
    except RewardgenError as exc:
        cand.reason = str(exc)
        return _saved(cand)
    cand.status, cand.eval = "trained", result.eval
    cand.score = task.metric.score(result.eval["success_metric_mean"])
    return _saved(cand)


def _task_ref(task: TaskSpec) -> str:
    """How worker code finds the task again: its catalog id, or its YAML file."""
    try:
        return task.id if get_task(task.id) == task else str(task.path)
    except RewardgenError:
        return str(task.path)


def _saved(cand: Candidate) -> Candidate:
    assert cand.path is not None
    tmp = cand.path / "candidate.json.tmp"  # written whole or not at all: resume trusts it
    tmp.write_text(json.dumps(cand.summary(), indent=2, default=str))
    tmp.replace(cand.path / "candidate.json")
    return cand


def _retrain(task: TaskSpec, reward: Path, seed: int, folder: Path, config: SearchConfig) -> dict[str, Any]:
    from rewardgen.train import TrainConfig, train

    result = train(
        TrainConfig(
            task=_task_ref(task),
            reward=str(reward),
            steps=config.steps,
            seed=seed,
            video=False,
            eval_episodes=config.eval_episodes,
            hyperparams=dict(config.hyperparams),
            progress=False,
            sandbox=config.sandbox,
        ),
        out=folder,
        method="final",
    )
    return {"seed": seed, **{k: v for k, v in result.eval.items() if k != "episodes"}}


def _curves(cand: Candidate) -> dict[str, list[float]]:
    assert cand.path is not None
    metrics = cand.path / "train" / "metrics.csv"
    if not metrics.exists():
        return {}
    return {k: [float(x) for x in v] for k, v in read_metrics(metrics).items()}


def synthesize(
    config: SearchConfig, client: LLMClient, run: RunDir, executor: Executor | None = None
) -> dict[str, Any]:
    """Run the search in ``run``; returns the summary also written to ``summary.json``.

    Candidates already finished in ``run`` (a killed run) are not evaluated again, and the LLM
    cache answers the repeated requests, so calling it again on the same run directory resumes.
    A budget stop ends the search cleanly: candidates so far are kept and the manifest says why.
    """
    if config.method not in METHODS:
        raise RewardgenError(f"unknown method '{config.method}': choose one of {', '.join(METHODS)}")
    task = get_task(config.task)
    own_executor = executor is None
    executor = executor or LocalExecutor(config.workers)
    iterations = 1 if config.method == "text2reward" else config.iterations
    examples = few_shot_examples(task, config.goal, config.few_shot, config.retrieval)
    messages = initial_messages(task, config.goal, examples)
    candidates: list[Candidate] = []
    best: Candidate | None = None
    stopped = None
    try:
        for it in range(iterations):
            try:
                replies = client.complete(
                    messages, n=config.samples, temperature=config.temperature, seed=config.seed + it
                )
            except BudgetExceededError as exc:
                stopped = str(exc)
                break
            round_cands = _evaluate_round(task, [r.text for r in replies], it, run, config, executor)
            candidates.extend(round_cands)
            trained = [c for c in round_cands if c.status == "trained" and c.score is not None]
            round_best = max(trained, key=lambda c: c.score, default=None)  # type: ignore[arg-type,return-value]
            if round_best is not None and (best is None or round_best.score >= best.score):  # type: ignore[operator]
                best = round_best
            run.update(
                progress={
                    "iteration": it,
                    "candidates": [c.summary() for c in candidates],
                    "best": best.summary() if best else None,
                }
            )
            if it + 1 < iterations:
                failures = [c for c in round_cands if c.status != "trained"]
                anchor = round_best or best
                messages = [
                    *messages[:2],
                    feedback_message(task, anchor, failures, _curves(anchor) if anchor else None),
                ]
        final = _final_seeds(task, best, run, config, executor) if best and not stopped else []
    finally:
        if own_executor:
            executor.close()
    if best is not None and best.path is not None:
        shutil.copy(best.path / "reward.py", run.file("best_reward.py"))
    summary = {
        "task": task.id,
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
    return summary


def _evaluate_round(
    task: TaskSpec, replies: list[str], it: int, run: RunDir, config: SearchConfig, executor: Executor
) -> list[Candidate]:
    folders = [run.path / f"iter{it}" / f"cand{i}" for i in range(len(replies))]
    done = {i: c for i, f in enumerate(folders) if (c := Candidate.load(f)) is not None}
    todo = [i for i in range(len(replies)) if i not in done]
    results = executor.map(evaluate_candidate, [(task, replies[i], it, i, folders[i], config) for i in todo])
    for i, result in zip(todo, results, strict=True):
        if isinstance(result, BudgetExceededError):
            raise result
        if isinstance(result, BaseException):  # the worker itself crashed: the candidate failed
            result = _saved(
                Candidate(it, i, "failed", reason=f"its worker crashed: {result!r}", path=folders[i])
            )
        done[i] = result
    return [done[i] for i in range(len(replies))]


def _final_seeds(
    task: TaskSpec, best: Candidate, run: RunDir, config: SearchConfig, executor: Executor
) -> list[dict[str, Any]]:
    if config.final_seeds <= 0 or best.path is None:
        return []
    seeds = [config.seed + 1 + k for k in range(config.final_seeds)]
    jobs = [(task, best.path / "reward.py", s, run.path / "final" / f"seed{s}", config) for s in seeds]
    return [
        r if isinstance(r, dict) else {"seed": s, "error": repr(r)}
        for s, r in zip(seeds, executor.map(_retrain, jobs), strict=True)
    ]

"""One candidate reward of a search: from the LLM's reply to a trained, evaluated policy.

Every candidate goes through the same pipeline: extract the code from the reply, static checks,
a sandboxed smoke test on random rollouts, training in the sandbox, evaluation on the task's
success metric. A broken or hostile candidate is recorded with its reason and never raises.
Candidates also get their videos and the best one its extra seeds here.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rewardgen.diagnostics.check import check_reward
from rewardgen.errors import RewardgenError
from rewardgen.programs import CodeCheckError, ProgramSpec, extract_code, static_check
from rewardgen.runs import CandidateRecord, RunDir, StopSignal
from rewardgen.synthesis.config import SearchConfig
from rewardgen.synthesis.executor import Executor
from rewardgen.synthesis.progress import quiet
from rewardgen.tasks import TaskSpec
from rewardgen.training.api import get_backend

__all__ = [
    "Candidate",
    "continue_candidate",
    "curves",
    "evaluate_candidate",
    "final_seeds",
    "record_videos",
    "saved",
    "seeds_and_films",
]


class Candidate(CandidateRecord):
    """One reply of the model and what became of it: the search's name for
    :class:`~rewardgen.runs.CandidateRecord`, which owns its file."""

    def summary(self) -> dict[str, Any]:
        return self.to_dict()


def evaluate_candidate(
    task: TaskSpec,
    reply: str,
    iteration: int,
    index: int,
    folder: Path,
    config: SearchConfig,
    steps: int | None = None,
) -> Candidate:
    """Check, smoke-test, train (``steps``, default the config's) and evaluate one reply; never
    raises for a bad program."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reply.md").write_text(reply)
    cand = Candidate(iteration, index, status="refused", path=folder)
    try:
        cand.code = extract_code(reply)
    except CodeCheckError as exc:
        cand.reason = str(exc)
        return saved(cand)
    (folder / RunDir.REWARD).write_text(cand.code)
    check = static_check(cand.code)
    if not check.ok:
        cand.reason = "refused by the static checks: " + "; ".join(check.problems)
        return saved(cand)
    if _search_stopped(cand):
        return saved(cand)
    cand.status = "failed"
    started = time.monotonic()
    try:
        smoke = check_reward(
            task,
            _program(folder / RunDir.REWARD, config),
            steps=config.smoke_steps,
            n_envs=2,
            seed=config.seed,
            max_cost=config.max_reward_cost,
            batch_size=reward_batch(task, config),
        )
        (folder / "smoke.json").write_text(json.dumps(smoke, indent=2))
    except RewardgenError as exc:
        cand.reason = str(exc)
        return saved(cand)
    finally:
        cand.timing["smoke_s"] = round(time.monotonic() - started, 2)
    return _train_candidate(task, cand, config, steps or config.steps, resume=False)


def _search_stopped(cand: Candidate) -> bool:
    """Whether the search has stopped (a candidate succeeded, its time is spent): a candidate
    not trained yet is then skipped, one that has trained keeps what it has."""
    assert cand.path is not None
    why = StopSignal.of_candidate(cand.path).reason()
    if why is None:
        return False
    if cand.eval is None:
        cand.status, cand.reason = "skipped", f"not trained: the search stopped ({why})"
    cand.stopped = cand.stopped or why
    return True


def continue_candidate(task: TaskSpec, cand: Candidate, config: SearchConfig, steps: int) -> Candidate:
    """Train a candidate that survived a successive-halving rung on to ``steps`` in total."""
    return _train_candidate(task, cand, config, steps, resume=True)


def _train_candidate(
    task: TaskSpec, cand: Candidate, config: SearchConfig, steps: int, resume: bool
) -> Candidate:
    from rewardgen.training import train

    assert cand.path is not None
    out = cand.path / "train"
    if resume and cand.eval is not None and _trained_steps(out) >= steps:
        # a back end that trains in whole batches (sample-factory) may already have passed this
        # rung's steps: its evaluation stands
        cand.steps = steps
        return saved(cand)
    if _search_stopped(cand):
        return saved(cand)
    started = time.monotonic()
    try:
        result = train(
            _train_config(
                task, cand.path / RunDir.REWARD, config, steps, config.seed, out if resume else None
            ),
            out=out,
            method="candidate",
        )
    except RewardgenError as exc:
        cand.status, cand.reason = "failed", str(exc)
        return saved(cand)
    finally:
        cand.wall_s = round((cand.wall_s or 0.0) + time.monotonic() - started, 1)
    cand.status, cand.eval, cand.steps = "trained", result.eval, steps
    cand.score = task.metric.score(result.eval.success_metric_mean)
    manifest = RunDir.read_manifest(out)
    for phase, seconds in (manifest.get("timing") or {}).items():  # train_s, eval_s; rungs add up
        cand.timing[phase] = round(cand.timing.get(phase, 0.0) + float(seconds), 2)
    cand.first_success = cand.first_success or manifest.get("first_success")
    cand.stopped = manifest.get("stopped_early")
    if cand.stopped:  # it ended before its steps: it has the steps it trained
        cand.steps = int(manifest.get("trained_steps") or steps)
    if config.until_success and cand.succeeded:
        StopSignal.of_candidate(cand.path).request(f"{cand.label} succeeded")
    return saved(cand)


def _trained_steps(folder: Path) -> int:
    """The env steps a finished training run in ``folder`` trained (0 if unknown)."""
    try:
        return int(RunDir.open(folder).manifest.get("trained_steps") or 0)
    except (RewardgenError, OSError, ValueError):
        return 0


def program_key(reply: str | None = None, code: str | None = None) -> str | None:
    """What makes two replies the same program: its code (the search's parameters, which every
    candidate of a search shares, aside); None for a reply with no code."""
    import hashlib

    if code is None:
        try:
            code = extract_code(reply or "")
        except CodeCheckError:
            return None
    return hashlib.sha256(code.strip().encode()).hexdigest()


def reuse(twin: Candidate, reply: str, iteration: int, index: int, folder: Path) -> Candidate:
    """A candidate whose program ``twin`` has already tried: a trained twin's policy, evaluation
    and curves are copied, not trained again from scratch (the search may still continue them);
    a twin that failed gives its failure (the same code fails the same way)."""
    assert twin.path is not None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reply.md").write_text(reply)
    if (twin.path / RunDir.REWARD).is_file():
        shutil.copy(twin.path / RunDir.REWARD, folder / RunDir.REWARD)
    if twin.status == "trained" and (twin.path / "train").is_dir():
        shutil.copytree(twin.path / "train", folder / "train", dirs_exist_ok=True)
    what = "its training is reused" if twin.status == "trained" else (twin.reason or twin.status)
    cand = Candidate(
        iteration,
        index,
        twin.status,
        reason=f"the same program as {twin.label}: {what}",
        code=twin.code,
        eval=twin.eval,
        score=twin.score,
        path=folder,
        steps=twin.steps,
        first_success=twin.first_success,
        stopped=twin.stopped,
    )
    return saved(cand)


def saved(cand: Candidate) -> Candidate:
    cand.save()
    return cand


def _train_config(
    task: TaskSpec,
    reward: Path | ProgramSpec,
    config: SearchConfig,
    steps: int,
    seed: int,
    resume_from: Path | None = None,
    candidate: bool = True,
) -> Any:
    """How every search run trains a reward: sandboxed, no video, the search's PPO settings,
    evaluated periodically and stopped at its first success (a final seed too: it trains until
    success or its budget, each evaluation ending once its verdict is settled); a ``candidate``
    also stops at the search's stop file, and its evaluations run whole (the clock reads its
    curve)."""
    from rewardgen.training import TrainConfig

    every = config.candidate_eval_every(steps)
    if every and not get_backend(config.backend).periodic_evaluation:
        every = 0  # a back end that cannot: candidates train their steps
    hyperparams = dict(config.hyperparams)
    if get_backend(config.backend).worker_processes and "num_workers" not in hyperparams:
        # candidates trained at once share the machine's cores between their rollout workers
        hyperparams["num_workers"] = max(1, (os.cpu_count() or 1) // max(1, config.workers))
    return TrainConfig(
        task=task,  # resolved once: the spec itself travels to the worker
        reward=reward if isinstance(reward, ProgramSpec) else _program(reward, config),
        steps=steps,
        seed=seed,
        video=False,
        eval_episodes=config.eval_episodes,
        hyperparams=hyperparams,
        profile=config.profile,
        progress=False,
        resume_from=str(resume_from) if resume_from is not None else None,
        time_budget_s=config.candidate_budget_for(steps),
        backend=config.backend,
        eval_every=every or None,
        stop_on_success=every > 0,
        eval_until_decided=not candidate,  # a final seed asks only whether it succeeds
        stop_file=str(StopSignal.of_candidate(reward.parent).path)
        if candidate and isinstance(reward, Path)
        else None,
    )


def reward_batch(task: TaskSpec, config: SearchConfig) -> int:
    """How many transitions a candidate's training scores in one reward call, the size its cost
    is judged at: a whole PPO rollout where the back end defers a program's rewards to the
    rollout's end, else one vector step. At most 4096: the cost per transition has settled by then."""
    from rewardgen.training.sb3.hyperparams import default_hyperparams, default_n_envs

    algo = task.budget.algo
    n_envs = default_n_envs(algo, config.profile, task.budget.n_envs)
    if not get_backend(config.backend).deferred_rewards or algo != "ppo":
        return n_envs
    hyperparams = {**default_hyperparams(algo, task.env_id, config.profile), **config.hyperparams}
    return min(int(hyperparams.get("n_steps", 2048)) * n_envs, 4096)


def _program(path: Path, config: SearchConfig) -> ProgramSpec:
    """An LLM-written reward program: untrusted, run in the sandbox with the search's limits."""
    return ProgramSpec.from_file(path, sandbox=config.sandbox)


def _retrain(
    task: TaskSpec, reward: ProgramSpec, seed: int, folder: Path, config: SearchConfig
) -> dict[str, Any]:
    from rewardgen.training import train

    done = RunDir.open(folder).eval_summary() if (folder / RunDir.MANIFEST).is_file() else None
    if done is None:  # a run finished before a kill is not retrained on resume
        done = train(
            _train_config(task, reward, config, config.steps, seed, candidate=False),
            out=folder,
            method="final",
        ).eval
    first = RunDir.read_manifest(folder).get("first_success")
    return {"seed": seed, **done.to_dict(episodes=False), "first_success": first}


def curves(cand: Candidate) -> dict[str, list[float]]:
    """The candidate's training curves (metrics.csv columns), for the reflection in feedback."""
    assert cand.path is not None
    return {k: [float(x) for x in v] for k, v in RunDir(cand.path / "train", {}).metrics().items()}


def record_videos(
    task: TaskSpec,
    candidates: list[Candidate],
    config: SearchConfig,
    executor: Executor,
    best: Candidate | None = None,
    log: Callable[[str], None] = quiet,
    within_s: float = math.inf,
) -> dict[Path, str]:
    """A video of the ``config.videos`` best policies, ``best`` first (for report.html), each
    within what is left of its candidate's wall-clock budget and of ``within_s`` (the search's
    time left); a failure costs only the video. Returns why each of those that has no video
    failed, by candidate folder."""
    todo, jobs = _film_jobs(task, candidates, config, best, within_s)
    results = executor.map(_record_video, jobs, folders=[[c.path] for c in todo])
    return _filmed(todo, results, log)


def _film_jobs(
    task: TaskSpec, candidates: list[Candidate], config: SearchConfig, best: Candidate | None, within_s: float
) -> tuple[list[Candidate], list[tuple]]:
    """The policies to film (the ``config.videos`` best not filmed yet) and their jobs."""
    ranked = sorted(
        (c for c in candidates if c.status == "trained" and c.score is not None and c.path is not None),
        key=lambda c: (c is best, c.score),  # type: ignore[arg-type,return-value]
        reverse=True,
    )
    todo = [c for c in ranked[: config.videos] if not (c.path / "train" / RunDir.VIDEO).is_file()]  # type: ignore[operator]
    return todo, [(task, c.path, config, min(within_s, _video_budget(c, config))) for c in todo]


def _filmed(todo: list[Candidate], results: list[Any], log: Callable[[str], None]) -> dict[Path, str]:
    failed: dict[Path, str] = {}
    for c, result in zip(todo, results, strict=True):
        if isinstance(result, BaseException):  # a failure costs only the video
            log(f"  no video of {c.path.parent.name}/{c.path.name}: {result}")  # type: ignore[union-attr]
            failed[c.path] = str(result).splitlines()[0] if str(result) else type(result).__name__  # type: ignore[index]
        else:
            c.timing["video_s"] = round(float(result), 2)
            saved(c)
    return failed


def _video_budget(cand: Candidate, config: SearchConfig) -> float:
    """What is left of the candidate's wall-clock budget for its video (at least a minute)."""
    return max(60.0, config.candidate_budget_for(cand.steps or config.steps) - (cand.wall_s or 0.0))


def _record_video(task: TaskSpec, folder: Path, config: SearchConfig, budget_s: float) -> float:
    """Film the policy in ``folder``; returns the seconds it took."""
    from rewardgen.training import evaluate

    started = time.monotonic()
    evaluate(
        folder / "train",
        task,
        _program(folder / RunDir.REWARD, config),
        episodes=1,
        seed=config.seed + 20_000,
        eval_file=None,
        deadline=time.monotonic() + budget_s,
        pad_video=True,  # same seed, same length: videos people compare side by side
    )
    return time.monotonic() - started


def seeds_succeeded(best: Candidate, finals: list[dict[str, Any]]) -> dict[str, int]:
    """How many of the best reward's seeds succeeded (its own and the final seeds' final
    evaluations, by the task's rule): ``{"succeeded": k, "of": n}``.

    Example:
        >>> finals = [{"seed": 1, "succeeded": True}, {"seed": 2, "error": "x"}]
        >>> seeds_succeeded(Candidate(0, 0, "trained"), finals)
        {'succeeded': 1, 'of': 3}
    """
    won = int(best.succeeded) + sum(bool(f.get("succeeded")) for f in finals)
    return {"succeeded": won, "of": 1 + len(finals)}


def final_seeds(
    task: TaskSpec, best: Candidate, run: RunDir, config: SearchConfig, executor: Executor
) -> list[dict[str, Any]]:
    seeds, jobs, folders = _seed_jobs(task, best, run, config)
    return _seeded(seeds, executor.map(_retrain, jobs, folders=[[f] for f in folders]))


def seeds_and_films(
    task: TaskSpec,
    best: Candidate,
    run: RunDir,
    config: SearchConfig,
    candidates: list[Candidate],
    films: SearchConfig,
    executor: Executor,
    log: Callable[[str], None] = quiet,
    within_s: float = math.inf,
) -> tuple[list[dict[str, Any]], dict[Path, str]]:
    """:func:`final_seeds` and :func:`record_videos` (``films``' settings) as one batch of jobs,
    the seeds first: a film takes the worker that a seed which succeeded early leaves free, so the
    videos cost no time beside the slowest seed. Returns both results."""
    seeds, seed_jobs, folders = _seed_jobs(task, best, run, config)
    todo, film_jobs = _film_jobs(task, candidates, films, best, within_s)
    jobs = [(_retrain, *j) for j in seed_jobs] + [(_record_video, *j) for j in film_jobs]
    shipped = [[f] for f in folders] + [[c.path] for c in todo]
    results = executor.map(_call, jobs, folders=shipped)  # type: ignore[arg-type]
    return _seeded(seeds, results[: len(seeds)]), _filmed(todo, results[len(seeds) :], log)


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def _seed_jobs(
    task: TaskSpec, best: Candidate, run: RunDir, config: SearchConfig
) -> tuple[list[int], list[tuple], list[Path]]:
    if config.final_seeds <= 0 or best.path is None:
        return [], [], []
    seeds = [config.seed + 1 + k for k in range(config.final_seeds)]
    reward = _program(best.path / RunDir.REWARD, config)  # read here: a Ray node may not see the file
    folders = [run.path / "final" / f"seed{s}" for s in seeds]
    return seeds, [(task, reward, s, f, config) for s, f in zip(seeds, folders, strict=True)], folders


def _seeded(seeds: list[int], results: list[Any]) -> list[dict[str, Any]]:
    return [
        r if isinstance(r, dict) else {"seed": s, "error": repr(r)}
        for s, r in zip(seeds, results, strict=True)
    ]

"""The reward-code search: Text2Reward (one round) and Eureka-style evolution (several rounds).

Every candidate goes through the same pipeline: extract the code from the reply, static checks,
a sandboxed smoke test on random rollouts, training in the sandbox, evaluation on the task's
success metric. A broken or hostile candidate is recorded with its reason and the search goes on.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rewardgen.code import CodeCheckError, SandboxLimits, extract_code, static_check
from rewardgen.errors import RewardgenError
from rewardgen.llm import BudgetExceededError, LLMClient
from rewardgen.synthesis.executor import Executor, make_executor
from rewardgen.synthesis.progress import ProgressFn, watch_candidates
from rewardgen.synthesis.prompts import feedback_message, initial_messages
from rewardgen.synthesis.report import write_report
from rewardgen.synthesis.retrieval import few_shot_examples
from rewardgen.tasks import TaskSpec, get_task
from rewardgen.train.check import MAX_REWARD_COST, check_reward
from rewardgen.train.report import read_metrics
from rewardgen.train.rundir import RunDir

__all__ = [
    "Candidate",
    "SearchConfig",
    "best_candidate",
    "candidate_budget",
    "continue_candidate",
    "evaluate_candidate",
    "evaluate_round",
    "halving_rungs",
    "record_videos",
    "synthesize",
]

METHODS = ("text2reward", "evolution")


def candidate_budget(steps: int) -> float:
    """The default wall-clock budget of a candidate: 2 minutes plus 20 ms per step, i.e. it may
    train at 50 steps/s, several times slower than PPO on 2 CPU cores, before it is stopped.

    Example:
        >>> candidate_budget(200_000)
        4120.0
    """
    return 120.0 + 0.02 * steps


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
    hyperparams: dict[str, Any] = field(default_factory=dict)  # overrides of the profile's
    profile: str = "default"  # training hyperparameters: rewardgen's ("default") or the zoo's
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)
    smoke_steps: int = 20
    workers: int = 1  # candidates trained at once, each in its own process
    few_shot: int = 0  # Text2Reward few-shot: k reference rewards of the closest goals in the prompt
    retrieval: str = "auto"  # "minilm" (extra embed), "tfidf", or auto
    final_seeds: int = 0  # retrain the best reward with this many more seeds and report them
    early_stop: bool = False  # successive halving: train all for a fraction, continue the better half
    halving_tolerance: float = 0.02  # ...dropping only candidates clearly worse than the cutoff (relative)
    videos: int = 3  # record a video of this many best policies for report.html
    executor: str = "local"  # "local" process pool, or "ray"
    ray_address: str | None = None  # a running Ray cluster; None: a local Ray instance
    gpus_per_candidate: float = 0  # Ray's GPU request per candidate (fractions share a GPU)
    # A reward may cost this many times the env's own step per transition (measured by the smoke
    # test, at least 1 ms allowed) before it is refused as too slow to train on.
    max_reward_cost: float = MAX_REWARD_COST
    # Wall-clock seconds a candidate may spend training + evaluating (and filming); None: derived
    # from the steps (candidate_budget), so a reward that is slow only later cannot stall the search.
    candidate_budget_s: float | None = None

    def budget_s(self, steps: int) -> float:
        """The wall-clock budget of a candidate trained for ``steps`` steps."""
        return self.candidate_budget_s if self.candidate_budget_s is not None else candidate_budget(steps)

    @classmethod
    def from_run(cls, run: Path) -> SearchConfig:
        """The configuration a search stored in ``run/manifest.json``."""
        path = Path(run) / "manifest.json"
        if not path.is_file():
            raise RewardgenError(f"{run} is not a search run directory: it has no manifest.json")
        saved = dict(json.loads(path.read_text()).get("config") or {})
        if "task" not in saved:
            raise RewardgenError(
                f"{path} holds no search configuration (was it made by `rewardgen synthesize`?)"
            )
        if saved.get("sandbox") is not None:
            saved["sandbox"] = SandboxLimits(**saved["sandbox"])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in saved.items() if k in known})


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
    steps: int | None = None  # training steps so far (successive halving trains in stages)
    pruned: bool = False  # dropped by successive halving before the full budget
    wall_s: float | None = None  # wall-clock seconds spent training and evaluating it

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
            max_cost=config.max_reward_cost,
        )
        (folder / "smoke.json").write_text(json.dumps(smoke, indent=2))
    except RewardgenError as exc:
        cand.reason = str(exc)
        return _saved(cand)
    return _train_candidate(task, cand, config, steps or config.steps, resume=False)


def continue_candidate(task: TaskSpec, cand: Candidate, config: SearchConfig, steps: int) -> Candidate:
    """Train a candidate that survived a successive-halving rung on to ``steps`` in total."""
    return _train_candidate(task, cand, config, steps, resume=True)


def _train_candidate(
    task: TaskSpec, cand: Candidate, config: SearchConfig, steps: int, resume: bool
) -> Candidate:
    from rewardgen.train import train

    assert cand.path is not None
    out = cand.path / "train"
    started = time.monotonic()
    try:
        result = train(
            _train_config(task, cand.path / "reward.py", config, steps, config.seed, out if resume else None),
            out=out,
            method="candidate",
        )
    except RewardgenError as exc:
        cand.status, cand.reason = "failed", str(exc)
        return _saved(cand)
    cand.status, cand.eval, cand.steps = "trained", result.eval, steps
    cand.score = task.metric.score(result.eval["success_metric_mean"])
    cand.wall_s = round((cand.wall_s or 0.0) + time.monotonic() - started, 1)
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


def _train_config(
    task: TaskSpec, reward: Path, config: SearchConfig, steps: int, seed: int, resume_from: Path | None = None
) -> Any:
    """How every search run trains a reward: sandboxed, no video, the search's PPO settings."""
    from rewardgen.train import TrainConfig

    return TrainConfig(
        task=_task_ref(task),
        reward=str(reward),
        steps=steps,
        seed=seed,
        video=False,
        eval_episodes=config.eval_episodes,
        hyperparams=dict(config.hyperparams),
        profile=config.profile,
        progress=False,
        sandbox=config.sandbox,
        resume_from=str(resume_from) if resume_from is not None else None,
        time_budget_s=config.budget_s(steps),
    )


def _retrain(task: TaskSpec, reward: Path, seed: int, folder: Path, config: SearchConfig) -> dict[str, Any]:
    from rewardgen.train import train

    done = folder / "eval.json"
    if done.is_file():  # finished before a kill: not retrained on resume
        ev = json.loads(done.read_text())
        return {"seed": seed, **{k: v for k, v in ev.items() if k != "episodes"}}
    result = train(_train_config(task, reward, config, config.steps, seed), out=folder, method="final")
    return {"seed": seed, **{k: v for k, v in result.eval.items() if k != "episodes"}}


def _curves(cand: Candidate) -> dict[str, list[float]]:
    assert cand.path is not None
    metrics = cand.path / "train" / "metrics.csv"
    if not metrics.exists():
        return {}
    return {k: [float(x) for x in v] for k, v in read_metrics(metrics).items()}


def _quiet(message: str) -> None:
    pass


def synthesize(
    config: SearchConfig,
    client: LLMClient,
    run: RunDir,
    executor: Executor | None = None,
    log: Callable[[str], None] = _quiet,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Run the search in ``run``; returns the summary also written to ``summary.json``.

    Candidates already finished in ``run`` (a killed run) are not evaluated again, and the LLM
    cache answers the repeated requests, so calling it again on the same run directory resumes.
    A budget stop ends the search cleanly: candidates so far are kept and the manifest says why.
    ``report.html`` is rewritten after every round; ``log`` receives one line per stage and
    ``progress`` the steps and success metric of the candidates in training, every few seconds.
    """
    if config.method not in METHODS:
        raise RewardgenError(f"unknown method '{config.method}': choose one of {', '.join(METHODS)}")
    task = get_task(config.task)
    run.update(config=asdict(config))  # what `--resume` and `rewardgen refine` read back
    own_executor = executor is None
    executor = executor or make_executor(
        config.executor, config.workers, config.ray_address, config.gpus_per_candidate
    )
    iterations = 1 if config.method == "text2reward" else config.iterations
    examples = few_shot_examples(task, config.goal, config.few_shot, config.retrieval)
    messages = initial_messages(task, config.goal, examples)
    candidates: list[Candidate] = []
    best: Candidate | None = None
    stopped = None
    try:
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
            candidates.extend(round_cands)
            round_best = best_candidate(round_cands)
            if round_best is not None and (best is None or round_best.score >= best.score):  # type: ignore[operator]
                best = round_best
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
                failures = [c for c in round_cands if c.status not in ("trained",)]
                anchor = round_best or best
                messages = [
                    *messages[:2],
                    feedback_message(task, anchor, failures, _curves(anchor) if anchor else None),
                ]
        if best and not stopped and config.final_seeds > 0:
            log(f"retraining the best reward with {config.final_seeds} more seeds")
        final = _final_seeds(task, best, run, config, executor) if best and not stopped else []
        if not stopped and config.videos > 0:
            log(f"filming the {config.videos} best policies")
            record_videos(task, candidates, config, executor, best, log)
    finally:
        if own_executor:
            executor.close()
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


def best_candidate(cands: list[Candidate]) -> Candidate | None:
    """The best candidate trained on the full budget (successive halving's dropped ones excluded)."""
    trained = [c for c in cands if c.status == "trained" and c.score is not None and not c.pruned]
    return max(trained, key=lambda c: c.score, default=None)  # type: ignore[arg-type,return-value]


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
    log: Callable[[str], None] = _quiet,
    progress: ProgressFn | None = None,
) -> list[Candidate]:
    """Evaluate one round's replies in ``round_dir/cand<i>``; with ``config.early_stop`` by
    successive halving. Finished work of a killed run is loaded, not redone."""
    folders = [round_dir / f"cand{i}" for i in range(len(replies))]
    cands: dict[int, Candidate] = {
        i: c for i, f in enumerate(folders) if (c := Candidate.load(f)) is not None
    }
    rungs = halving_rungs(config.steps, len(replies), config.early_stop)
    for r, rung_steps in enumerate(rungs):
        if r == 0:
            todo = [i for i in range(len(replies)) if i not in cands]
            jobs = [(task, replies[i], it, i, folders[i], config, rung_steps) for i in todo]
            fn: Any = evaluate_candidate
        else:
            todo = [
                i
                for i, c in cands.items()
                if c.status == "trained" and not c.pruned and (c.steps or 0) < rung_steps
            ]
            jobs = [(task, cands[i], config, rung_steps) for i in todo]
            fn = continue_candidate
        if todo:
            rung = f" (successive halving: rung {r + 1}/{len(rungs)})" if len(rungs) > 1 else ""
            log(f"  training {len(todo)} candidates to {rung_steps:,} steps{rung}")
        with watch_candidates([folders[i] for i in todo], rung_steps, progress):
            results = executor.map(fn, jobs)
        for i, result in zip(todo, results, strict=True):
            if isinstance(result, BudgetExceededError):
                raise result
            if isinstance(result, BaseException):  # the worker itself crashed: the candidate failed
                result = _saved(
                    Candidate(it, i, "failed", reason=f"its worker crashed: {result!r}", path=folders[i])
                )
            cands[i] = result
            c = cands[i]
            detail = f"score {c.score:.4g}" if c.status == "trained" else (c.reason or "")[:100]
            log(f"  {round_dir.name}/cand{i}: {c.status}, {detail}")
        if r + 1 < len(rungs):
            dropped = _prune(cands, config.halving_tolerance * _metric_scale(task, cands))
            if dropped:
                log(f"  successive halving drops {', '.join(f'cand{c.index}' for c in dropped)}")
    return [cands[i] for i in range(len(replies))]


def _metric_scale(task: TaskSpec, cands: dict[int, Candidate]) -> float:
    """The size of a meaningful score difference: the success threshold's magnitude, or the
    scores' own when the metric has none."""
    m = task.metric
    threshold = m.above if m.above is not None else m.below
    if threshold is not None and threshold != 0:
        return abs(threshold)
    scores = [abs(c.score) for c in cands.values() if c.score is not None]
    return max(scores, default=0.0)


def _prune(cands: dict[int, Candidate], tolerance: float = 0.0) -> list[Candidate]:
    """Successive halving: keep the better half of the candidates still training, and every
    candidate within ``tolerance`` of the cutoff (not clearly worse). Returns the dropped ones."""
    alive = sorted(
        (c for c in cands.values() if c.status == "trained" and not c.pruned and c.score is not None),
        key=lambda c: c.score,  # type: ignore[arg-type,return-value]
        reverse=True,
    )
    if len(alive) < 2:
        return []
    cutoff = alive[math.ceil(len(alive) / 2) - 1].score
    dropped = [c for c in alive if c.score < cutoff - tolerance]  # type: ignore[operator]
    for c in dropped:
        c.pruned = True
        _saved(c)
    return dropped


def record_videos(
    task: TaskSpec,
    candidates: list[Candidate],
    config: SearchConfig,
    executor: Executor,
    best: Candidate | None = None,
    log: Callable[[str], None] = _quiet,
) -> None:
    """A video of the ``config.videos`` best policies, ``best`` first (for report.html), each
    within what is left of its candidate's wall-clock budget; a failure costs only the video."""
    ranked = sorted(
        (c for c in candidates if c.status == "trained" and c.score is not None and c.path is not None),
        key=lambda c: (c is best, c.score),  # type: ignore[arg-type,return-value]
        reverse=True,
    )
    todo = [c for c in ranked[: config.videos] if not (c.path / "train" / "video.mp4").is_file()]  # type: ignore[operator]
    jobs = [(task, c.path, config, _video_budget(c, config)) for c in todo]
    for c, result in zip(todo, executor.map(_record_video, jobs), strict=True):
        if isinstance(result, BaseException):  # a failure costs only the video
            log(f"  no video of {c.path.parent.name}/{c.path.name}: {result}")  # type: ignore[union-attr]


def _video_budget(cand: Candidate, config: SearchConfig) -> float:
    """What is left of the candidate's wall-clock budget for its video (at least a minute)."""
    return max(60.0, config.budget_s(cand.steps or config.steps) - (cand.wall_s or 0.0))


def _record_video(task: TaskSpec, folder: Path, config: SearchConfig, budget_s: float) -> None:
    from rewardgen.train.sb3 import evaluate, load_reward

    _, reward = load_reward(task, str(folder / "reward.py"), config.sandbox)
    try:
        evaluate(
            folder / "train",
            task,
            reward,
            episodes=1,
            seed=config.seed + 20_000,
            eval_file=None,
            deadline=time.monotonic() + budget_s,
        )
    finally:
        reward.close()


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

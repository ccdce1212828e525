"""Run a benchmark: its baselines, then its searches, each cell in its own run directory; resume
after a kill without redoing finished cells; collect every cell's numbers into ``bench.json``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rewardgen.bench.config import SUITES, BenchConfig, Cell, extrinsic_program, oni_goal, sparse_program
from rewardgen.errors import RewardgenError
from rewardgen.methods import METHODS, get_method_info
from rewardgen.runs import CandidateRecord, EvalSummary, RunDir
from rewardgen.synthesis.clock import format_seconds
from rewardgen.synthesis.executor import Executor, make_executor
from rewardgen.tasks import get_task

__all__ = ["BENCH_FILE", "cell_result", "plan_text", "run_bench"]

BENCH_FILE = "bench.json"
ClientFactory = Callable[[Cell, Path], Any]  # (cell, its run directory) -> an LLMClient


def _done(cell: Cell, folder: Path) -> bool:
    """A finished cell: a search that wrote its summary, a policy trained once whose run finished."""
    if not cell.search:
        return RunDir.read_manifest(folder).get("status") == "finished"
    return (folder / "summary.json").is_file()


def measured_speed(config: BenchConfig, root: Path, probe_steps: int = 8192) -> dict[str, float]:
    """Training steps/s per task: from this benchmark's trained baselines where there are some,
    else measured now: a short PPO run on the first task and each task's raw env steps/s
    relative to that task's."""
    speeds: dict[str, float] = {}
    for cell in config.cells():
        m = RunDir.read_manifest(cell.folder(root)) if not cell.search else {}
        train_s = (m.get("timing") or {}).get("train_s")
        if train_s and m.get("trained_steps"):
            speeds.setdefault(cell.task, m["trained_steps"] / train_s)
    missing = [t for t in config.tasks if t not in speeds]
    if not missing or probe_steps <= 0:
        return speeds
    import tempfile

    from rewardgen.training import TrainConfig, train

    first = missing[0]
    with tempfile.TemporaryDirectory() as tmp:
        result = train(
            TrainConfig(task=first, steps=probe_steps, video=False, eval_episodes=1, progress=False),
            out=Path(tmp) / "probe",
            method="probe",
        )
        timing = RunDir.read_manifest(result.run_dir).get("timing") or {}
    trained = probe_steps / max(timing.get("train_s") or 1.0, 1e-3)
    raw = {t: _raw_env_speed(t) for t in missing}
    return {**speeds, **{t: trained * raw[t] / raw[first] for t in missing}}


def _raw_env_speed(task: str, steps: int = 1000) -> float:
    """Random-action env steps/s of one env of ``task``."""
    from rewardgen.tasks import make_env

    env = make_env(task)
    env.reset(seed=0)
    started = time.perf_counter()
    for _ in range(steps):
        *_, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - started
    env.close()
    return steps / max(elapsed, 1e-6)


def plan_text(config: BenchConfig, root: Path) -> str:
    """What the benchmark will run and about how long it takes, before anything runs."""
    cells = config.cells()
    todo = [c for c in cells if not _done(c, c.folder(root))]
    searches = [c for c in todo if c.search]
    calls = sum(config.expected_calls(c.method) for c in searches)
    direct = sorted({c.method for c in todo if not c.search and not c.baseline})
    lines = [
        f"plan: {len(config.tasks)} task(s) x {len(config.methods)} method(s) x {config.seeds} seed(s), "
        f"baselines {', '.join(config.baselines) or 'none'}: {len(cells)} cells, {len(todo)} to run",
        f"  {config.steps:,} training steps per policy; "
        + (
            f"{len(searches)} searches make about {calls} LLM requests (more where candidates fail "
            "and are asked for again)"
            if searches
            else "no searches"
        ),
    ]
    if "oni" in direct:
        lines.append(
            "  oni cells train one at a time beside their annotation service, which asks the LLM about "
            "each new NetHack message (batches of 32)"
        )
    if "vlm" in direct:
        lines.append(f"  vlm cells render and score every frame with {config.vlm_model} on {config.device}")
    if config.suite and SUITES.get(config.suite, {}).get("note"):
        lines.append(f"  suite {config.suite}: {SUITES[config.suite]['note']}")
    speeds = measured_speed(config, root) if todo else {}
    steps = sum(config.steps * _policies(config, c) for c in todo)
    timed = [c for c in todo if c.task in speeds]
    shared = sum(config.steps * _policies(config, c) / speeds[c.task] for c in timed if not _alone(c))
    alone = sum(config.steps / speeds[c.task] for c in timed if _alone(c))  # one at a time
    seconds = shared / max(1, config.workers) + alone
    if todo:
        lines.append(
            f"  about {steps:,} training steps in all: ~{format_seconds(seconds)} "
            f"with {config.workers} at a time, at the training speed measured here "
            f"({', '.join(f'{t} {v:,.0f}' for t, v in speeds.items())} steps/s; candidates that stop at "
            "their success take less"
            + ("; rendering and scoring frames for vlm cells takes more" if "vlm" in direct else "")
            + ")"
        )
    return "\n".join(lines)


def _alone(cell: Cell) -> bool:
    """Whether a cell trains one at a time, beside a service of its method's own (ONI's)."""
    info = METHODS.get(cell.method)
    return info is not None and info.service


def _policies(config: BenchConfig, cell: Cell) -> int:
    """Policies a cell trains when nothing fails: K candidates per round for a search, else one."""
    if not cell.search:
        return 1
    search = config.search_config(cell, get_task(cell.task))
    return search.samples * (1 if get_method_info(cell.method).one_round else search.iterations)


def _reward(cell: Cell, task: Any, config: BenchConfig, oni: Any = None) -> tuple[Any, dict[str, Any]]:
    """The reward a cell trains on without a search, and how it meets the env's reward."""
    from rewardgen.programs import ProgramSpec

    if cell.method == "reference":
        return task.reference_reward(), {}
    if cell.method == "sparse":
        return ProgramSpec(source=sparse_program(task), label=f"sparse-{task.id}.py"), {}
    if cell.method == "extrinsic":
        return ProgramSpec(source=extrinsic_program(task), label=f"extrinsic-{task.id}.py"), {"mode": "add"}
    if cell.method == "vlm":
        from rewardgen.vlm import VLMSpec

        v = task.vlm
        return VLMSpec(config.vlm_model, v.goal, v.baseline, v.alpha, device=config.device), {}
    if cell.method == "oni":
        from rewardgen.oni.session import oni_mixing

        return oni, oni_mixing()
    raise RewardgenError(f"no reward for method {cell.method} without a search")  # pragma: no cover


def _train_once(cell: Cell, folder: Path, config: BenchConfig, oni: Any = None) -> dict[str, Any]:
    """Train a cell's one policy (a baseline, vlm, oni) as the search trains a candidate: the same
    steps, seed, periodic evaluation and stop at success."""
    from rewardgen.training import TrainConfig, train

    task = get_task(cell.task)
    reward, how = _reward(cell, task, config, oni)
    search = config.search_config(cell, task)
    every = search.candidate_eval_every(config.steps)
    result = train(
        TrainConfig(
            task=task,
            reward=reward,
            steps=config.steps,
            n_envs=config.n_envs,
            seed=cell.seed,
            device=config.device,
            video=False,
            eval_episodes=config.eval_episodes,
            hyperparams=dict(config.hyperparams),
            profile=config.profile,
            progress=False,
            eval_every=every or None,
            stop_on_success=every > 0,
            backend=config.backend,
            **how,
        ),
        out=folder,
        method=f"bench-{cell.method}",
    )
    return {"success_rate": result.eval.success_rate}


ONI_STORE = "oni_labels.sqlite"


def _train_oni(
    cell: Cell, folder: Path, config: BenchConfig, settings: Any, source: Path | None
) -> dict[str, Any]:
    """An ONI cell: its own label store in the cell's folder, labelled by the annotation service
    (an LLM at ``settings``) while the agent trains. Replayed from the recorded cell ``source``,
    the recorded store is copied and no service runs: the agent is paid the recorded labels, a
    message the recording never labelled pays nothing, and no endpoint is asked."""
    import sqlite3

    from rewardgen.oni import OniSpec
    from rewardgen.oni.session import labelling

    task = get_task(cell.task)
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / ONI_STORE
    if source is not None:
        recorded = source / ONI_STORE
        if not recorded.is_file():
            raise RewardgenError(f"cannot replay {cell.label}: no label store at {recorded}")
        llm = RunDir.read_manifest(source).get("llm") or {}
        with sqlite3.connect(recorded) as src, sqlite3.connect(store) as dst:
            src.backup(dst)  # a consistent copy, the write-ahead log included
        model = llm.get("model") or ""
        llm["replayed_from"] = str(source)
    else:
        model = settings.model
        llm = {"model": settings.model, "endpoint": settings.endpoint}
    spec = OniSpec(store, goal=oni_goal(task), model=model, reward=config.oni_reward)
    with labelling(spec, folder, settings):  # no settings (a replay): the recorded labels pay
        result = _train_once(cell, folder, config, spec)
    RunDir.open(folder).update(llm=llm, oni_labels=spec.store().counts())
    return result


def run_bench(
    config: BenchConfig,
    root: Path,
    client_for: ClientFactory,
    log: Callable[[str], None] = lambda line: None,
    executor: Executor | None = None,
    caption: str | None = None,
    replay: Path | None = None,
) -> dict[str, Any]:
    """Run every cell of ``config`` not finished in ``root``; returns (and writes) ``bench.json``.
    ``replay``: the recorded benchmark that ``client_for``'s clients replay (ONI cells replay its
    label stores)."""
    from rewardgen.bench.table import write_outputs
    from rewardgen.synthesis import synthesize

    root.mkdir(parents=True, exist_ok=True)
    _write_config(config, root)
    own = executor is None
    executor = executor or make_executor(config.executor, config.workers, config.ray_address)
    try:
        once = [c for c in config.cells() if not c.search and not _alone(c) and not _done(c, c.folder(root))]
        if once:
            names = sorted({c.method for c in once}, key=[*config.baselines, *config.methods].index)
            log(f"training {len(once)} policies on one reward each ({', '.join(names)})")
            jobs = [(c, c.folder(root), config) for c in once]
            shipped = [[c.folder(root)] for c in once]
            for c, r in zip(once, executor.map(_train_once, jobs, folders=shipped), strict=True):
                if isinstance(r, BaseException):
                    log(f"  {c.label}: failed: {r}")
                    _failed(c, c.folder(root), r)
                else:
                    log(f"  {c.label}: success rate {r['success_rate']:.0%}")
        for cell in [c for c in config.cells() if _alone(c) and not _done(c, c.folder(root))]:
            log(f"{cell.label}: training with ONI's labels (the annotation service labels as it goes)")
            try:  # here, not through the executor: the annotation service runs beside the training
                if replay is not None:
                    r = _train_oni(cell, cell.folder(root), config, None, cell.folder(replay))
                else:
                    client = client_for(cell, cell.folder(root))
                    client.close()  # its settings are the annotation service's, which has its own client
                    r = _train_oni(cell, cell.folder(root), config, client.settings, None)
                log(f"  {cell.label}: success rate {r['success_rate']:.0%}")
            except Exception as exc:  # a cell that fails is recorded; the benchmark goes on
                log(f"  {cell.label}: failed: {exc}")
                _failed(cell, cell.folder(root), exc)
        todo = [c for c in config.cells() if c.search and not _done(c, c.folder(root))]

        def search_cell(cell: Cell) -> None:
            folder = cell.folder(root)
            task = get_task(cell.task)
            search = config.search_config(cell, task)
            if (folder / RunDir.MANIFEST).is_file():
                run = RunDir.open(folder)
                log(f"{cell.label}: resuming (finished candidates are kept)")
            else:
                run = RunDir.create(task.id, cell.method, search.record(), out=folder)
                log(f"{cell.label}: searching")
            started = time.monotonic()
            client = client_for(cell, folder)
            if replay is not None:  # no endpoint is asked: the recording's model, and where it is
                recorded = RunDir.read_manifest(cell.folder(replay)).get("llm") or {}
                run.update(llm={"model": recorded.get("model"), "replayed_from": str(cell.folder(replay))})
            else:
                run.update(llm={"model": client.settings.model, "endpoint": client.settings.endpoint})
            prefix = f"  {cell.label}: " if config.parallel_cells > 1 else "  "
            try:
                synthesize(
                    search, client, run, executor=executor, log=lambda line: log(prefix + line.strip())
                )
            except RewardgenError as exc:  # a cell that fails is recorded; the benchmark goes on
                run.update(status="failed", error=str(exc))
                log(f"  {cell.label}: failed: {exc}")
            finally:
                client.close()
            run.update(bench_wall_s=round(time.monotonic() - started, 1))

        if config.parallel_cells > 1 and len(todo) > 1:
            # cells at once, their candidates through the one executor (its process pool or Ray)
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=config.parallel_cells) as pool:
                list(pool.map(search_cell, todo))
        else:
            for cell in todo:
                search_cell(cell)
        results = [cell_result(c, c.folder(root)) for c in config.cells()]
        return write_outputs(config, root, results, caption)
    finally:
        if own:
            executor.close()


def _failed(cell: Cell, folder: Path, exc: BaseException) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "error.txt").write_text(f"{type(exc).__name__}: {exc}\n")


def _write_config(config: BenchConfig, root: Path) -> None:
    path = root / BENCH_FILE
    if path.is_file():
        saved = json.loads(path.read_text()).get("config")
        if saved and saved != json.loads(json.dumps(config.record())):
            raise RewardgenError(
                f"{root} holds a benchmark with other settings: resume it with `rewardgen bench --resume "
                f"{root}`, or give another --out"
            )
    else:
        path.write_text(json.dumps({"config": config.record(), "status": "running"}, indent=2))


def cell_result(cell: Cell, folder: Path) -> dict[str, Any]:
    """One cell's numbers: the final policy's success rate and metric (its score, higher is
    better), time to the first success and in all, LLM usage, failures with reasons, the
    reward-hacking alarm's verdict."""
    from rewardgen.diagnostics.alarm import recorded_verdict

    out: dict[str, Any] = {"task": cell.task, "method": cell.method, "seed": cell.seed, "status": "missing"}
    task = get_task(cell.task)
    manifest = RunDir.read_manifest(folder)
    if (folder / "error.txt").is_file():
        out.update(status="failed", error=(folder / "error.txt").read_text().strip())
    if not manifest:
        return out
    out["status"] = manifest.get("status", "missing")
    if not cell.search:
        ev = manifest.get("eval")
        hit = manifest.get("first_success")
        train_run = folder
        confirmed = bool(ev) and EvalSummary.from_dict(ev).succeeded  # the final evaluation's verdict
        first = (hit["wall_time_s"] if hit else manifest.get("wall_s")) if confirmed else None
        out.update(wall_s=manifest.get("wall_s"), first_success_s=first)
        out["curve"] = str((folder / RunDir.METRICS).relative_to(folder.parents[3]))
        if _alone(cell):  # the service's calls (ONI's annotation service), from its transcript
            from rewardgen.llm.transcript import transcript_usage

            out.update(
                llm=transcript_usage(folder / "llm" / "transcript.jsonl"), labels=manifest.get("oni_labels")
            )
    else:
        summary_path = folder / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
        best = summary.get("best") or manifest.get("best")
        record = CandidateRecord.from_dict(best) if best else None
        ev = record.eval.to_dict(episodes=False) if record is not None and record.eval is not None else None
        train_run = record.path / "train" if record is not None and record.path is not None else None
        hit = next((r for r in manifest.get("rounds", []) if r.get("first_success_s") is not None), None)
        cands = [CandidateRecord.from_dict(c) for c in summary.get("candidates", [])]
        usage = manifest.get("llm_usage") or {}
        out.update(
            wall_s=(summary.get("time") or {}).get("wall_s") or manifest.get("bench_wall_s"),
            first_success_s=hit["first_success_s"] if hit else None,
            best=record.label if record is not None else None,
            llm={
                k: usage.get(k)
                for k in ("calls", "cache_hits", "prompt_tokens", "completion_tokens", "cost_usd")
            },
            candidates=len(cands),
            refused=[f"{c.label}: {c.reason}" for c in cands if c.status == "refused"],
            failed=[f"{c.label}: {c.reason}" for c in cands if c.status == "failed"],
            error=manifest.get("error"),
        )
        if train_run is not None:
            out["curve"] = str((train_run / RunDir.METRICS).relative_to(folder.parents[3]))
    if ev:
        out.update(
            succeeded=EvalSummary.from_dict(ev).succeeded,
            success_rate=ev["success_rate"],
            success_metric=ev["success_metric_mean"],
            score=task.metric.score(ev["success_metric_mean"]),
        )
    verdict = recorded_verdict(train_run) if train_run is not None else None
    out["alarm"] = verdict.summary() if verdict is not None and verdict.hacked else None
    return out

"""A training run's life, the same on every back end: begin, watch, end.

A back end owns only its learner. Around it, every back end does the same things, and does them
here: :func:`begin_run` writes the run directory and its manifest; a :class:`RunWatch` follows
the training (episode statistics to ``metrics.csv`` every ``log_every`` steps, periodic
evaluations to ``evals.csv``, the wall-clock budget, the search's
:class:`~rewardgen.runs.StopSignal`, stopping at the first success) and, when the learner
returns, records what happened (``trained_steps``, ``first_success``, ``stopped_early``, over
budget); :func:`finish_run` draws the curve, evaluates the saved policy, runs the reward-hacking
alarm and marks the run finished. A back end calls the watch from its own loop (SB3's callback,
sample-factory's observer): :meth:`RunWatch.episodes_done` with each batch of finished episodes,
:meth:`RunWatch.should_stop` at each step, :meth:`RunWatch.poll_signal` at each rollout's end,
:meth:`RunWatch.eval_due` and :meth:`RunWatch.evaluate` with its
:class:`~rewardgen.training.policy.Policy`.

Example:
    >>> watch = RunWatch.start(config, spec, run, steps, started=time.monotonic())  # doctest: +SKIP
    >>> watch.episodes_done(episodes, steps_so_far)  # doctest: +SKIP
    >>> if watch.eval_due(steps_so_far):  # doctest: +SKIP
    ...     watch.evaluate(policy, steps_so_far)
    >>> stop = watch.poll_signal() or watch.should_stop(steps_so_far)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import Any, NoReturn

from rewardgen.rewards import RewardSpec
from rewardgen.runs import EvalSummary, MetricsWriter, RunDir, StopSignal, metrics_row
from rewardgen.tasks import TaskSpec
from rewardgen.training.evaluation import OverBudgetError, evaluate, judge_run, plot_run_curve

__all__ = ["RunWatch", "begin_run", "finish_run", "over_budget"]


def begin_run(
    spec: TaskSpec,
    reward: RewardSpec,
    record: dict[str, Any],
    out: Any,
    method: str,
    backend: str,
    device: str,
) -> RunDir:
    """How every back end starts a run: the run directory with its manifest (``record``: the
    config as recorded), the reward's files beside it, and what every run says of itself (env id,
    device, reward, back end)."""
    run = RunDir.create(spec.id, method, record, out=out)
    for name, text in reward.files().items():
        run.file(name).write_text(text)
    run.update(env_id=spec.gym_id, device=device, reward=reward.describe(), backend=backend)
    return run


def over_budget(run: RunDir, budget_s: float | None, started: float, where: str) -> NoReturn:
    """Mark ``run`` failed for running past its wall-clock budget and raise :class:`OverBudgetError`."""
    reason = (
        f"stopped {where}: over its wall-clock budget of {budget_s or 0:.0f} s "
        f"({time.monotonic() - started:.0f} s spent; a slow reward or env, or raise the budget)"
    )
    run.update(status="failed", error=reason)
    raise OverBudgetError(reason)


class RunWatch:
    """What every back end does while its learner trains (see the module's docstring).

    ``deadline`` is ``time.monotonic()`` seconds; ``t0`` (``time.time()``) is when training
    started, which ``metrics.csv`` and ``evals.csv`` count from.

    Example:
        >>> watch = RunWatch.start(TrainConfig("hopper-run", eval_every=20_000), spec, run, 200_000,
        ...                        started=time.monotonic())  # doctest: +SKIP
        >>> watch.eval_due(20_480), watch.should_stop(20_480)  # doctest: +SKIP
        (True, False)
    """

    def __init__(
        self,
        spec: TaskSpec,
        steps: int,
        writer: MetricsWriter,
        evaluator: Any = None,
        eval_every: int = 0,
        stop_on_success: bool = False,
        deadline: float | None = None,
        signal: StopSignal | None = None,
    ):
        self.spec, self.steps, self.writer, self.evaluator = spec, steps, writer, evaluator
        self.eval_every, self.stop_on_success = eval_every, stop_on_success
        self.deadline, self.signal = deadline, signal
        self.log_every = max(1000, steps // 100)
        self.buffer: list[dict[str, Any]] = []
        self.episodes = 0
        self.last_log = 0
        self.t0 = time.time()
        self.continued = False  # counts on from an earlier run's metrics
        self.next_eval: int | None = None  # set when training begins (a continued run's count)
        self.over = False  # ran past its deadline
        self.stopped: str | None = None  # why training ended before its steps, if it did
        self.closed = False

    @classmethod
    def start(
        cls, config: Any, spec: TaskSpec, run: RunDir, steps: int, started: float, continuing: bool = False
    ) -> RunWatch:
        """The watch of a run that ``config`` (a :class:`~rewardgen.training.TrainConfig`) describes:
        its metrics writer, its periodic evaluator (with ``eval_every`` or ``stop_on_success``),
        its deadline (``time_budget_s`` from ``started``) and its stop signal (``stop_file``).
        ``continuing``: the run goes on from a saved state, and its files are added to."""
        evaluator = None
        if config.eval_every or config.stop_on_success:
            from rewardgen.training.periodic import PeriodicEvaluator

            evaluator = PeriodicEvaluator(
                spec,
                run.file(RunDir.EVALS),
                seed=config.seed + 30_000,
                append=continuing,
                until_decided=getattr(config, "eval_until_decided", False),
                # a success counts once the final evaluation's episodes (finish_run's) confirm it
                confirm_seed=config.seed + 10_000,
                confirm_episodes=config.eval_episodes,
            )
        watch = cls(
            spec,
            steps,
            MetricsWriter(run.file(RunDir.METRICS), append=continuing),
            evaluator=evaluator,
            eval_every=config.eval_every or max(steps // 20, 10_000),
            stop_on_success=config.stop_on_success,
            deadline=started + config.time_budget_s if config.time_budget_s is not None else None,
            signal=StopSignal(config.stop_file) if config.stop_file is not None else None,
        )
        if continuing and run.file(RunDir.METRICS).is_file():  # go on counting where it stopped
            rows = run.metrics()
            if rows:
                watch.episodes, watch.last_log = int(rows["episodes"][-1]), int(rows["timesteps"][-1])
                watch.t0 -= float(rows["wall_time_s"][-1])
                watch.continued = True
        return watch

    def begin(self, timesteps: int) -> None:
        """Training starts now, at ``timesteps`` (more than 0 when a run continues: its clock
        and episode count go on from its ``metrics.csv``)."""
        if not self.continued:
            self.t0 = time.time()
        self.last_log = max(self.last_log, timesteps)
        self.next_eval = (timesteps // self.eval_every + 1) * self.eval_every if self.eval_every else None

    def wall_s(self) -> float:
        """Seconds since training started (evaluations included)."""
        return time.time() - self.t0

    def episodes_done(self, episodes: list[dict[str, Any]], timesteps: int) -> dict[str, Any] | None:
        """Finished episodes' summaries (the reward wrapper's ``reward_episode``); a metrics row
        is written (and returned) once ``log_every`` steps have passed since the last."""
        self.buffer.extend(episodes)
        if self.buffer and timesteps - self.last_log >= self.log_every:
            return self.flush(timesteps)
        return None

    def flush(self, timesteps: int) -> dict[str, Any] | None:
        """Write the episodes gathered so far as one ``metrics.csv`` row (None: there are none)."""
        if not self.buffer:
            return None
        eps, self.buffer = self.buffer, []
        self.episodes += len(eps)
        self.last_log = timesteps
        row = metrics_row(eps, self.spec.metric, timesteps, self.wall_s(), self.episodes)
        self.writer.write(row)
        return row

    def eval_due(self, timesteps: int) -> bool:
        """Whether a periodic evaluation is due at ``timesteps``."""
        if self.evaluator is None:
            return False
        if self.next_eval is None:
            self.next_eval = (timesteps // self.eval_every + 1) * self.eval_every
        return timesteps >= self.next_eval

    def evaluate(self, policy: Any, timesteps: int) -> dict[str, Any]:
        """Evaluate ``policy`` (a :class:`~rewardgen.training.policy.Policy`) as of ``timesteps``;
        at a success with ``stop_on_success`` the watch asks training to stop."""
        row = self.evaluator(policy, timesteps, self.wall_s())
        self.next_eval = (timesteps // self.eval_every + 1) * self.eval_every
        if self.stop_on_success and row["succeeded"]:
            self.stopped = "succeeded"
        return row

    def should_stop(self, timesteps: int) -> bool:
        """Whether training ends now: it succeeded (``stop_on_success``), the search asked (as
        last seen by :meth:`poll_signal`), or the deadline passed before ``steps``. Cheap enough
        for every step."""
        if self.stopped:
            return True
        if self.deadline is not None and time.monotonic() > self.deadline and timesteps < self.steps:
            self.over = True
            return True
        return False

    def poll_signal(self) -> bool:
        """Whether the search has asked its runs to stop (a file read: at a rollout's end, not
        every step); the reason is kept as ``stopped``."""
        if not self.stopped and self.signal is not None and (why := self.signal.reason()) is not None:
            self.stopped = why
        return self.stopped is not None

    def end(self, run: RunDir, trained_steps: int, config: Any, started: float) -> float:
        """Training has returned: the last episodes written, the files closed, and what happened
        recorded in the manifest (``trained_steps``, ``first_success``, ``stopped_early``); a run
        past its deadline is marked failed (:class:`OverBudgetError`). Returns the seconds the
        periodic evaluations took."""
        if not self.closed:
            self.flush(trained_steps)
            self.close()
        run.update(trained_steps=int(trained_steps))
        spent = 0.0
        if self.evaluator is not None:
            spent = self.evaluator.spent_s
            if (hit := self.evaluator.first_success()) is not None:
                run.update(first_success={"timesteps": hit["timesteps"], "wall_time_s": hit["wall_time_s"]})
        if self.stopped:
            run.update(stopped_early=self.stopped)
        if self.over:
            where = f"after {trained_steps:,} of {self.steps:,} training steps"
            over_budget(run, config.time_budget_s, started, where)
        return spent

    def close(self) -> None:
        """Close the metrics file and the evaluator's envs (once; later calls do nothing)."""
        if self.closed:
            return
        self.closed = True
        self.writer.close()
        if self.evaluator is not None:
            self.evaluator.close()


def finish_run(
    run: RunDir,
    spec: TaskSpec,
    reward: RewardSpec,
    config: Any,
    learner: str,
    started: float,
    periodic_eval_s: float = 0.0,
) -> tuple[EvalSummary, Any]:
    """How every back end ends a run: the learning curve, the evaluation of the saved policy
    (within what is left of ``config.time_budget_s``, counted from ``started``), the reward-hacking
    alarm's verdict, and the manifest marked finished, with where the time went (``timing``:
    training, and evaluating, ``periodic_eval_s`` of it during training). Returns (evaluation,
    verdict)."""
    trained = time.monotonic()
    plot_run_curve(run, spec, reward, learner)
    deadline = started + config.time_budget_s if config.time_budget_s is not None else None
    try:
        result = evaluate(
            run.path,
            spec,
            reward,
            config.eval_episodes,
            config.seed + 10_000,
            video=config.video,
            video_steps=config.video_steps,
            deadline=deadline,
        )
    except OverBudgetError:
        over_budget(run, config.time_budget_s, started, "while evaluating the trained policy")
    verdict = judge_run(run, spec, reward, result, learner)
    from rewardgen.runs.tensorboard import ScalarLog

    final = ScalarLog(run.path)
    final.row(
        {"timesteps": int(run.manifest.get("trained_steps") or 0), **result.to_dict(episodes=False)}, "final/"
    )
    final.close()
    now = time.monotonic()
    timing = {"train_s": trained - started - periodic_eval_s, "eval_s": periodic_eval_s + now - trained}
    run.update(
        status="finished",
        eval=result.to_dict(),
        wall_s=round(now - started, 1),
        timing={k: round(v, 2) for k, v in timing.items()},
    )
    return result, verdict

"""Evaluate a saved policy on its task's success metric: episodes, returns, a video."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.errors import RewardgenError
from rewardgen.rewards import RewardFn, RewardSpec
from rewardgen.runs import (
    EpisodeResult,
    EvalSummary,
    RunDir,
    annotate_frames,
    episode_means,
    plot_learning_curve,
    write_video,
)
from rewardgen.tasks import TaskSpec, get_task, make_env, make_env_fn, wrapper_kwargs

__all__ = ["OverBudgetError", "evaluate", "judge_run", "plot_run_curve"]


class OverBudgetError(RewardgenError):
    """Training or evaluation ran past its wall-clock budget and was stopped."""


def plot_run_curve(
    run: RunDir, spec: TaskSpec, reward: RewardSpec, learner: str, alarm: str | None = None
) -> None:
    """``learning_curve.png`` from the run's metrics.csv: the reward's return beside the env's,
    the task's metric against its threshold (both back ends draw it this way); with the
    reward-hacking alarm's words, its two curves highlighted."""
    plot_learning_curve(
        run.file(RunDir.METRICS),
        run.file(RunDir.CURVE),
        f"{spec.id}: {learner} on {Path(reward.name).name}",
        spec.metric.above if spec.metric.above is not None else spec.metric.below,
        metric_label=f"{spec.metric.reduce} {spec.metric.field}",
        reward_label=reward.return_label,
        alarm=alarm,
    )


def judge_run(run: RunDir, spec: TaskSpec, reward: RewardSpec, result: EvalSummary, learner: str) -> Any:
    """The reward-hacking alarm's verdict on a finished run (kept in its manifest as ``alarm``);
    when it fires, ``learning_curve.png`` is drawn again with the two curves that show it."""
    from rewardgen.diagnostics.alarm import hacking_verdict

    logged = reward.logged_components
    verdict = hacking_verdict(run.metrics(), result.to_dict(), spec.metric, logged=logged)
    run.update(alarm=verdict.to_dict(), reward_logged=sorted(logged))
    if verdict.hacked:
        plot_run_curve(run, spec, reward, learner, alarm=verdict.summary())
    return verdict


#: About how many frames a second a film keeps of an episode (MuJoCo's Hopper runs at 125).
VIDEO_FPS = 30


def evaluate(
    run_dir: str | Path,
    task: TaskSpec | str,
    reward: RewardSpec | RewardFn,
    episodes: int = 3,
    seed: int = 10_000,
    video: bool = True,
    video_steps: int = 400,
    deterministic: bool = True,
    eval_file: str | None = RunDir.EVAL,
    deadline: float | None = None,
    pad_video: bool = False,
) -> EvalSummary:
    """Run the saved policy of ``run_dir`` for ``episodes`` episodes (at least the task's rule
    asks, :meth:`~rewardgen.tasks.MetricSpec.episodes`; in parallel, one env each): env return,
    synthesized return, success metric and success per episode, and the rule's verdict ->
    ``eval_file`` (None: not written); the first episode -> ``video.mp4`` (for a reward that
    scores frames, with each frame's reward drawn below it). Past ``deadline``
    (``time.monotonic()``) it stops with :class:`OverBudgetError`. A spec's reward is built here;
    a reward function is used (and closed) as it is. ``pad_video``: a first episode shorter than
    ``video_steps`` holds its last frame to that length, so that videos compared side by side
    (ICPL, report.html) have one length.

    Example:
        >>> evaluate("runs/my-run", "hopper-run", get_task("hopper-run").reference_reward())  # doctest: +SKIP
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from rewardgen.training.api import load_policy
    from rewardgen.wrappers.sb3 import SB3RewardVecWrapper

    spec = get_task(task)
    size: dict[str, Any] = {}
    if isinstance(reward, RewardSpec):
        size, reward = reward.render_kwargs(), reward.build()
    run = RunDir.open(run_dir)
    model = load_policy(run.path, spec)  # by the back end that trained it
    n = spec.metric.episodes(episodes)  # the task's rule sets the fewest; one env each, in parallel
    size = size if reward.needs_frames else {}  # a reward that scores frames: the size it needs
    # the film is the first env's first episode: only it is rendered (unless the reward scores
    # frames), though every env has the render mode (a vector env wants one for all)
    render = "rgb_array" if video or reward.needs_frames else None
    makers = [make_env_fn(spec, render_mode=render, fields=reward.fields, **size) for _ in range(n)]
    dummy = DummyVecEnv(makers)
    dummy.seed(seed)
    venv: Any = SB3RewardVecWrapper(dummy, reward, **wrapper_kwargs(spec, reward.fields))
    if run.file(RunDir.NORMALIZER).exists():
        venv = VecNormalize.load(str(run.file(RunDir.NORMALIZER)), venv)
        venv.training, venv.norm_reward = False, False
    frames: list[np.ndarray] = []
    scores: list[float | None] = []  # the reward of the step that led to each frame
    last: float | None = None
    finished: dict[int, dict[str, Any]] = {}  # each env's first episode (the wrapper's summary)
    # a film renders every stride-th step (a frame costs tens of ms on the CPU), about VIDEO_FPS
    # frames a second of the episode's own time; a reward that scores frames sees every one
    env_fps = int(make_env(spec).metadata.get("render_fps", VIDEO_FPS)) if video else VIDEO_FPS
    stride = 1 if reward.needs_frames else max(1, round(env_fps / VIDEO_FPS))
    steps = 0
    obs = venv.reset()
    while len(finished) < n:
        if deadline is not None and time.monotonic() > deadline:
            venv.close()
            raise OverBudgetError(f"evaluation stopped after {len(finished)} of {n} episodes")
        if video and 0 not in finished and steps < video_steps and steps % stride == 0:
            frames.append(dummy.envs[0].render())
            scores.append(last)
        steps += 1
        action, _ = model.predict(obs, deterministic=deterministic)
        obs, rewards, dones, infos = venv.step(action)
        last = float(rewards[0])
        for i in np.flatnonzero(dones):
            finished.setdefault(int(i), infos[i]["reward_episode"])
    venv.close()
    ordered = [finished[i] for i in range(n)]  # the filmed episode first
    results = [
        EpisodeResult(
            env_return=ep["env_return"],
            reward_return=ep["reward_return"],
            length=ep["length"],
            success_metric=ep["metrics"]["success_metric"],
            success=bool(spec.metric.success(ep["metrics"]["success_metric"])),
            components=ep["components"],
        )
        for ep in ordered
    ]
    means = episode_means(ordered, spec.metric)  # as metrics.csv and evals.csv compute them
    summary = EvalSummary(
        episodes=tuple(results),
        env_return_mean=means["env_return_mean"],
        reward_return_mean=means["reward_return_mean"],
        success_metric_mean=means["success_metric_mean"],
        success_rate=means["success_rate"],
        metric=spec.metric.describe(),
        succeeded=spec.metric.succeeds([r.success_metric for r in results]),
    )
    if eval_file:
        summary.write(run.file(eval_file))
    length = -(-video_steps // stride)  # the frames a whole film holds
    if video and frames and pad_video and len(frames) < length:
        frames += [frames[-1]] * (length - len(frames))
        scores += [None] * (len(frames) - len(scores))
    if video and frames and reward.needs_frames:  # show what the reward saw and what it paid
        frames = annotate_frames(frames, scores, "reward")
    if video and frames:
        write_video(frames, run.file(RunDir.VIDEO), fps=max(1, round(env_fps / stride)))
    return summary

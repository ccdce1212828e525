"""Evaluate a saved policy on its task's success metric: episodes, returns, a video."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.errors import RewardgenError
from rewardgen.rewards import RewardFn, RewardSpec
from rewardgen.tasks import TaskSpec, get_task, make_env, make_env_fn, wrapper_kwargs
from rewardgen.train.report import episode_means, write_video

__all__ = ["OverBudgetError", "evaluate"]


class OverBudgetError(RewardgenError):
    """Training or evaluation ran past its wall-clock budget and was stopped."""


def evaluate(
    run_dir: str | Path,
    task: TaskSpec | str,
    reward: RewardSpec | RewardFn,
    episodes: int = 3,
    seed: int = 10_000,
    video: bool = True,
    video_steps: int = 400,
    deterministic: bool = True,
    eval_file: str | None = "eval.json",
    deadline: float | None = None,
) -> dict[str, Any]:
    """Run the saved policy of ``run_dir`` for ``episodes`` episodes: env return, synthesized
    return, success metric and success per episode -> ``eval_file`` (None: not written); the
    first episode -> ``video.mp4``. Past ``deadline`` (``time.monotonic()``) it stops with
    :class:`OverBudgetError`. A spec's reward is built here; a reward function is used (and
    closed) as it is.

    Example:
        >>> evaluate("runs/my-run", "hopper-run", get_task("hopper-run").reference_reward())  # doctest: +SKIP
    """
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from rewardgen.wrappers.sb3 import SB3RewardVecWrapper

    spec = get_task(task)
    if isinstance(reward, RewardSpec):
        reward = reward.build()
    run_dir = Path(run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    cls = PPO if manifest["config"]["algo"] == "ppo" else SAC
    model = cls.load(run_dir / "model.zip", device="cpu")
    venv = DummyVecEnv([make_env_fn(spec, render_mode="rgb_array" if video else None, fields=reward.fields)])
    venv.seed(seed)
    venv = SB3RewardVecWrapper(venv, reward, **wrapper_kwargs(spec, reward.fields))
    if (run_dir / "vecnormalize.pkl").exists():
        venv = VecNormalize.load(str(run_dir / "vecnormalize.pkl"), venv)
        venv.training, venv.norm_reward = False, False
    frames: list[np.ndarray] = []
    results: list[dict[str, Any]] = []
    finished: list[dict[str, Any]] = []  # the wrapper's episode summaries
    obs = venv.reset()
    while len(results) < episodes:
        if deadline is not None and time.monotonic() > deadline:
            venv.close()
            raise OverBudgetError(f"evaluation stopped after {len(results)} of {episodes} episodes")
        if video and not results and len(frames) < video_steps:
            frames.append(venv.get_images()[0])
        action, _ = model.predict(obs, deterministic=deterministic)
        obs, _, dones, infos = venv.step(action)
        if dones[0]:
            ep = infos[0]["reward_episode"]
            value = ep["metrics"]["success_metric"]
            finished.append(ep)
            results.append(
                {
                    "env_return": ep["env_return"],
                    "reward_return": ep["reward_return"],
                    "length": ep["length"],
                    "success_metric": value,
                    "success": bool(spec.metric.success(value)),
                    "components": ep["components"],
                }
            )
    venv.close()
    means = episode_means(finished, spec.metric)
    summary = {
        "episodes": results,
        **{
            k: means[k]
            for k in ("env_return_mean", "reward_return_mean", "success_metric_mean", "success_rate")
        },
        "metric": spec.metric.describe(),
    }
    if eval_file:
        (run_dir / eval_file).write_text(json.dumps(summary, indent=2))
    if video and frames:
        fps = int(make_env(spec).metadata.get("render_fps", 30))
        write_video(frames, run_dir / "video.mp4", fps=fps)
    return summary

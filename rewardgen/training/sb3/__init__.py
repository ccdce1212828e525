"""The stable-baselines3 back end: PPO or SAC on any reward, VecNormalize, checkpoints,
evaluation on the task's success metric, a video and a learning curve in the run directory."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewardgen.errors import RewardgenError
from rewardgen.rewards import RewardFnError
from rewardgen.runs import RunDir
from rewardgen.tasks import TaskSpec, get_task, make_env, make_env_fn, wrapper_kwargs
from rewardgen.training.api import TrainConfig, TrainResult, resolve_device
from rewardgen.training.hooks import sb3_callback
from rewardgen.training.lifecycle import RunWatch, begin_run, finish_run
from rewardgen.training.sb3.callback import StepsBar, make_callback
from rewardgen.training.sb3.hyperparams import default_hyperparams, default_n_envs
from rewardgen.training.threads import set_train_threads

__all__ = ["check", "load_policy", "train"]

ALGOS = ("ppo", "sac")


def check() -> None:
    """stable-baselines3 is a core dependency: nothing to check."""


def load_policy(run: RunDir, task: Any) -> Any:
    """The saved SB3 model of ``run`` (PPO or SAC, as its manifest says), on the CPU."""
    from stable_baselines3 import PPO, SAC

    cls = PPO if run.manifest["config"]["algo"] == "ppo" else SAC
    return cls.load(run.file(RunDir.MODEL), device="cpu")


def _check_video(spec: TaskSpec) -> None:
    env = make_env(spec)
    modes = env.metadata.get("render_modes", [])
    env.close()
    if "rgb_array" not in modes:
        raise RewardgenError(
            f"{spec.gym_id} cannot render rgb_array frames (render modes: {modes or 'none'}): "
            "train with --no-video"
        )


def train(
    config: TrainConfig, out: str | Path | None = None, method: str = "train", hooks: Sequence[Any] = ()
) -> TrainResult:
    """The sb3 back end (through :func:`rewardgen.training.train`): PPO or SAC on ``config.reward``
    for ``config.task``, a run directory written. ``hooks``: rollout hooks, run as
    stable-baselines3 callbacks after rewardgen's own (PrefPPO's refits its reward model)."""
    import gymnasium as gym
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.buffers import DictRolloutBuffer, RolloutBuffer
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.utils import set_random_seed
    from stable_baselines3.common.vec_env import VecNormalize

    from rewardgen.training.sb3.deferred import (
        DeferredReplayBuffer,
        DeferredRewardVecNormalize,
        DeferredRolloutBuffer,
        attach_deferred_rewards,
    )
    from rewardgen.wrappers.sb3 import SB3RewardVecWrapper

    started = time.monotonic()
    spec = get_task(config.task)
    algo = (config.algo or spec.budget.algo).lower()
    if algo not in ALGOS:
        raise RewardgenError(f"unknown algorithm '{config.algo}': choose one of {', '.join(ALGOS)}")
    steps = int(config.steps or spec.budget.steps)
    if steps <= 0:
        raise RewardgenError(f"--steps must be positive, got {steps}")
    n_envs = int(config.n_envs or default_n_envs(algo, config.profile, spec.budget.n_envs))
    device = resolve_device(config.device)
    reward_spec = config.reward if config.reward is not None else spec.reference_reward()
    if config.video:
        os.environ.setdefault("MUJOCO_GL", "egl")
        _check_video(spec)

    set_random_seed(config.seed)
    threads = set_train_threads(config.threads)  # torch's default collapses on shared cores
    # built before the run directory: a reward that cannot be built (a bad model name, weights
    # missing) fails at once and leaves nothing behind
    reward = reward_spec.build()
    record = {**config.record(reward_spec), "algo": algo, "steps": steps, "n_envs": n_envs}
    record["torch_threads"] = threads
    run = begin_run(spec, reward_spec, record, out, method, "sb3", device)
    # PPO needs rewards only when a rollout ends: a reward that is a pure function of the
    # transitions (a program) scores the whole rollout in one call, which costs less per step
    # than scoring every step, in the sandbox (a process round trip) and in-process alike
    # SAC needs a reward only when it trains on the step: a reward that scores frames scores each
    # chunk of steps between gradient updates in one batch (VLM-RM scored whole episodes)
    render = {"render_mode": "rgb_array", **reward_spec.render_kwargs()} if reward.needs_frames else {}
    venv = make_vec_env(make_env_fn(spec, fields=reward.fields, **render), n_envs=n_envs, seed=config.seed)
    dict_obs = isinstance(venv.observation_space, gym.spaces.Dict)  # NetHack's: SB3's Dict classes
    defer = config.defer_reward
    if defer is None:
        defer = reward.needs_frames if algo == "sac" else reward_spec.deferrable and not reward.needs_frames
        defer = defer and not dict_obs  # the deferred buffers keep flat observations
    venv = wrapper = SB3RewardVecWrapper(
        venv,
        reward,
        config.mode,
        config.env_coef,
        config.reward_coef,
        defer=defer,
        **wrapper_kwargs(spec, reward.fields),
    )
    hp = {**default_hyperparams(algo, spec.env_id, config.profile), **config.hyperparams}
    cls = PPO if algo == "ppo" else SAC
    normalizer = DeferredRewardVecNormalize if defer else VecNormalize
    if algo == "ppo":
        plain = DictRolloutBuffer if dict_obs else RolloutBuffer
        buffer = {"rollout_buffer_class": DeferredRolloutBuffer if defer else plain}
    else:
        buffer = {"replay_buffer_class": DeferredReplayBuffer} if defer else {}
        if defer and "train_freq" not in config.hyperparams:
            # train after each episode-long chunk (as many gradient steps as env steps), not each step
            length = gym.spec(spec.gym_id).max_episode_steps or 100
            hp["train_freq"] = min(length, max(1, steps // n_envs // 4))
            hp.setdefault("gradient_steps", -1)
    if config.resume_from is not None:
        model, venv = _resume(cls, Path(config.resume_from), venv, device, normalizer, **buffer)
        if model.num_timesteps >= steps:
            venv.close()
            raise RewardgenError(
                f"{config.resume_from} already trained {model.num_timesteps} steps: ask for more than that"
            )
    else:
        venv = normalizer(venv, gamma=hp.get("gamma", 0.99))
        if algo == "ppo":
            hp["n_steps"] = max(8, min(hp.get("n_steps", 2048), steps // n_envs))
            hp["batch_size"] = min(hp.get("batch_size", 64), hp["n_steps"] * n_envs)
        else:
            hp["learning_starts"] = min(hp.get("learning_starts", 100), steps // 10)
        try:
            policy = "MultiInputPolicy" if dict_obs else "MlpPolicy"
            model = cls(policy, venv, device=device, seed=config.seed, verbose=0, **buffer, **hp)
        except TypeError as exc:  # an unknown keyword (SB3 names it)
            venv.close()
            raise RewardgenError(
                f"{algo.upper()} does not take these hyperparameters ({exc}); "
                f"check --hp / TrainConfig.hyperparams: {sorted(config.hyperparams)}"
            ) from exc
    if defer:
        attach_deferred_rewards(model, wrapper, venv)
    run.update(deferred_reward=defer)
    watch = RunWatch.start(config, spec, run, steps, started, continuing=config.resume_from is not None)
    callback = make_callback(
        watch,
        run,
        config.checkpoint_every or max(steps // 10, 1000),
        deferred_episodes=wrapper.pop_episodes if defer else None,
    )
    try:
        bar = [StepsBar()] if config.progress else []
        model.learn(
            total_timesteps=steps - model.num_timesteps,
            callback=[callback, *bar, *(sb3_callback(h) for h in hooks)],
            reset_num_timesteps=config.resume_from is None,
        )
    except KeyboardInterrupt:
        _save(model, run)
        run.update(status="interrupted")
        raise
    except RewardFnError as exc:
        _save(model, run)
        run.update(status="failed", error=str(exc))
        raise
    finally:
        venv.close()  # and the reward (its sandbox worker, if any); evaluation builds its own
        watch.close()
    _save(model, run)
    spent = watch.end(run, int(model.num_timesteps), config, started)
    return TrainResult(run.path, *finish_run(run, spec, reward_spec, config, algo.upper(), started, spent))


def _resume(cls: Any, folder: Path, venv: Any, device: str, normalizer: type, **load: Any) -> tuple[Any, Any]:
    """The model (and its VecNormalize statistics, as ``normalizer``) a previous run saved, on
    the new envs; ``load``: attributes to set on the loaded model (its rollout buffer class)."""
    from rewardgen.training.sb3.deferred import load_normalizer

    if not (folder / RunDir.MODEL).is_file():
        raise RewardgenError(f"cannot continue training from {folder}: it has no model.zip")
    if (folder / RunDir.NORMALIZER).is_file():
        venv = load_normalizer(normalizer, str(folder / RunDir.NORMALIZER), venv)
        venv.training = True
    model = cls.load(folder / RunDir.MODEL, env=venv, device=device, **load)
    metrics = folder / RunDir.METRICS
    if metrics.is_file():  # rows a killed continuation wrote past the saved model are dropped
        lines = metrics.read_text().splitlines(keepends=True)
        kept = lines[:1] + [
            r for r in lines[1:] if r.split(",", 1)[0] and int(r.split(",", 1)[0]) <= model.num_timesteps
        ]
        metrics.write_text("".join(kept))
    return model, venv


def _save(model: Any, run: RunDir) -> None:
    model.save(run.file(RunDir.MODEL))
    env = model.get_vec_normalize_env()
    if env is not None:
        env.save(str(run.file(RunDir.NORMALIZER)))

"""The stable-baselines3 back end: PPO or SAC on any reward, VecNormalize, checkpoints,
evaluation on the task's success metric, a video and a learning curve in the run directory."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from rewardgen.code import CodeReward, RewardProgram, RewardProgramError, SandboxLimits, SandboxRunner
from rewardgen.errors import RewardgenError
from rewardgen.rewards import RewardFn
from rewardgen.tasks import TaskSpec, get_task, make_env, make_env_fn, wrapper_kwargs
from rewardgen.train.hyperparams import default_hyperparams, default_n_envs
from rewardgen.train.report import MetricsWriter, episode_means, plot_learning_curve, write_video
from rewardgen.train.rundir import RunDir

__all__ = ["OverBudgetError", "TrainConfig", "TrainResult", "evaluate", "resolve_device", "train"]

ALGOS = ("ppo", "sac")


@dataclass
class TrainConfig:
    """Everything a training run needs; stored in the run's manifest."""

    task: str
    reward: str | None = None  # reward program path; None: the task's reference reward
    steps: int | None = None  # None: the task's default budget
    algo: str | None = None
    n_envs: int | None = None
    seed: int = 0
    device: str = "auto"
    eval_episodes: int = 3
    video: bool = True
    video_steps: int = 400
    checkpoint_every: int | None = None  # None: 10 checkpoints over the run
    hyperparams: dict[str, Any] = field(default_factory=dict)  # overrides of the profile's
    profile: str = "default"  # "default" (fast on CPU) or "zoo" (rl-baselines3-zoo's settings)
    mode: str = "replace"
    env_coef: float = 1.0
    reward_coef: float = 1.0
    progress: bool = True
    sandbox: SandboxLimits | None = None  # run the reward as untrusted code with these limits
    resume_from: str | None = None  # a run directory whose model.zip (and VecNormalize) training continues
    defer_reward: bool | None = None  # score whole PPO rollouts at once; None: for every PPO run
    time_budget_s: float | None = None  # wall-clock seconds for training + evaluation; None: no limit
    eval_every: int | None = None  # evaluate the policy every N steps (evals.csv); None: only at the end
    stop_on_success: bool = False  # end training at the first evaluation where every episode succeeds


class OverBudgetError(RewardgenError):
    """Training or evaluation ran past its wall-clock budget and was stopped."""


@dataclass
class TrainResult:
    run_dir: Path
    eval: dict[str, Any]


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``; anything else is checked."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RewardgenError(
            f"device '{device}' asked for, but torch sees no CUDA GPU: use --device auto or cpu"
        )
    if device.split(":")[0] not in ("cpu", "cuda", "mps"):
        raise RewardgenError(f"unknown device '{device}': use auto, cpu, cuda or cuda:N")
    return device


def _check_video(spec: TaskSpec) -> None:
    env = make_env(spec)
    modes = env.metadata.get("render_modes", [])
    env.close()
    if "rgb_array" not in modes:
        raise RewardgenError(
            f"{spec.gym_id} cannot render rgb_array frames (render modes: {modes or 'none'}): "
            "train with --no-video"
        )


def load_reward(
    spec: TaskSpec, reward: str | None, sandbox: SandboxLimits | None = None
) -> tuple[RewardProgram, CodeReward]:
    """The task's reference program (with its version's parameters) or a user's file; with
    ``sandbox`` limits it is checked and run as untrusted code in a worker process."""
    path = spec.reward_path if reward is None else Path(reward)
    params = spec.resolved_reward_params() if reward is None else {}
    program = RewardProgram.from_file(path, params)
    runner = SandboxRunner(program, sandbox) if sandbox is not None else None
    return program, CodeReward(program, runner)


def _make_callback(
    writer: MetricsWriter,
    log_every: int,
    metric_spec,
    run: RunDir,
    ckpt_every: int,
    deferred_episodes: Any = None,
    deadline: float | None = None,
    evaluator: Any = None,
    eval_every: int = 0,
    stop_on_success: bool = False,
):
    from stable_baselines3.common.callbacks import BaseCallback

    class RewardgenCallback(BaseCallback):
        """Logs env and synthesized returns and the success metric; saves checkpoints."""

        def _on_training_start(self) -> None:
            self.t0, self.episodes, self.buffer = time.time(), 0, []
            self.over_budget = self.succeeded = False
            self.last_log = self.last_ckpt = self.last_eval = self.num_timesteps  # >0 when continuing

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                ep = info.get("reward_episode")
                if ep is not None:
                    self.buffer.append(ep)
            if self.buffer and self.num_timesteps - self.last_log >= log_every:
                self._flush()
            if self.num_timesteps - self.last_ckpt >= ckpt_every:
                self._checkpoint()
            if deadline is not None and time.monotonic() > deadline:
                self.over_budget = True
                return False  # stops model.learn; train() reports it
            return not self.succeeded

        def _flush(self) -> None:
            eps, self.buffer = self.buffer, []
            self.episodes += len(eps)
            self.last_log = self.num_timesteps
            row = {
                "timesteps": self.num_timesteps,
                "wall_time_s": round(time.time() - self.t0, 2),
                "episodes": self.episodes,
                **episode_means(eps, metric_spec),
            }
            for name in eps[-1]["components"]:
                row[f"component/{name}"] = float(np.mean([e["components"].get(name, 0.0) for e in eps]))
            writer.write(row)
            for key in ("env_return_mean", "reward_return_mean", "success_metric_mean"):
                self.logger.record(f"rewardgen/{key}", row[key])

        def _checkpoint(self) -> None:
            self.last_ckpt = self.num_timesteps
            ckpt = run.file("checkpoints")
            ckpt.mkdir(exist_ok=True)
            self.model.save(ckpt / "model.zip")
            env = self.model.get_vec_normalize_env()
            if env is not None:
                env.save(str(ckpt / "vecnormalize.pkl"))
            run.update(checkpoint={"timesteps": self.num_timesteps, "path": "checkpoints/model.zip"})

        def _on_rollout_end(self) -> None:
            if deferred_episodes is not None:  # deferred rewards: episodes end at the rollout's end
                self.buffer.extend(deferred_episodes())
                if self.buffer and self.num_timesteps - self.last_log >= log_every:
                    self._flush()
            if evaluator is not None and self.num_timesteps - self.last_eval >= eval_every:
                self.last_eval = self.num_timesteps
                row = evaluator(self.model, self.num_timesteps, time.time() - self.t0)
                self.logger.record("rewardgen/eval_success_rate", row["success_rate"])
                if stop_on_success and row["success_rate"] >= 1.0:
                    self.succeeded = True  # the next step ends training

        def _on_training_end(self) -> None:
            if self.buffer:
                self._flush()

    return RewardgenCallback()


def train(config: TrainConfig, out: str | Path | None = None, method: str = "train") -> TrainResult:
    """Train a policy on ``config.reward`` for ``config.task`` and write a run directory.

    Example:
        >>> result = train(TrainConfig(task="halfcheetah-run", steps=2048))  # doctest: +SKIP
        >>> result.eval["success_rate"]  # doctest: +SKIP
    """
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.utils import set_random_seed
    from stable_baselines3.common.vec_env import VecNormalize

    from rewardgen.train.deferred import DeferredRewardVecNormalize, attach_deferred_rewards
    from rewardgen.wrappers.sb3 import SB3RewardVecWrapper

    started = time.monotonic()
    deadline = started + config.time_budget_s if config.time_budget_s is not None else None
    spec = get_task(config.task)
    algo = (config.algo or spec.budget.algo).lower()
    if algo not in ALGOS:
        raise RewardgenError(f"unknown algorithm '{config.algo}': choose one of {', '.join(ALGOS)}")
    steps = int(config.steps or spec.budget.steps)
    if steps <= 0:
        raise RewardgenError(f"--steps must be positive, got {steps}")
    n_envs = int(config.n_envs or default_n_envs(algo, config.profile, spec.budget.n_envs))
    device = resolve_device(config.device)
    program, reward = load_reward(spec, config.reward, config.sandbox)
    if config.video:
        os.environ.setdefault("MUJOCO_GL", "egl")
        _check_video(spec)

    run = RunDir.create(
        spec.id, method, {**asdict(config), "algo": algo, "steps": steps, "n_envs": n_envs}, out=out
    )
    run.file("reward.py").write_text(program.source)
    run.update(
        env_id=spec.gym_id,
        device=device,
        reward={"path": program.name, "sha256": program.sha256, "params": dict(program.params)},
    )
    set_random_seed(config.seed)
    # PPO needs rewards only when a rollout ends: a reward program (a pure function of the
    # transitions) scores the whole rollout in one call, which costs less per step than scoring
    # every step, in the sandbox (a process round trip) and in-process alike
    defer = (
        config.defer_reward if config.defer_reward is not None else algo == "ppo" and not reward.needs_frames
    )
    if defer and algo != "ppo":
        raise RewardgenError("deferred rewards need PPO (SAC learns from each step as it comes)")
    venv = make_vec_env(make_env_fn(spec, fields=reward.fields), n_envs=n_envs, seed=config.seed)
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
    if config.resume_from is not None:
        model, venv = _resume(cls, Path(config.resume_from), venv, device, normalizer)
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
            model = cls("MlpPolicy", venv, device=device, seed=config.seed, verbose=0, **hp)
        except TypeError as exc:  # an unknown keyword (SB3 names it)
            venv.close()
            raise RewardgenError(
                f"{algo.upper()} does not take these hyperparameters ({exc}); "
                f"check --hp / TrainConfig.hyperparams: {sorted(config.hyperparams)}"
            ) from exc
    if defer:
        attach_deferred_rewards(model, wrapper, venv)
    run.update(deferred_reward=defer)
    log_every = max(1000, steps // 100)
    evaluator = None
    if config.eval_every or config.stop_on_success:
        from rewardgen.train.periodic import PeriodicEvaluator

        evaluator = PeriodicEvaluator(
            spec, run.file("evals.csv"), seed=config.seed + 30_000, append=config.resume_from is not None
        )
    callback = _make_callback(
        MetricsWriter(run.file("metrics.csv"), append=config.resume_from is not None),
        log_every,
        spec.metric,
        run,
        config.checkpoint_every or max(steps // 10, 1000),
        deferred_episodes=wrapper.pop_episodes if defer else None,
        deadline=deadline,
        evaluator=evaluator,
        eval_every=config.eval_every or max(steps // 20, 10_000),
        stop_on_success=config.stop_on_success,
    )
    try:
        model.learn(
            total_timesteps=steps - model.num_timesteps,
            callback=callback,
            progress_bar=config.progress,
            reset_num_timesteps=config.resume_from is None,
        )
    except KeyboardInterrupt:
        _save(model, run)
        run.update(status="interrupted")
        raise
    except RewardProgramError as exc:
        _save(model, run)
        run.update(status="failed", error=str(exc))
        raise
    finally:
        venv.close()  # and the reward's sandbox worker, if any; evaluation starts a fresh one
        if evaluator is not None:
            evaluator.close()
    _save(model, run)
    if evaluator is not None and (hit := evaluator.first_success()) is not None:
        run.update(first_success={"timesteps": hit["timesteps"], "wall_time_s": hit["wall_time_s"]})
    if callback.over_budget:
        _over_budget(run, config, started, f"after {model.num_timesteps:,} of {steps:,} training steps")
    plot_learning_curve(
        run.file("metrics.csv"),
        run.file("learning_curve.png"),
        f"{spec.id}: {algo.upper()} on {Path(program.name).name}",
        spec.metric.above if spec.metric.above is not None else spec.metric.below,
        metric_label=f"{spec.metric.reduce} {spec.metric.field}",
    )
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
        _over_budget(run, config, started, "while evaluating the trained policy")
    run.update(status="finished", eval=result, wall_s=round(time.monotonic() - started, 1))
    return TrainResult(run.path, result)


def _over_budget(run: RunDir, config: TrainConfig, started: float, where: str) -> NoReturn:
    reason = (
        f"stopped {where}: over its wall-clock budget of {config.time_budget_s:.0f} s "
        f"({time.monotonic() - started:.0f} s spent; a slow reward or env, or raise the budget)"
    )
    run.update(status="failed", error=reason)
    raise OverBudgetError(reason)


def _resume(cls: Any, folder: Path, venv: Any, device: str, normalizer: type) -> tuple[Any, Any]:
    """The model (and its VecNormalize statistics, as ``normalizer``) a previous run saved, on
    the new envs."""
    from stable_baselines3.common.vec_env import VecNormalize

    if not (folder / "model.zip").is_file():
        raise RewardgenError(f"cannot continue training from {folder}: it has no model.zip")
    if (folder / "vecnormalize.pkl").is_file():
        venv = VecNormalize.load(str(folder / "vecnormalize.pkl"), venv)
        venv.__class__ = normalizer  # the same statistics; deferred or per-step reward handling
        venv.deferred_returns = np.zeros(venv.num_envs)
        venv.training = True
    model = cls.load(folder / "model.zip", env=venv, device=device)
    metrics = folder / "metrics.csv"
    if metrics.is_file():  # rows a killed continuation wrote past the saved model are dropped
        lines = metrics.read_text().splitlines(keepends=True)
        kept = lines[:1] + [
            r for r in lines[1:] if r.split(",", 1)[0] and int(r.split(",", 1)[0]) <= model.num_timesteps
        ]
        metrics.write_text("".join(kept))
    return model, venv


def _save(model: Any, run: RunDir) -> None:
    model.save(run.file("model.zip"))
    env = model.get_vec_normalize_env()
    if env is not None:
        env.save(str(run.file("vecnormalize.pkl")))


def evaluate(
    run_dir: str | Path,
    task: TaskSpec | str,
    reward: RewardFn,
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
    :class:`OverBudgetError`."""
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from rewardgen.wrappers.sb3 import SB3RewardVecWrapper

    spec = get_task(task)
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

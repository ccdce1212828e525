"""The sample-factory back end: APPO with asynchronous rollout workers, each scoring its own envs.

The reward wrapper lives inside the env factory registered with sample-factory (``register_env``),
so every rollout worker process builds its own reward from the (picklable) reward spec: reward
programs, sandboxed programs (a sandbox worker per env) and rewards that hold state alike. Each
finished episode's summary (env return, synthesized return, success metric, components) travels
to the main process as sample-factory's ``episode_extra_stats``, which also puts it in its
TensorBoard summaries; rewardgen writes ``metrics.csv`` from it, then evaluates the saved policy
in the same run directory layout as the SB3 back end (``eval.json``, ``video.mp4``,
``learning_curve.png``, ``manifest.json``). sample-factory's own files (checkpoints, config,
summaries) are in ``<run>/sf/``.

sample-factory 2.1 needs gymnasium < 1.0 and numpy < 2: the sample-factory stack
(``make test-sf`` builds it in ``.venv-sf``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rewardgen.errors import MissingExtraError, RewardgenError
from rewardgen.runs import RunDir
from rewardgen.tasks import TaskSpec, get_task, make_env
from rewardgen.training.api import TrainConfig, TrainResult, resolve_device
from rewardgen.training.sf.env import (  # noqa: F401  (re-exported: sample-factory's env side)
    EpisodeStats,
    SFVectorEnv,
    episodes_from_stats,
    flatten_episode,
    make_sf_env,
    unflatten_episode,
)

__all__ = [
    "SF_DEFAULTS",
    "SF_FEW_CORES",
    "SFPolicy",
    "SFVectorEnv",
    "check",
    "load_policy",
    "require_sf",
    "sf_profile",
    "train",
]

from rewardgen.training.sf.settings import (  # noqa: F401  (re-exported: the settings' home)
    EXPERIMENT,
    FEW_CORES_ENVS,
    SF_DEFAULTS,
    SF_FEW_CORES,
    _cpu_count,
    _env_name,
    sf_config,
    sf_profile,
    sf_settings,
)


def allow_numpy_scalars_in_checkpoints() -> None:
    """Let ``torch.load(weights_only=True)`` (torch >= 2.6's default, which sample-factory's
    learner uses) read numpy scalars and dtypes, which sample-factory saves in its checkpoints
    (``best_performance``): data types, not code. Called when this module is imported, which
    sample-factory's own processes do when they rebuild the env factory, so a run resumes there too.
    """
    import torch

    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is None:
        return
    import importlib

    scalars = []
    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):  # numpy 2 renamed numpy.core
        try:
            scalars.append(importlib.import_module(name).scalar)
        except (ImportError, AttributeError):
            continue
    kinds = (np.float64, np.float32, np.int64, np.int32, np.bool_)
    add([*scalars, np.dtype, *{type(np.dtype(k)) for k in kinds}])


allow_numpy_scalars_in_checkpoints()


def require_sf() -> Any:
    """Import sample_factory, or say which stack has it."""
    try:
        import sample_factory
    except ImportError:
        raise MissingExtraError(
            "--backend sf needs sample-factory, which needs gymnasium < 1.0 and numpy < 2 (this "
            f"environment has gymnasium {gym.__version__}, numpy {np.__version__}): use the "
            "sample-factory stack, e.g. `make test-sf` builds .venv-sf, or pip install "
            "'rewardgen[sf,mujoco]' 'gymnasium==0.29.1' 'numpy<2' in a fresh environment"
        ) from None
    return sample_factory


def check() -> None:
    """sample-factory must be installed (its own stack): say how, once."""
    require_sf()


def load_policy(run: RunDir, task: Any) -> SFPolicy:
    """The latest sample-factory checkpoint of ``run`` as a policy with SB3's ``predict``."""
    return SFPolicy(run.path, task)


def train(
    config: TrainConfig, out: str | Path | None = None, method: str = "train", hooks: Any = ()
) -> TrainResult:
    """The sf back end (through :func:`rewardgen.training.train`): ``config`` trained with
    sample-factory's APPO, a run directory written.

    Example:
        >>> result = train(TrainConfig(task="hopper-run", steps=200_000, backend="sf"))  # doctest: +SKIP
    """
    require_sf()
    from sample_factory.algo.runners.runner import AlgoObserver
    from sample_factory.algo.utils.misc import EPISODIC, ExperimentStatus
    from sample_factory.envs.env_utils import register_env
    from sample_factory.train import make_runner

    from rewardgen.training.lifecycle import RunWatch, begin_run, finish_run

    started = time.monotonic()
    spec = get_task(config.task)
    if (config.algo or "ppo").lower() not in ("ppo", "appo"):
        raise RewardgenError(f"the sf back end trains APPO (PPO's asynchronous form), not {config.algo}")
    steps = int(config.steps or spec.budget.steps)
    if steps <= 0:
        raise RewardgenError(f"--steps must be positive, got {steps}")
    device = resolve_device(config.device)
    reward_spec = config.reward if config.reward is not None else spec.reference_reward()
    if config.video:
        os.environ.setdefault("MUJOCO_GL", "egl")
    from rewardgen.training.sf.nethack import use_encoder_for

    hp = {**use_encoder_for(spec.gym_id), **config.hyperparams}  # NetHack: our encoder
    workers, per_worker = hp.pop("num_workers", None), hp.pop("num_envs_per_worker", None)
    record = {**config.record(reward_spec), "algo": "appo", "steps": steps, "backend": "sf"}
    from rewardgen.training.threads import set_train_threads

    # this process (evaluation, a serial runner); sample-factory gives its learner and workers one each
    record["torch_threads"] = set_train_threads(config.threads)
    resume = Path(config.resume_from) if config.resume_from is not None else None
    if resume is not None:
        out = resume if out is None else Path(out)
        _prepare_resume(resume, Path(out), steps)
    run = begin_run(spec, reward_spec, record, out, method, "sf", device)
    if config.n_envs:  # envs in all: spread over the workers
        per_worker = per_worker or 2
        workers = workers or max(1, config.n_envs // per_worker)
    settings, vector = sf_settings(
        spec,
        run.path,
        steps,
        config.seed,
        "gpu" if device.startswith("cuda") else "cpu",
        workers,
        per_worker,
        hp,
        restart="resume" if resume is not None else "overwrite",
    )
    run.update(sf=settings, sf_profile=sf_profile(spec, device), sf_envs_per_vector=vector)
    factory = functools.partial(
        make_sf_env,
        task=spec,
        reward=reward_spec,
        mode=config.mode,
        vector=vector,
        env_coef=config.env_coef,
        reward_coef=config.reward_coef,
    )
    register_env(_env_name(spec), factory)
    from rewardgen.training.sf.output import SFProgress, sample_factory_output

    # sample-factory's log lines go to <run>/sf_output.log; rewardgen's progress line stays
    output = contextlib.ExitStack()
    log_file = output.enter_context(sample_factory_output(run.path, config.verbose))
    progress = SFProgress(steps, enabled=config.progress)
    output.callback(progress.close)
    try:
        _, runner = make_runner(sf_config(settings))
    except BaseException:
        output.close()
        raise

    watch = RunWatch.start(config, spec, run, steps, started, continuing=resume is not None)

    def total_steps() -> int:
        return int(sum(runner.env_steps.values())) if runner.env_steps else 0

    def on_episode(_runner: Any, msg: dict, _policy_id: int) -> None:
        row = watch.episodes_done(episodes_from_stats(msg[EPISODIC]), total_steps())
        if row is not None:
            progress.update(row["timesteps"], row["success_metric_mean"])

    class Watch(AlgoObserver):
        """Hands sample-factory's training steps to the run's watch (the wall-clock budget:
        sample-factory 2.1 does not count its ``train_for_seconds``; the search's stop signal;
        the periodic evaluations: at each one the learner is asked for a checkpoint, which is
        evaluated here once it is written, while the learner and the rollout workers go on in
        their own processes)."""

        def __init__(self) -> None:
            self.asked: int | None = None  # the steps at which a checkpoint was asked for
            self.judged: Path | None = None  # a copy of the checkpoint that met the success rule

        def on_training_step(self, runner: Any, _iteration: int) -> None:
            if watch.should_stop(total_steps()) or watch.poll_signal():
                runner.cfg.train_for_env_steps = 0  # sample-factory checks it right after this call
            elif self.asked is None and watch.eval_due(total_steps()):
                self.asked = total_steps()
                runner.save_periodic.emit()
            elif self.asked is not None and (saved := _checkpoint_steps(run.path)) >= self.asked:
                self.asked = None
                watch.evaluate(SFPolicy(run.path, spec), saved)
                if watch.stopped == "succeeded":  # the policy judged is the one the run keeps
                    self.judged = _keep_checkpoint(run.path, saved)
                if watch.should_stop(total_steps()):
                    runner.cfg.train_for_env_steps = 0

    runner.register_episodic_stats_handler(on_episode)
    observer = Watch()
    runner.register_observer(observer)
    from rewardgen.runs.processes import start_reaper

    reaper = start_reaper()  # sample-factory's processes do not outlive this one, even after kill -9
    with output, _terminated(reaper):
        status = runner.init()
        if status == ExperimentStatus.SUCCESS:
            watch.begin(total_steps())  # training time from here, as SB3's callback counts it
            status = runner.run()
        if (row := watch.flush(total_steps())) is not None:
            progress.update(row["timesteps"], row["success_metric_mean"])
    watch.close()
    if observer.judged is not None:  # sample-factory trained on until it stopped: back to the judged
        _restore_checkpoint(run.path, observer.judged)
    if status == ExperimentStatus.INTERRUPTED:  # Ctrl-C or a signal (our handlers raise it in its loop)
        run.update(status="interrupted")
        raise KeyboardInterrupt
    if status != ExperimentStatus.SUCCESS:
        run.update(status="failed", error=f"sample-factory stopped with status {status}")
        where = log_file or run.path / EXPERIMENT
        raise RewardgenError(f"sample-factory training stopped with status {status}: see {where}")
    spent = watch.end(run, total_steps(), config, started)
    learner = "APPO (sample-factory)"
    return TrainResult(run.path, *finish_run(run, spec, reward_spec, config, learner, started, spent))


@contextlib.contextmanager
def _terminated(proc: Any) -> Iterator[None]:
    try:
        yield
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()


def _checkpoint_steps(run_path: Path) -> int:
    """The env steps of the newest sample-factory checkpoint of a run (0: none yet); its name
    ends in them (``checkpoint_<train step>_<env steps>.pth``)."""
    names = (run_path / EXPERIMENT / "checkpoint_p0").glob("checkpoint_*.pth")
    return max((int(p.stem.rsplit("_", 1)[-1]) for p in names), default=0)


def _keep_checkpoint(run_path: Path, steps: int) -> Path | None:
    """A copy of the checkpoint at ``steps`` (beside the experiment, out of sample-factory's
    rotation), to be the run's final policy: the one a periodic evaluation found successful."""
    import shutil

    found = sorted((run_path / EXPERIMENT / "checkpoint_p0").glob(f"checkpoint_*_{steps}.pth"))
    if not found:
        return None
    kept = run_path / "succeeded" / found[-1].name
    kept.parent.mkdir(exist_ok=True)
    shutil.copy2(found[-1], kept)
    return kept


def _restore_checkpoint(run_path: Path, kept: Path) -> None:
    """Make ``kept`` the run's newest checkpoint again: the ones sample-factory saved after it (it
    trains on for a moment after the stop) are removed, so the final evaluation, a continuation
    and ``rewardgen play`` all load the policy that met the rule."""
    import shutil

    folder = run_path / EXPERIMENT / "checkpoint_p0"
    steps = int(kept.stem.rsplit("_", 1)[-1])
    for ckpt in folder.glob("checkpoint_*.pth"):
        if int(ckpt.stem.rsplit("_", 1)[-1]) > steps:
            ckpt.unlink()
    if not (folder / kept.name).is_file():
        shutil.copy2(kept, folder / kept.name)
    shutil.rmtree(kept.parent, ignore_errors=True)


def _prepare_resume(resume: Path, out: Path, steps: int) -> None:
    """Check that ``resume`` holds a sample-factory run to continue to ``steps``; copy it to
    ``out`` when the continuation goes to a new directory."""
    import shutil

    ckpts = sorted((resume / EXPERIMENT / "checkpoint_p0").glob("checkpoint_*.pth"))
    if not ckpts:
        raise RewardgenError(f"cannot continue {resume}: it has no sample-factory checkpoint ({EXPERIMENT}/)")
    done = int(ckpts[-1].stem.rsplit("_", 1)[-1])
    if done >= steps:
        raise RewardgenError(f"{resume} already trained {done:,} steps: ask for more than that (--steps)")
    if out.resolve() != resume.resolve():
        shutil.copytree(resume / EXPERIMENT, out / EXPERIMENT, dirs_exist_ok=True)
        for name in (RunDir.METRICS, RunDir.REWARD):
            if (resume / name).is_file():
                shutil.copy2(resume / name, out / name)


class SFPolicy:
    """A sample-factory run's latest checkpoint as a :class:`~rewardgen.training.policy.Policy`:
    observations are normalized inside the model, as in training; ``deterministic`` takes the mean action.

    Example:
        >>> policy = SFPolicy("runs/my-sf-run")  # doctest: +SKIP
        >>> actions, _ = policy.predict(obs, deterministic=True)  # doctest: +SKIP
    """

    def __init__(self, run_dir: str | Path, task: TaskSpec | str):
        require_sf()
        import torch
        from sample_factory.algo.learning.learner import Learner
        from sample_factory.model.actor_critic import create_actor_critic

        folder = Path(run_dir) / EXPERIMENT
        saved = json.loads((folder / "config.json").read_text())
        cfg = sf_config(RunDir.read_manifest(run_dir)["sf"], evaluation=True)
        for key, value in saved.items():
            setattr(cfg, key, value)
        cfg.train_dir, cfg.experiment = str(Path(run_dir)), EXPERIMENT
        env = make_env(task)
        from rewardgen.training.sf.nethack import use_encoder_for

        use_encoder_for(get_task(task).gym_id)
        self.dict_obs = isinstance(env.observation_space, gym.spaces.Dict)
        obs_space = env.observation_space
        if not self.dict_obs:  # sample-factory's models take dicts of observations
            obs_space = gym.spaces.Dict({"obs": obs_space})
        self.action_space = env.action_space
        env.close()
        self.model = create_actor_critic(cfg, obs_space, self.action_space)
        self.model.eval()
        checkpoints = Learner.get_checkpoints(Learner.checkpoint_dir(cfg, 0), "checkpoint_*")
        if not checkpoints:
            raise RewardgenError(f"{folder} holds no sample-factory checkpoint")
        state = Learner.load_checkpoint(checkpoints, torch.device("cpu"))
        if state is None:
            raise RewardgenError(
                f"cannot read the sample-factory checkpoint {checkpoints[-1]} (see the log above)"
            )
        self.model.load_state_dict(state["model"])
        self.rnn_size = 0 if not cfg.use_rnn else cfg.rnn_size

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[np.ndarray, None]:
        import torch
        from sample_factory.algo.utils.action_distributions import argmax_actions
        from sample_factory.algo.utils.rl_utils import prepare_and_normalize_obs

        with torch.no_grad():
            named = obs if self.dict_obs else {"obs": obs}
            x = prepare_and_normalize_obs(
                self.model, {k: torch.as_tensor(np.asarray(v), dtype=torch.float32) for k, v in named.items()}
            )
            n = len(next(iter(named.values())))
            rnn = torch.zeros((n, max(self.rnn_size, 1)), dtype=torch.float32)
            out = self.model(x, rnn)
            actions = argmax_actions(self.model.action_distribution()) if deterministic else out["actions"]
        actions = actions.cpu().numpy()
        if hasattr(self.action_space, "low"):
            actions = np.clip(actions, self.action_space.low, self.action_space.high)
        return actions, None

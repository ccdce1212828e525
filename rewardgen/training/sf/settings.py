"""sample-factory's settings for a rewardgen run: its MuJoCo example's (``SF_DEFAULTS``), the
few-cores settings that learn on a small machine (``SF_FEW_CORES``), which of them suits this
machine (:func:`sf_profile`), and sample-factory's config object from them (:func:`sf_config`).
Imported without sample-factory; :func:`sf_config` needs it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rewardgen.errors import RewardgenError
from rewardgen.tasks import TaskSpec, get_task  # noqa: F401  (get_task: the doctests)

__all__ = ["EXPERIMENT", "SF_DEFAULTS", "SF_FEW_CORES", "sf_config", "sf_profile", "sf_settings"]

EXPERIMENT = "sf"  # sample-factory's experiment folder inside the run directory

#: sample-factory's settings for MuJoCo, as its sf_examples/mujoco sets them, except a constant
#: learning rate (its ``linear_decay`` is not among sample-factory 2.1.1's choices).
SF_DEFAULTS: dict[str, Any] = {
    "batched_sampling": True,  # sf_examples: False; rewardgen steps a vector env (SFVectorEnv)
    "worker_num_splits": 2,
    "env_frameskip": 1,
    "encoder_mlp_layers": [64, 64],
    "nonlinearity": "tanh",
    "batch_size": 1024,
    "kl_loss_coeff": 0.1,
    "use_rnn": False,
    "adaptive_stddev": False,
    "policy_initialization": "torch_default",
    "reward_scale": 1,
    "rollout": 64,
    "max_grad_norm": 3.5,
    "num_epochs": 2,
    "num_batches_per_epoch": 4,
    "ppo_clip_ratio": 0.2,
    "value_loss_coeff": 1.3,
    "exploration_loss_coeff": 0.0,
    "learning_rate": 0.00295,
    "lr_schedule": "constant",
    "shuffle_minibatches": False,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "with_vtrace": False,
    "recurrence": 1,
    "normalize_input": True,
    "normalize_returns": True,
    "value_bootstrap": True,
    "experiment_summaries_interval": 3,
    "save_every_sec": 15,
    "async_rl": False,
}

#: APPO on a few CPU cores (``sf_profile`` picks it for control tasks on at most 8 cores and no
#: GPU), in place of SF_DEFAULTS' many-worker settings: rewardgen's SB3 PPO settings (CPU_PPO) in
#: sample-factory's terms, 16 envs, a 2048-step batch per iteration, 10 epochs of two 1024-step
#: minibatches, separate policy and value networks. On 2 cores halfcheetah-run met its success
#: metric at 504k steps in 93 s, where SF_DEFAULTS had not after 1M (``scripts/bench_sf_settings.py``).
SF_FEW_CORES: dict[str, Any] = {
    "rollout": 128,
    "batch_size": 1024,
    "num_batches_per_epoch": 2,
    "num_epochs": 10,
    "learning_rate": 5e-4,
    "value_loss_coeff": 0.5,
    "max_grad_norm": 0.5,
    "kl_loss_coeff": 0.0,
    "initial_stddev": 0.6,
    "actor_critic_share_weights": False,
}
FEW_CORES_ENVS = 16  # envs in all, spread over the rollout workers
MANY_CORES = 8  # above this many cores (or with a GPU) sample-factory's own settings


def sf_profile(task: TaskSpec, device: str, cores: int | None = None) -> str:
    """Which APPO settings suit this machine: ``few-cores`` (SF_FEW_CORES) for control tasks on
    at most 8 cores without a GPU, else ``sample-factory`` (its MuJoCo example's, SF_DEFAULTS,
    made for many rollout workers); NetHack keeps its own encoder's settings on top of SF_DEFAULTS.

    Example:
        >>> sf_profile(get_task("halfcheetah-run"), "cpu", cores=2)
        'few-cores'
        >>> sf_profile(get_task("halfcheetah-run"), "cuda", cores=2)
        'sample-factory'
    """
    from rewardgen.tasks.nethack import NETHACK_TASKS

    cores = cores if cores is not None else _cpu_count()
    if task.gym_id in NETHACK_TASKS or device.startswith("cuda") or device == "gpu" or cores > MANY_CORES:
        return "sample-factory"
    return "few-cores"


def _env_name(task: TaskSpec) -> str:
    return f"rewardgen_{task.id}"


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def sf_settings(
    task: TaskSpec,
    run_path: Path,
    steps: int,
    seed: int,
    device: str,
    num_workers: int | None,
    envs_per_worker: int | None,
    hyperparams: dict[str, Any],
    restart: str = "overwrite",
) -> tuple[dict[str, Any], int]:
    """sample-factory's settings for a run (rewardgen's defaults, then ``hyperparams``) and the
    envs in each of its vectorized envs (0: not batched).

    With batched sampling (the default) each rollout worker steps ``worker_num_splits`` vectorized
    envs (:class:`SFVectorEnv`) that share its ``envs_per_worker`` envs, so sample-factory's
    ``num_envs_per_worker`` counts vectorized envs. The settings suit the machine
    (:func:`sf_profile`).
    """
    profile = sf_profile(task, device)
    workers = num_workers or _cpu_count()
    few = profile == "few-cores"
    per_worker = envs_per_worker or (max(2, FEW_CORES_ENVS // workers // 2 * 2) if few else 4)
    settings = {
        **SF_DEFAULTS,
        **(SF_FEW_CORES if few else {}),
        "env": _env_name(task),
        "experiment": EXPERIMENT,
        "train_dir": str(run_path),
        "train_for_env_steps": steps,
        "seed": seed,
        "device": device,
        "num_workers": workers,
        "restart_behavior": restart,
        **hyperparams,
    }
    splits = int(settings["worker_num_splits"])
    if per_worker % splits:
        raise RewardgenError(
            f"--num-envs-per-worker must be a multiple of {splits} (sample-factory splits each "
            f"worker's envs in {splits}), got {per_worker}"
        )
    if settings["batched_sampling"]:
        return {**settings, "num_envs_per_worker": splits}, per_worker // splits
    return {**settings, "num_envs_per_worker": per_worker}, 0


def sf_config(settings: dict[str, Any], evaluation: bool = False) -> Any:
    """sample-factory's config from ``settings`` (its parser's defaults set, as its examples do;
    an unknown name is an error that names it)."""
    from sample_factory.cfg.arguments import parse_full_cfg, parse_sf_args

    # what differs between runs goes on the command line, which a resumed run's saved config
    # does not override; the rest are parser defaults
    argv = [f"--{k}={settings[k]}" for k in ("env", "experiment", "train_dir", "train_for_env_steps")]
    parser, _ = parse_sf_args(argv=argv, evaluation=evaluation)
    known = {a.dest for a in parser._actions}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise RewardgenError(
            f"sample-factory has no setting {', '.join(unknown)}: see python -m sample_factory.train --help"
        )
    parser.set_defaults(**settings)
    return parse_full_cfg(parser, argv)

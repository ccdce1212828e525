"""Training hyperparameters: rewardgen's defaults, fast in wall-clock on a few CPU cores, and
rl-baselines3-zoo's tuned MuJoCo settings (``profile="zoo"``, ``--hyperparams zoo``)."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

__all__ = ["CPU_PPO", "CPU_PPO_ENVS", "FAST_PPO", "PROFILES", "default_hyperparams", "default_n_envs"]

PROFILES = ("default", "zoo")

_PPO_BASE: dict[str, Any] = {
    # rl-zoo3 HalfCheetah PPO, used as the default for every MuJoCo family.
    "n_steps": 512,
    "batch_size": 64,
    "gamma": 0.98,
    "learning_rate": 2.0633e-05,
    "ent_coef": 0.000401762,
    "clip_range": 0.1,
    "n_epochs": 20,
    "gae_lambda": 0.92,
    "max_grad_norm": 0.8,
    "vf_coef": 0.58096,
    "policy_kwargs": {
        "log_std_init": -2,
        "ortho_init": False,
        "activation_fn": nn.ReLU,
        "net_arch": {"pi": [256, 256], "vf": [256, 256]},
    },
}

_PPO_FAMILY: dict[str, dict[str, Any]] = {
    "Hopper": {
        "batch_size": 32,
        "gamma": 0.999,
        "learning_rate": 9.80828e-05,
        "ent_coef": 0.00229519,
        "clip_range": 0.2,
        "n_epochs": 5,
        "gae_lambda": 0.99,
        "max_grad_norm": 0.7,
        "vf_coef": 0.835671,
    },
    "Walker2d": {
        "batch_size": 32,
        "gamma": 0.99,
        "learning_rate": 5.05041e-05,
        "ent_coef": 0.000585045,
        "clip_range": 0.1,
        "n_epochs": 20,
        "gae_lambda": 0.95,
        "max_grad_norm": 1.0,
        "vf_coef": 0.871923,
    },
}

_SAC_BASE: dict[str, Any] = {"learning_starts": 10_000}


# rewardgen's PPO: the zoo settings spend most of their wall-clock time in tiny gradient steps
# (HalfCheetah: 20 epochs of minibatch 64 over 512 steps of one env). Many envs per step and few
# large minibatches cost far less per env step on a CPU and, with a higher learning rate, learn
# as much per step: halfcheetah-run met its success metric after 95-130 s of training on 2 cores
# (scripts/bench_time_to_success.py compares the two profiles).
CPU_PPO_ENVS = 16
CPU_PPO: dict[str, Any] = {
    "n_steps": 128,  # x 16 envs = 2048 steps per rollout
    "batch_size": 1024,
    "n_epochs": 10,
    "learning_rate": 5e-4,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
    "policy_kwargs": {"log_std_init": -0.5, "net_arch": {"pi": [64, 64], "vf": [64, 64]}},
}


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        from rewardgen.errors import RewardgenError

        raise RewardgenError(f"unknown --hyperparams '{profile}': choose one of {', '.join(PROFILES)}")


def default_hyperparams(algo: str, env_family: str, profile: str = "default") -> dict[str, Any]:
    """Hyperparameters for ``algo`` ("ppo" or "sac") on an env family such as ``"Hopper"``:
    rewardgen's (``profile="default"``) or rl-baselines3-zoo's (``"zoo"``).

    Example:
        >>> default_hyperparams("ppo", "Hopper", profile="zoo")["batch_size"]
        32
        >>> default_hyperparams("ppo", "Hopper")["batch_size"]
        1024
    """
    _check_profile(profile)
    if algo == "ppo":
        if profile == "default":
            return {**CPU_PPO, "policy_kwargs": dict(CPU_PPO["policy_kwargs"])}
        return {**_PPO_BASE, **_PPO_FAMILY.get(env_family, {})}
    return dict(_SAC_BASE)


def default_n_envs(algo: str, profile: str, task_n_envs: int) -> int:
    """Envs stepped together: many for rewardgen's PPO, else the task's budget (the zoo's 1)."""
    _check_profile(profile)
    return CPU_PPO_ENVS if algo == "ppo" and profile == "default" else task_n_envs


# A quick PPO for tiny budgets on one env (tests, smoke runs): SB3's defaults with a smaller rollout.
FAST_PPO: dict[str, Any] = {**CPU_PPO, "n_steps": 1024, "batch_size": 64, "learning_rate": 3e-4}

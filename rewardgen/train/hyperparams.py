"""Training hyperparameters, after rl-baselines3-zoo's tuned MuJoCo settings."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

__all__ = ["FAST_PPO", "default_hyperparams"]

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


def default_hyperparams(algo: str, env_family: str) -> dict[str, Any]:
    """Hyperparameters for ``algo`` ("ppo" or "sac") on an env family such as ``"Hopper"``.

    Example:
        >>> default_hyperparams("ppo", "Hopper")["batch_size"]
        32
    """
    if algo == "ppo":
        return {**_PPO_BASE, **_PPO_FAMILY.get(env_family, {})}
    return dict(_SAC_BASE)


# A quick PPO for short budgets (the demo, smoke runs): SB3's defaults with a smaller rollout.
# ~2x the zoo settings' steps/s on 2 CPU cores, and it learns within ~1e5 steps.
FAST_PPO: dict[str, Any] = {
    "n_steps": 1024,
    "batch_size": 64,
    "n_epochs": 10,
    "learning_rate": 3e-4,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
    "policy_kwargs": {"log_std_init": -0.5, "net_arch": {"pi": [64, 64], "vf": [64, 64]}},
}

"""Training: one API (:class:`TrainConfig`, :func:`train`, :class:`TrainResult`) over a table of
back ends (:data:`BACKENDS`: stable-baselines3 PPO/SAC in ``sb3/``, sample-factory APPO in
``sf/``), the run's life they share (``lifecycle.py``), the :class:`~rewardgen.training.policy.Policy`
they hand to evaluation, and evaluation on the task's success metric (periodic and final)."""

from typing import Any

from rewardgen.training.api import (
    BACKENDS,
    Backend,
    TrainConfig,
    TrainResult,
    check_backend,
    get_backend,
    load_policy,
    register_backend,
    resolve_device,
    train,
)
from rewardgen.training.evaluation import OverBudgetError, evaluate

_LAZY = {"default_hyperparams": "rewardgen.training.sb3.hyperparams"}  # needs torch: loaded when used


def __getattr__(name: str) -> Any:
    from rewardgen import lazy_attribute

    return lazy_attribute(__name__, _LAZY, name)


__all__ = [
    "BACKENDS",
    "Backend",
    "OverBudgetError",
    "TrainConfig",
    "TrainResult",
    "check_backend",
    "default_hyperparams",
    "evaluate",
    "get_backend",
    "load_policy",
    "register_backend",
    "resolve_device",
    "train",
]

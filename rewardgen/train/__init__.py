"""Training: one API (:class:`TrainConfig`, :func:`train`, :class:`TrainResult`) over a table of
back ends (:data:`BACKENDS`: stable-baselines3 PPO/SAC in ``sb3.py``, sample-factory APPO in
``sf.py``), evaluation on the task's success metric, and the reward-hacking alarm."""

from rewardgen.train.api import (
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
from rewardgen.train.evaluation import OverBudgetError, evaluate
from rewardgen.train.hyperparams import default_hyperparams

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

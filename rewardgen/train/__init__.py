"""Training back ends: stable-baselines3 PPO/SAC (sb3.py) and sample-factory APPO (sf.py)."""

from rewardgen.train.hyperparams import default_hyperparams

__all__ = [
    "OverBudgetError",
    "TrainConfig",
    "TrainResult",
    "default_hyperparams",
    "evaluate",
    "train",
]


def __getattr__(name: str):
    # stable-baselines3 and torch take a second to import; load them on first use.
    if name in ("OverBudgetError", "TrainConfig", "TrainResult", "evaluate", "train"):
        from rewardgen.train import sb3

        return getattr(sb3, name)
    raise AttributeError(name)

"""Training back ends. SB3 (PPO/SAC) here; sample-factory APPO comes with the NetHack work."""

from rewardgen.train.hyperparams import default_hyperparams

__all__ = [
    "TrainConfig",
    "TrainResult",
    "default_hyperparams",
    "evaluate",
    "train",
]


def __getattr__(name: str):
    # stable-baselines3 and torch take a second to import; load them on first use.
    if name in ("TrainConfig", "TrainResult", "evaluate", "train"):
        from rewardgen.train import sb3

        return getattr(sb3, name)
    raise AttributeError(name)

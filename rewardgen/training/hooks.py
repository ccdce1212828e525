"""What a method may run inside training, whatever the back end: a :class:`RolloutHook` is told
when a rollout ends (with the current policy, to film it or query a judge) and when training
ends. PrefPPO's preference queries are one; each back end adapts hooks to its own callbacks
(:func:`sb3_callback` for stable-baselines3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

__all__ = ["Act", "RolloutHook", "sb3_callback"]

#: The current policy: observations (n, ...) -> actions (n, ...), sampled (not deterministic).
Act = Callable[[np.ndarray], np.ndarray]


class RolloutHook(Protocol):
    """Runs inside training: after each rollout, and once at the end."""

    def on_rollout_end(self, timesteps: int, act: Act | None = None) -> None:
        """A rollout ended after ``timesteps`` steps; ``act`` is the policy as it is now."""
        ...

    def on_training_end(self) -> None: ...


def sb3_callback(hook: RolloutHook) -> Any:
    """``hook`` as a stable-baselines3 callback (observations normalized as the policy sees them)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class _Callback(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            normalize = getattr(self.training_env, "normalize_obs", lambda obs: obs)

            def act(obs: np.ndarray) -> np.ndarray:
                return self.model.predict(normalize(obs), deterministic=False)[0]

            hook.on_rollout_end(self.num_timesteps, act)

        def _on_training_end(self) -> None:
            hook.on_training_end()

    return _Callback()

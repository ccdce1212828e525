"""What evaluation and filming ask of a trained policy, whichever back end trained it.

A back end's ``load_policy(run, task)`` returns a :class:`Policy`: SB3's PPO and SAC models are
one as they are; sample-factory's checkpoints are wrapped (:class:`rewardgen.training.sf.SFPolicy`).
A policy takes the observations of a batch of envs and answers their actions. Where the
observations must be normalized first, the policy does it itself (sample-factory's models), or
says where its normalizer is (:func:`normalizer_of`: SB3's ``VecNormalize`` while training; a
saved run keeps it as ``vecnormalize.pkl``, which :func:`~rewardgen.training.evaluate` loads).

Example:
    >>> import numpy as np
    >>> class Still:
    ...     def predict(self, obs, deterministic=True):
    ...         return np.zeros((len(obs), 3)), None
    >>> isinstance(Still(), Policy), normalizer_of(Still()) is None
    (True, True)
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Policy", "normalizer_of"]


@runtime_checkable
class Policy(Protocol):
    """A trained policy: actions for a batch of observations (SB3's ``predict``)."""

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """Actions for ``obs`` (one row per env; dicts of arrays for Dict observations), and a
        recurrent state (None where there is none). ``deterministic``: the mode of the action
        distribution, as evaluations use."""
        ...


def normalizer_of(policy: Policy) -> Any:
    """The observation normalizer a policy keeps apart from itself (SB3's ``VecNormalize``
    while training, with ``normalize_obs``), or None where it has none or normalizes inside."""
    get = getattr(policy, "get_vec_normalize_env", None)
    return get() if get is not None else None

"""Per-environment episode statistics that a wrapper accumulates step by step."""

from __future__ import annotations

import numpy as np

from rewardgen.errors import RewardgenError

__all__ = ["EpisodeReducer"]

_REDUCES = ("mean", "sum", "max", "min", "final")


class EpisodeReducer:
    """Reduce a per-step value over each environment's episode: mean, sum, max, min or final.

    Example:
        >>> import numpy as np
        >>> r = EpisodeReducer("max", n_envs=2)
        >>> r.update(np.array([1.0, 5.0])); r.update(np.array([3.0, 2.0]))
        >>> r.pop(np.array([True, True]))
        array([3., 5.])
    """

    def __init__(self, how: str, n_envs: int):
        if how not in _REDUCES:
            raise RewardgenError(f"unknown episode reduce {how!r}: choose one of {', '.join(_REDUCES)}")
        self.how = how
        init = {"max": -np.inf, "min": np.inf}.get(how, 0.0)
        self._init = init
        self._acc = np.full(n_envs, init)
        self._count = np.zeros(n_envs, dtype=np.int64)

    def update(self, values: np.ndarray, active: np.ndarray | None = None) -> None:
        """Fold one step's values in; ``active`` masks out envs whose step does not count."""
        if active is not None:
            values = np.where(active, values, self._acc if self.how == "final" else self._init)
        if self.how in ("mean", "sum"):
            self._acc += values
        elif self.how == "max":
            np.maximum(self._acc, values, out=self._acc)
        elif self.how == "min":
            np.minimum(self._acc, values, out=self._acc)
        else:
            self._acc[:] = values
        self._count += 1 if active is None else active

    def update_block(self, values: np.ndarray, active: np.ndarray | None = None) -> None:
        """Fold ``k`` consecutive steps in at once (``values`` (k, n), ``active`` (k, n) or None),
        none of them an episode end except perhaps the last; the same as ``k`` calls of
        :meth:`update`."""
        if len(values) == 0:
            return
        if active is not None:
            if self.how == "final":  # the last step that counts, per env
                last = len(active) - 1 - np.argmax(active[::-1], axis=0)
                counted = active.any(axis=0)
                self._acc[counted] = values[last, np.arange(values.shape[1])][counted]
                self._count += active.sum(axis=0)
                return
            values = np.where(active, values, self._init)
        if self.how in ("mean", "sum"):
            self._acc += values.sum(axis=0)
        elif self.how == "max":
            np.maximum(self._acc, values.max(axis=0), out=self._acc)
        elif self.how == "min":
            np.minimum(self._acc, values.min(axis=0), out=self._acc)
        else:
            self._acc[:] = values[-1]
        self._count += len(values) if active is None else active.sum(axis=0)

    def pop(self, done: np.ndarray) -> np.ndarray:
        """Return the reduced values of the ``done`` envs (in index order) and restart them."""
        acc = self._acc[done]
        if self.how == "mean":
            acc = acc / np.maximum(self._count[done], 1)
        self._acc[done] = self._init
        self._count[done] = 0
        return acc

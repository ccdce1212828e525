"""How a reward gets its named fields: a read-only view of a step's infos, whatever the env's
convention, and the field readers that turn next observations and infos into named arrays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

__all__ = ["DictOfArraysView", "FieldReader", "InfoView", "ListOfDictsView", "ToInfoFields"]


class InfoView(Protocol):
    """Read-only view of a batch of step infos, whatever the env's convention."""

    n: int

    def keys(self) -> Sequence[str]: ...

    def get(self, name: str) -> np.ndarray | None:
        """The field as an array of shape (n, ...), or None when no env reported it."""


class DictOfArraysView:
    """gymnasium vector convention: ``info[key]`` is an array, ``info["_key"]`` its mask."""

    def __init__(self, info: Mapping[str, Any], n: int):
        self.info, self.n = info, n

    def keys(self) -> Sequence[str]:
        return [k for k in self.info if not k.startswith(("_", "final_"))]

    def get(self, name: str) -> np.ndarray | None:
        value = self.info.get(name)
        if value is None:
            return None
        value = np.asarray(value)
        if value.dtype == object:  # gymnasium < 1 batches array-valued infos as object arrays
            try:
                value = np.stack([np.asarray(v, dtype=np.float64) for v in value])
            except (TypeError, ValueError):
                return None  # not every env reported it, or it is not numeric
        return value


class ListOfDictsView:
    """SB3 VecEnv convention: one info dict per env."""

    def __init__(self, infos: Sequence[Mapping[str, Any]]):
        self.infos, self.n = infos, len(infos)

    def keys(self) -> Sequence[str]:
        return list(self.infos[0]) if self.infos else []

    def get(self, name: str) -> np.ndarray | None:
        try:
            return np.asarray([info[name] for info in self.infos])
        except KeyError:
            return None


class FieldReader(Protocol):
    """Turns a step's next observations and infos into the named fields a reward reads."""

    def __call__(self, next_obs: Any, info: InfoView) -> dict[str, np.ndarray]: ...


class ToInfoFields:
    """Default field reader: every numeric scalar or array the env puts in ``info``."""

    def __call__(self, next_obs: Any, info: InfoView) -> dict[str, np.ndarray]:
        fields = {}
        for key in info.keys():
            value = info.get(key)
            if value is not None and value.dtype.kind in "biuf":
                fields[key] = value
        return fields

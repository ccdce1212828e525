"""The spine: a vectorized reward function over a batch of transitions.

Every method in rewardgen ends in a :class:`RewardFn`. It is called once per vector step with a
:class:`TransitionBatch` of ``n`` transitions and returns a :class:`RewardOutput`: ``total`` of
shape ``(n,)`` and named ``components``, each of shape ``(n,)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardgen.errors import RewardgenError

__all__ = [
    "MissingFieldError",
    "RewardFn",
    "RewardFnError",
    "RewardOutput",
    "RewardOutputError",
    "TransitionBatch",
    "check_output",
]


class RewardFnError(RewardgenError, ValueError):
    """A reward function cannot be built or failed on a batch: the run that uses it stops and
    reports the message (a search marks the candidate failed and tells the LLM)."""


class MissingFieldError(RewardFnError):
    """A reward read an ``info`` field that the batch does not have (``field`` names it)."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field

    def __reduce__(self):  # crosses process pools and Ray intact
        return type(self), (str(self), self.field)


class RewardOutputError(RewardgenError, ValueError):
    """A reward function returned something that is not a valid batch of rewards."""


@dataclass(frozen=True)
class TransitionBatch:
    """``n`` transitions, one per environment, with a leading batch axis on every array.

    ``info`` holds named fields as arrays of shape ``(n, ...)`` (the gymnasium vector convention).
    ``frames`` is set only when the reward function asks for them (``needs_frames``).

    Example:
        >>> import numpy as np
        >>> b = TransitionBatch(obs=np.zeros((2, 3)), action=np.zeros((2, 1)),
        ...                     next_obs=np.ones((2, 3)), terminated=np.zeros(2, bool),
        ...                     truncated=np.zeros(2, bool), info={"x_velocity": np.ones(2)})
        >>> b.n
        2
    """

    obs: Any
    action: np.ndarray
    next_obs: Any
    terminated: np.ndarray
    truncated: np.ndarray
    info: Mapping[str, np.ndarray] = field(default_factory=dict)
    frames: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.terminated)


@dataclass(frozen=True)
class RewardOutput:
    """The reward of a batch: ``total`` (n,) and named ``components`` (n,) each. ``logged`` names
    the components that are reported for people to read but are not part of ``total`` (ONI's
    label coverage): the reward-hacking alarm and any share of the return leave them out."""

    total: np.ndarray
    components: dict[str, np.ndarray] = field(default_factory=dict)
    logged: frozenset[str] = frozenset()


class RewardFn:
    """Base class of vectorized reward functions.

    Subclasses implement :meth:`compute`; ``needs_frames`` asks the wrapper to render frames;
    ``fields`` names the info fields it reads (None: any); ``reset`` is called with the indices
    of environments that start a new episode.

    Example:
        >>> import numpy as np
        >>> class Speed(RewardFn):
        ...     def compute(self, batch):
        ...         v = batch.info["x_velocity"]
        ...         return RewardOutput(total=v, components={"speed": v})
        >>> b = TransitionBatch(np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((2, 1)),
        ...                     np.zeros(2, bool), np.zeros(2, bool), {"x_velocity": np.ones(2)})
        >>> Speed()(b).total
        array([1., 1.])
    """

    needs_frames: bool = False
    #: The names of the ``info`` fields this reward reads; ``None`` means "any of them". Envs
    #: skip computing fields that neither the reward nor the success metric reads.
    fields: frozenset[str] | None = None

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        raise NotImplementedError

    def __call__(self, batch: TransitionBatch) -> RewardOutput:
        return self.compute(batch)

    def reset(self, env_indices: np.ndarray) -> None:
        """Forget per-episode state of the given environments (default: nothing to forget)."""

    def close(self) -> None:
        """Release resources (worker processes, models)."""


_F64 = np.dtype(np.float64)
_ONES: dict[int, np.ndarray] = {}


def _ones(n: int) -> np.ndarray:
    ones = _ONES.get(n)
    if ones is None:
        ones = _ONES[n] = np.ones(n)
    return ones


def _as_vector(value: Any, n: int, what: str) -> np.ndarray:
    if type(value) is np.ndarray and value.dtype is _F64 and value.shape == (n,):
        return value  # the common case, kept cheap: this runs once per vector step
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise RewardOutputError(
            f"{what} is not numeric ({type(value).__name__}): return a numpy array of shape ({n},)"
        ) from exc
    if arr.shape != (n,):
        raise RewardOutputError(
            f"{what} has shape {arr.shape}, expected ({n},): compute one value per row of the batch"
        )
    return arr


def check_output(total: Any, components: Any, n: int) -> RewardOutput:
    """Validate a reward function's raw output and return it as float64 arrays.

    Raises :class:`RewardOutputError` naming the offending component for wrong shapes,
    non-numeric values and NaN/inf.
    """
    total_arr = _as_vector(total, n, "total reward")
    if not isinstance(components, Mapping):
        raise RewardOutputError(
            f"components must be a dict of name -> array, got {type(components).__name__}"
        )
    comps: dict[str, np.ndarray] = {}
    ones = _ones(n)  # a dot product with ones is a sum, without numpy's reduction overhead
    checksum = float(total_arr @ ones)
    for name, value in components.items():
        if not isinstance(name, str):
            raise RewardOutputError(f"component names must be strings, got {name!r}")
        comps[name] = arr = _as_vector(value, n, f"component '{name}'")
        checksum += float(arr @ ones)
    if not math.isfinite(checksum):  # NaN and inf survive a sum; find and name the culprit
        for name, arr in comps.items():
            if not np.isfinite(arr).all():
                raise RewardOutputError(f"component '{name}' has NaN or inf values: {arr.tolist()}")
        if not np.isfinite(total_arr).all():
            raise RewardOutputError(f"total reward has NaN or inf values: {total_arr.tolist()}")
        raise RewardOutputError("the reward values are too large: their sum overflows to inf")
    return RewardOutput(total=total_arr, components=comps)

"""Reward specs: picklable recipes that trainers, workers and evaluations build rewards from.

Training never needs to know where a reward comes from (a program file, a CLIP model, a learned
preference model): it takes a :class:`RewardSpec`, builds the :class:`~rewardgen.rewards.RewardFn`
once per process, and asks the spec what it needs to know beforehand (may the reward be scored a
whole rollout at a time?). Specs cross process boundaries (spawned workers, Ray tasks) by pickling;
the rewards they build (worker processes, models) need not.
"""

from __future__ import annotations

import copy
from typing import Any

from rewardgen.rewards.base import RewardFn

__all__ = ["FnSpec", "RewardSpec"]


class RewardSpec:
    """A picklable recipe for a reward function.

    Subclasses implement :meth:`build` and :meth:`describe`; ``deferrable`` says whether the
    reward is a pure function of each transition, so that an on-policy trainer may score a whole
    rollout in one call instead of one call per step. :meth:`files` names text files a run keeps
    (a program's source as ``reward.py``).

    Example:
        >>> import numpy as np
        >>> from rewardgen.rewards import RewardOutput
        >>> class Speed(RewardFn):
        ...     fields = frozenset({"x_velocity"})
        ...     def compute(self, batch):
        ...         return RewardOutput(batch.info["x_velocity"], {})
        >>> spec = FnSpec(Speed(), name="speed", deferrable=True)
        >>> spec.build().fields, spec.describe()["name"]
        (frozenset({'x_velocity'}), 'speed')
    """

    deferrable: bool = False
    #: what the learning curve calls this reward's return, beside the env's own
    return_label: str = "synthesized return"
    #: components reported for people to read that are not part of the reward (ONI's label
    #: coverage): logged beside the others, left out of the alarm and of any component share
    logged_components: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        """A short name for logs and plots."""
        return type(self).__name__

    def build(self) -> RewardFn:
        """A fresh reward function (call :meth:`RewardFn.close` when done with it)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What a run's manifest records about this reward (JSON values)."""
        return {"kind": type(self).__name__, "name": self.name}

    def files(self) -> dict[str, str]:
        """Text files (name -> content) a run directory keeps beside the model."""
        return {}

    def render_kwargs(self) -> dict[str, Any]:
        """Env keyword arguments for rendering, for a reward that scores frames (e.g. a VLM's
        ``width``/``height``: render what the model needs, not more)."""
        return {}


class FnSpec(RewardSpec):
    """The spec of a reward function object, such as a combinator of others: each
    :meth:`build` returns a deep copy, so runs and processes never share its state.

    ``fn`` must pickle to cross process boundaries (any :class:`RewardFn` without open
    processes or files does). Set ``deferrable`` only for a reward without per-episode state.
    ``copy=False`` builds ``fn`` itself, for a reward that changes while training runs in this
    process (PrefPPO's reward model, refitted by a training callback).
    """

    def __init__(self, fn: RewardFn, name: str = "", deferrable: bool = False, copy: bool = True):
        if not isinstance(fn, RewardFn):
            raise TypeError(f"FnSpec wraps a RewardFn, got {type(fn).__name__}")
        self.fn, self.label, self.deferrable, self.copy = fn, name, deferrable, copy

    @property
    def name(self) -> str:
        return self.label or type(self.fn).__name__

    def build(self) -> RewardFn:
        return copy.deepcopy(self.fn) if self.copy else self.fn

    def describe(self) -> dict[str, Any]:
        return {"kind": "fn", "name": self.name, "class": type(self.fn).__qualname__}

    def __repr__(self) -> str:
        return f"FnSpec({self.fn!r}, name={self.name!r}, deferrable={self.deferrable})"

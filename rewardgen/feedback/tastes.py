"""A synthetic rater's taste: a number measured on what a policy did, that the rater wants more
of (``x_velocity``) or less of (``-ctrl``). Tastes stand in for a room of people who disagree in
tests and benchmarks (``--judge synthetic:taste=x_velocity`` beside ``synthetic:taste=-ctrl``).

A measure is an ``info`` field of the task's env (``x_velocity``, ``torso_z``, ...) summed over
the steps, or ``ctrl``: the sum of the squared actions (the torque spent). Each measure is a
:class:`~rewardgen.rewards.RewardFn` (:meth:`Taste.measure`), so a policy's measure is its return
under that reward: PrefPPO records it per step beside the reward it trains on, and
:func:`~rewardgen.training.evaluate` gives it for a trained policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from rewardgen.errors import RewardgenError
from rewardgen.rewards import RewardFn, RewardOutput, TransitionBatch

__all__ = ["CTRL", "Measure", "Measures", "Taste"]

#: The measure that is not an info field: the sum of the squared actions.
CTRL = "ctrl"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class Measure(RewardFn):
    """Per step: the info field ``name``, or for ``ctrl`` the sum of the squared actions.

    Example:
        >>> batch = TransitionBatch(obs=np.zeros((2, 1)), action=np.array([[1.0, 1.0], [0.0, 2.0]]),
        ...                         next_obs=np.zeros((2, 1)), terminated=np.zeros(2, bool),
        ...                         truncated=np.zeros(2, bool), info={"x_velocity": np.array([0.5, -1.0])})
        >>> Measure("ctrl")(batch).total.tolist(), Measure("x_velocity")(batch).total.tolist()
        ([2.0, 4.0], [0.5, -1.0])
    """

    def __init__(self, name: str):
        self.name = name
        self.fields = frozenset() if name == CTRL else frozenset({name})

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        if self.name == CTRL:
            action = np.asarray(batch.action, dtype=np.float64).reshape(batch.n, -1)
            return RewardOutput(np.square(action).sum(axis=1), {})
        if self.name not in batch.info:
            raise RewardgenError(
                f"the taste's measure {self.name!r} is not an info field of this env "
                f"(it has {sorted(batch.info)}); use one of those, or 'ctrl'"
            )
        value = np.asarray(batch.info[self.name], dtype=np.float64)
        return RewardOutput(value.reshape(batch.n, -1).sum(axis=1), {})


class Measures(RewardFn):
    """Several measures at once, as the components of a reward that pays nothing: one evaluation
    of a policy sums each over its episodes (:func:`~rewardgen.training.evaluate`'s components).

    Example:
        >>> batch = TransitionBatch(obs=np.zeros((1, 1)), action=np.array([[3.0]]), next_obs=np.zeros((1, 1)),
        ...                         terminated=np.zeros(1, bool), truncated=np.zeros(1, bool),
        ...                         info={"x_velocity": np.array([0.5])})
        >>> out = Measures(["x_velocity", "ctrl"])(batch)
        >>> out.total.tolist(), {k: v.tolist() for k, v in out.components.items()}
        ([0.0], {'x_velocity': [0.5], 'ctrl': [9.0]})
    """

    def __init__(self, names: Iterable[str]):
        self.measures = [Measure(n) for n in dict.fromkeys(names)]
        self.fields = frozenset().union(*(m.fields for m in self.measures))

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        parts = {m.name: m.compute(batch).total for m in self.measures}
        return RewardOutput(np.zeros(batch.n), parts)


@dataclass(frozen=True)
class Taste:
    """What a synthetic rater prefers: more of ``measure`` (``sign`` +1) or less of it (-1).

    Example:
        >>> taste = Taste.parse("-ctrl")
        >>> taste.measure_name, taste.sign, str(taste)
        ('ctrl', -1.0, '-ctrl')
        >>> taste.value({"ctrl": 3.0})
        -3.0
    """

    measure_name: str
    sign: float = 1.0

    @classmethod
    def parse(cls, text: str) -> Taste:
        """``x_velocity`` (more is better) or ``-ctrl`` (less is better)."""
        text = text.strip()
        sign = -1.0 if text.startswith("-") else 1.0
        name = text.lstrip("+-").strip()
        if not _NAME.match(name):
            raise RewardgenError(
                f"a taste is an info field or 'ctrl', optionally with '-' for less of it "
                f"(x_velocity, -ctrl), got {text!r}"
            )
        return cls(name, sign)

    def __str__(self) -> str:
        return ("-" if self.sign < 0 else "") + self.measure_name

    def measure(self) -> Measure:
        """The per-step measure as a reward function (its return: the measure of an episode)."""
        return Measure(self.measure_name)

    def value(self, measures: Mapping[str, float]) -> float:
        """How much the rater likes what ``measures`` (measure name -> sum) describe."""
        if self.measure_name not in measures:
            raise RewardgenError(
                f"the taste {self} needs the measure {self.measure_name!r}, but the options were "
                f"measured for {sorted(measures) or 'nothing'}"
            )
        return self.sign * float(measures[self.measure_name])

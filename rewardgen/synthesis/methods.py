"""The search's methods in one table: how many rounds each runs and the
:class:`~rewardgen.synthesis.selection.Selector` that chooses and writes feedback. The search
loop asks this table; it names no method.

Example:
    >>> sorted(METHOD_TABLE) == sorted(METHODS)
    True
    >>> METHOD_TABLE["text2reward"].one_round, METHOD_TABLE["icpl"].one_round
    (True, False)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rewardgen.errors import RewardgenError
from rewardgen.methods import get_method_info
from rewardgen.synthesis.config import METHODS, SearchConfig
from rewardgen.synthesis.icpl import icpl_selector
from rewardgen.synthesis.selection import MetricSelector, Selector

__all__ = ["METHOD_TABLE", "Method", "get_method"]


@dataclass(frozen=True)
class Method:
    """How the search runs a method: its rounds (one for Text2Reward, as the method table says:
    :data:`rewardgen.methods.METHODS`, else ``config.iterations``) and how its selector is made
    from (config, task, run, executor, client, log)."""

    name: str
    selector: Callable[..., Selector]

    @property
    def one_round(self) -> bool:
        return get_method_info(self.name).one_round

    def rounds(self, config: SearchConfig) -> int:
        return 1 if self.one_round else config.iterations


def _metric_selector(*args: Any) -> Selector:
    return MetricSelector()


#: How each search method of the method table chooses: a judge's selector where a person judges
#: its rounds (ICPL), else the best score on the task's success metric.
METHOD_TABLE: dict[str, Method] = {
    name: Method(name, icpl_selector if get_method_info(name).judged else _metric_selector)
    for name in METHODS
}


def get_method(name: str) -> Method:
    if name not in METHOD_TABLE:
        raise RewardgenError(f"unknown method '{name}': choose one of {', '.join(METHOD_TABLE)}")
    return METHOD_TABLE[name]

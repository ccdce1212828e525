"""rewardgen: turn a sentence into a reward and train an agent on it.

The names a researcher starts from are here, loaded on first use, so ``import rewardgen`` stays
light (no torch, no MuJoCo): the :class:`RewardFn` spine and its specs, the gymnasium wrappers,
tasks, training (:class:`TrainConfig`, :func:`train`), the reward-program sandbox and the
search (:class:`SearchConfig`, :func:`synthesize`). Each lives in its sub-package (the name's
``__module__`` says which), where the rest of that sub-package's API is.

Example:
    >>> import rewardgen
    >>> rewardgen.__version__
    '0.1.0'
    >>> rewardgen.TrainConfig is __import__("rewardgen.training", fromlist=["x"]).TrainConfig
    True
    >>> rewardgen.get_task("hopper-jump").metric.line
    1.6
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from rewardgen import moved
from rewardgen.errors import RewardgenError

__version__ = "0.1.0"

#: Public name -> the sub-package that defines it (imported when the name is first used).
PUBLIC = {
    **dict.fromkeys(
        (
            "RewardFn",
            "RewardOutput",
            "TransitionBatch",
            "RewardSpec",
            "FnSpec",
            "WeightedSum",
            "Scale",
            "Clip",
        ),
        "rewardgen.rewards",
    ),
    **dict.fromkeys(("RewardWrapper", "VectorRewardWrapper", "SB3RewardVecWrapper"), "rewardgen.wrappers"),
    **dict.fromkeys(
        ("TaskSpec", "MetricSpec", "get_task", "list_tasks", "make_env", "derive_task"), "rewardgen.tasks"
    ),
    **dict.fromkeys(("TrainConfig", "TrainResult", "train", "evaluate", "load_policy"), "rewardgen.training"),
    **dict.fromkeys(("ProgramSpec", "RewardProgram", "SandboxLimits", "static_check"), "rewardgen.programs"),
    **dict.fromkeys(("SearchConfig", "Candidate", "synthesize", "refine"), "rewardgen.synthesis"),
    **dict.fromkeys(("LLMClient", "LLMSettings"), "rewardgen.llm"),
    "VLMSpec": "rewardgen.vlm",
    "OniSpec": "rewardgen.oni",
    "PreferenceRewardModel": "rewardgen.preference",
    **dict.fromkeys(("check_reward", "hacking_verdict"), "rewardgen.diagnostics"),
}

__all__ = [
    "Candidate",
    "Clip",
    "FnSpec",
    "LLMClient",
    "LLMSettings",
    "MetricSpec",
    "OniSpec",
    "PreferenceRewardModel",
    "ProgramSpec",
    "RewardFn",
    "RewardOutput",
    "RewardProgram",
    "RewardSpec",
    "RewardWrapper",
    "RewardgenError",
    "SB3RewardVecWrapper",
    "SandboxLimits",
    "Scale",
    "SearchConfig",
    "TaskSpec",
    "TrainConfig",
    "TrainResult",
    "TransitionBatch",
    "VLMSpec",
    "VectorRewardWrapper",
    "WeightedSum",
    "__version__",
    "check_reward",
    "derive_task",
    "evaluate",
    "get_task",
    "hacking_verdict",
    "list_tasks",
    "load_policy",
    "make_env",
    "refine",
    "static_check",
    "synthesize",
    "train",
]


class _Package(ModuleType):
    """This package's module: an old import path (:mod:`rewardgen.moved`) binds no submodule
    over a public name (``rewardgen.train`` stays the function)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in PUBLIC and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
moved.install()


def lazy_attribute(module: str, table: dict[str, str], name: str) -> Any:
    """``table[name]`` imported from its sub-package (a module ``__getattr__``'s work), or the
    ``AttributeError`` Python would raise for ``module.name``."""
    if name not in table:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    return getattr(importlib.import_module(table[name]), name)


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, PUBLIC, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *PUBLIC})


if TYPE_CHECKING:  # what type checkers and IDEs see
    from rewardgen.diagnostics import check_reward, hacking_verdict
    from rewardgen.llm import LLMClient, LLMSettings
    from rewardgen.oni import OniSpec
    from rewardgen.preference import PreferenceRewardModel
    from rewardgen.programs import ProgramSpec, RewardProgram, SandboxLimits, static_check
    from rewardgen.rewards import (
        Clip,
        FnSpec,
        RewardFn,
        RewardOutput,
        RewardSpec,
        Scale,
        TransitionBatch,
        WeightedSum,
    )
    from rewardgen.synthesis import Candidate, SearchConfig, refine, synthesize
    from rewardgen.tasks import MetricSpec, TaskSpec, derive_task, get_task, list_tasks, make_env
    from rewardgen.training import TrainConfig, TrainResult, evaluate, load_policy, train
    from rewardgen.vlm import VLMSpec
    from rewardgen.wrappers import RewardWrapper, SB3RewardVecWrapper, VectorRewardWrapper

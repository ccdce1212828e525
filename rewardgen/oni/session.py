"""ONI set up once: how a training run is paid the LLM's labels, for every caller
(``rewardgen oni train``, ``rewardgen bench``'s ONI cells).

A run is the env's reward times ``c_ext`` plus the intrinsic reward times ``c_int``
(:func:`oni_mixing`: the :class:`~rewardgen.training.TrainConfig` fields that say so), and, while it
trains, an :class:`~rewardgen.oni.AnnotationService` labels the messages the agents report
into the spec's label store (:func:`labelling`: checked first, the service's calls kept in
``<run>/llm/transcript.jsonl``, stopped when the block ends). A replay passes no LLM settings: the
store's recorded labels pay, and no endpoint is asked.

Example:
    >>> oni_mixing()
    {'mode': 'add', 'env_coef': 0.1, 'reward_coef': 0.4}
    >>> service_config("classification", batch_size=16).classifier
    True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rewardgen.oni.reward import C_EXT, C_INT, OniSpec
from rewardgen.oni.service import AnnotationService, ServiceConfig

__all__ = ["TRANSCRIPT", "labelling", "oni_mixing", "service_config"]

#: Where a run keeps the annotation service's LLM calls, under its directory.
TRANSCRIPT = Path("llm") / "transcript.jsonl"


def oni_mixing(c_ext: float = C_EXT, c_int: float = C_INT) -> dict[str, Any]:
    """The :class:`~rewardgen.training.TrainConfig` fields of ONI's reward: the env's times
    ``c_ext`` plus the intrinsic reward times ``c_int``."""
    return {"mode": "add", "env_coef": c_ext, "reward_coef": c_int}


def service_config(reward: str, batch_size: int = 32) -> ServiceConfig:
    """The annotation service's settings for reward model ``reward`` (``classification`` and
    ``ranking`` models are refitted by the service as labels arrive)."""
    return ServiceConfig(
        batch_size=batch_size, classifier=reward == "classification", ranking=reward == "ranking"
    )


@contextlib.contextmanager
def labelling(
    spec: OniSpec, run_dir: str | Path, settings: Any = None, batch_size: int = 32
) -> Iterator[AnnotationService | None]:
    """Label ``spec``'s store while the block trains: the store is checked (a damaged or
    read-only one fails now, not mid-run), then the annotation service asks the LLM at
    ``settings`` (:class:`~rewardgen.llm.LLMSettings`) and stops when the block ends. With no
    ``settings`` (a replay) no service runs and the block gets None."""
    spec.store().check()
    if settings is None:
        yield None
        return
    service = AnnotationService(
        spec.store(),
        settings,
        service_config(spec.reward, batch_size),
        transcript=str(Path(run_dir) / TRANSCRIPT),
    )
    with service:
        yield service

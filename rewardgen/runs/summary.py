"""What an evaluation found: :class:`EvalSummary` (``eval.json``), one type for the trainer that
writes it, the search that ranks by it and the CLI and prompts that show it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rewardgen.errors import RewardgenError

__all__ = ["EpisodeResult", "EvalSummary"]


@dataclass(frozen=True)
class EpisodeResult:
    """One evaluation episode: the env's own return, the trained-on reward's return and its
    components (episode sums), the success metric and whether it met the threshold."""

    env_return: float
    reward_return: float
    length: int
    success_metric: float
    success: bool
    components: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalSummary:
    """The evaluation of a policy on its task: per-episode results and their means.

    ``metric`` describes the success metric in words; the means are
    :func:`rewardgen.runs.episode_means`'s, as in metrics.csv. ``eval.json`` is :meth:`to_dict`.

    Example:
        >>> ep = EpisodeResult(env_return=10.0, reward_return=8.0, length=100, success_metric=3.2,
        ...                    success=True, components={"speed": 8.0})
        >>> s = EvalSummary((ep,), env_return_mean=10.0, reward_return_mean=8.0,
        ...                 success_metric_mean=3.2, success_rate=1.0, metric="mean x_velocity above 3")
        >>> EvalSummary.from_dict(s.to_dict()) == s
        True
    """

    episodes: tuple[EpisodeResult, ...]
    env_return_mean: float
    reward_return_mean: float
    success_metric_mean: float
    success_rate: float
    metric: str = ""

    def to_dict(self, episodes: bool = True) -> dict[str, Any]:
        """The JSON layout of ``eval.json`` (without the episodes when ``episodes`` is False)."""
        out = asdict(self)
        out["episodes"] = list(out["episodes"])
        if not episodes:
            del out["episodes"]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalSummary:
        """Read :meth:`to_dict`'s layout back (a missing episode list reads as none)."""
        try:
            return cls(
                episodes=tuple(EpisodeResult(**e) for e in data.get("episodes", ())),
                env_return_mean=float(data["env_return_mean"]),
                reward_return_mean=float(data["reward_return_mean"]),
                success_metric_mean=float(data["success_metric_mean"]),
                success_rate=float(data["success_rate"]),
                metric=str(data.get("metric", "")),
            )
        except (KeyError, TypeError) as exc:
            raise RewardgenError(f"not an evaluation summary ({exc}): keys {sorted(data)}") from exc

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def read(cls, path: Path) -> EvalSummary:
        return cls.from_dict(json.loads(Path(path).read_text()))

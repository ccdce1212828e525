"""What an evaluation found: :class:`EvalSummary` (``eval.json``), one type for the trainer that
writes it, the search that ranks by it and the CLI and prompts that show it; and what became of
one candidate of a search: :class:`CandidateRecord` (``candidate.json``), read the same way by the
search, the CLI's table and report.html."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rewardgen.errors import RewardgenError

__all__ = ["CandidateRecord", "EpisodeResult", "EvalSummary"]


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
    succeeded: bool = False  # the verdict of the task's success rule on these episodes

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
                # written before the rule was kept: every episode had to succeed
                succeeded=bool(data.get("succeeded", float(data["success_rate"]) >= 1.0)),
            )
        except (KeyError, TypeError) as exc:
            raise RewardgenError(f"not an evaluation summary ({exc}): keys {sorted(data)}") from exc

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def read(cls, path: Path) -> EvalSummary:
        return cls.from_dict(json.loads(Path(path).read_text()))


@dataclass
class CandidateRecord:
    """One reply of the model in a search and what became of it (``<round>/cand<k>/candidate.json``).

    Example:
        >>> data = {"iteration": 0, "index": 2, "status": "trained", "path": "run/iter0/cand2"}
        >>> rec = CandidateRecord.from_dict(data)
        >>> rec.round, rec.label, rec.success_metric
        ('iter0', 'iter0/cand2', None)
    """

    FILE = "candidate.json"

    iteration: int
    index: int
    status: str  # "refused" | "failed" | "trained" | "skipped" (the search stopped before it trained)
    reason: str | None = None
    code: str | None = None
    eval: EvalSummary | None = None  # its policy's evaluation (without episodes once reloaded)
    score: float | None = None
    path: Path | None = None
    steps: int | None = None  # training steps so far (successive halving trains in stages)
    pruned: bool = False  # dropped by successive halving before the full budget
    wall_s: float | None = None  # wall-clock seconds spent training and evaluating it
    # where its time went, seconds by phase: smoke (test), train, eval (periodic and final), video
    timing: dict[str, float] = field(default_factory=dict)
    first_success: dict[str, float] | None = (
        None  # the first periodic evaluation that met the task's success rule
    )
    stopped: str | None = None  # why its training ended before its steps: "succeeded", the search's stop

    @property
    def succeeded(self) -> bool:
        """Its policy met the task's success rule in its final evaluation (a periodic evaluation
        that met it, ``first_success``, is when; the final one confirms it)."""
        return self.eval is not None and self.eval.succeeded

    @property
    def round(self) -> str:
        return self.path.parent.name if self.path is not None else f"iter{self.iteration}"

    @property
    def label(self) -> str:
        return f"{self.round}/cand{self.index}"

    @property
    def success_metric(self) -> float | None:
        return self.eval.success_metric_mean if self.eval is not None else None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CandidateRecord:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("path") is not None:
            values["path"] = Path(values["path"])
        if values.get("eval") is not None and not isinstance(values["eval"], EvalSummary):
            values["eval"] = EvalSummary.from_dict(values["eval"])
        return cls(**values)

    @classmethod
    def load(cls, folder: Path) -> CandidateRecord | None:
        """The record a search wrote in ``folder`` (None: none yet, or cut short by a kill)."""
        try:
            data = json.loads((Path(folder) / cls.FILE).read_text())
            return cls.from_dict({**data, "path": folder})
        except (OSError, ValueError, TypeError, RewardgenError):
            return None  # not written yet, cut short, or not a record

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["path"] = str(self.path) if self.path else None
        d["eval"] = self.eval.to_dict(episodes=False) if self.eval is not None else None
        return d

    def save(self) -> None:
        """Write ``candidate.json`` whole or not at all (a resumed search trusts it)."""
        assert self.path is not None
        tmp = self.path / (self.FILE + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, default=str))
        tmp.replace(self.path / self.FILE)

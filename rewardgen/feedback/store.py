"""Every answer of a preference round, kept in the run: ``preferences.jsonl``."""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rewardgen.errors import RewardgenError

__all__ = ["Choice", "PreferenceStore"]


@dataclass(frozen=True)
class Choice:
    """One answer of a preference round: of the ``candidates`` shown (their ids within the
    round), which was ``best`` and which ``worst``; optionally the full ``ranking`` (best first)
    and the judge's ``words``, passed on to the LLM.

    Example:
        >>> c = Choice(round="iter0", candidates=("cand0", "cand1", "cand2"), best="cand2", worst="cand0")
        >>> c.judge, Choice.from_dict(c.to_dict()) == c
        ('synthetic', True)
    """

    round: str
    candidates: tuple[str, ...]
    best: str
    worst: str | None = None
    ranking: tuple[str, ...] = ()
    words: str = ""
    judge: str = "synthetic"
    rater: str = ""
    time: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    )

    def __post_init__(self) -> None:
        shown = set(self.candidates)
        for name, value in (
            ("best", self.best),
            ("worst", self.worst),
            *(("ranking", r) for r in self.ranking),
        ):
            if value is not None and value not in shown:
                raise RewardgenError(f"{name} '{value}' was not shown in round {self.round}: {sorted(shown)}")
        if self.worst is not None and self.worst == self.best:
            raise RewardgenError(f"round {self.round}: the best and the worst must differ ({self.best})")
        if self.ranking and (len(set(self.ranking)) != len(self.ranking) or self.ranking[0] != self.best):
            raise RewardgenError(f"round {self.round}: a ranking lists each candidate once, the best first")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "candidates": list(self.candidates), "ranking": list(self.ranking)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Choice:
        return cls(
            **{**data, "candidates": tuple(data["candidates"]), "ranking": tuple(data.get("ranking", ()))}
        )


class PreferenceStore:
    """The answers of a run's preference rounds, one JSON line each (``preferences.jsonl``),
    rewritten whole through a temporary file so that a kill never leaves half a line.

    Example:
        >>> import tempfile
        >>> store = PreferenceStore(Path(tempfile.mkdtemp()) / "preferences.jsonl")
        >>> store.add(Choice(round="iter0", candidates=("cand0", "cand1"), best="cand1", worst="cand0"))
        >>> store.for_round("iter0").best
        'cand1'
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> list[Choice]:
        if not self.path.is_file():
            return []
        return [
            Choice.from_dict(json.loads(line)) for line in self.path.read_text().splitlines() if line.strip()
        ]

    def for_round(self, round_id: str) -> Choice | None:
        """The answer already given for ``round_id`` (the last one), or None."""
        return next((c for c in reversed(self.load()) if c.round == round_id), None)

    def add(self, choice: Choice) -> None:
        """Keep an answer; a second answer for a round that has one is refused."""
        if self.for_round(choice.round) is not None:
            raise RewardgenError(f"round {choice.round} already has an answer in {self.path}")
        lines = [json.dumps(c.to_dict()) for c in self.load()] + [json.dumps(choice.to_dict())]
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.path)

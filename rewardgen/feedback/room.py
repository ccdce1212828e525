"""A room of raters: several judges answer the same preference round, each answer is kept with
its rater's name (``room_answers.jsonl``) and the room's answer is their Borda count
(:func:`~rewardgen.feedback.store.room_choice`). The web judge seats its own room
(``web:raters=ana+bob``); :class:`Room` seats any other judges together, e.g. two synthetic
raters with opposite tastes (``--judge synthetic:taste=x_velocity --judge synthetic:taste=-x_velocity``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

from rewardgen.errors import RewardgenError
from rewardgen.feedback.judges import Judge, make_judge
from rewardgen.feedback.options import Option
from rewardgen.feedback.store import Choice, PreferenceStore, RoundBoard, room_choice
from rewardgen.feedback.tastes import Taste

__all__ = [
    "Room",
    "make_judges",
    "make_room",
    "rater_answers",
    "rater_of",
    "rater_slug",
    "raters",
    "tastes_of",
]


def rater_of(judge: Judge) -> str:
    """The name a judge's answers carry: its rater's (``rater=``, a taste), else the judge's."""
    return str(getattr(judge, "rater", "") or judge.name)


def rater_slug(name: str) -> str:
    """A rater's name as a file name's part (a leading '-' reads ``minus-``).

    Example:
        >>> rater_slug("-ctrl"), rater_slug("ana b")
        ('minus-ctrl', 'ana_b')
    """
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.replace("-", "minus-", 1) if name.startswith("-") else name)


class Room:
    """Several judges seated together: each answers every round (an answer kept in ``store`` is
    reused: a resumed round asks nobody again) and the room answers with their Borda count.
    ``raters`` are their names; :meth:`answers` is what each said.

    Example:
        >>> import tempfile
        >>> from rewardgen.feedback.judges import SyntheticJudge
        >>> store = PreferenceStore(Path(tempfile.mkdtemp()) / "room_answers.jsonl", per_rater=True)
        >>> room = Room([SyntheticJudge(taste="speed"), SyntheticJudge(taste="-speed")], store)
        >>> options = [Option(k, measures={"speed": v}) for k, v in (("a", 1.0), ("b", 3.0), ("c", 2.0))]
        >>> room("iter0", options).rater, [(c.rater, c.best) for c in room.answers("iter0")]
        ('speed+-speed', [('speed', 'b'), ('-speed', 'a')])
    """

    def __init__(self, judges: Sequence[Judge], store: PreferenceStore):
        self.judges = list(judges)
        self.raters = _distinct([rater_of(j) for j in self.judges])
        if any(getattr(j, "raters", ()) for j in self.judges):
            raise RewardgenError(
                "the web page seats its own room (web:raters=ana+bob): it joins no other judge"
            )
        self.store = store
        self.name = "room"
        self.needs_videos = any(j.needs_videos for j in self.judges)

    def __call__(self, round_id: str, options: Sequence[Option]) -> Choice:
        answers = []
        for judge, rater in zip(self.judges, self.raters, strict=True):
            choice = self.store.for_round(round_id, rater)
            if choice is None:
                choice = judge(round_id, options)
                if choice.rater != rater:  # each answer says whose it is
                    choice = dataclasses.replace(choice, rater=rater)
                self.store.add(choice)
            answers.append(choice)
        return room_choice(answers)

    def answers(self, round_id: str) -> list[Choice]:
        """Each rater's answer to ``round_id``, in the order the raters sit."""
        said = {c.rater: c for c in self.store.answers(round_id)}
        return [said[r] for r in self.raters if r in said]

    def close(self) -> None:
        for judge in self.judges:
            judge.close()


def make_judges(specs: Sequence[str], seed: int = 0, run: Path | None = None, goal: str = "") -> list[Judge]:
    """The judges of ``specs`` (``--judge`` repeated), each with its own seed; several must have
    different rater names."""
    judges = [make_judge(spec, seed=seed + k, run=run, goal=goal) for k, spec in enumerate(specs)]
    _distinct([rater_of(j) for j in judges])
    return judges


def _distinct(names: list[str]) -> tuple[str, ...]:
    if len(set(names)) < len(names):
        raise RewardgenError(
            f"several judges need different rater names, got {names}: add rater=NAME to each "
            "(synthetic:taste=x_velocity,rater=fast)"
        )
    return tuple(names)


def make_room(specs: str | Sequence[str], seed: int = 0, run: Path | None = None, goal: str = "") -> Judge:
    """One judge (``specs`` a string or one spec), or a :class:`Room` of several whose answers
    are kept in ``run``'s ``room_answers.jsonl`` (where the web page's room keeps its own)."""
    specs = (specs,) if isinstance(specs, str) else tuple(specs)
    if not specs:
        raise RewardgenError("no judge given: pass --judge (web, terminal or synthetic)")
    judges = make_judges(specs, seed, run, goal)
    if len(judges) == 1:
        return judges[0]
    if run is None:
        raise RewardgenError("a room of raters keeps its answers in a run: it needs the run directory")
    return Room(judges, PreferenceStore(Path(run) / RoundBoard.ROOM, per_rater=True))


def raters(judge: Judge) -> tuple[str, ...]:
    """The names of a judge's raters: a room's (the web page's or :class:`Room`'s); () for one."""
    return tuple(getattr(judge, "raters", ()) or ())


def rater_answers(judge: Judge, round_id: str) -> list[Choice]:
    """What each rater of ``judge``'s room answered in ``round_id`` ([] for a judge alone)."""
    answers = getattr(judge, "answers", None)
    return list(answers(round_id)) if callable(answers) else []


def tastes_of(judge: Judge) -> list[Taste]:
    """The tastes of a judge's synthetic raters (what each option must be measured for)."""
    judges = getattr(judge, "judges", [judge])
    return [t for j in judges if (t := getattr(j, "taste", None)) is not None]

"""Every answer of a preference round, kept in the run: ``preferences.jsonl``."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rewardgen.errors import RewardgenError

__all__ = ["Choice", "DuplicateAnswerError", "PreferenceStore", "PublishedRound", "RoundBoard", "room_choice"]


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


def room_choice(answers: list[Choice]) -> Choice:
    """The room's answer from its raters' (a Borda count: a ranking gives n-1 .. 0 points, a
    best and a worst +1 and -1; ties go to the order shown): the best and the worst by points,
    every rater's words with their name, and ``rater`` naming who answered.

    Example:
        >>> shown = ("a", "b", "c")
        >>> ana = Choice("r", shown, best="a", worst="c", rater="ana", words="a runs")
        >>> bob = Choice("r", shown, best="b", worst="c", rater="bob")
        >>> cai = Choice("r", shown, best="a", worst="b", rater="cai")
        >>> room = room_choice([ana, bob, cai])
        >>> room.best, room.worst, room.rater, room.words
        ('a', 'c', 'ana+bob+cai', 'ana: a runs')
    """
    if not answers:
        raise RewardgenError("a room's answer needs at least one rater's")
    shown = answers[0].candidates
    points = dict.fromkeys(shown, 0.0)
    for c in answers:
        if c.ranking:
            for i, cand in enumerate(c.ranking):
                points[cand] += len(c.ranking) - 1 - i
        else:
            points[c.best] += 1.0
            if c.worst is not None:
                points[c.worst] -= 1.0
    order = sorted(shown, key=lambda cand: -points[cand])  # stable: ties keep the order shown
    return Choice(
        round=answers[0].round,
        candidates=shown,
        best=order[0],
        worst=order[-1],
        ranking=tuple(order),
        words="\n".join(f"{c.rater}: {c.words}" for c in answers if c.words),
        judge=answers[0].judge,
        rater="+".join(c.rater for c in answers),
    )


class PreferenceStore:
    """The answers of a run's preference rounds, one JSON line each (``preferences.jsonl``),
    rewritten whole through a temporary file so that a kill never leaves half a line. A round has
    one answer, or with ``per_rater`` one answer per rater (a room of raters answers each round).

    Example:
        >>> import tempfile
        >>> store = PreferenceStore(Path(tempfile.mkdtemp()) / "preferences.jsonl")
        >>> store.add(Choice(round="iter0", candidates=("cand0", "cand1"), best="cand1", worst="cand0"))
        >>> store.for_round("iter0").best
        'cand1'
    """

    def __init__(self, path: Path, per_rater: bool = False):
        self.path, self.per_rater = Path(path), per_rater

    def load(self) -> list[Choice]:
        if not self.path.is_file():
            return []
        return [
            Choice.from_dict(json.loads(line)) for line in self.path.read_text().splitlines() if line.strip()
        ]

    def for_round(self, round_id: str, rater: str | None = None) -> Choice | None:
        """The answer already given for ``round_id`` (the last one; ``rater``'s, when given), or None."""
        return next(
            (c for c in reversed(self.load()) if c.round == round_id and (rater is None or c.rater == rater)),
            None,
        )

    def answers(self, round_id: str) -> list[Choice]:
        """Every answer of ``round_id``, in the order given (one per rater in a room)."""
        return [c for c in self.load() if c.round == round_id]

    def add(self, choice: Choice) -> None:
        """Keep an answer; a second answer for a round that has one (with ``per_rater``: a
        second answer of the same rater) is refused."""
        with _locked(self.path.with_suffix(".lock")):  # the page's server and the search may both add
            if self.for_round(choice.round, choice.rater if self.per_rater else None) is not None:
                who = f" from {choice.rater or 'this rater'}" if self.per_rater else ""
                raise DuplicateAnswerError(f"round {choice.round} already has an answer{who} in {self.path}")
            lines = [json.dumps(c.to_dict()) for c in self.load()] + [json.dumps(choice.to_dict())]
            tmp = self.path.with_suffix(".jsonl.tmp")
            tmp.write_text("\n".join(lines) + "\n")
            tmp.replace(self.path)


class DuplicateAnswerError(RewardgenError):
    """A round that already has an answer was answered again."""


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive lock across threads and processes (``flock``; threads only where there is none)."""
    with _THREAD_LOCK:
        try:
            import fcntl
        except ImportError:  # Windows: one process at a time is the user's to keep
            yield
            return
        with open(lock_path, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


_THREAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class PublishedRound:
    """A preference round put before a person on the page: its id, what to judge (``goal``), and
    for each policy its id and its videos as paths inside the run (``video``: MP4, ``webm``: the
    same film as WebM/VP9, which every browser plays without proprietary codecs)."""

    round: str
    goal: str
    options: tuple[dict[str, str], ...]
    time: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    )
    left_out: tuple[dict[str, str], ...] = ()  # {"id", "note"}: policies not shown, and why
    raters: tuple[str, ...] = ()  # a room: who is asked (each from their own link)
    quorum: int = 0  # a room: the round closes when this many have answered ...
    closes: str = ""  # ... or at this time (ISO, UTC) once anyone has

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "options": [dict(o) for o in self.options],
            "left_out": [dict(o) for o in self.left_out],
            "raters": list(self.raters),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PublishedRound:
        return cls(
            **{
                **data,
                "options": tuple(dict(o) for o in data["options"]),
                "left_out": tuple(dict(o) for o in data.get("left_out", ())),
                "raters": tuple(data.get("raters", ())),
            }
        )

    def option(self, option_id: str) -> dict[str, str] | None:
        return next((o for o in self.options if o["id"] == option_id), None)

    def filmed(self, option_id: str) -> bool:
        """Whether ``option_id`` was shown with a video: only those can be picked."""
        option = self.option(option_id)
        return option is not None and bool(option.get("video") or option.get("webm"))


class RoundBoard:
    """The rounds published to the preference page (``preference_rounds.jsonl``), next to the
    answers (:class:`PreferenceStore`): the pending round is the latest one without an answer.
    Both live in the run, so any server on the run (the one ICPL starts, or ``rewardgen prefs
    serve``) shows the same round, and a resumed run publishes the same round again.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> board = RoundBoard(folder)
        >>> board.publish(PublishedRound("iter0", "run", ({"id": "cand0"}, {"id": "cand1"})))
        >>> board.pending().round
        'iter0'
        >>> board.store.add(Choice(round="iter0", candidates=("cand0", "cand1"), best="cand1", worst="cand0"))
        >>> board.pending() is None
        True
    """

    FILE = "preference_rounds.jsonl"
    PAGE = "preference_page.json"  # the page's port and its CSRF secret, kept across a resume
    ROOM = "room_answers.jsonl"  # a room of raters: each one's answer; the round's is in the store

    def __init__(self, run_path: Path):
        self.path = Path(run_path) / self.FILE
        self.store = PreferenceStore(Path(run_path) / "preferences.jsonl")
        self.room_store = PreferenceStore(Path(run_path) / self.ROOM, per_rater=True)
        self.page_path = Path(run_path) / self.PAGE

    def page_settings(self) -> dict[str, Any]:
        """The page's settings kept in the run: ``csrf`` (the per-run secret the served page
        sends back with every answer; made once, readable by the run's owner only) and ``port``
        (where the search served it last), so that a resumed search's page is the open tab's."""
        with _locked(self.page_path.with_suffix(".lock")):
            try:
                settings = json.loads(self.page_path.read_text())
            except (OSError, ValueError):
                settings = {}
            if not isinstance(settings, dict) or not isinstance(settings.get("csrf"), str):
                settings = {"csrf": secrets.token_urlsafe(24)}
                self._write_page(settings)
            return settings

    def room(self) -> dict[str, str]:
        """The room's raters and their secret tokens (name -> token); empty for a single judge."""
        room = self.page_settings().get("raters")
        return dict(room) if isinstance(room, dict) else {}

    def seat(self, names: list[str]) -> dict[str, str]:
        """Make ``names`` the room (a token each, kept for a rater already seated, so their link
        still works after a resume); returns name -> token."""
        settings = self.page_settings()
        old = settings.get("raters") if isinstance(settings.get("raters"), dict) else {}
        room = {name: old.get(name) or secrets.token_urlsafe(18) for name in names}
        with _locked(self.page_path.with_suffix(".lock")):
            self._write_page({**settings, "raters": room})
        return room

    def record_port(self, port: int) -> None:
        settings = self.page_settings()
        with _locked(self.page_path.with_suffix(".lock")):
            self._write_page({**settings, "port": int(port)})

    def _write_page(self, settings: dict[str, Any]) -> None:
        self.page_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.page_path.with_suffix(".json.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(settings))
        tmp.replace(self.page_path)

    def rounds(self) -> list[PublishedRound]:
        if not self.path.is_file():
            return []
        return [
            PublishedRound.from_dict(json.loads(line))
            for line in self.path.read_text().splitlines()
            if line.strip()
        ]

    def get(self, round_id: str) -> PublishedRound | None:
        return next((r for r in reversed(self.rounds()) if r.round == round_id), None)

    def publish(self, published: PublishedRound) -> None:
        """Put a round on the page (again, after a resume: the earlier entry is replaced)."""
        kept = [r for r in self.rounds() if r.round != published.round] + [published]
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in kept))
        tmp.replace(self.path)

    def pending(self) -> PublishedRound | None:
        """The latest published round that has no answer yet."""
        answered = {c.round for c in self.store.load()}
        return next((r for r in reversed(self.rounds()) if r.round not in answered), None)

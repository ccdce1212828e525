"""How a search chooses between candidates and tells the LLM what to improve.

A :class:`Selector` picks the best of each round's candidates, decides which is the search's
best, and writes the next round's feedback. Eureka-style evolution selects by the task's success
metric and reflects on the reward components' statistics (:class:`MetricSelector`); ICPL asks a
judge (a person, or a synthetic stand-in) to compare the round's policies
(:class:`PreferenceSelector`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from rewardgen.preferences import Choice, Judge, Option, PreferenceStore
from rewardgen.runs import RunDir
from rewardgen.synthesis.candidate import Candidate, curves
from rewardgen.synthesis.prompts import difference_request, feedback_message, preference_message
from rewardgen.tasks import TaskSpec

__all__ = ["MetricSelector", "PreferenceSelector", "Selector", "best_candidate"]


def best_candidate(cands: Sequence[Candidate | None]) -> Candidate | None:
    """The best candidate trained on the full budget (successive halving's dropped ones
    excluded); of equal scores, the first."""
    trained = [c for c in cands if c is not None and _trained(c)]
    return max(trained, key=lambda c: c.score, default=None)  # type: ignore[arg-type,return-value]


def _trained(c: Candidate) -> bool:
    return c.status == "trained" and c.score is not None and not c.pruned


class Selector(Protocol):
    """Chooses among candidates and writes the feedback of the next round."""

    def select(self, task: TaskSpec, round_id: str, round_cands: Sequence[Candidate]) -> Candidate | None:
        """The best of a round's candidates (None when none was trained)."""
        ...

    def keep(self, best: Candidate | None, round_best: Candidate | None) -> Candidate | None:
        """The search's best after a round: the best so far or the round's."""
        ...

    def feedback(
        self, task: TaskSpec, round_cands: Sequence[Candidate], best: Candidate | None
    ) -> dict[str, str]:
        """The next round's user message, after ``round_cands``; ``best`` is the search's best so far."""
        ...


class MetricSelector:
    """Eureka's choice: the highest success-metric score; feedback shows the round's best code
    (or the search's best) with the statistics of its reward components and the failures' reasons.

    Example:
        >>> MetricSelector().keep(None, None) is None
        True
    """

    def select(self, task: TaskSpec, round_id: str, round_cands: Sequence[Candidate]) -> Candidate | None:
        return best_candidate(round_cands)

    def keep(self, best: Candidate | None, round_best: Candidate | None) -> Candidate | None:
        return best_candidate([round_best, best])  # a tie goes to the newer

    def feedback(
        self, task: TaskSpec, round_cands: Sequence[Candidate], best: Candidate | None
    ) -> dict[str, str]:
        failures = [c for c in round_cands if c.status != "trained"]
        anchor = best_candidate(round_cands) or best
        return feedback_message(task, anchor, failures, curves(anchor) if anchor else None)


class PreferenceSelector:
    """ICPL's choice: a judge compares the policies of each round (videos for a person) and picks
    the best and the worst; the answer goes to ``preferences.jsonl`` (a resumed round reuses it).
    The search's best is the latest round's preferred reward: people compare within a round, so
    scores across rounds do not decide. Feedback holds the preferred and the rejected code with
    their reward reflections and the judge's words.

    ``film(cands)`` records the videos a judge that ``needs_videos`` watches. ``summarize(text)``
    (one LLM call per round) writes how the preferred and the rejected reward differ; later
    prompts carry that history (kept as ``difference.md`` in each round's folder).
    """

    def __init__(
        self,
        judge: Judge,
        store: PreferenceStore,
        film: Callable[[list[Candidate]], None] | None = None,
        summarize: Callable[[str], str] | None = None,
    ):
        self.judge, self.store, self.film, self.summarize = judge, store, film, summarize
        self.last: tuple[Choice, dict[str, Candidate]] | None = None
        self.rounds: list[tuple[str, Candidate, Candidate | None]] = []  # (round, preferred, rejected)

    def select(self, task: TaskSpec, round_id: str, round_cands: Sequence[Candidate]) -> Candidate | None:
        trained = [c for c in round_cands if _trained(c) and c.path is not None]
        self.last = None
        if len(trained) < 2:  # nothing to compare: the one that trained, if any
            return trained[0] if trained else None
        by_id = {c.path.name: c for c in trained}  # type: ignore[union-attr]
        choice = self.store.for_round(round_id)
        if choice is None:
            if self.judge.needs_videos and self.film is not None:
                self.film(trained)
            choice = self.judge(round_id, [_option(c) for c in trained])
            self.store.add(choice)
        self.last = (choice, by_id)
        self.rounds.append((round_id, by_id[choice.best], by_id.get(choice.worst or "")))
        return by_id[choice.best]

    def history(self) -> list[tuple[str, str]]:
        """How the preferred and the rejected reward differed in each round before the latest,
        asked of the LLM once per round (when a later prompt first needs it)."""
        out = []
        for round_id, preferred, rejected in self.rounds[:-1]:
            if self.summarize is None or rejected is None or preferred.path is None:
                continue
            saved = preferred.path.parent / "difference.md"
            if not saved.is_file():
                text = self.summarize(difference_request(preferred.code or "", rejected.code or ""))
                saved.write_text(text.strip() + "\n")
            out.append((round_id, saved.read_text().strip()))
        return out

    def keep(self, best: Candidate | None, round_best: Candidate | None) -> Candidate | None:
        return round_best if round_best is not None else best

    def feedback(
        self, task: TaskSpec, round_cands: Sequence[Candidate], best: Candidate | None
    ) -> dict[str, str]:
        if self.last is None:  # fewer than two policies to compare: Eureka's feedback
            return MetricSelector().feedback(task, round_cands, best)
        choice, by_id = self.last
        preferred = by_id[choice.best]
        rejected = by_id[choice.worst] if choice.worst is not None else None
        shown = [c for c in (preferred, rejected) if c is not None]
        failures = [c for c in round_cands if c.status != "trained"]
        return preference_message(
            task,
            preferred,
            rejected,
            choice.words,
            {c.path.name: curves(c) for c in shown},  # type: ignore[union-attr]
            failures,
            self.history(),  # the rounds before this one: this one is shown in full
        )


def _option(c: Candidate) -> Option:
    assert c.path is not None
    video = c.path / "train" / RunDir.VIDEO
    return Option(
        id=c.path.name,
        video=video if video.is_file() else None,
        score=c.score,
        env_return=c.eval.env_return_mean if c.eval is not None else None,
    )

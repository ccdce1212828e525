"""How a search chooses between candidates and tells the LLM what to improve.

A :class:`Selector` picks the best of each round's candidates, decides which is the search's
best, and writes the next round's feedback. Eureka-style evolution selects by the task's success
metric and reflects on the reward components' statistics (:class:`MetricSelector`); ICPL asks a
judge (a person, or a synthetic stand-in) to compare the round's policies
(:class:`rewardgen.synthesis.icpl.PreferenceSelector`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rewardgen.synthesis.candidate import Candidate, curves
from rewardgen.synthesis.prompts import feedback_message
from rewardgen.tasks import TaskSpec

__all__ = ["MetricSelector", "Selector", "best_candidate", "is_trained"]


def best_candidate(cands: Sequence[Candidate | None]) -> Candidate | None:
    """The best candidate trained on the full budget (successive halving's dropped ones
    excluded); of equal scores, the first."""
    trained = [c for c in cands if c is not None and is_trained(c)]
    return max(trained, key=lambda c: c.score, default=None)  # type: ignore[arg-type,return-value]


def is_trained(c: Candidate) -> bool:
    """Trained on the full budget with a score (not dropped by successive halving)."""
    return c.status == "trained" and c.score is not None and not c.pruned


class Selector(Protocol):
    """Chooses among candidates and writes the feedback of the next round: what differs between
    the search's methods, so the search loop names none. ``top_up``: a round whose candidates
    did not all train asks the LLM again until it has K (a judge compares K policies)."""

    top_up: bool
    lineages: tuple[str, ...]  # a prompt each (ICPL following each rater); () for the search's one

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

    def lineage_feedback(
        self, task: TaskSpec, round_cands: Sequence[Candidate], best: Candidate | None
    ) -> dict[str, dict[str, str]]:
        """The next round's user message of each of :attr:`lineages`."""
        ...

    def preferred_by(self) -> dict[str, Candidate]:
        """Each rater's reward, by name (a room's raters); {} for a search without raters."""
        ...

    def close(self) -> None:
        """Stop what the selector runs (a judge's web page), once the run's end is written."""
        ...


class MetricSelector:
    """Eureka's choice: the highest success-metric score; feedback shows the round's best code
    (or the search's best) with the statistics of its reward components and the failures' reasons.

    Example:
        >>> MetricSelector().keep(None, None) is None
        True
    """

    top_up = False
    lineages: tuple[str, ...] = ()

    def select(self, task: TaskSpec, round_id: str, round_cands: Sequence[Candidate]) -> Candidate | None:
        return best_candidate(round_cands)

    def close(self) -> None:
        pass

    def keep(self, best: Candidate | None, round_best: Candidate | None) -> Candidate | None:
        return best_candidate([round_best, best])  # a tie goes to the newer

    def feedback(
        self, task: TaskSpec, round_cands: Sequence[Candidate], best: Candidate | None
    ) -> dict[str, str]:
        failures = [c for c in round_cands if c.status != "trained"]
        anchor = best_candidate(round_cands) or best
        return feedback_message(task, anchor, failures, curves(anchor) if anchor else None)

    def lineage_feedback(
        self, task: TaskSpec, round_cands: Sequence[Candidate], best: Candidate | None
    ) -> dict[str, dict[str, str]]:
        return {}

    def preferred_by(self) -> dict[str, Candidate]:
        return {}

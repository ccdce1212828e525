"""How a search chooses between candidates and tells the LLM what to improve.

A :class:`Selector` picks the best of a round's candidates and writes the next round's feedback.
Eureka-style evolution selects by the task's success metric and reflects on the reward
components' statistics (:class:`MetricSelector`); ICPL will plug in a judge (a person or a
proxy) that ranks the policies' videos, behind the same two methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rewardgen.synthesis.candidate import Candidate, curves
from rewardgen.synthesis.prompts import feedback_message
from rewardgen.tasks import TaskSpec

__all__ = ["MetricSelector", "Selector", "best_candidate"]


def best_candidate(cands: Sequence[Candidate | None]) -> Candidate | None:
    """The best candidate trained on the full budget (successive halving's dropped ones
    excluded); of equal scores, the first."""
    trained = [
        c for c in cands if c is not None and c.status == "trained" and c.score is not None and not c.pruned
    ]
    return max(trained, key=lambda c: c.score, default=None)  # type: ignore[arg-type,return-value]


class Selector(Protocol):
    """Chooses among candidates and writes the feedback of the next round."""

    def best(self, candidates: Sequence[Candidate | None]) -> Candidate | None:
        """The best of ``candidates`` (None entries and untrained ones are skipped), or None."""
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
        >>> MetricSelector().best([]) is None
        True
    """

    def best(self, candidates: Sequence[Candidate | None]) -> Candidate | None:
        return best_candidate(candidates)

    def feedback(
        self, task: TaskSpec, round_cands: Sequence[Candidate], best: Candidate | None
    ) -> dict[str, str]:
        failures = [c for c in round_cands if c.status != "trained"]
        anchor = self.best(round_cands) or best
        return feedback_message(task, anchor, failures, curves(anchor) if anchor else None)

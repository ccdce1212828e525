"""A search with a clock: its time budget, the plan of its rounds and where its time went.

``synthesize --time-budget 5m`` gives the search a wall-clock budget (a person waits on it).
Candidates in training stop when it is spent (the search's :class:`~rewardgen.runs.StopSignal`), a
little before its end so that their evaluation and the best policy's video still fit; each
round's steps are planned from the speed measured in the rounds before; where the time went
(waiting on the LLM, smoke tests, training, evaluation, filming) is kept per round and candidate.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardgen.runs import CandidateRecord, StopSignal

__all__ = ["PHASES", "ROUND_SHARE", "RoundPlan", "SearchClock", "format_seconds", "time_spent"]

#: How a stop at a round's share of the time budget begins (the search takes it back after the round).
ROUND_SHARE = "the round's share of the time budget"

#: The phases of a candidate's time, in the order report.html shows them.
PHASES = ("smoke_s", "train_s", "eval_s", "video_s")


def format_seconds(seconds: float) -> str:
    """``95.2`` -> ``'1m35s'``; under a minute, seconds with one decimal.

    Example:
        >>> format_seconds(95.2), format_seconds(7.25)
        ('1m35s', '7.2s')
    """
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s"


@dataclass
class RoundPlan:
    """What the next round may spend: its candidates' steps, and why (for the log)."""

    steps: int
    why: str
    fits: bool = True  # False: no useful round fits in the time left


@dataclass
class SearchClock:
    """The search's wall-clock budget (``time_budget_s``; None: none) counted from ``started``.

    Example:
        >>> clock = SearchClock(300.0)
        >>> 290 < clock.left() <= 300
        True
    """

    time_budget_s: float | None = None
    started: float = field(default_factory=time.monotonic)
    rounds: list[dict[str, Any]] = field(default_factory=list)  # per round: llm_s, wall_s, steps
    _timer: threading.Timer | None = None
    _round_timer: threading.Timer | None = None  # the running round's share

    def left(self) -> float:
        """Seconds left of the budget (inf without one)."""
        if self.time_budget_s is None:
            return math.inf
        return self.time_budget_s - (time.monotonic() - self.started)

    def reserve_s(self) -> float:
        """What the end of the search keeps for the last evaluations and the best policy's video:
        a tenth of the budget, between 5 and 30 seconds."""
        return min(30.0, max(5.0, 0.1 * (self.time_budget_s or 0.0)))

    def start_alarm(self, stop: StopSignal) -> None:
        """Ask for a ``stop`` when the budget (less the reserve) is spent: candidates in
        training stop at their next rollout, saved and evaluated."""
        if self.time_budget_s is None:
            return
        wait = max(0.0, self.left() - self.reserve_s())
        why = f"the search's time budget of {format_seconds(self.time_budget_s)} is spent"
        self._timer = threading.Timer(wait, stop.request, args=(why,))
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        for timer in (self._timer, self._round_timer):
            if timer is not None:
                timer.cancel()

    def round_share_s(self, rounds_left: int) -> float | None:
        """The seconds the next round may spend, its LLM answer and its candidates' training and
        evaluations: an equal share of the time left (less the reserve) between ``rounds_left``
        rounds; None without a budget. A round stopped at its share keeps its candidates' saved
        state, and the clock may continue the best of them rather than ask for new rewards.

        Example:
            >>> 89 < SearchClock(300.0).round_share_s(rounds_left=3) <= 90  # (300 s - 30 s kept) / 3
            True
        """
        if self.time_budget_s is None:
            return None
        return max(0.0, self.left() - self.reserve_s()) / max(1, rounds_left)

    def start_round_alarm(self, stop: StopSignal, rounds_left: int) -> None:
        """Ask the round's candidates to stop (saved and evaluated) when its share of the time left
        (:meth:`round_share_s`) is spent; nothing where there is no budget, or for the last round
        (the search's own alarm ends that one). :meth:`end_round` takes the request back."""
        share = self.round_share_s(rounds_left)
        if share is None or rounds_left <= 1:
            return
        self._round_timer = threading.Timer(share, stop.request, args=(self._round_reason(share),))
        self._round_timer.daemon = True
        self._round_timer.start()

    @staticmethod
    def _round_reason(share_s: float) -> str:
        return f"{ROUND_SHARE} ({format_seconds(share_s)}) is spent"

    def end_round(self, stop: StopSignal) -> str | None:
        """After a round: cancel its alarm and take back its stop request, if it made one (the
        search's own alarm, which could not write its reason beside it, asks again where the
        budget is spent). Returns why the round was cut, or None where it was not."""
        timer, self._round_timer = self._round_timer, None
        if timer is None:
            return None
        timer.cancel()
        reason = stop.reason() or ""
        if not reason.startswith(ROUND_SHARE):
            return None
        stop.clear()
        if self.time_budget_s is not None and self.left() <= self.reserve_s():
            stop.request(f"the search's time budget of {format_seconds(self.time_budget_s)} is spent")
        return reason

    def plan(
        self,
        full_steps: int,
        samples: int,
        workers: int,
        done: Sequence[CandidateRecord],
        min_share: float = 0.25,
        cut_at: int | None = None,
    ) -> RoundPlan:
        """The next round's steps per candidate: ``full_steps`` when a round of them fits in the
        time left at the speed the earlier rounds' candidates trained (``done``), fewer when only
        a shorter round fits (at least ``min_share`` of them, or of ``cut_at``, the steps a round
        cut at its share reached: rounds under a budget train short), none when not even that
        fits. Without a budget, or before any candidate trained, ``full_steps``."""
        left = self.left() - self.reserve_s()
        if self.time_budget_s is None:
            return RoundPlan(full_steps, "no time budget")
        if left <= 0:
            return RoundPlan(0, "the time budget is spent", fits=False)
        speed = _steps_per_s(done)
        if speed is None:
            return RoundPlan(full_steps, f"{format_seconds(left)} left; speed not measured yet")
        waves = math.ceil(samples / max(1, workers))
        overhead = self.overhead_s(done)
        train_s = left / waves - overhead  # each wave of candidates trains this long at most
        fit = int(speed * train_s)
        detail = (
            f"{format_seconds(left)} left; candidates trained {speed:,.0f} steps/s, "
            f"~{format_seconds(overhead)} per candidate besides training, {waves} wave(s) per round"
        )
        if fit >= full_steps:
            return RoundPlan(full_steps, detail)
        least = min(full_steps, cut_at) if cut_at else full_steps
        if fit >= min_share * least:
            return RoundPlan(max(1000, fit // 1000 * 1000), detail + ": fewer steps to fit")
        return RoundPlan(0, detail + f": not even {min_share:.0%} of {least:,} steps fit", fits=False)

    def overhead_s(self, done: Sequence[CandidateRecord]) -> float:
        """A round's seconds besides training, per candidate: the LLM's answer, the smoke test,
        the evaluations (the mean of the rounds and candidates so far)."""
        llm = [r["llm_s"] for r in self.rounds if "llm_s" in r]
        per_cand = [
            c.timing.get("smoke_s", 0.0) + c.timing.get("eval_s", 0.0) for c in done if c.status == "trained"
        ]
        return (sum(llm) / len(llm) if llm else 0.0) + (sum(per_cand) / len(per_cand) if per_cand else 0.0)


def _steps_per_s(done: Sequence[CandidateRecord]) -> float | None:
    """Training steps per second of one candidate (the median of those that trained)."""
    speeds = sorted(
        (c.steps or 0) / c.timing["train_s"]
        for c in done
        if c.status == "trained" and c.timing.get("train_s", 0) > 0 and c.steps
    )
    return speeds[len(speeds) // 2] if speeds else None


def time_spent(
    rounds: Sequence[dict[str, Any]], candidates: Sequence[CandidateRecord], wall_s: float
) -> dict[str, float]:
    """Where a search's time went: seconds waiting on the LLM, and the candidates' phases summed
    over candidates (those trained at once overlap, so the sums may exceed ``wall_s``)."""
    out = {"wall_s": round(wall_s, 1), "llm_s": round(sum(r.get("llm_s", 0.0) for r in rounds), 1)}
    for phase in PHASES:
        out[phase] = round(sum(c.timing.get(phase, 0.0) for c in candidates), 1)
    return out

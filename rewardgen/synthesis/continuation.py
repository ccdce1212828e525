"""Continue what is learning: when a round ends without a success, the search looks at its best
candidate's evaluation curve and either trains it on from its saved state (the curve still
rises and the steps it projects to the task's line fit the time left) or asks for new rewards.

The curve is the candidate's periodic evaluations (``evals.csv``), as scores (the success
metric, negated for metrics that must stay below their line); the slope is a least-squares line
through the last few of them, and the steps to the line are where that line crosses it. Each
decision is one :class:`Outlook`: its numbers, printed as a line and kept in the manifest.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.synthesis.candidate import Candidate
from rewardgen.synthesis.clock import SearchClock, format_seconds
from rewardgen.tasks import TaskSpec

__all__ = ["Outlook", "outlook", "slope"]

#: Evaluations the slope is fitted on (the last ones), and the fewest it needs.
RECENT, FEWEST = 4, 3
#: Steps continued past the projection: the line is crossed by a rising, noisy curve.
MARGIN = 1.25
#: A curve rises when its slope is at least this many times its standard error: evaluations are
#: noisy (one good evaluation among bad ones tilts a line through four points).
SURE = 2.0


@dataclass(frozen=True)
class Outlook:
    """Whether to train ``label`` on: its curve's slope (score per 100k steps), the steps more it
    projects to the task's line, the seconds they would take, and the seconds left."""

    label: str
    steps: int
    score: float | None
    line: float | None
    slope_per_100k: float | None
    more_steps: int | None
    needed_s: float | None
    left_s: float
    go_on: bool
    why: str
    every: int | None = None  # the steps between its evaluations: a continuation evaluates as often

    def text(self) -> str:
        """The decision in one line, with its numbers."""
        head = f"{self.label} at {self.steps:,} steps"
        if self.slope_per_100k is not None:
            head += f", score {self.score:.4g} (line {self.line:.4g})"
            head += f", slope {self.slope_per_100k:+.3g}/100k steps"
        if self.more_steps is not None and self.needed_s is not None:
            head += f", ~{self.more_steps:,} more steps (~{format_seconds(self.needed_s)})"
        if not math.isinf(self.left_s):
            head += f", {format_seconds(max(self.left_s, 0.0))} left"
        return f"{'continue' if self.go_on else 'new rewards'}: {head}: {self.why}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def slope(task: TaskSpec, timesteps: list[float], values: list[float], recent: int = RECENT) -> float | None:
    """The least-squares slope of the last ``recent`` points of a success-metric curve, as a
    score (higher is better) per step; None with fewer than :data:`FEWEST` points.

    Example:
        >>> from rewardgen.tasks import get_task
        >>> round(slope(get_task("hopper-run-backward"), [1, 2, 3], [-0.1, -0.2, -0.3]), 3)
        0.1
    """
    points = [(t, task.metric.score(v)) for t, v in zip(timesteps, values, strict=False) if v == v][-recent:]
    if len(points) < FEWEST:
        return None
    return float(np.polyfit([p[0] for p in points], [p[1] for p in points], 1)[0])


def _curve(folder: Path, task: TaskSpec) -> list[tuple[float, float]]:
    from rewardgen.training.periodic import read_evals

    rows = read_evals(folder / "train" / "evals.csv")
    return [(r["timesteps"], task.metric.score(r["success_metric_mean"])) for r in rows]


def _slope_error(x: np.ndarray, y: np.ndarray, slope: float, intercept: float) -> float:
    """The standard error of a least-squares slope through ``len(x) >= 3`` points."""
    residuals = y - (slope * x + intercept)
    spread = float(np.sum((x - x.mean()) ** 2))
    return math.sqrt(float(np.sum(residuals**2)) / (len(x) - 2) / spread) if spread > 0 else math.inf


def outlook(
    task: TaskSpec,
    cand: Candidate,
    clock: SearchClock,
    speed: float | None,
    overhead_s: float,
    last_chance: bool = False,
) -> Outlook:
    """Whether ``cand`` (a trained candidate with periodic evaluations) is worth training on:
    ``speed`` is the candidates' training steps per second, ``overhead_s`` what a candidate
    costs besides training (its evaluations). ``last_chance``: the search has no new rewards to
    try (its last round): the time left goes to the candidate unless its curve clearly falls
    below the line, for the steps that fit (it stops at its first success)."""
    assert cand.path is not None
    left = clock.left() - clock.reserve_s()
    threshold = task.metric.line
    steps = int(cand.steps or 0)

    def no(why: str, **numbers: Any) -> Outlook:
        fields: dict[str, Any] = {
            "score": None, "line": None, "slope_per_100k": None, "more_steps": None, "needed_s": None,
        }  # fmt: skip
        fields.update(numbers)
        return Outlook(cand.label, steps, left_s=left, go_on=False, why=why, **fields)

    if threshold is None:
        return no("the task has no success line to project to")
    if math.isinf(left):
        return no("no --time-budget: a search without one trains its rounds")
    curve = _curve(cand.path, task)
    points = curve[-RECENT:]
    if len(points) < FEWEST:
        return no(f"{len(points)} periodic evaluations: a slope needs {FEWEST}")
    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    line = task.metric.score(threshold)
    now = float(slope * x[-1] + intercept)  # the fitted score at the last evaluation
    # at least one more evaluation interval, the candidate's own: a continuation that stopped at a
    # success its final evaluation did not confirm leaves two points a rollout apart, and a
    # continuation trained one rollout at a time spends its time starting and evaluating
    every = int(np.diff([p[0] for p in curve]).max())
    numbers: dict[str, Any] = {
        "score": float(y[-1]), "line": line, "slope_per_100k": float(slope * 1e5), "every": every,
    }  # fmt: skip
    noise = _slope_error(x, y, slope, intercept)
    fits = int(speed * (left - overhead_s)) if speed else 0  # the steps the time left holds

    def last(why: str) -> Outlook:
        # a clearly falling curve gets no more time, unless it is still over the line: its
        # periodic evaluations meet the rule while its final ones have not confirmed it yet
        if not last_chance or (slope <= -SURE * noise and now < line):
            return no(why, **numbers)
        if fits < every:
            return no(why + "; not even one more evaluation fits the time left", **numbers)
        numbers.update(more_steps=fits, needed_s=round(fits / speed + overhead_s, 1))  # type: ignore[operator]
        return Outlook(
            cand.label, steps, left_s=left, go_on=True,
            why=f"{why}, but the search has no new rewards to try: the time left goes to its best",
            **numbers,
        )  # fmt: skip

    if slope <= 0:
        return last("its curve no longer rises")
    if slope < SURE * noise:
        return last(f"its rise is within its evaluations' noise (±{noise * 1e5:.3g}/100k steps)")
    more = max(every, int(math.ceil((line - now) / slope * MARGIN / 1000.0) * 1000))
    if speed is None or speed <= 0:
        return no("the training speed is not measured yet", more_steps=more, **numbers)
    needed = more / speed + overhead_s
    if needed > left:
        numbers.update(more_steps=more, needed_s=round(needed, 1))
        return last("the steps it needs do not fit the time left")
    numbers.update(more_steps=more, needed_s=round(needed, 1))
    return Outlook(
        cand.label, steps, left_s=left, go_on=True, why="its curve still rises toward the line", **numbers
    )

"""Progress of the candidates being trained: steps and current success metric of each, read from
the ``metrics.csv`` every training run writes as it goes (so it works for worker processes and
Ray tasks alike). A live table on a terminal; otherwise one line per minute at most, so logs are
not flooded."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rewardgen.runs import CandidateRecord, RunDir

__all__ = ["CandidateState", "LineProgress", "ProgressFn", "TerminalProgress", "quiet", "watch_candidates"]

#: (label, steps done, steps planned, latest mean success metric or None, and "" while it trains
#: or "failed"/"refused" once it has ended so)
CandidateState = tuple[str, int, int, float | None, str]
ProgressFn = Callable[[list[CandidateState]], None]


def quiet(message: str) -> None:
    """The default stage log of the search functions: says nothing."""


def _last_row(metrics: Path) -> tuple[int, float | None]:
    try:
        with metrics.open("rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return 0, None
    if len(lines) < 2:
        return 0, None
    header, last = lines[0].split(","), lines[-1].split(",")
    row = dict(zip(header, last, strict=False))
    try:
        metric = float(row["success_metric_mean"]) if row.get("success_metric_mean") else None
        return int(float(row.get("timesteps") or 0)), metric
    except ValueError:  # a row being written
        return 0, None


@contextmanager
def watch_candidates(
    folders: Sequence[Path], steps: int, progress: ProgressFn | None, interval_s: float = 2.0
) -> Iterator[None]:
    """While the block runs, call ``progress`` every ``interval_s`` with each candidate's state
    (from ``<folder>/train/metrics.csv``); once more at the end."""
    if progress is None or not folders:
        yield
        return
    stop = threading.Event()

    def states() -> list[CandidateState]:
        out = []
        for folder in folders:
            done, metric = _last_row(folder / "train" / RunDir.METRICS)
            out.append((f"{folder.parent.name}/{folder.name}", done, steps, metric, _ended_badly(folder)))
        return out

    def loop() -> None:
        while not stop.wait(interval_s):
            progress(states())

    thread = threading.Thread(target=loop, name="rewardgen-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        progress(states())


def _ended_badly(folder: Path) -> str:
    """ "failed" or "refused" once the candidate in ``folder`` has ended so, else ""."""
    record = CandidateRecord.load(folder)
    return record.status if record is not None and record.status in ("failed", "refused") else ""


def _metric(metric: float | None) -> str:
    return "-" if metric is None else f"{metric:.3g}"


class TerminalProgress:
    """A live bar per candidate (rich), for a terminal.

    Example:
        >>> p = TerminalProgress()  # doctest: +SKIP
        >>> p([("iter0/cand0", 51_200, 200_000, 1.23, "")])  # doctest: +SKIP
    """

    def __init__(self, console: Any = None):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("  {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps, success metric {task.fields[metric]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.tasks: dict[str, Any] = {}
        self.bar.start()

    def __call__(self, states: list[CandidateState]) -> None:
        for label, done, total, metric, ended in _within(states):
            if label not in self.tasks:
                self.tasks[label] = self.bar.add_task(label, total=total, metric="-")
            shown = f"{label} {ended.upper()}" if ended else label
            self.bar.update(
                self.tasks[label], description=shown, completed=done, total=total, metric=_metric(metric)
            )

    def close(self) -> None:
        self.bar.stop()


class LineProgress:
    """One line with every candidate's state, at most every ``every_s`` seconds (logs, CI).

    Example:
        >>> lines = []
        >>> p = LineProgress(lines.append, every_s=0)
        >>> p([("iter0/cand0", 50_000, 200_000, 1.234, ""), ("iter0/cand1", 0, 200_000, None, "failed")])
        >>> lines[0]
        '  training: iter0/cand0 50,000/200,000 steps (25%), success metric 1.23; iter0/cand1 failed'
    """

    def __init__(self, log: Callable[[str], None], every_s: float = 60.0):
        self.log, self.every_s, self.last = log, every_s, -float("inf")
        self.shown: list[CandidateState] | None = None

    def __call__(self, states: list[CandidateState]) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s or states == self.shown:
            return
        self.last, self.shown = now, states
        parts = [
            f"{label} {ended}"
            if ended
            else f"{label} {done:,}/{total:,} steps ({done / max(total, 1):.0%}), "
            f"success metric {_metric(metric)}"
            for label, done, total, metric, ended in _within(states)
        ]
        self.log("  training: " + "; ".join(parts))

    def close(self) -> None:
        pass


def _within(states: list[CandidateState]) -> list[CandidateState]:
    """The states with steps done shown at most as the steps asked for (PPO trains whole rollouts,
    so it ends a little past them: 30,720 of 30,000 reads as a bar gone wrong)."""
    return [(label, min(done, total), total, metric, ended) for label, done, total, metric, ended in states]

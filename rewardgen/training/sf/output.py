"""What an ``--backend sf`` run shows: rewardgen's own progress line (steps, steps/s, success
metric), as the SB3 path does, while sample-factory's log lines (hundreds a run, from every one
of its processes) go to ``<run>/sf_output.log`` (sample-factory empties ``<run>/sf`` when it
starts); ``verbose`` shows them on the terminal too."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["SFProgress", "sample_factory_output"]


@contextlib.contextmanager
def sample_factory_output(folder: Path, verbose: bool = False) -> Iterator[Path | None]:
    """While training: this process's standard error, which sample-factory's processes inherit
    and log to, goes to ``folder/sf_output.log`` (``verbose``: left on the terminal)."""
    if verbose:
        yield None
        return
    import logging

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sf_output.log"
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("ab") as f:
        os.dup2(f.fileno(), 2)  # the processes sample-factory starts inherit it
    # this process's sample-factory logger writes to the stream it was given at import
    log_stream = path.open("a", buffering=1)
    handlers = [h for h in logging.getLogger("rl").handlers if type(h) is logging.StreamHandler]
    streams = [h.setStream(log_stream) for h in handlers]
    try:
        yield path
    finally:
        for h, stream in zip(handlers, streams, strict=True):
            h.setStream(stream)
        log_stream.close()
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


class SFProgress:
    """Training progress from the main process: a live bar on a terminal, else a line at every
    tenth of the steps.

    Example:
        >>> p = SFProgress(1000, enabled=True, terminal=False)
        >>> p.update(500, 0.5)  # doctest: +ELLIPSIS
          sf: 500/1,000 steps (50%), ... steps/s, success metric 0.5
        >>> p.close()
    """

    def __init__(self, total: int, enabled: bool = True, terminal: bool | None = None):
        from rich.console import Console

        self.total, self.enabled = total, enabled
        self.console = Console()
        self.terminal = self.console.is_terminal if terminal is None else terminal
        self.started = time.monotonic()
        self.next_line = total // 10
        self._bar: Any = None
        if enabled and self.terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("sf"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"), console=self.console,
            )  # fmt: skip
            self._task = self._bar.add_task("train", total=total, info="")
            self._bar.start()

    def update(self, steps: int, metric: float | None) -> None:
        if not self.enabled:
            return
        rate = steps / max(time.monotonic() - self.started, 1e-6)
        info = f"{rate:,.0f} steps/s" + (f", success metric {metric:.3g}" if metric is not None else "")
        if self._bar is not None:
            self._bar.update(self._task, completed=min(steps, self.total), info=info)
        elif steps >= self.next_line:
            shown = min(steps, self.total)  # a rollout's end is past the steps asked for
            print(f"  sf: {shown:,}/{self.total:,} steps ({shown / self.total:.0%}), {info}", flush=True)
            tenth = max(1, self.total // 10)
            self.next_line = (steps // tenth + 1) * tenth

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

"""The search's stop signal, in one place: who writes it, who reads it, what it says.

A search asks every training run it started to stop (a candidate succeeded, its time budget is
spent) by writing one file, ``<run>/stop`` (:data:`RunDir.STOP <rewardgen.runs.RunDir>`), whose
first line says why. A file, not a pipe or an event, because the runs that read it are other
processes (executor workers, sample-factory's runner), on this machine or on other nodes (the
Ray executor mirrors the file to them: :meth:`StopSignal.path` is what it copies). Training
checks it at each rollout's end, stops saved and evaluated, and records the reason as
``stopped_early``; the search clears it when it hands over to the final seeds, and on resume.

Example:
    >>> import tempfile
    >>> signal = StopSignal.of_search(tempfile.mkdtemp())
    >>> signal.requested()
    False
    >>> signal.request("iter0/cand1 succeeded"); signal.request("the time budget is spent")
    >>> signal.requested(), signal.reason()
    (True, 'iter0/cand1 succeeded')
    >>> signal.clear(); signal.reason() is None
    True
"""

from __future__ import annotations

import os
from pathlib import Path

from rewardgen.runs.rundir import RunDir

__all__ = ["StopSignal"]

#: The reason read from a signal whose file holds none (written by hand, or truncated).
UNSAID = "asked to stop"


class StopSignal:
    """One search's request that its training runs stop, kept in the file ``path``.

    Example:
        >>> signal = StopSignal.of_candidate(Path("runs/my-search/iter0/cand1"))
        >>> signal.path
        PosixPath('runs/my-search/stop')
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    @classmethod
    def of_search(cls, run_dir: str | os.PathLike[str]) -> StopSignal:
        """The signal of the search whose run directory is ``run_dir``."""
        return cls(Path(run_dir) / RunDir.STOP)

    @classmethod
    def of_candidate(cls, folder: str | os.PathLike[str]) -> StopSignal:
        """The signal of the search a candidate's folder belongs to (``<run>/<round>/cand<k>``,
        or a final seed's ``<run>/final/seed<s>``)."""
        return cls.of_search(Path(folder).parent.parent)

    def request(self, why: str) -> None:
        """Ask the runs to stop, saying ``why``; the first reason given stays."""
        if not self.path.exists():
            self.path.write_text(why.strip() + "\n")

    def requested(self) -> bool:
        """Whether a stop has been asked for."""
        return self.path.exists()

    def reason(self) -> str | None:
        """Why the runs were asked to stop (the file's first line), or None when they were not."""
        try:
            with self.path.open() as f:
                return f.readline().strip() or UNSAID
        except FileNotFoundError:
            return None
        except OSError:
            return UNSAID

    def asked_at(self) -> float | None:
        """When the stop was asked for (``time.time()`` seconds), or None."""
        try:
            return self.path.stat().st_mtime
        except OSError:
            return None

    def clear(self) -> None:
        """Withdraw the request (a resumed search goes on; the final seeds are not its candidates)."""
        self.path.unlink(missing_ok=True)

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:  # a path-like object reads as its path
        return str(self.path)

    def __repr__(self) -> str:
        return f"StopSignal({str(self.path)!r})"

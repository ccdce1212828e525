"""Where candidates train: inline, or in a pool of worker processes sharing the machine."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol

__all__ = ["Executor", "LocalExecutor"]


class Executor(Protocol):
    """Runs ``fn(*args)`` for each job; results in job order. A job's exception is returned
    (not raised), so one broken candidate never stops the others."""

    def map(self, fn: Callable[..., Any], jobs: Sequence[tuple]) -> list[Any]: ...

    def close(self) -> None: ...


def _init_worker(threads: int) -> None:
    # Several trainers on one machine: oversubscribed torch threads slow every one of them down.
    import torch

    torch.set_num_threads(threads)


class LocalExecutor:
    """A process pool (spawned workers, so the parent's threads are never forked) or, with one
    worker, plain calls in this process.

    Example:
        >>> LocalExecutor(workers=1).map(pow, [(2, 3), (3, 2)])
        [8, 9]
    """

    def __init__(self, workers: int = 1):
        self.workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            threads = max(1, (os.cpu_count() or 1) // self.workers)
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=mp.get_context("spawn"),
                initializer=_init_worker,
                initargs=(threads,),
            )
        return self._pool

    def map(self, fn: Callable[..., Any], jobs: Sequence[tuple]) -> list[Any]:
        if self.workers == 1 or len(jobs) <= 1:
            out = []
            for job in jobs:
                try:
                    out.append(fn(*job))
                except Exception as exc:
                    out.append(exc)
            return out
        futures = [self._get_pool().submit(fn, *job) for job in jobs]
        results: list[Any] = []
        for fut in futures:
            try:
                results.append(fut.result())
            except Exception as exc:
                results.append(exc)
        if any(type(r).__name__ == "BrokenProcessPool" for r in results):
            self.close()  # the next map starts a fresh pool
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

"""Where candidates train: inline, in a pool of worker processes sharing the machine, or as Ray
tasks on a cluster (``--executor ray --ray-address ...``)."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from rewardgen.errors import RewardgenError, require

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "RayExecutor", "make_executor"]

EXECUTORS = ("local", "ray")


class Executor(Protocol):
    """Runs ``fn(*args)`` for each job; results in job order. A job's exception is returned
    (not raised), so one broken candidate never stops the others."""

    def map(self, fn: Callable[..., Any], jobs: Sequence[tuple]) -> list[Any]: ...

    def close(self) -> None: ...


def _init_worker(threads: int) -> None:
    # Several trainers on one machine: oversubscribed torch threads slow every one of them down.
    # OMP_NUM_THREADS too: training sets its threads from it (rewardgen.train.threads) rather
    # than from a look at the cores, which the other candidates are about to take.
    os.environ["OMP_NUM_THREADS"] = str(threads)
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
        if any(isinstance(r, BrokenProcessPool) for r in results):
            self.close()  # the next map starts a fresh pool
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def _with_threads(threads: int, fn: Callable[..., Any], *args: Any) -> Any:
    _init_worker(threads)
    return fn(*args)


class RayExecutor:
    """Each job a Ray task with its own CPU (and GPU) request, on a running cluster
    (``address="ray://head:10001"`` or ``"auto"``) or on a Ray instance started here (``None``).

    Every node must see the run directory (a shared file system) and have rewardgen installed.
    A task's exception comes back as that exception; a lost worker fails only its job.

    Example:
        >>> ex = RayExecutor(cpus_per_job=1, num_cpus=2)  # doctest: +SKIP
        >>> ex.map(pow, [(2, 3), (3, 2)])  # doctest: +SKIP
        [8, 9]
    """

    def __init__(
        self,
        address: str | None = None,
        cpus_per_job: float = 1,
        gpus_per_job: float = 0,
        num_cpus: int | None = None,
    ):
        self.ray = require("ray", "ray", "the Ray executor")
        if cpus_per_job <= 0 or gpus_per_job < 0:
            raise RewardgenError(
                f"a Ray job needs cpus > 0 and gpus >= 0, got cpus={cpus_per_job}, gpus={gpus_per_job}"
            )
        self.cpus, self.gpus = cpus_per_job, gpus_per_job
        self._own = not self.ray.is_initialized()
        if self._own:
            env = {k: os.environ[k] for k in ("MUJOCO_GL", "PYOPENGL_PLATFORM") if k in os.environ}
            try:
                self.ray.init(
                    address=address,
                    num_cpus=num_cpus if address is None else None,
                    include_dashboard=False,
                    log_to_driver=False,
                    runtime_env={"env_vars": env} if env else None,
                )
            except ConnectionError as exc:
                raise RewardgenError(
                    f"cannot reach the Ray cluster at --ray-address {address}: {exc} "
                    "(start it with `ray start --head`, or leave --ray-address out for a local one)"
                ) from exc
        self._remote = self.ray.remote(_with_threads).options(
            num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0
        )

    def map(self, fn: Callable[..., Any], jobs: Sequence[tuple]) -> list[Any]:
        threads = max(1, int(self.cpus))
        refs = [self._remote.remote(threads, fn, *job) for job in jobs]
        results: list[Any] = []
        for ref in refs:
            try:
                results.append(self.ray.get(ref))
            except self.ray.exceptions.RayTaskError as exc:
                results.append(exc.as_instanceof_cause())
            except Exception as exc:  # a worker died, the node was lost, ...
                results.append(exc)
        return results

    def close(self) -> None:
        if self._own and self.ray.is_initialized():
            self.ray.shutdown()


def make_executor(
    kind: str, workers: int = 1, address: str | None = None, gpus_per_job: float = 0
) -> Executor:
    """The executor named on the command line: ``local`` (``workers`` processes) or ``ray``."""
    if kind == "local":
        if address:
            raise RewardgenError("--ray-address needs --executor ray")
        return LocalExecutor(workers)
    if kind == "ray":
        cpus = max(1, (os.cpu_count() or 1) // max(1, workers)) if address is None else 1
        return RayExecutor(address, cpus_per_job=cpus, gpus_per_job=gpus_per_job, num_cpus=os.cpu_count())
    raise RewardgenError(f"unknown executor '{kind}': choose one of {', '.join(EXECUTORS)}")

"""How many threads torch gets for training: from the cores actually free to this process.

Torch's default (one thread per core) collapses when the cores are shared: on a loaded 2-core
machine a SAC gradient step went from 17 ms with one thread to 305 ms with the default. So a run
takes ``OMP_NUM_THREADS`` when it is set, else the cores this process may use (its CPU affinity)
minus those other processes keep busy now (runnable tasks, sampled), at least one and at most
:data:`MAX_THREADS` (the small networks of RL gain nothing past that). sample-factory's learner
and workers set one thread each themselves. ``scripts/bench_threads.py`` measures the choice.
"""

from __future__ import annotations

import os
import statistics
import time

__all__ = ["MAX_THREADS", "busy_cores", "choose_threads", "free_cores", "set_train_threads"]

MAX_THREADS = 4


def busy_cores(samples: int = 10, gap_s: float = 0.02) -> float:
    """How many other processes are running now: the median over ``samples`` looks at the kernel's
    count of runnable tasks (``/proc/loadavg``), less this process; the 1-minute load average
    where there is no such file (it lags a minute behind a machine that just got busy)."""
    try:
        counts = []
        for k in range(samples):
            with open("/proc/loadavg") as f:
                counts.append(int(f.read().split()[3].split("/")[0]) - 1)
            if k + 1 < samples:
                time.sleep(gap_s)
        return float(max(0.0, statistics.median(counts)))
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except (AttributeError, OSError):
            return 0.0


def free_cores() -> int:
    """Cores this process may run on (its affinity), less those other processes keep busy now."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, int(cores - busy_cores() + 0.5)))


def choose_threads(requested: int | None = None) -> int:
    """``requested`` when given; else ``OMP_NUM_THREADS`` when set; else the free cores (at most
    :data:`MAX_THREADS`).

    Example:
        >>> choose_threads(2)
        2
        >>> 1 <= choose_threads() <= MAX_THREADS
        True
    """
    if requested is not None:
        if requested < 1:
            from rewardgen.errors import RewardgenError

            raise RewardgenError(f"--threads must be at least 1, got {requested}")
        return requested
    given = os.environ.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    return min(free_cores(), MAX_THREADS)


def set_train_threads(requested: int | None = None) -> int:
    """Set torch's intra-op threads for this process's training; returns the number chosen."""
    import torch

    threads = choose_threads(requested)
    torch.set_num_threads(threads)
    return threads

"""How the worker processes of a command stop: when they are told, and when their driver dies.

A signal to the driver (SIGTERM from a scheduler or ``timeout``, SIGINT, SIGHUP) becomes a
``KeyboardInterrupt`` there; the executor then sends SIGTERM to each of its workers
(:func:`stop_processes`). In a worker (:func:`become_worker`), SIGTERM, SIGINT and SIGHUP do
what Ctrl-C does to a run in the foreground: the job in progress gets a ``KeyboardInterrupt``, so
its training saves the model and marks its run ``interrupted``; an idle worker just exits. A
second signal never interrupts the saving. A worker whose driver is gone (``kill -9``: it is
re-parented) stops the same way within a second, and is ended after :data:`GRACE_S` whatever
it is doing, so no process outlives the command.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["GRACE_S", "become_worker", "run_job", "stop_processes"]

#: Seconds a stopping worker has to save its model and mark its run before it is killed.
GRACE_S = 20.0

_IDLE, _WORKING, _STOPPING = 0, 1, 2
_state = [_IDLE]


def _on_stop(signum: int, frame: Any) -> None:
    if _state[0] == _WORKING:
        _state[0] = _STOPPING
        raise KeyboardInterrupt
    if _state[0] == _IDLE:
        os._exit(0)  # nothing in progress, nothing to save (and no traceback from the pool's loop)


def become_worker(driver_pid: int) -> None:
    """Make this process a worker that stops when told (SIGTERM, SIGINT, SIGHUP) and when the
    process ``driver_pid`` is no longer its parent. Call it first thing in the worker."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_stop)

    def watch() -> None:
        while os.getppid() == driver_pid:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)  # saves what it can, like a signal from the driver
        time.sleep(GRACE_S)
        os._exit(1)

    threading.Thread(target=watch, name="rewardgen-driver-watch", daemon=True).start()


def run_job(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` as the worker's job: a stop signal meanwhile interrupts it (once)."""
    if _state[0] == _STOPPING:
        raise KeyboardInterrupt  # told to stop before this job began
    _state[0] = _WORKING
    try:
        return fn(*args)
    finally:
        if _state[0] == _WORKING:
            _state[0] = _IDLE


def stop_processes(processes: Sequence[Any], grace_s: float = GRACE_S) -> None:
    """SIGTERM to each process (``multiprocessing.Process``-like: ``pid``, ``join``,
    ``is_alive``, ``kill``), up to ``grace_s`` for all of them to end, then SIGKILL."""
    for proc in processes:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, TypeError):
            pass
    deadline = time.monotonic() + grace_s
    for proc in processes:
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
    for proc in processes:
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5)

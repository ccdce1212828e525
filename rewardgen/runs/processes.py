"""How the processes of a command stop: when they are told, and when their driver dies.

A signal to the driver (SIGTERM from a scheduler or ``timeout``, SIGINT, SIGHUP) becomes a
``KeyboardInterrupt`` there; the executor then sends SIGTERM to each of its workers
(:func:`stop_processes`). In a worker (:func:`become_worker`), SIGTERM, SIGINT and SIGHUP do
what Ctrl-C does to a run in the foreground: the job in progress gets a ``KeyboardInterrupt``, so
its training saves the model and marks its run ``interrupted``; an idle worker just exits. A
second signal never interrupts the saving. A worker whose driver is gone (``kill -9``: it is
re-parented) stops the same way within a second, and is ended after :data:`GRACE_S` whatever
it is doing, so no process outlives the command.

Processes that another library starts (sample-factory's learner and rollout workers) know none
of this: :func:`start_reaper` watches them from a small process of its own, which ends them if
the process that started them is killed outright.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["GRACE_S", "become_worker", "exit_with_parent", "run_job", "start_reaper", "stop_processes"]

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


def exit_with_parent(parent_pid: int, every_s: float = 0.5) -> None:
    """End this process (``os._exit``) as soon as ``parent_pid`` is no longer its parent: for a
    helper process (the ONI annotation service) that has nothing to save."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(every_s)
        os._exit(1)

    threading.Thread(target=watch, name="rewardgen-parent-watch", daemon=True).start()


def _started(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), to tell it from a later one with its pid."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _descendants(pid: int) -> dict[int, int]:
    """``{pid: start time}`` of every process below ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: dict[int, int] = {}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and (t := _started(child)) is not None:
                found[child] = t
                todo.append(child)
    return found


def reap(watched: int, every_s: float = 0.5) -> None:
    """The reaper's loop: note the processes below ``watched`` every ``every_s``; when
    ``watched`` is gone, SIGKILL those still alive (the same processes: same pid, same start
    time), then return."""
    from rewardgen.runs.rundir import process_alive

    me, known = os.getpid(), {}
    while process_alive(watched):
        known = {p: t for p, t in _descendants(watched).items() if p != me}
        time.sleep(every_s)
    for pid, started in known.items():
        if _started(pid) == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_reaper() -> subprocess.Popen | None:
    """A process that ends what this one started (its descendants) if this one is killed
    outright; ``terminate()`` it when the work is done. None where there is no /proc."""
    if not Path("/proc/self/stat").is_file():
        return None
    code = f"from rewardgen.runs.processes import reap; reap({os.getpid()})"
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C to the terminal's group is for the work, not for it
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )

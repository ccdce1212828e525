"""The sandbox's Python wall: an audit hook that stays on, and the functions it cannot see.

Installed by the sandbox worker after its own imports, just before the program's module body
runs, and never switched off again: everything that runs afterwards, the program and the
worker's handling of what it returns alike, runs under it. The worker ends with ``os._exit``, so
no destructor or exit handler runs after the interpreter clears its hooks.

- **The audit hook allows a short list of events and refuses every other** (an allowlist, so an
  event a new Python version adds is refused until someone looks at it): compiling and running
  code (still under the hook), ``id()``, setting attributes on classes, reading a function's
  code and defaults (``inspect.signature``, dataclasses). Refused among the rest:
  opening files, imports of modules not yet loaded, sockets, processes, ``ctypes``, ``mmap``,
  signals, frames (``sys._getframe``, ``tb_frame``, ``gi_frame``: the way to the worker's own
  locals), ``gc``'s object graph, new audit hooks, new code objects and functions. The hook
  reads nothing a program could reach or change: its lists live in its closure and no reference
  to it is kept.
- **What raises no audit event is replaced by a refusal**: the functions of ``os`` (``posix``)
  other than a list of read-only ones (``mkfifo`` and ``mknod`` create files with no event),
  ``_posixsubprocess.fork_exec`` (starts a program with no event), ``signal``'s functions (its
  ``pidfd_send_signal`` has no event), starting a thread (which would run on between calls,
  outside the per-call CPU limit), and the modules of shared memory and semaphores.
- **Modules that touch files, processes or the network are hidden**: dropped from ``sys.modules``
  so that importing one meets the hook's refusal (their importers keep their own references).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

__all__ = ["ALLOWED_EVENTS", "HIDDEN_MODULES", "install", "neuter"]

#: Audit events a reward program (or the worker's handling of it) may raise; the hook refuses
#: every other. ``exec``/``compile`` run code under this same hook (dataclasses and namedtuple
#: build their methods that way).
ALLOWED_EVENTS = frozenset({"exec", "compile", "builtins.id", "object.__setattr__", "object.__delattr__"})

#: Attributes that lead to a frame (and from there to the worker's own locals): refused, like
#: ``sys._getframe``, while every other audited attribute read (``__code__``) is allowed.
_FRAME_ATTRIBUTES = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame"})

#: Modules that a vetted import (scipy) or the worker's own imports pull in and that a program
#: must not reach without an ``import`` event.
HIDDEN_MODULES = (
    "socket",
    "_socket",
    "ssl",
    "subprocess",
    "_posixsubprocess",
    "multiprocessing",
    "_multiprocessing",
    "_posixshmem",
    "concurrent",
    "shutil",
    "tempfile",
    "zipfile",
    "tarfile",
    "urllib",
    "http",
    "email",
    "select",
    "selectors",
    "fcntl",
    "pty",
    "pickle",
    "_pickle",
    "ctypes",
    "_ctypes",
    "mmap",
    "resource",
    "signal",
)

#: ``os`` functions that only read the process's own state or a path's metadata: kept.
_OS_KEPT = frozenset(
    {
        "fspath",
        "getpid",
        "getppid",
        "getcwd",
        "getcwdb",
        "urandom",
        "cpu_count",
        "times",
        "strerror",
        "stat",
        "lstat",
        "fstat",
        "access",
        "isatty",
        "get_blocking",
        "get_inheritable",
        "get_terminal_size",
        "device_encoding",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "getgroups",
        "getpgrp",
        "uname",
        "sysconf",
        "confstr",
        "fpathconf",
        "pathconf",
        "getloadavg",
        "sched_getaffinity",
        "major",
        "minor",
        "makedev",
        "_exit",
    }
)
#: C modules whose every function is replaced by a refusal (``posix`` keeps :data:`_OS_KEPT`;
#: ``_thread`` loses only what starts a thread, which raises no event before Python 3.13); the
#: copies that ``os``, ``signal``, ``threading`` and the rest hold are found by identity and
#: replaced too.
_NEUTERED_MODULES = ("posix", "_posixsubprocess", "_signal", "_posixshmem", "_multiprocessing", "_thread")
_THREAD_STARTERS = frozenset({"start_new_thread", "start_new", "start_joinable_thread"})


class SandboxRefusal(PermissionError):
    """Raised for what the sandbox refuses: one line that names it."""


class _FrameRefusal(SandboxRefusal, ValueError):
    """``sys._getframe``'s refusal is also a ValueError ("no such frame"), which is what
    ``collections.namedtuple`` expects when it looks up its caller's module."""


def _refusal(name: str) -> Callable[..., Any]:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise SandboxRefusal(f"the sandbox refuses '{name}'")

    refused.__name__ = refused.__qualname__ = name.rpartition(".")[2]
    return refused


def neuter() -> int:
    """Replace the C functions of :data:`_NEUTERED_MODULES`, and every copy of them that a loaded
    module holds (``os.fork``, ``from os import mkfifo``), with refusals; hide
    :data:`HIDDEN_MODULES`. Returns how many functions were replaced."""
    modules = sys.modules
    builtin = type(len)
    stubs: dict[int, Callable[..., Any]] = {}
    originals: list[Any] = []  # alive until the scan ends, so that no id is reused meanwhile
    for module_name in _NEUTERED_MODULES:
        module = modules.get(module_name)
        if module is None:
            continue
        shown = "os" if module_name == "posix" else module_name.lstrip("_")
        for attr, value in list(vars(module).items()):
            if type(value) is not builtin or (module_name == "posix" and attr in _OS_KEPT):
                continue
            if module_name == "_thread" and attr not in _THREAD_STARTERS:
                continue
            stubs[id(value)] = _refusal(f"{shown}.{attr}")
            originals.append(value)
    for module in list(modules.values()):
        space = getattr(module, "__dict__", None)
        if type(space) is not dict:
            continue
        for attr, value in list(space.items()):
            stub = stubs.get(id(value))
            if stub is not None:
                space[attr] = stub
    for name in list(modules):
        if name.split(".")[0] in HIDDEN_MODULES:
            del modules[name]
    return len(stubs)


def install() -> Callable[[Callable[[], Any]], Any]:
    """Install the audit hook; returns ``with_frames(fn)``, which runs the worker's own ``fn``
    (reading a traceback's frames to say on which line the program failed) while the hook lets
    ``tb_frame`` through. Keep it out of reach: a local of the worker's ``main``.
    The hook calls no builtin and reads no global: a program that replaces ``builtins.len`` or a
    module's constants changes nothing it decides.
    """
    allowed = ALLOWED_EVENTS
    frames = _FRAME_ATTRIBUTES
    gate = [False]
    refusal, frame_refusal = SandboxRefusal, _FrameRefusal

    def hook(event: str, args: tuple) -> None:
        if event in allowed:
            return
        if event == "object.__getattr__" and (args[-1] not in frames or gate[0]):
            return  # code objects and defaults (inspect.signature, dataclasses); never a frame
        if event == "sys._getframe":
            raise frame_refusal(f"the sandbox refuses '{event}'")
        raise refusal(f"the sandbox refuses '{event}'")

    sys.addaudithook(hook)

    def with_frames(fn: Callable[[], Any]) -> Any:
        gate[0] = True
        try:
            return fn()
        finally:
            gate[0] = False

    return with_frames

"""The sandbox worker process: sets its limits, then runs one untrusted reward program.

Started by :class:`rewardgen.code.sandbox.SandboxRunner`; speaks length-prefixed
:mod:`rewardgen.code.wire` messages on stdin/stdout. Nothing here trusts the program: the limits
and the audit hook are in place before its first line runs.
"""

from __future__ import annotations

import os
import sys
import time


def _read_message(stream) -> bytes | None:
    head = stream.read(8)
    if len(head) < 8:
        return None
    return stream.read(int.from_bytes(head, "little"))


def _no_network() -> None:
    """A private network namespace (no interfaces but a down loopback) where the OS allows it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.unshare(0x40000000)  # CLONE_NEWNET; fails quietly without the privilege
    except Exception:
        pass


_BLOCKED_PREFIXES = (
    "socket.",
    "subprocess.",
    "os.",
    "shutil.",
    "ctypes.",
    "urllib.",
    "http.",
    "ftplib.",
    "smtplib.",
    "webbrowser.",
    "winreg.",
    "_winapi.",
    "msvcrt.",
    "sqlite3.",
    "pty.",
    "fcntl.",
    "resource.",
    "signal.",
    "sys._getframe",
    "sys.settrace",
    "sys.setprofile",
    "code.",
    "marshal.",
    "pickle.",
    "gc.get_referrers",
    "gc.get_objects",
    "object.__setattr__",
    "object.__delattr__",
    "function.__new__",
    "cpython.",
)
_BLOCKED_EVENTS = frozenset(
    {"open", "import", "builtins.input", "sys.addaudithook", "socket.connect", "glob.glob", "syslog.openlog"}
)


#: Modules that a vetted import (scipy) or the worker's own imports pull in, which a program must
#: still not reach without an 'import' event: dropped from ``sys.modules`` before it runs (their
#: importers keep their own references, so they still work).
_UNLISTED = (
    "socket",
    "_socket",
    "ssl",
    "subprocess",
    "_posixsubprocess",
    "multiprocessing",
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
)


def _preload(modules: list[str]) -> None:
    """Import the vetted modules the program names (the audit hook refuses imports later), then
    hide whatever touches files, processes or the network that they, or the worker's own
    imports, brought in: a program that names one meets the audit hook's 'import' refusal."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # the program's own import then fails with the usual message
    for name in list(sys.modules):
        if name.split(".")[0] in _UNLISTED:
            del sys.modules[name]


_GATE = {"worker": True}  # open while the worker's own code runs; the program cannot reach it


def _audit(event: str, args: tuple) -> None:
    if _GATE["worker"]:
        return
    if event in _BLOCKED_EVENTS or event.startswith(_BLOCKED_PREFIXES):
        raise PermissionError(f"the sandbox refuses '{event}'")


def main() -> int:
    stdin = os.fdopen(os.dup(0), "rb", buffering=1 << 16)  # one read syscall per request
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # the program's print() goes to stderr, never into the protocol
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)

    import collections  # noqa: F401 - preloaded: imports are refused once the program runs
    import dataclasses  # noqa: F401
    import functools  # noqa: F401
    import itertools  # noqa: F401
    import math  # noqa: F401
    import resource
    import typing  # noqa: F401

    import numpy as np

    from rewardgen.code.program import ENTRY_POINT, SIGNATURE, _describe, _read_only, register_source
    from rewardgen.code.wire import decode, encode

    def send(obj) -> None:
        data = encode(obj)
        proto_out.write(len(data).to_bytes(8, "little") + data)

    first = _read_message(stdin)
    if first is None:
        return 1
    setup = decode(first)
    from rewardgen.code.checks import modules_to_preload

    _preload(modules_to_preload(setup["source"]))
    limits = setup["limits"]
    memory = int(limits["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # stderr (where print() goes) is a file: cap what any write can do rather than forbid it
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    except (ValueError, OSError):
        pass
    _no_network()
    cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    call_cpu = int(limits["call_cpu_s"])

    def cpu_budget(seconds: int) -> None:
        # Only the soft limit moves (SIGXCPU when it is reached); the hard limit stays where it
        # was, since a process may never raise it again once lowered.
        used = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(used.ru_utime + used.ru_stime) + seconds + 1
        if cpu_hard != resource.RLIM_INFINITY:
            soft = min(soft, cpu_hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, cpu_hard))

    namespace: dict = {"__name__": "rewardgen_program", "__builtins__": __builtins__}
    name = setup["name"]
    register_source(name, setup["source"])
    try:
        code = compile(setup["source"], name, "exec")
    except SyntaxError as exc:
        send({"error": f"syntax error at line {exc.lineno}: {exc.msg}"})
        return 0
    sys.addaudithook(_audit)
    cpu_budget(call_cpu)
    try:
        _GATE["worker"] = False
        exec(code, namespace)
        _GATE["worker"] = True
        fn = namespace.get(ENTRY_POINT)
        if not callable(fn):
            send({"error": f"defines no function {ENTRY_POINT}: define {SIGNATURE}"})
            return 0
        for key, value in setup["params"].items():
            if key not in namespace:
                send({"error": f"parameter {key!r} is not defined in the program"})
                return 0
            namespace[key] = value
    except MemoryError:
        _GATE["worker"] = True
        send({"error": f"MemoryError: went over the memory limit of {limits['memory_mb']} MB while loading"})
        return 0
    except BaseException as exc:
        _GATE["worker"] = True
        send({"error": f"failed while loading: {_describe(exc, name)}"})
        return 0
    send({"ok": True})

    while True:
        message = _read_message(stdin)
        if message is None:
            return 0
        call = decode(message, copy=False)  # read-only views of the message: the program may not write
        cpu_budget(call_cpu)
        args = (
            _read_only(call["obs"]),
            _read_only(call["action"]),
            _read_only(call["next_obs"]),
            _read_only(call["info"]),
        )
        try:
            _GATE["worker"] = False
            cpu0 = time.process_time()  # the program's own CPU time: what training pays for it
            try:
                result = fn(*args)
            finally:
                _GATE["worker"] = True
            cpu_s = time.process_time() - cpu0
            if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
                send(
                    {
                        "error": f"TypeError: {ENTRY_POINT} must return (total, components), got "
                        f"{type(result).__name__}"
                    }
                )
                continue
            total = np.asarray(result[0], dtype=np.float64)
            comps = {str(k): np.asarray(v, dtype=np.float64) for k, v in result[1].items()}
            send({"total": total, "components": comps, "cpu_s": cpu_s})
        except MemoryError:
            send({"error": f"MemoryError: went over the memory limit of {limits['memory_mb']} MB"})
        except KeyError as exc:
            given = ", ".join(sorted(call["info"]))
            missing = exc.args[0] if exc.args and isinstance(exc.args[0], str) else None
            send(
                {"error": f"{_describe(exc, name)}; the reward was given: {given}", "missing_field": missing}
            )
        except BaseException as exc:
            msg = _describe(exc, name)
            if isinstance(exc, TypeError | ValueError) and "float" in str(exc):
                msg += " (return numbers: arrays of shape (n,))"
            send({"error": msg})


if __name__ == "__main__":
    sys.exit(main())

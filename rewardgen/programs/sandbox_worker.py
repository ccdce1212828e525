"""The sandbox worker process: puts up its walls, then runs one untrusted reward program.

Started by :class:`rewardgen.programs.sandbox.SandboxRunner`; speaks length-prefixed
:mod:`rewardgen.programs.wire` messages on stdin/stdout. In order: the worker imports what it and the
program need, sets its resource limits, puts up the operating-system wall
(:mod:`rewardgen.programs.oswall`) and the Python wall (:mod:`rewardgen.programs.pywall`), and only then
runs the program's first line. Neither wall comes down again: what the program returns is checked
and converted by exact type under the audit hook, an exception it raises is described there too,
and the process ends with ``os._exit`` (no destructor or exit handler runs after the hooks are
cleared). Only plain bytes leave: float64 arrays, numbers and bounded strings.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

#: A program's exception text is cut to this many characters.
MESSAGE_CHARS = 400


def _make_printable() -> Any:
    """``printable(text, limit)``: one line of printable characters, at most ``limit`` long (no
    terminal escapes). A closure over the builtins it uses, taken when it is made: the worker
    makes its own before the program runs, so that a program that replaces ``builtins.len``
    changes nothing here."""
    len_ = len

    def printable(text: str, limit: int = MESSAGE_CHARS) -> str:
        text = "".join([c if c.isprintable() else " " for c in text[: limit + 1]])
        return text if len_(text) <= limit else text[: limit - 1] + "…"

    return printable


_printable = _make_printable()


class _Refused(Exception):
    """The program's result was refused; the message says why."""


def _handlers(np: Any, filename: str, with_frames: Any) -> tuple[Any, Any, Any]:
    """``(convert, describe, read_only)``, made before the program runs, as closures over the
    builtins they use, so that nothing the program replaces (``builtins.type``, a module's
    globals) reaches them.

    - ``convert(result) -> (total, components)`` as float64 arrays, by exact type only: nothing
      the program defines (``__array__``, ``__float__``, ``__str__``, a dict subclass's
      ``items``) is called.
    - ``describe(exc) -> (text, missing_field)``: the type's name, a bounded message, and the
      program line it failed on. The message is produced under the audit hook (a program's
      ``__str__`` runs there like the rest of it); the line is read from the traceback's frames
      by code that calls nothing the program defines.
    - ``read_only(x)``: read-only views of the arrays of a request.
    """
    type_, len_, str_, float_, dict_items = type, len, str, float, dict.items
    type_name_of = type.__dict__["__name__"].__get__
    get_traceback, get_args = BaseException.__traceback__.__get__, BaseException.args.__get__
    refused, key_error, base = _Refused, KeyError, BaseException
    printable = _make_printable()
    lines = sys.modules["linecache"].cache.get(filename, (0, None, [], filename))[2]
    numbers = frozenset({bool, int, float, *(np.dtype(c).type for c in "?bhilqpBHILQPefdg")})
    kinds = frozenset("biuf")
    ndarray, float64, asarray = np.ndarray, np.float64, np.asarray

    def type_name(obj: Any) -> str:
        name = type_name_of(type_(obj))  # a metaclass's __name__ property is never called
        return printable(name, 60) if type_(name) is str_ else "?"

    def numeric(value: Any, what: str) -> Any:
        kind = type_(value)
        if kind is ndarray:
            if value.dtype.kind not in kinds:
                raise refused(f"{what} is not numeric (an array of {value.dtype.name}): return floats")
            return asarray(value, dtype=float64)
        if kind in numbers:
            return asarray(float_(value), dtype=float64)
        raise refused(
            f"{what} is not numeric ({type_name(value)}): return a numpy array of shape (n,) "
            "(exactly numpy.ndarray, or a plain number)"
        )

    def convert(result: Any) -> tuple[Any, dict[str, Any]]:
        if type_(result) is not tuple or len_(result) != 2 or type_(result[1]) is not dict:
            got = type_name(result)
            if type_(result) is tuple and len_(result) == 2:
                got = f"components of type {type_name(result[1])}, not dict"
            raise refused(f"TypeError: compute_reward must return (total, components), got {got}")
        total, parts = result
        components = {}
        for key, value in dict_items(parts):
            if type_(key) is not str_:
                raise refused(f"component names must be str, got a {type_name(key)}")
            components[key] = numeric(value, f"component '{printable(key, 60)}'")
        return numeric(total, "the total reward"), components

    def message_of(exc: BaseException) -> str:
        try:
            text = str_(exc)
            return printable(text) if type_(text) is str_ else "?"
        except base as inner:  # its __str__ failed (under the walls too): say how
            try:
                said = str_(inner)
                said = printable(said) if type_(said) is str_ else "?"
            except base:
                said = "?"
            return f"(its message could not be read: {type_name(inner)}: {said})"

    def program_line(tb: Any) -> int | None:
        found = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == filename:
                found = tb.tb_lineno
            tb = tb.tb_next
        return found

    def describe(exc: BaseException) -> tuple[str, str | None]:
        message = message_of(exc)
        line = with_frames(lambda: program_line(get_traceback(exc)))
        where = ""
        if line is not None and 0 < line <= len_(lines):
            where = f" (line {line}: {printable(lines[line - 1].strip(), 120)})"
        args = get_args(exc)
        missing = args[0] if type_(exc) is key_error and args and type_(args[0]) is str_ else None
        return f"{type_name(exc)}: {message}{where}", missing

    def read_only(x: Any) -> Any:
        if type_(x) is ndarray:
            view = x.view()
            view.setflags(write=False)
            return view
        if type_(x) is dict:
            return {k: read_only(v) for k, v in dict_items(x)}
        return x

    return convert, describe, read_only


def main() -> int:
    stdin = os.fdopen(os.dup(0), "rb", buffering=1 << 16)  # one read syscall per request
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # the program's print() goes to stderr, never into the protocol
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)

    import collections  # noqa: F401 - preloaded: imports are refused once the program runs
    import dataclasses  # noqa: F401
    import functools  # noqa: F401
    import importlib
    import itertools  # noqa: F401
    import math  # noqa: F401
    import resource
    import signal
    import typing  # noqa: F401

    import numpy as np

    from rewardgen.programs import oswall, pywall
    from rewardgen.programs.checks import modules_to_preload
    from rewardgen.programs.program import ENTRY_POINT, SIGNATURE, register_source
    from rewardgen.programs.wire import decode, encode

    # What the worker calls once the program has run, taken now (a program may replace builtins
    # and module attributes; these names are out of its reach).
    exit_, process_time, len_, from_bytes = os._exit, time.process_time, len, int.from_bytes
    setitimer, cpu_timer = signal.setitimer, signal.ITIMER_PROF
    refused, memory_error, base, type_, sorted_ = _Refused, MemoryError, BaseException, type, sorted
    shape_errors = (TypeError, ValueError)

    def read_message() -> bytes | None:
        head = stdin.read(8)
        return stdin.read(from_bytes(head, "little")) if len_(head) == 8 else None

    def send(obj: dict) -> None:
        data = encode(obj)
        proto_out.write(len_(data).to_bytes(8, "little") + data)

    first = read_message()
    if first is None:
        exit_(1)
    setup = decode(first)
    walls, limits, name = setup["walls"], setup["limits"], setup["name"]
    for module in modules_to_preload(setup["source"]):
        try:
            importlib.import_module(module)
        except ImportError:
            pass  # the program's own import then fails with the usual message
    memory = int(limits["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # stderr (where print() goes) is a file: cap what any write can do rather than forbid it
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
    report: dict[str, str] = {}
    if walls["os"]:
        try:
            report.update(oswall.confine(setup.get("parent_pid")))
        except oswall.OSWallError as exc:
            send({"error": f"the sandbox's OS wall could not be put up: {exc}", "unavailable": True})
            exit_(0)
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))  # binds now that this is not root
        except (ValueError, OSError):
            pass
    register_source(name, setup["source"])
    try:
        code = compile(setup["source"], name, "exec", dont_inherit=True)  # not this file's __future__
    except SyntaxError as exc:
        send({"error": f"syntax error at line {exc.lineno}: {exc.msg}"})
        exit_(0)
    call_cpu = float(limits["call_cpu_s"])
    if walls["python"]:
        report["python"] = (
            f"audit hook ({len(pywall.ALLOWED_EVENTS)} events allowed, every other refused), "
            f"{pywall.neuter()} unaudited functions refused"
        )
        with_frames = pywall.install()
    else:
        with_frames = _call  # tests of the OS wall alone
    convert, describe, read_only = _handlers(np, name, with_frames)
    namespace: dict = {"__name__": "rewardgen_program", "__builtins__": __builtins__}

    # From here on everything runs behind the walls. A call's CPU time is capped by a profiling
    # timer (SIGPROF ends the process): it counts CPU, not the wall clock, in the worker itself.
    setitimer(cpu_timer, call_cpu)
    try:
        exec(code, namespace)
        fn = namespace.get(ENTRY_POINT)
        if type_(fn) is not type_(send):
            reply = {"error": f"defines no function {ENTRY_POINT}: define {SIGNATURE}"}
        else:
            for key, value in setup["params"].items():
                if key not in namespace:
                    raise refused(f"parameter {key!r} is not defined in the program")
                namespace[key] = value
            reply = {"ok": True, "walls": report}
    except refused as exc:
        reply = {"error": exc.args[0]}
    except memory_error:
        reply = {
            "error": f"MemoryError: went over the memory limit of {limits['memory_mb']} MB while loading"
        }
    except base as exc:
        reply = {"error": f"failed while loading: {describe(exc)[0]}"}
    setitimer(cpu_timer, 0)
    send(reply)
    if "ok" not in reply:
        exit_(0)

    while True:
        message = read_message()
        if message is None:
            exit_(0)
        call = decode(message, copy=False)  # read-only views of the message: the program may not write
        obs, action, next_obs, info = (read_only(call[k]) for k in ("obs", "action", "next_obs", "info"))
        setitimer(cpu_timer, call_cpu)
        try:
            cpu0 = process_time()  # the program's own CPU time: what training pays for it
            result = fn(obs, action, next_obs, info)
            cpu_s = process_time() - cpu0
            total, components = convert(result)
            reply = {"total": total, "components": components, "cpu_s": cpu_s}
        except refused as exc:
            reply = {"error": exc.args[0]}
        except memory_error:
            reply = {"error": f"MemoryError: went over the memory limit of {limits['memory_mb']} MB"}
        except base as exc:
            text, missing = describe(exc)
            reply = {"error": text, "missing_field": missing}
            if missing is not None:
                reply["error"] += "; the reward was given: " + ", ".join(sorted_(call["info"]))
            elif type_(exc) in shape_errors and "float" in text:
                reply["error"] += " (return numbers: arrays of shape (n,))"
        setitimer(cpu_timer, 0)
        send(reply)


def _call(fn: Any) -> Any:
    return fn()


if __name__ == "__main__":
    sys.exit(main())

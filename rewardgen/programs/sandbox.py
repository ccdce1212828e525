"""Run untrusted reward code in a separate process, behind walls that each hold alone.

Outermost first:

- **static checks** (:func:`~rewardgen.programs.checks.static_check`) refuse what a reward never needs
  before anything runs;
- a **worker process** in its own session and process group, with a memory limit
  (``RLIMIT_AS``), a per-call CPU limit (a profiling timer in the worker) and a wall-clock
  timeout here; it dies with this process (a parent-death signal) and its whole group is killed
  when it is closed or overruns;
- the **OS wall** (:mod:`rewardgen.programs.oswall`): no network (its own namespace), not root (a root
  worker becomes ``nobody``), no-new-privs, and a seccomp filter that refuses new processes,
  programs, sockets, writable opens, file changes and ptrace;
- the **Python wall** (:mod:`rewardgen.programs.pywall`): an audit hook that allows a short list of
  events and refuses every other, on from before the program's first line to the worker's end,
  with the functions that raise no event replaced by refusals;
- what the program returns is taken by exact type (numpy arrays of numbers, plain numbers, a
  dict with str keys) and converted inside the walls; arrays are passed in read-only; nothing
  but bytes comes back, and this side decodes them without pickle.

A program that breaks a limit is killed, the call fails with one line that names the reason, and
the next call starts a fresh worker.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rewardgen.errors import RewardgenError
from rewardgen.programs.checks import CodeCheckError, static_check
from rewardgen.programs.program import ProgramFieldError, RewardProgram, RewardProgramError
from rewardgen.programs.sandbox_worker import _printable
from rewardgen.programs.wire import decode, encode

__all__ = ["SandboxLimits", "SandboxRunner", "SandboxUnavailableError", "SandboxWalls", "check_sandbox"]

#: ``REWARDGEN_SANDBOX_OS=off`` runs untrusted code without the OS wall (for a machine without
#: Linux's seccomp or libseccomp); the Python wall and the static checks still stand.
OS_WALL_ENV = "REWARDGEN_SANDBOX_OS"


class SandboxUnavailableError(RewardgenError):
    """The sandbox's walls cannot be put up on this machine: nothing untrusted runs."""


def _os_wall_default() -> bool:
    value = os.environ.get(OS_WALL_ENV, "on").strip().lower()
    if value not in ("on", "off", "1", "0", "true", "false"):
        raise SandboxUnavailableError(f"{OS_WALL_ENV}={value!r}: use 'on' (the default) or 'off'")
    return value in ("on", "1", "true")


@dataclass(frozen=True)
class SandboxWalls:
    """Which of the sandbox's walls stand. All of them by default; switching one off is for a
    machine that cannot have it (the OS wall without seccomp: ``REWARDGEN_SANDBOX_OS=off``) and
    for tests that show that each of the others holds alone.

    Example:
        >>> SandboxWalls(), SandboxWalls(python=False).python
        (SandboxWalls(static=True, python=True, os=True), False)
    """

    static: bool = True
    python: bool = True
    os: bool = field(default_factory=_os_wall_default)


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed program: wall and CPU seconds per call, address space in MB."""

    call_timeout_s: float = 10.0
    call_cpu_s: int = 10
    memory_mb: int = 2048
    load_timeout_s: float = 30.0


def _said(text: str) -> str:
    """The worker's words made safe to print (one bounded printable line), with the reason
    named where the system-call filter refused a file operation (EPERM)."""
    text = _printable(text)
    if "[Errno 1] Operation not permitted" in text:
        text += " (refused by the sandbox's system-call filter)"
    return text


def _read_frame(fd: int, timeout: float) -> bytes:
    """One length-prefixed reply, usually in one select and one read (the worker answers each
    request with exactly one frame, so reading ahead never takes the next one)."""
    buf = bytearray()
    need = 8
    while len(buf) < need:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise TimeoutError
        chunk = os.read(fd, max(need - len(buf), 1 << 16))
        if not chunk:
            raise EOFError
        buf += chunk
        if need == 8 and len(buf) >= 8:
            n = int.from_bytes(buf[:8], "little")
            if n > 1 << 31:
                raise EOFError
            need = 8 + n
    return bytes(buf[8:need])


class SandboxRunner:
    """A :class:`~rewardgen.programs.program.ProgramRunner` for untrusted code.

    Example:
        >>> import numpy as np
        >>> src = "def compute_reward(obs, action, next_obs, info):\\n    return obs[:, 0], {}\\n"
        >>> runner = SandboxRunner(RewardProgram.from_source(src))
        >>> runner(np.ones((2, 1)), np.zeros((2, 1)), np.ones((2, 1)), {})[0]
        array([1., 1.])
        >>> runner.close()
    """

    def __init__(
        self, program: RewardProgram, limits: SandboxLimits | None = None, walls: SandboxWalls | None = None
    ):
        self.walls = walls or SandboxWalls()
        if self.walls.static:
            result = static_check(program.source)
            if not result.ok:
                raise CodeCheckError(f"reward program {program.name} refused: " + "; ".join(result.problems))
        self.program = program
        self.limits = limits or SandboxLimits()
        self._proc: subprocess.Popen | None = None
        self._stderr: Any = None
        #: CPU seconds the program itself took in the worker on the last call (scheduling delay
        #: and the round trip excluded): what :func:`~rewardgen.training.check_reward` judges.
        self.worker_cpu_s: float | None = None
        #: What the worker's walls hold, as it reported them once the program loaded.
        self.wall_report: dict[str, str] = {}

    # -- worker lifecycle --------------------------------------------------------------------

    def _start(self) -> None:
        self._stderr = tempfile.TemporaryFile()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        }
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "rewardgen.programs.sandbox_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            cwd=tempfile.gettempdir(),
            start_new_session=True,
        )
        # A parent-death signal follows the thread that started the worker: only the main
        # thread lives as long as this process (elsewhere the worker ends at its input's EOF).
        main_thread = threading.current_thread() is threading.main_thread()
        self._send(
            {
                "source": self.program.source,
                "name": self.program.name,
                "params": dict(self.program.params),
                "limits": asdict(self.limits),
                "walls": asdict(self.walls),
                "parent_pid": os.getpid() if main_thread else None,
            }
        )
        reply = self._receive(self.limits.load_timeout_s, "loading")
        if reply.get("error"):
            self._kill()
            message = f"reward program {self.program.name}: {_said(str(reply['error']))}"
            if reply.get("unavailable"):
                raise SandboxUnavailableError(
                    f"{message}; to run reward programs behind the Python wall alone, set {OS_WALL_ENV}=off"
                )
            raise RewardProgramError(message)
        report = reply.get("walls")
        self.wall_report = (
            {str(k): _printable(str(v)) for k, v in report.items()} if type(report) is dict else {}
        )

    def _send(self, obj: Any) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        data = encode(obj)
        try:
            self._proc.stdin.write(len(data).to_bytes(8, "little") + data)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise RewardProgramError(self._death_reason("while receiving its input")) from None

    def _receive(self, timeout: float, doing: str) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        try:
            reply = decode(_read_frame(fd, timeout))
            if type(reply) is not dict:
                raise TypeError("a reply is a dict")
            return reply
        except TimeoutError:
            self._kill()
            raise RewardProgramError(
                f"reward program {self.program.name} took longer than {timeout:g} s {doing} (killed)"
            ) from None
        except (EOFError, ValueError, TypeError, KeyError):
            raise RewardProgramError(self._death_reason(doing)) from None

    def _death_reason(self, doing: str) -> str:
        proc = self._proc
        code = proc.wait(timeout=5) if proc is not None else None
        tail = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            lines = self._stderr.read().decode(errors="replace").strip().splitlines()
            tail = f": {lines[-1]}" if lines else ""
        self._kill()
        name = self.program.name
        tail = _said(tail)
        if code in (-signal.SIGPROF, -signal.SIGXCPU):
            return f"reward program {name} exceeded its CPU limit of {self.limits.call_cpu_s} s {doing}"
        if code == -signal.SIGSYS:
            return (
                f"reward program {name} was stopped by the sandbox's system-call filter {doing}: it tried "
                "to start a process or a program, use the network, reach another process or change "
                "the system"
            )
        if code is not None and code < 0:
            return f"reward program {name} was killed by signal {signal.Signals(-code).name} {doing}{tail}"
        return f"reward program {name} died {doing} (exit code {code}){tail}"

    def _kill(self) -> None:
        """Kill the worker's whole process group, then reap the worker (in that order: a group
        keeps its id reserved while any member lives, so the signal reaches only what it began)."""
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream is not None:
                    stream.close()
            self._proc = None

    # -- ProgramRunner -------------------------------------------------------------------------

    def __call__(self, obs: Any, action: np.ndarray, next_obs: Any, info: dict[str, Any]) -> Any:
        if self._proc is not None and self._proc.poll() is not None:
            self._kill()  # it died between calls: whatever it left in its group goes with it
        if self._proc is None:
            self._start()
        self._send({"obs": obs, "action": action, "next_obs": next_obs, "info": dict(info)})
        reply = self._receive(self.limits.call_timeout_s, "in compute_reward")
        cpu_s = reply.get("cpu_s")
        self.worker_cpu_s = float(cpu_s) if type(cpu_s) is float else None
        if reply.get("error"):
            message = f"compute_reward in {self.program.name} raised {_said(str(reply['error']))}"
            if reply.get("missing_field") is not None:
                raise ProgramFieldError(message, _printable(str(reply["missing_field"]), 100))
            raise RewardProgramError(message)
        total, components = reply.get("total"), reply.get("components")
        if type(total) is not np.ndarray or type(components) is not dict:
            self._kill()
            raise RewardProgramError(f"reward program {self.program.name} sent a malformed reply (killed)")
        return total, components

    def close(self) -> None:
        self._kill()

    def __del__(self) -> None:
        try:
            self._kill()
        except Exception:
            pass


def check_sandbox(limits: SandboxLimits | None = None, walls: SandboxWalls | None = None) -> dict[str, str]:
    """Put the sandbox's walls up once around a trivial program and say what they hold; raises
    :class:`SandboxUnavailableError` (one line: what is missing and how to go on) where they
    cannot stand. A search calls it before its first LLM call and keeps the answer in its
    manifest.

    Example:
        >>> sorted(check_sandbox())  # doctest: +SKIP
        ['network', 'python', 'seccomp', 'user']
    """
    program = RewardProgram.from_source(
        "def compute_reward(obs, action, next_obs, info):\n    return obs[:, 0], {}\n", name="<sandbox check>"
    )
    runner = SandboxRunner(program, limits, walls)
    try:
        runner(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)), {})
        return dict(runner.wall_report)
    finally:
        runner.close()

"""Run untrusted reward code in a separate process with time and memory limits and no file,
network or process access.

Layers, outermost first: the static checks (:func:`~rewardgen.code.checks.static_check`); a
worker process with ``RLIMIT_AS`` (memory), a per-call CPU limit (``RLIMIT_CPU``) and a wall-clock
timeout; its own network namespace where the OS allows one; a Python audit hook installed before
the untrusted code runs, which refuses file opens, sockets, subprocesses, ``ctypes`` and new
imports; arrays passed read-only. A program that breaks a limit is killed, the call fails with a
clear reason, and the next call starts a fresh worker.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rewardgen.code.checks import CodeCheckError, static_check
from rewardgen.code.program import ProgramFieldError, RewardProgram, RewardProgramError
from rewardgen.code.wire import decode, encode

__all__ = ["SandboxLimits", "SandboxRunner"]


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed program: wall and CPU seconds per call, address space in MB."""

    call_timeout_s: float = 10.0
    call_cpu_s: int = 10
    memory_mb: int = 2048
    load_timeout_s: float = 30.0


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
    """A :class:`~rewardgen.code.program.ProgramRunner` for untrusted code.

    Example:
        >>> import numpy as np
        >>> src = "def compute_reward(obs, action, next_obs, info):\\n    return obs[:, 0], {}\\n"
        >>> runner = SandboxRunner(RewardProgram.from_source(src))
        >>> runner(np.ones((2, 1)), np.zeros((2, 1)), np.ones((2, 1)), {})[0]
        array([1., 1.])
        >>> runner.close()
    """

    def __init__(self, program: RewardProgram, limits: SandboxLimits | None = None):
        result = static_check(program.source)
        if not result.ok:
            raise CodeCheckError(f"reward program {program.name} refused: " + "; ".join(result.problems))
        self.program = program
        self.limits = limits or SandboxLimits()
        self._proc: subprocess.Popen | None = None
        self._stderr: Any = None
        #: CPU seconds the program itself took in the worker on the last call (scheduling delay
        #: and the round trip excluded): what :func:`~rewardgen.train.check_reward` judges.
        self.worker_cpu_s: float | None = None

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
            [sys.executable, "-m", "rewardgen.code.sandbox_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            cwd=tempfile.gettempdir(),
            start_new_session=True,
        )
        self._send(
            {
                "source": self.program.source,
                "name": self.program.name,
                "params": dict(self.program.params),
                "limits": asdict(self.limits),
            }
        )
        reply = self._receive(self.limits.load_timeout_s, "loading")
        if reply.get("error"):
            self._kill()
            raise RewardProgramError(f"reward program {self.program.name}: {reply['error']}")

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
            return decode(_read_frame(fd, timeout))
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
        if code == -signal.SIGXCPU or (code == -signal.SIGKILL and "CPU" in tail):
            return f"reward program {name} exceeded its CPU limit of {self.limits.call_cpu_s} s {doing}"
        if code is not None and code < 0:
            return f"reward program {name} was killed by signal {signal.Signals(-code).name} {doing}{tail}"
        return f"reward program {name} died {doing} (exit code {code}){tail}"

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                try:
                    os.killpg(self._proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream is not None:
                    stream.close()
            self._proc = None

    # -- ProgramRunner -------------------------------------------------------------------------

    def __call__(self, obs: Any, action: np.ndarray, next_obs: Any, info: dict[str, Any]) -> Any:
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        self._send({"obs": obs, "action": action, "next_obs": next_obs, "info": dict(info)})
        reply = self._receive(self.limits.call_timeout_s, "in compute_reward")
        self.worker_cpu_s = reply.get("cpu_s")
        if reply.get("error"):
            message = f"compute_reward in {self.program.name} raised {reply['error']}"
            if reply.get("missing_field") is not None:
                raise ProgramFieldError(message, str(reply["missing_field"]))
            raise RewardProgramError(message)
        return reply["total"], reply["components"]

    def close(self) -> None:
        self._kill()

    def __del__(self) -> None:
        try:
            self._kill()
        except Exception:
            pass

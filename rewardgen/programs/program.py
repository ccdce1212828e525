"""Reward programs: Python files that define a batched ``compute_reward``.

A reward program is plain Python::

    import numpy as np

    def compute_reward(obs, action, next_obs, info):
        speed = info["x_velocity"]                      # (n,)
        effort = 0.1 * np.sum(action**2, axis=1)        # (n,)
        return speed - effort, {"speed": speed, "effort": -effort}

Every argument has a leading batch axis; ``info`` maps the task's named fields to batched
arrays. Module-level UPPER_CASE constants are the program's *parameters*: a task (or a search)
may override them without editing the code.

How a program runs is a :class:`ProgramRunner`'s business. This module runs trusted files
in-process; the sandbox for LLM-written code is another runner behind the same interface.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import linecache
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rewardgen.rewards import (
    MissingFieldError,
    RewardFn,
    RewardFnError,
    RewardOutput,
    RewardOutputError,
    TransitionBatch,
    check_output,
)

__all__ = [
    "CodeReward",
    "InProcessRunner",
    "ProgramFieldError",
    "ProgramRunner",
    "RewardProgram",
    "RewardProgramError",
    "load_reward_program",
]

ENTRY_POINT = "compute_reward"
SIGNATURE = "compute_reward(obs, action, next_obs, info) -> (total, components)"


class RewardProgramError(RewardFnError):
    """A reward program cannot be loaded or its call failed."""


class ProgramFieldError(RewardProgramError, MissingFieldError):
    """A reward program read an ``info`` field the batch does not have."""


@dataclass(frozen=True)
class RewardProgram:
    """The source of a reward program, where it came from, and parameter overrides.

    Example:
        >>> p = RewardProgram.from_source(
        ...     "def compute_reward(obs, action, next_obs, info):\\n    return info['v'], {}")
        >>> len(p.sha256)
        64
    """

    source: str
    name: str = "<reward>"
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()

    @classmethod
    def from_source(
        cls, source: str, name: str = "<reward>", params: Mapping[str, Any] | None = None
    ) -> RewardProgram:
        return cls(source=source, name=name, params=dict(params or {}))

    @classmethod
    def from_file(cls, path: str | Path, params: Mapping[str, Any] | None = None) -> RewardProgram:
        p = Path(path)
        if not p.is_file():
            raise RewardProgramError(
                f"reward file '{p}' not found: pass the path of a .py file that defines {SIGNATURE}"
            )
        return cls(source=p.read_text(), name=str(p), params=dict(params or {}))

    def with_params(self, params: Mapping[str, Any]) -> RewardProgram:
        return RewardProgram(self.source, self.name, {**self.params, **params})


def read_fields(source: str) -> frozenset[str] | None:
    """The info field names a program may read: every string literal in it, or ``None`` (any
    field) when it builds keys at run time (an f-string, or ``info[name]`` with a variable).

    Example:
        >>> sorted(read_fields("def compute_reward(o, a, n, info):\\n    return info['v'], {}"))
        ['v']
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            return None
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            key = node.slice
            if node.value.id == "info" and not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)
    return frozenset(names)


class ProgramRunner(Protocol):
    """Runs a program's ``compute_reward`` on one batch and returns its raw result."""

    def __call__(self, obs: Any, action: np.ndarray, next_obs: Any, info: dict[str, Any]) -> Any: ...

    def close(self) -> None: ...


def register_source(name: str, source: str) -> None:
    """Let tracebacks show the program's lines (it has no file of its own when it came from an LLM)."""
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)


def compile_program(program: RewardProgram) -> dict[str, Any]:
    """Execute the program's module body and return its namespace, with parameters applied."""
    register_source(program.name, program.source)
    try:
        code = compile(program.source, program.name, "exec", dont_inherit=True)  # not this file's __future__
    except SyntaxError as exc:
        raise RewardProgramError(
            f"reward program {program.name} has a syntax error at line {exc.lineno}: {exc.msg}"
        ) from exc
    namespace: dict[str, Any] = {"__name__": "rewardgen_program", "__file__": program.name}
    try:
        exec(code, namespace)
    except Exception as exc:
        raise RewardProgramError(
            f"reward program {program.name} failed while loading: {_describe(exc, program.name)}"
        ) from exc
    fn = namespace.get(ENTRY_POINT)
    if not callable(fn):
        raise RewardProgramError(
            f"reward program {program.name} defines no function {ENTRY_POINT}: define {SIGNATURE}"
        )
    n_params = len(inspect.signature(fn).parameters)
    if n_params != 4:
        raise RewardProgramError(
            f"{ENTRY_POINT} in {program.name} takes {n_params} arguments, expected 4: {SIGNATURE}"
        )
    for key, value in program.params.items():
        if key not in namespace:
            raise RewardProgramError(
                f"parameter {key!r} is not defined in reward program {program.name}: "
                f"define it at module level (e.g. {key} = {value!r}) or drop the override"
            )
        namespace[key] = value
    return namespace


def _describe(exc: BaseException, filename: str) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    where = f" (line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _read_only(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        view = x.view()
        view.setflags(write=False)
        return view
    if isinstance(x, Mapping):
        return {k: _read_only(v) for k, v in x.items()}
    return x


class InProcessRunner:
    """Run a trusted program in this process; arrays are passed as read-only views."""

    def __init__(self, program: RewardProgram):
        self.program = program
        self._fn = compile_program(program)[ENTRY_POINT]

    def __getstate__(self) -> dict[str, Any]:  # the source crosses processes, compiled again there
        return {"program": self.program}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["program"])  # type: ignore[misc]

    def __call__(self, obs: Any, action: np.ndarray, next_obs: Any, info: dict[str, Any]) -> Any:
        try:
            return self._fn(_read_only(obs), _read_only(action), _read_only(next_obs), _read_only(info))
        except KeyError as exc:
            missing = exc.args[0] if exc.args and isinstance(exc.args[0], str) else ""
            raise ProgramFieldError(
                f"{ENTRY_POINT} in {self.program.name} raised {_describe(exc, self.program.name)}; "
                f"the reward was given: {', '.join(sorted(info))}",
                missing,
            ) from exc
        except Exception as exc:
            raise RewardProgramError(
                f"{ENTRY_POINT} in {self.program.name} raised {_describe(exc, self.program.name)}"
            ) from exc

    def close(self) -> None:
        pass


class CodeReward(RewardFn):
    """A :class:`RewardFn` backed by a reward program.

    Example:
        >>> import numpy as np
        >>> from rewardgen.rewards import TransitionBatch
        >>> src = ("import numpy as np\\n"
        ...        "def compute_reward(obs, action, next_obs, info):\\n"
        ...        "    v = info['x_velocity']\\n"
        ...        "    return v, {'speed': v}\\n")
        >>> reward = CodeReward(RewardProgram.from_source(src))
        >>> b = TransitionBatch(np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((2, 1)),
        ...                     np.zeros(2, bool), np.zeros(2, bool), {"x_velocity": np.ones(2)})
        >>> reward(b).components["speed"]
        array([1., 1.])
    """

    def __init__(self, program: RewardProgram, runner: ProgramRunner | None = None):
        self.program = program
        self.runner = runner if runner is not None else InProcessRunner(program)
        self.fields = read_fields(program.source)

    @property
    def worker_cpu_s(self) -> float | None:
        """CPU seconds the last call took in another process (the sandbox's worker); None when
        the program runs in this process."""
        return getattr(self.runner, "worker_cpu_s", None)

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        result = self.runner(batch.obs, batch.action, batch.next_obs, batch.info)  # runners copy it
        if not (isinstance(result, tuple) and len(result) == 2):
            raise RewardProgramError(
                f"{ENTRY_POINT} in {self.program.name} must return (total, components), "
                f"got {type(result).__name__}"
            )
        try:
            return check_output(result[0], result[1], batch.n)
        except RewardOutputError as exc:
            raise RewardProgramError(f"{ENTRY_POINT} in {self.program.name}: {exc}") from exc

    def close(self) -> None:
        self.runner.close()


def load_reward_program(
    path: str | Path, params: Mapping[str, Any] | None = None, runner: type | None = None
) -> CodeReward:
    """Load a reward program file as a :class:`CodeReward` (trusted, in-process by default)."""
    program = RewardProgram.from_file(path, params)
    return CodeReward(program, (runner or InProcessRunner)(program))

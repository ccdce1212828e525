"""The reward spec of a reward program: a file or source text, parameter overrides, and sandbox
limits when the code is untrusted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rewardgen.programs.program import CodeReward, RewardProgram, RewardProgramError
from rewardgen.programs.sandbox import SandboxLimits, SandboxRunner
from rewardgen.rewards.spec import RewardSpec

__all__ = ["ProgramSpec"]


@dataclass(frozen=True)
class ProgramSpec(RewardSpec):
    """A reward program (``path``, or ``source`` with a ``label``), its parameter overrides, and
    ``sandbox`` limits to run it as untrusted code in a worker process (None: in-process).

    A program is a pure function of each transition, so trainers may score it a rollout at a
    time (``deferrable``).

    Example:
        >>> src = "def compute_reward(obs, action, next_obs, info):\\n    return info['v'], {}\\n"
        >>> spec = ProgramSpec(source=src, label="speed.py")
        >>> spec.build().fields
        frozenset({'v'})
        >>> spec.describe()["sandbox"] is None
        True
    """

    path: str | None = None
    source: str | None = None
    label: str = "<reward>"
    params: Mapping[str, Any] = field(default_factory=dict)
    sandbox: SandboxLimits | None = None
    origin: Mapping[str, Any] | None = None  # where a converted program came from (format, file, hash)

    deferrable = True

    def __post_init__(self) -> None:
        if (self.path is None) == (self.source is None):
            raise RewardProgramError("a ProgramSpec needs a path or a source, not both")
        object.__setattr__(self, "params", dict(self.params))
        # read once, here: the spec carries the source to workers and Ray nodes that cannot
        # read this machine's files
        if self.path is not None:
            program = RewardProgram.from_file(self.path, self.params)
        else:
            program = RewardProgram.from_source(self.source or "", self.label, self.params)
        object.__setattr__(self, "_program", program)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        params: Mapping[str, Any] | None = None,
        sandbox: SandboxLimits | None = None,
        origin: Mapping[str, Any] | None = None,
    ) -> ProgramSpec:
        return cls(path=str(path), params=dict(params or {}), sandbox=sandbox, origin=origin)

    @property
    def program(self) -> RewardProgram:
        """The program, as read when the spec was made."""
        return self._program  # type: ignore[attr-defined]

    @property
    def name(self) -> str:
        return self.program.name

    def build(self) -> CodeReward:
        program = self.program
        runner = SandboxRunner(program, self.sandbox) if self.sandbox is not None else None
        return CodeReward(program, runner)

    def describe(self) -> dict[str, Any]:
        program = self.program
        return {
            "kind": "program",
            "path": program.name,
            "sha256": program.sha256,
            "params": dict(program.params),
            "sandbox": asdict(self.sandbox) if self.sandbox is not None else None,
            **({"origin": dict(self.origin)} if self.origin else {}),
        }

    def files(self) -> dict[str, str]:
        return {"reward.py": self.program.source}

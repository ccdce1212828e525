"""Reward programs: load Python reward code into a :class:`~rewardgen.rewards.RewardFn`;
check and sandbox untrusted (LLM-written) code."""

from rewardgen.programs.checks import CodeCheckError, extract_code, static_check
from rewardgen.programs.program import (
    CodeReward,
    InProcessRunner,
    ProgramFieldError,
    ProgramRunner,
    RewardProgram,
    RewardProgramError,
    load_reward_program,
)
from rewardgen.programs.sandbox import (
    SandboxLimits,
    SandboxRunner,
    SandboxUnavailableError,
    SandboxWalls,
    check_sandbox,
)
from rewardgen.programs.spec import ProgramSpec

__all__ = [
    "CodeCheckError",
    "CodeReward",
    "InProcessRunner",
    "ProgramFieldError",
    "ProgramRunner",
    "ProgramSpec",
    "RewardProgram",
    "RewardProgramError",
    "SandboxLimits",
    "SandboxRunner",
    "SandboxUnavailableError",
    "SandboxWalls",
    "check_sandbox",
    "extract_code",
    "load_reward_program",
    "static_check",
]

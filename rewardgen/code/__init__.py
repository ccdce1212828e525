"""Reward programs: load Python reward code into a :class:`~rewardgen.rewards.RewardFn`;
check and sandbox untrusted (LLM-written) code."""

from rewardgen.code.checks import CodeCheckError, extract_code, static_check
from rewardgen.code.program import (
    CodeReward,
    InProcessRunner,
    ProgramFieldError,
    ProgramRunner,
    RewardProgram,
    RewardProgramError,
    load_reward_program,
)
from rewardgen.code.sandbox import SandboxLimits, SandboxRunner
from rewardgen.code.spec import ProgramSpec
from rewardgen.code.text2reward import convert_text2reward, import_text2reward

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
    "convert_text2reward",
    "extract_code",
    "import_text2reward",
    "load_reward_program",
    "static_check",
]

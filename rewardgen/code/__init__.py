"""Reward programs: load Python reward code into a :class:`~rewardgen.rewards.RewardFn`."""

from rewardgen.code.program import (
    CodeReward,
    InProcessRunner,
    ProgramRunner,
    RewardProgram,
    RewardProgramError,
    load_reward_program,
)

__all__ = [
    "CodeReward",
    "InProcessRunner",
    "ProgramRunner",
    "RewardProgram",
    "RewardProgramError",
    "load_reward_program",
]

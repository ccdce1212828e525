"""The loops that write rewards: Text2Reward (zero-shot, few-shot, refined by a person's words)
and Eureka-style evolution, with ``report.html`` for every run."""

from rewardgen.synthesis.prompts import feedback_message, initial_messages, refine_message, reflection_text
from rewardgen.synthesis.refine import refine
from rewardgen.synthesis.report import write_report
from rewardgen.synthesis.search import (
    Candidate,
    SearchConfig,
    evaluate_candidate,
    halving_rungs,
    synthesize,
)

__all__ = [
    "Candidate",
    "SearchConfig",
    "evaluate_candidate",
    "feedback_message",
    "halving_rungs",
    "initial_messages",
    "refine",
    "refine_message",
    "reflection_text",
    "synthesize",
    "write_report",
]

"""The loops that write rewards: Text2Reward (zero-shot) and Eureka-style evolution."""

from rewardgen.synthesis.prompts import feedback_message, initial_messages, reflection_text
from rewardgen.synthesis.search import Candidate, SearchConfig, evaluate_candidate, synthesize

__all__ = [
    "Candidate",
    "SearchConfig",
    "evaluate_candidate",
    "feedback_message",
    "initial_messages",
    "reflection_text",
    "synthesize",
]

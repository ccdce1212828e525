"""The loops that write rewards: Text2Reward (zero-shot, few-shot, refined by a person's words)
and Eureka-style evolution, with ``report.html`` for every run."""

from rewardgen.synthesis.candidate import Candidate, evaluate_candidate
from rewardgen.synthesis.config import SearchConfig
from rewardgen.synthesis.halving import evaluate_round, halving_rungs
from rewardgen.synthesis.icpl import PreferenceSelector
from rewardgen.synthesis.prompts import feedback_message, initial_messages, refine_message, reflection_text
from rewardgen.synthesis.refine import refine
from rewardgen.synthesis.report import write_report
from rewardgen.synthesis.search import synthesize
from rewardgen.synthesis.selection import MetricSelector, Selector, best_candidate

__all__ = [
    "Candidate",
    "MetricSelector",
    "PreferenceSelector",
    "SearchConfig",
    "Selector",
    "best_candidate",
    "evaluate_candidate",
    "evaluate_round",
    "feedback_message",
    "halving_rungs",
    "initial_messages",
    "refine",
    "refine_message",
    "reflection_text",
    "synthesize",
    "write_report",
]

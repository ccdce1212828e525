"""One LLM client layer for every method: any OpenAI-compatible endpoint, cached, budgeted,
recorded and replayable; plus a loopback test server (:mod:`rewardgen.llm.testing`)."""

from rewardgen.llm.cache import ResponseCache, request_key
from rewardgen.llm.client import BudgetExceededError, Completion, LLMClient, LLMError, Usage
from rewardgen.llm.settings import LLMSettings
from rewardgen.llm.transcript import ReplayMissError, Transcript, load_replay

__all__ = [
    "BudgetExceededError",
    "Completion",
    "LLMClient",
    "LLMError",
    "LLMSettings",
    "ReplayMissError",
    "ResponseCache",
    "Transcript",
    "Usage",
    "load_replay",
    "request_key",
]

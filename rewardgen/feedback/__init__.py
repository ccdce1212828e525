"""Feedback from a judge: in a preference round a person (or a synthetic stand-in) compares the
policies of a round; every answer is kept in the run's ``preferences.jsonl``. ICPL
(:mod:`rewardgen.synthesis.icpl`) and PrefPPO (:mod:`rewardgen.preference`) ask the same judges."""

from rewardgen.feedback.judges import Judge, SyntheticJudge, TerminalJudge, make_judge
from rewardgen.feedback.options import Option
from rewardgen.feedback.store import Choice, PreferenceStore

__all__ = ["Choice", "Judge", "Option", "PreferenceStore", "SyntheticJudge", "TerminalJudge", "make_judge"]

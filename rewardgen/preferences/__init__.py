"""Preference rounds: a judge (a person, or a synthetic stand-in) compares the policies of a
round; every answer is kept in the run's ``preferences.jsonl``."""

from rewardgen.preferences.judges import Judge, Option, SyntheticJudge, TerminalJudge, make_judge
from rewardgen.preferences.store import Choice, PreferenceStore

__all__ = ["Choice", "Judge", "Option", "PreferenceStore", "SyntheticJudge", "TerminalJudge", "make_judge"]

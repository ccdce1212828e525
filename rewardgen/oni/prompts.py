"""What the annotation service asks the LLM: for each goal, whether each of a batch of NetHack
messages shows progress toward it (reasoning first, then one parseable line per message).

Bump :data:`PROMPT_VERSION` whenever a prompt's wording changes: labels are stored per version,
so a changed question is asked again instead of reusing answers to the old one.
"""

from __future__ import annotations

import re

from rewardgen.errors import RewardgenError

__all__ = [
    "GOALS",
    "PROMPT_VERSION",
    "compare_messages",
    "label_messages",
    "parse_labels",
    "parse_preferences",
]

PROMPT_VERSION = "1"

#: ONI's goals: what a helpful message is evidence of.
GOALS: dict[str, str] = {
    "default": (
        "play NetHack well: explore the dungeon, descend deeper, fight monsters it can beat, find "
        "items and gold, and stay alive"
    ),
    "gold": "collect as much gold as possible",
    "stairs": "find the staircase down and descend to deeper dungeon levels",
    "combat": "fight and defeat monsters while staying alive",
}

_SYSTEM = (
    "You are helping to train an agent that plays NetHack. You judge in-game messages: a message "
    "is helpful if seeing it means the agent made progress toward its goal, or did something that "
    "usually leads there; routine, failed or harmful events are not helpful."
)

_LINE = re.compile(
    r"^\s*(?:message\s*)?(\d+)\s*[:.)=-]\s*\**\s*(yes|no|helpful|unhelpful|1|0)\b", re.I | re.M
)


def label_messages(goal: str, messages: list[str]) -> list[dict[str, str]]:
    """The chat messages asking for labels of ``messages`` (numbered from 1) for ``goal``.

    Example:
        >>> label_messages("gold", ["You see here 3 gold pieces."])[1]["content"].splitlines()[3]
        '1. You see here 3 gold pieces.'
    """
    if goal not in GOALS:
        raise RewardgenError(f"unknown ONI goal '{goal}': choose one of {', '.join(GOALS)}")
    listed = "\n".join(f"{i}. {m}" for i, m in enumerate(messages, 1))
    user = (
        f"The agent's goal: {GOALS[goal]}.\n\nMessages:\n{listed}\n\n"
        "First think briefly about each message. Then end your answer with a section that starts "
        "with the line LABELS and has one line per message, `<number>: yes` if it is helpful "
        "for the goal or `<number>: no` if not, for every number above."
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def parse_labels(text: str, n: int) -> dict[int, int]:
    """Labels (0-based index -> 1 helpful / 0 not) from an answer to :func:`label_messages`; only
    the part after the last ``LABELS`` line counts when there is one. Messages the answer does not
    label are missing from the result.

    Example:
        >>> parse_labels("They look fine.\\nLABELS\\n1: yes\\n2: no", 3)
        {0: 1, 1: 0}
    """
    tail = text.rsplit("LABELS", 1)[-1]
    out: dict[int, int] = {}
    for m in _LINE.finditer(tail):
        k = int(m.group(1)) - 1
        if 0 <= k < n:
            out[k] = 1 if m.group(2).lower() in ("yes", "helpful", "1") else 0
    return out


def compare_messages(goal: str, pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    """The chat messages asking, for each pair of messages, which shows more progress toward
    ``goal`` (Motif's and ONI's ranking annotation), numbered from 1.

    Example:
        >>> chat = compare_messages("gold", [("You find 3 gold pieces.", "It's a wall.")])
        >>> chat[1]["content"].splitlines()[3]
        "1. A: You find 3 gold pieces. | B: It's a wall."
    """
    if goal not in GOALS:
        raise RewardgenError(f"unknown ONI goal '{goal}': choose one of {', '.join(GOALS)}")
    listed = "\n".join(f"{i}. A: {a} | B: {b}" for i, (a, b) in enumerate(pairs, 1))
    user = (
        f"The agent's goal: {GOALS[goal]}.\n\nPairs of messages:\n{listed}\n\n"
        "First think briefly about each pair. Then end your answer with a section that starts with "
        "the line PREFERENCES and has one line per pair, `<number>: A` if message A shows more "
        "progress toward the goal, `<number>: B` if B does, or `<number>: none` if neither does."
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


_PREF = re.compile(r"^\s*(?:pair\s*)?(\d+)\s*[:.)=-]\s*\**\s*(a|b|none|tie)\b", re.IGNORECASE | re.MULTILINE)


def parse_preferences(text: str, n: int) -> dict[int, float]:
    """Preferences (0-based pair index -> 1.0 for A, 0.0 for B, 0.5 for neither) from an answer
    to :func:`compare_messages`; pairs it does not answer are missing.

    Example:
        >>> parse_preferences("PREFERENCES\\n1: A\\n2: none", 2)
        {0: 1.0, 1: 0.5}
    """
    tail = text.rsplit("PREFERENCES", 1)[-1]
    out: dict[int, float] = {}
    for m in _PREF.finditer(tail):
        k = int(m.group(1)) - 1
        if 0 <= k < n:
            out[k] = {"a": 1.0, "b": 0.0}.get(m.group(2).lower(), 0.5)
    return out

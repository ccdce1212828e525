"""Words for people: a count with its noun in the right number."""

from __future__ import annotations

__all__ = ["plural"]


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1 (``nouns``: an irregular plural).

    Example:
        >>> plural(1, "candidate"), plural(2, "episode"), plural(0, "policy", "policies")
        ('1 candidate', '2 episodes', '0 policies')
    """
    return f"{n:,} {noun if n == 1 else (nouns or noun + 's')}"

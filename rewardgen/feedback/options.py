"""What a judge is shown in a preference round (:class:`Option`), which of those a person can
judge (a policy with a video), and text from a judge made safe to print."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rewardgen.errors import RewardgenError

__all__ = ["Option", "clean_text", "need_two", "watchable"]


@dataclass(frozen=True)
class Option:
    """One policy shown in a preference round: its id in the round, its video, and the numbers a
    synthetic judge ranks by (a person sees only the video): ``measures`` are what a synthetic
    rater's taste reads (measure name -> its sum over the segment or episode, see
    :mod:`rewardgen.feedback.tastes`). ``note`` says why there is no video.

    Example:
        >>> Option("cand0").has_video, Option("cand1", note="filming stopped").note
        (False, 'filming stopped')
    """

    id: str
    video: Path | None = None
    score: float | None = None  # the task's success metric as a score: higher is better
    env_return: float | None = None
    note: str = ""
    measures: Mapping[str, float] = field(default_factory=dict, hash=False)

    @property
    def has_video(self) -> bool:
        return self.video is not None and Path(self.video).is_file()


def need_two(round_id: str, options: Sequence[Option]) -> None:
    """Refuse a round with fewer than two policies: there is nothing to compare."""
    if len(options) < 2:
        raise RewardgenError(
            f"round {round_id}: a preference needs at least two policies, got {len(options)}"
        )


def watchable(round_id: str, options: Sequence[Option], show: Callable[[str], None] = print) -> list[Option]:
    """The options a person can judge: those with a video. Each one left out is said with its
    reason; fewer than two left is an error (a person never picks a black tile).

    Example:
        >>> import tempfile
        >>> film = Path(tempfile.mkdtemp()) / "video.mp4"
        >>> _ = film.write_bytes(b"...")
        >>> opts = [Option("a", film), Option("b", film), Option("c", note="filming stopped")]
        >>> [o.id for o in watchable("iter0", opts, show=lambda line: None)]
        ['a', 'b']
    """
    kept = [o for o in options if o.has_video]
    for o in options:
        if not o.has_video:
            show(f"  {o.id} is left out of round {round_id}: no video ({o.note or 'it was not filmed'})")
    if len(kept) < 2:
        raise RewardgenError(
            f"round {round_id}: only {len(kept)} of {len(options)} policies have a video; a person "
            "needs two to compare (film them again, or use --judge synthetic)"
        )
    return kept


_KEEP_IN_WORDS = {"\n", "\t"}


def clean_text(text: str, multiline: bool = False) -> str:
    """``text`` without control and format characters (terminal escapes such as ``ESC[2J``, bidi
    overrides, carriage returns): what a judge typed is printed to a console and logged, where
    such characters would repaint the screen or forge a line. ``multiline`` keeps newlines and
    tabs (a person's words); a name keeps none.

    Example:
        >>> clean_text("ana\\x1b[2J\\nINFO forged")
        'ana[2JINFO forged'
        >>> clean_text("line one\\r\\nline two", multiline=True)
        'line one\\nline two'
    """
    kept = (
        ch
        for ch in text
        if (multiline and ch in _KEEP_IN_WORDS) or unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp")
    )
    out = "".join(kept)
    return re.sub(r"[ \t]+\n", "\n", out).strip() if multiline else out.strip()

"""Who answers a preference round: a person at a terminal, or a synthetic judge (tests,
benchmarks) that ranks by a number the person never sees. The browser page is another judge
behind the same interface."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from rewardgen.errors import RewardgenError
from rewardgen.feedback.options import Option, clean_text, need_two, watchable
from rewardgen.feedback.store import Choice
from rewardgen.feedback.tastes import Taste

__all__ = ["JUDGES", "Judge", "JudgeKind", "Option", "SyntheticJudge", "TerminalJudge", "make_judge"]


class Judge(Protocol):
    """Answers preference rounds."""

    name: str
    needs_videos: bool

    def __call__(self, round_id: str, options: Sequence[Option]) -> Choice:
        """The best and worst (or a ranking) of ``options`` (at least two)."""
        ...

    def close(self) -> None:
        """Stop what the judge runs (the web judge's page); nothing for the others."""
        ...


class SyntheticJudge:
    """Ranks by the task's success metric (``by="score"``), the env's own return
    (``by="env_return"``) or a rater's ``taste`` (more ``x_velocity``, less ``ctrl``: a measure
    of each option, :mod:`rewardgen.feedback.tastes`), with Gaussian ``noise`` relative to the
    spread of the values: a stand-in for a person in tests and benchmarks. ``rater`` names it
    among several (default: its taste, or empty).

    Example:
        >>> options = [Option("cand0", score=1.0), Option("cand1", score=3.0), Option("cand2", score=2.0)]
        >>> SyntheticJudge()("iter0", options).ranking
        ('cand1', 'cand2', 'cand0')
        >>> calm = SyntheticJudge(taste="-ctrl")
        >>> calm("q0", [Option("a", measures={"ctrl": 9.0}), Option("b", measures={"ctrl": 2.0})]).best
        'b'
        >>> calm.rater
        '-ctrl'
    """

    needs_videos = False

    def __init__(
        self, by: str = "score", noise: float = 0.0, seed: int = 0, taste: str | None = None, rater: str = ""
    ):
        if by not in ("score", "env_return"):
            raise RewardgenError(f"a synthetic judge ranks by 'score' or 'env_return', not {by!r}")
        if noise < 0:
            raise RewardgenError(f"a synthetic judge's noise must be >= 0, got {noise}")
        self.by, self.noise = by, noise
        self.taste = Taste.parse(taste) if taste is not None else None
        self.rng = np.random.default_rng(seed)
        ranks_by = f"taste={self.taste}" if self.taste is not None else by
        self.name = f"synthetic:{ranks_by}" + (f",noise={noise:g}" if noise else "")
        self.rater = clean_text(rater) or (str(self.taste) if self.taste is not None else "")

    def __call__(self, round_id: str, options: Sequence[Option]) -> Choice:
        need_two(round_id, options)
        values = np.array([self._value(o) for o in options])
        if self.noise:
            spread = float(np.ptp(values)) or 1.0
            values = values + self.noise * spread * self.rng.standard_normal(len(values))
        order = [options[i].id for i in np.argsort(-values, kind="stable")]
        return Choice(
            round=round_id,
            candidates=tuple(o.id for o in options),
            best=order[0],
            worst=order[-1],
            ranking=tuple(order),
            judge=self.name,
            rater=self.rater,
        )

    def _value(self, option: Option) -> float:
        if self.taste is not None:
            return self.taste.value(option.measures)
        value = option.score if self.by == "score" else option.env_return
        return float("-inf") if value is None else float(value)

    def close(self) -> None:
        pass


class TerminalJudge:
    """A person at a terminal (e.g. over SSH): the round's policies numbered, with the path of
    each video; they type the best and the worst, and optionally a few words for the LLM.

    ``ask`` is how a line is read (default: rich's prompt); tests pass their own.
    """

    needs_videos = True

    def __init__(
        self, rater: str = "", ask: Callable[[str], str] | None = None, show: Callable[[str], None] = print
    ):
        self.rater, self.name = rater, "terminal"
        self._ask, self._show = ask or _rich_ask, show

    def __call__(self, round_id: str, options: Sequence[Option]) -> Choice:
        need_two(round_id, options)
        options = watchable(round_id, options, self._show)
        self._show(f"preference round {round_id}: watch each policy, then pick the best and the worst")
        for k, o in enumerate(options, 1):
            self._show(f"  [{k}] {o.id}: {o.video}")
            if o.video is not None and (gif := _preview(Path(o.video))) is not None:
                self._show(f"      preview: {gif}")
        best = self._pick("best", len(options))
        worst = self._pick("worst", len(options), exclude=best)
        words = clean_text(self._ask("anything to tell the reward writer? (enter to skip)"), multiline=True)
        return Choice(
            round=round_id,
            candidates=tuple(o.id for o in options),
            best=options[best - 1].id,
            worst=options[worst - 1].id,
            words=words,
            judge=self.name,
            rater=clean_text(self.rater),
        )

    def close(self) -> None:
        pass

    def _pick(self, what: str, n: int, exclude: int | None = None) -> int:
        while True:
            answer = self._ask(f"the {what} policy (1-{n})").strip()
            if answer.isdigit() and 1 <= int(answer) <= n and int(answer) != exclude:
                return int(answer)
            why = "the best and the worst must differ" if answer.isdigit() and int(answer) == exclude else ""
            self._show(f"  answer a number from 1 to {n}" + (f" ({why})" if why else ""))


def _preview(video: Path) -> Path | None:
    """A small GIF of ``video`` beside it (``preview.gif``), for an image viewer or an SSH copy;
    None when it cannot be made."""
    from rewardgen.runs import convert_video

    try:
        return convert_video(video, video.with_name("preview.gif"), width=240, fps=10)
    except RewardgenError:
        return None


def _rich_ask(question: str) -> str:
    from rich.prompt import Prompt

    return Prompt.ask(question, default="", show_default=False)


def _web_judge(options: dict[str, str], seed: int, run: Path | None, goal: str) -> Judge:
    from rewardgen.feedback.web import WebJudge

    if run is None:
        raise RewardgenError("the web judge serves a run's page: it needs the run directory")
    port = options.get("port", "8765")
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise RewardgenError(f"port must be a number from 0 to 65535, got {port!r}")
    raters = [r for r in options.get("raters", "").split("+") if r]
    if raters and len(raters) == 1 and raters[0].isdigit():  # raters=3: rater1 .. rater3
        raters = [f"rater{k}" for k in range(1, int(raters[0]) + 1)]
    numbers = {}
    for key in ("quorum", "wait"):
        if key in options:
            try:
                numbers[key] = float(options[key])
            except ValueError:
                raise RewardgenError(f"{key} must be a number, got {options[key]!r}") from None
    if numbers and not raters:
        raise RewardgenError("quorum= and wait= are for a room of raters: add raters=ana+bob")
    return WebJudge(
        run,
        host=options.get("host", "127.0.0.1"),
        port=int(port),
        goal=goal,
        raters=raters,
        quorum=int(numbers["quorum"]) if "quorum" in numbers else None,
        wait_s=numbers.get("wait"),
    )


def _terminal_judge(options: dict[str, str], seed: int, run: Path | None, goal: str) -> Judge:
    return TerminalJudge(rater=options.get("rater", ""))


def _synthetic_judge(options: dict[str, str], seed: int, run: Path | None, goal: str) -> Judge:
    try:
        noise = float(options.get("noise", 0.0))
    except ValueError:
        raise RewardgenError(f"noise must be a number, got {options['noise']!r}") from None
    if "taste" in options and "by" in options:
        raise RewardgenError("a synthetic judge ranks by= a number or by its taste=, not both")
    return SyntheticJudge(
        by=options.get("by", "score"),
        noise=noise,
        seed=seed,
        taste=options.get("taste"),
        rater=options.get("rater", ""),
    )


@dataclass(frozen=True)
class JudgeKind:
    """One kind of judge: the options its command-line form takes and how it is made from them
    (with the seed, the run directory and the goal)."""

    name: str
    options: tuple[str, ...]
    make: Callable[[dict[str, str], int, Path | None, str], Judge]
    summary: str


#: The judges by name, as ``--judge NAME[:key=value,...]`` chooses them.
JUDGES: dict[str, JudgeKind] = {
    k.name: k
    for k in (
        JudgeKind(
            "synthetic",
            ("by", "noise", "taste", "rater"),
            _synthetic_judge,
            "ranks by a metric or a taste (taste=x_velocity, taste=-ctrl), optionally noisy",
        ),
        JudgeKind("terminal", ("rater",), _terminal_judge, "a person at a terminal, with GIF previews"),
        JudgeKind(
            "web",
            ("host", "port", "raters", "quorum", "wait"),
            _web_judge,
            "a person at the preference page, or a room of raters (raters=ana+bob, quorum=, wait= s)",
        ),
    )
}


def make_judge(spec: str, seed: int = 0, run: Path | None = None, goal: str = "") -> Judge:
    """A judge from its command-line form: ``web``, ``web:host=0.0.0.0,port=8800``, ``terminal``,
    ``terminal:rater=NAME``, ``synthetic``, ``synthetic:noise=0.1``,
    ``synthetic:by=env_return,noise=0.2`` or a rater with a taste, ``synthetic:taste=-ctrl``
    (:data:`JUDGES`). The web judge serves the page of the
    run at ``run`` and shows ``goal`` above the videos.

    Example:
        >>> make_judge("synthetic:noise=0.1").name
        'synthetic:score,noise=0.1'
        >>> make_judge("terminal:seat=3")
        Traceback (most recent call last):
        rewardgen.errors.RewardgenError: the terminal judge takes rater=, got ['seat']
    """
    name, _, args = spec.partition(":")
    if name not in JUDGES:
        raise RewardgenError(f"unknown judge {spec!r}: choose one of {', '.join(JUDGES)}")
    options: dict[str, str] = {}
    for part in filter(None, args.split(",")):
        key, sep, value = part.partition("=")
        if not sep:
            raise RewardgenError(f"judge option {part!r} in {spec!r}: write key=value")
        options[key.strip()] = value.strip()
    kind = JUDGES[name]
    unknown = sorted(set(options) - set(kind.options))
    if unknown:
        takes = " and ".join(f"{o}=" for o in kind.options)
        raise RewardgenError(f"the {name} judge takes {takes}, got {unknown}")
    return kind.make(options, seed, run, goal)

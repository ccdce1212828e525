"""ICPL (in-context preference learning): each round a judge compares the policies trained on the
LLM's rewards, and the next prompt learns from the choice.

The search (:mod:`.methods`) gets :func:`icpl_selector` from here: the
:class:`~rewardgen.synthesis.selection.Selector` that asks the judge and writes the feedback; its
``top_up`` has the search ask the LLM again for rewards that were refused or failed, so that the
judge compares K policies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from rewardgen.feedback import Choice, Judge, Option, PreferenceStore, make_judge
from rewardgen.llm import LLMClient
from rewardgen.runs import RunDir
from rewardgen.synthesis.candidate import Candidate, curves, record_videos
from rewardgen.synthesis.config import SearchConfig
from rewardgen.synthesis.executor import Executor
from rewardgen.synthesis.prompts import difference_request, preference_message
from rewardgen.synthesis.selection import MetricSelector, is_trained
from rewardgen.tasks import TaskSpec
from rewardgen.text import plural

__all__ = ["PreferenceSelector", "icpl_selector"]


class PreferenceSelector:
    """ICPL's choice: a judge compares the policies of each round (videos for a person) and picks
    the best and the worst; the answer goes to ``preferences.jsonl`` (a resumed round reuses it).
    The search's best is the latest round's preferred reward: people compare within a round, so
    scores across rounds do not decide. Feedback holds the preferred and the rejected code with
    their reward reflections and the judge's words.

    ``film(cands)`` records the videos a judge that ``needs_videos`` watches and says why any
    could not be filmed; such a policy is left out of the round (a person never judges a black
    tile), and with fewer than two filmed the round asks nobody. ``summarize(text)``
    (one LLM call per round) writes how the preferred and the rejected reward differ; later
    prompts carry that history (kept as ``difference.md`` in each round's folder).
    """

    top_up = True  # the judge compares K policies: a round asks again for those that did not train

    def __init__(
        self,
        judge: Judge,
        store: PreferenceStore,
        film: Callable[[list[Candidate]], dict[Path, str]] | None = None,
        summarize: Callable[[str], str] | None = None,
        log: Callable[[str], None] = print,
    ):
        self.judge, self.store, self.film, self.summarize, self.log = judge, store, film, summarize, log
        self.last: tuple[Choice, dict[str, Candidate]] | None = None
        self.rounds: list[tuple[str, Candidate, Candidate | None]] = []  # (round, preferred, rejected)

    def select(self, task: TaskSpec, round_id: str, round_cands: Sequence[Candidate]) -> Candidate | None:
        trained = [c for c in round_cands if is_trained(c) and c.path is not None]
        self.last = None
        if len(trained) < 2:  # nothing to compare: the one that trained, if any
            return trained[0] if trained else None
        by_id = {c.path.name: c for c in trained}  # type: ignore[union-attr]
        choice = self.store.for_round(round_id)
        if choice is None:
            notes = self.film(trained) if self.judge.needs_videos and self.film is not None else {}
            options = [_option(c, notes.get(c.path, "")) for c in trained]  # type: ignore[arg-type]
            if self.judge.needs_videos and sum(o.has_video for o in options) < 2:
                filmed = [c for c, o in zip(trained, options, strict=True) if o.has_video]
                self.log(
                    f"  round {round_id}: {len(filmed)} of {len(trained)} policies could be filmed, "
                    "too few to ask the judge; the round's best is the one with the best success metric"
                )
                return max(filmed or trained, key=lambda c: c.score if c.score is not None else float("-inf"))
            choice = self.judge(round_id, options)
            if self.store.for_round(round_id) is None:  # the web page writes its answers itself
                self.store.add(choice)
        self.last = (choice, by_id)
        self.rounds.append((round_id, by_id[choice.best], by_id.get(choice.worst or "")))
        return by_id[choice.best]

    def close(self) -> None:
        """Stop what the judge runs (the web page's server)."""
        self.judge.close()

    def history(self) -> list[tuple[str, str]]:
        """How the preferred and the rejected reward differed in each round before the latest,
        asked of the LLM once per round (when a later prompt first needs it)."""
        out = []
        for round_id, preferred, rejected in self.rounds[:-1]:
            if self.summarize is None or rejected is None or preferred.path is None:
                continue
            saved = preferred.path.parent / "difference.md"
            if not saved.is_file():
                text = self.summarize(difference_request(preferred.code or "", rejected.code or ""))
                saved.write_text(text.strip() + "\n")
            out.append((round_id, saved.read_text().strip()))
        return out

    def keep(self, best: Candidate | None, round_best: Candidate | None) -> Candidate | None:
        return round_best if round_best is not None else best

    def feedback(
        self, task: TaskSpec, round_cands: Sequence[Candidate], best: Candidate | None
    ) -> dict[str, str]:
        if self.last is None:  # fewer than two policies to compare: Eureka's feedback
            return MetricSelector().feedback(task, round_cands, best)
        choice, by_id = self.last
        preferred = by_id[choice.best]
        rejected = by_id[choice.worst] if choice.worst is not None else None
        shown = [c for c in (preferred, rejected) if c is not None]
        failures = [c for c in round_cands if c.status != "trained"]
        return preference_message(
            task,
            preferred,
            rejected,
            choice.words,
            {c.path.name: curves(c) for c in shown},  # type: ignore[union-attr]
            failures,
            self.history(),  # the rounds before this one: this one is shown in full
        )


def _option(c: Candidate, note: str = "") -> Option:
    assert c.path is not None
    video = c.path / "train" / RunDir.VIDEO
    return Option(
        id=c.path.name,
        video=video if video.is_file() else None,
        score=c.score,
        env_return=c.eval.env_return_mean if c.eval is not None else None,
        note=note,
    )


def icpl_selector(
    config: SearchConfig,
    task: TaskSpec,
    run: RunDir,
    executor: Executor,
    client: LLMClient,
    log: Callable[[str], None],
) -> PreferenceSelector:
    """The search's ICPL selector: ``config.judge``, answers in ``preferences.jsonl``, videos filmed
    by the search's executor, the history summaries written by ``client``."""

    def film(cands: list[Candidate]) -> dict[Path, str]:
        log(f"  filming {plural(len(cands), 'policy', 'policies')} for the judge")
        filming = dataclasses.replace(config, videos=len(cands))
        failed = record_videos(task, cands, filming, executor, log=log)
        if failed:  # a loaded machine can cut a film short: one more try, each with a fresh budget
            log(f"  filming {len(failed)} of them again")
            again = [c for c in cands if c.path in failed]
            failed = record_videos(
                task, again, dataclasses.replace(filming, videos=len(again)), executor, log=log
            )
        return failed

    def summarize(text: str) -> str:
        return client.complete([{"role": "user", "content": text}], n=1, temperature=0.0)[0].text

    judge = make_judge(config.judge, seed=config.seed, run=run.path, goal=config.goal or task.goal)
    return PreferenceSelector(judge, PreferenceStore(run.file("preferences.jsonl")), film, summarize, log)

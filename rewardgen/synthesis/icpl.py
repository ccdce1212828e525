"""ICPL (in-context preference learning): each round a judge compares the policies trained on the
LLM's rewards, and the next prompt learns from the choice.

The search (:mod:`.methods`) gets :func:`icpl_selector` from here: the
:class:`~rewardgen.synthesis.selection.Selector` that asks the judge and writes the feedback; its
``top_up`` has the search ask the LLM again for rewards that were refused or failed, so that the
judge compares K policies.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rewardgen.errors import RewardgenError
from rewardgen.feedback import Choice, Judge, Option, PreferenceStore
from rewardgen.feedback.room import make_room, rater_answers, rater_slug, raters, tastes_of
from rewardgen.llm import LLMClient
from rewardgen.runs import RunDir
from rewardgen.synthesis.candidate import Candidate, curves, record_videos
from rewardgen.synthesis.config import SearchConfig
from rewardgen.synthesis.executor import Executor
from rewardgen.synthesis.prompts import difference_request, preference_message
from rewardgen.synthesis.selection import MetricSelector, is_trained
from rewardgen.tasks import TaskSpec
from rewardgen.text import plural

__all__ = ["FOLLOW", "PreferenceSelector", "icpl_selector", "measure_policies"]

#: What the next prompts follow with a room of raters: the room's answer (one reward lineage) or
#: each rater's (a lineage per rater, so the search ends with a reward per taste).
FOLLOW = ("room", "each")


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
        measure: Callable[[list[Candidate], list[str]], dict[Path, dict[str, float]]] | None = None,
        follow: str = "room",
    ):
        self.judge, self.store, self.film, self.summarize, self.log = judge, store, film, summarize, log
        self.measure = measure
        if follow not in FOLLOW:
            raise RewardgenError(f"follow must be one of {', '.join(FOLLOW)}, got {follow!r}")
        self.raters = raters(judge)
        if follow == "each" and len(self.raters) < 2:
            raise RewardgenError(
                "--follow each needs a room of raters: repeat --judge (synthetic:taste=x_velocity "
                "--judge synthetic:taste=-x_velocity) or seat them at the page (web:raters=ana+bob)"
            )
        self.lineages = self.raters if follow == "each" else ()
        self.last: tuple[Choice, dict[str, Candidate], list[Choice]] | None = None
        # (round, preferred, rejected), the room's ("") and each rater's
        self.rounds: dict[str, list[tuple[str, Candidate, Candidate | None]]] = {}
        self.followed: dict[str, Candidate] = {}  # each rater's latest preferred reward

    def select(self, task: TaskSpec, round_id: str, round_cands: Sequence[Candidate]) -> Candidate | None:
        trained = [c for c in round_cands if is_trained(c) and c.path is not None]
        self.last = None
        if len(trained) < 2:  # nothing to compare: the one that trained, if any
            return trained[0] if trained else None
        by_id = {c.path.name: c for c in trained}  # type: ignore[union-attr]
        choice = self.store.for_round(round_id)
        if choice is None:
            notes = self.film(trained) if self.judge.needs_videos and self.film is not None else {}
            tastes = [t.measure_name for t in tastes_of(self.judge)]
            measured = self.measure(trained, tastes) if tastes and self.measure is not None else {}
            options = [_option(c, notes.get(c.path, ""), measured.get(c.path)) for c in trained]  # type: ignore[arg-type]
            usable = [o.has_video or not self.judge.needs_videos for o in options]
            if tastes:  # a policy that could not be measured is left out, as one not filmed is
                usable = [u and bool(o.measures) for u, o in zip(usable, options, strict=True)]
            if sum(usable) < 2:
                kept = [c for c, u in zip(trained, usable, strict=True) if u]
                self.log(
                    f"  round {round_id}: {len(kept)} of {len(trained)} policies could be "
                    f"{'measured' if tastes else 'filmed'}, too few to ask the judge; the round's best "
                    "is the one with the best success metric"
                )
                return max(kept or trained, key=lambda c: c.score if c.score is not None else float("-inf"))
            # a person is told why a policy has no video; a taste cannot rank one without measures
            choice = self.judge(round_id, [o for o in options if o.measures or not tastes])
            if self.store.for_round(round_id) is None:  # the web page writes its answers itself
                self.store.add(choice)
        answers = [a for a in rater_answers(self.judge, round_id) if a.best in by_id]
        self.last = (choice, by_id, answers)
        for who, said in [("", choice)] + [(a.rater, a) for a in answers]:
            picked = (round_id, by_id[said.best], by_id.get(said.worst or ""))
            self.rounds.setdefault(who, []).append(picked)
            if who:
                self.followed[who] = by_id[said.best]
        return by_id[choice.best]

    def preferred_by(self) -> dict[str, Candidate]:
        return {r: self.followed[r] for r in self.raters if r in self.followed}

    def close(self) -> None:
        """Stop what the judge runs (the web page's server)."""
        self.judge.close()

    def history(self, rater: str = "") -> list[tuple[str, str]]:
        """How the preferred and the rejected reward differed in each round before the latest (the
        room's, or ``rater``'s), asked of the LLM once per round (when a later prompt first needs it)."""
        out = []
        for round_id, preferred, rejected in self.rounds.get(rater, [])[:-1]:
            if self.summarize is None or rejected is None or preferred.path is None:
                continue
            saved = preferred.path.parent / (
                "difference.md" if not rater else f"difference-{rater_slug(rater)}.md"
            )
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
        choice, by_id, answers = self.last
        return self._message(task, round_cands, choice, by_id, answers)

    def lineage_feedback(
        self, task: TaskSpec, round_cands: Sequence[Candidate], best: Candidate | None
    ) -> dict[str, dict[str, str]]:
        """Each rater's next prompt: their own preferred and rejected reward, words and history (a
        rater who did not answer this round gets the room's choice)."""
        if self.last is None:
            same = MetricSelector().feedback(task, round_cands, best)
            return {rater: same for rater in self.lineages}
        choice, by_id, answers = self.last
        said = {a.rater: a for a in answers}
        return {
            rater: self._message(
                task, round_cands, said.get(rater, choice), by_id, (), rater if rater in said else ""
            )
            for rater in self.lineages
        }

    def _message(
        self,
        task: TaskSpec,
        round_cands: Sequence[Candidate],
        choice: Choice,
        by_id: dict[str, Candidate],
        answers: Sequence[Choice],
        rater: str = "",
    ) -> dict[str, str]:
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
            self.history(rater),  # the rounds before this one: this one is shown in full
            raters=answers,
            rater=rater,
        )


def _option(c: Candidate, note: str = "", measures: dict[str, float] | None = None) -> Option:
    assert c.path is not None
    video = c.path / "train" / RunDir.VIDEO
    return Option(
        id=c.path.name,
        video=video if video.is_file() else None,
        score=c.score,
        env_return=c.eval.env_return_mean if c.eval is not None else None,
        note=note,
        measures=measures or {},
    )


def measure_policies(
    task: TaskSpec, cands: list[Candidate], names: list[str], config: SearchConfig, executor: Executor
) -> dict[Path, dict[str, float]]:
    """Each trained policy's measures (``names``: info fields or ``ctrl``, each summed over an
    episode, the mean over ``config.eval_episodes``), for raters who judge by a taste; kept in its
    folder's ``measures.json``. A policy that cannot be measured is left without them."""
    todo = [c for c in cands if c.path is not None and not _measured(c.path, names)]
    jobs = [(task, c.path, sorted(set(names)), config) for c in todo]
    for c, result in zip(todo, executor.map(_measure, jobs, folders=[[c.path] for c in todo]), strict=True):
        if not isinstance(result, BaseException):
            (c.path / MEASURES).write_text(json.dumps(result))  # type: ignore[operator]
    return {c.path: m for c in cands if c.path is not None and (m := _measured(c.path, names))}


MEASURES = "measures.json"


def _measured(folder: Path, names: list[str]) -> dict[str, float] | None:
    file = folder / MEASURES
    kept = json.loads(file.read_text()) if file.is_file() else {}
    return kept if set(names) <= set(kept) else None


def _measure(task: TaskSpec, folder: Path, names: list[str], config: SearchConfig) -> dict[str, float]:
    from rewardgen.feedback.tastes import Measures
    from rewardgen.training import evaluate

    result = evaluate(
        folder / "train", task, Measures(names), episodes=config.eval_episodes, video=False,
        seed=config.seed + 30_000, eval_file=None,
    )  # fmt: skip
    return {n: float(np.mean([ep.components[n] for ep in result.episodes])) for n in names}


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

    def measure(cands: list[Candidate], names: list[str]) -> dict[Path, dict[str, float]]:
        log(
            f"  measuring {plural(len(cands), 'policy', 'policies')} for the raters' tastes "
            f"({', '.join(names)})"
        )
        return measure_policies(task, cands, names, config, executor)

    judge = make_room(config.judge, seed=config.seed, run=run.path, goal=config.goal or task.goal)
    store = PreferenceStore(run.file("preferences.jsonl"))
    try:
        return PreferenceSelector(judge, store, film, summarize, log, measure, config.follow)
    except RewardgenError:
        judge.close()
        raise

"""The annotation service: a process of its own that labels the messages the env workers report.

Workers only write new messages into the label store (:class:`~rewardgen.oni.store.LabelStore`)
and read labels back; they never talk to the LLM, so the agent never waits for it. The service
claims pending messages newest first (a message already labelled or in flight is never claimed
twice: each unique message reaches the LLM once), asks the LLM about a batch at a time through
:mod:`rewardgen.llm` (any OpenAI-compatible endpoint: OpenAI, a vLLM or Ollama server), and writes
the labels. When the LLM cannot be reached the batch goes back to pending and the service waits
and tries again (a warning at most once a minute); answers it cannot parse are retried a bounded
number of times, then recorded as failed with the reason; the backlog of pending messages is
bounded. :class:`AnnotationService` runs it in a spawned process and restarts it if it dies.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from rewardgen.errors import RewardgenError
from rewardgen.llm import BudgetExceededError, LLMClient, LLMError, LLMSettings
from rewardgen.oni.prompts import compare_messages, label_messages, parse_labels, parse_preferences
from rewardgen.oni.store import LabelStore

__all__ = [
    "AnnotationService",
    "ServiceConfig",
    "annotate_once",
    "compare_once",
    "refit_classifier",
    "refit_ranking",
    "serve",
]


@dataclass
class ServiceConfig:
    """How the service batches and retries."""

    batch_size: int = 32  # messages per LLM call
    max_pending: int = 10_000  # the backlog bound: older pending messages are dropped beyond it
    max_attempts: int = 3  # unparseable answers before a message is recorded as failed
    poll_s: float = 0.2  # wait between looks at an empty queue
    retry_s: float = 2.0  # wait after the LLM could not be reached
    warn_every_s: float = 60.0
    classifier: bool = False  # refit and publish the classification reward model as labels arrive
    ranking: bool = False  # ask pairwise preferences too; refit and publish the ranking model
    retrain_every: int = 32  # new labels (or preferences) between refits
    pairs_per_message: float = 2.0  # ranking: compare at most this many pairs per reported message

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_pending", "max_attempts", "retrain_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise RewardgenError(f"{name.replace('_', '-')} must be a whole number >= 1, got {value!r}")
        for name in ("poll_s", "retry_s", "warn_every_s", "pairs_per_message"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0:
                raise RewardgenError(f"{name.replace('_', '-')} must be a number > 0, got {value!r}")


def compare_once(store: LabelStore, client: LLMClient, config: ServiceConfig) -> int:
    """Ask the LLM's preferences for one batch of message pairs never compared; returns the
    pairs answered. An unreachable LLM raises :class:`~rewardgen.llm.LLMError` (nothing stored)."""
    room = int(config.pairs_per_message * sum(store.counts().values())) - store.preference_count()
    if room <= 0:
        return 0  # enough comparisons for the messages there are: wait for new ones
    pairs = store.pairs_to_compare(min(config.batch_size, room))
    if not pairs:
        return 0
    answer = client.complete(compare_messages(store.key.goal, pairs), temperature=0.0)[0].text
    prefs = parse_preferences(answer, len(pairs))
    store.put_preferences({pairs[i]: p for i, p in prefs.items()})
    return len(prefs)


def refit_ranking(store: LabelStore, config: ServiceConfig) -> int | None:
    """Refit the Bradley-Terry ranking model on all preferences when ``retrain_every`` new ones
    arrived since the published version; returns the new version, if any."""
    from rewardgen.oni.classifier import fit_ranking, save_classifier

    if store.preference_count() - store.trained_on("ranking") < config.retrain_every:
        return None  # checked with two counts: the service asks every loop
    prefs = store.preferences()
    pairs = sorted(prefs)
    model = fit_ranking(pairs, [prefs[p] for p in pairs])
    return store.publish("ranking", save_classifier(model), len(prefs))


def refit_classifier(store: LabelStore, config: ServiceConfig) -> int | None:
    """Refit the classification model on all labels when ``retrain_every`` new ones arrived since
    the published version (and both kinds of label exist); returns the new version, if any."""
    from rewardgen.oni.classifier import fit_classifier, save_classifier

    if store.counts().get("labelled", 0) - store.trained_on("classification") < config.retrain_every:
        return None  # checked with counts: the service asks every loop
    labels = store.labels()
    if len(set(labels.values())) < 2:
        return None
    messages = sorted(labels)
    clf = fit_classifier(messages, [labels[m] for m in messages])
    return store.publish("classification", save_classifier(clf), len(labels))


class _Warner:
    def __init__(self, every_s: float):
        self.every_s, self.last = every_s, -float("inf")

    def __call__(self, text: str) -> None:
        if time.monotonic() - self.last >= self.every_s:
            self.last = time.monotonic()
            print(f"rewardgen annotation service: {text}", file=sys.stderr, flush=True)


def annotate_once(store: LabelStore, client: LLMClient, config: ServiceConfig, warn: Any = None) -> int:
    """Claim and label one batch; returns the messages claimed (0: nothing pending). Raises
    :class:`~rewardgen.llm.LLMError` after putting the batch back when the LLM is unreachable."""
    store.trim(config.max_pending)
    batch = store.claim(config.batch_size)
    if not batch:
        return 0
    try:
        answer = client.complete(label_messages(store.key.goal, batch), temperature=0.0)[0].text
    except BaseException:  # unreachable, or stopped: the batch waits for the next try
        store.release(batch)
        raise
    labels = parse_labels(answer, len(batch))
    if not labels and len(batch) > 1:  # nothing usable at all: the model misbehaves, not the messages
        store.release(batch)
        tail = answer.strip().replace("\n", " ")[-120:]
        raise GarbageAnswer(f"an answer gave no label for any of {len(batch)} messages (it ended: {tail!r})")
    store.put_labels({batch[i]: v for i, v in labels.items()})
    missing = [m for i, m in enumerate(batch) if i not in labels]
    if missing:
        tail = answer.strip().replace("\n", " ")[-160:]
        store.fail(missing, f"the answer gave no label for it (it ended: {tail!r})", config.max_attempts)
        if warn is not None:
            warn(f"{len(missing)} of {len(batch)} messages got no label in an answer; they are asked again")
    return len(batch)


class GarbageAnswer(LLMError):
    """An answer that labelled none of a batch: a spell of a misbehaving model, charged to no message."""


class _HangWatch:
    """Warns (through ``warn``, at most once a minute) while a call to the LLM has gone unanswered
    for ``every_s``: a hung server is said while the client still waits and retries."""

    def __init__(self, warn: Any, endpoint: str, every_s: float):
        self.warn, self.endpoint, self.every_s = warn, endpoint, every_s
        self.since: float | None = None
        threading.Thread(target=self._loop, name="rewardgen-llm-hang-watch", daemon=True).start()

    def _loop(self) -> None:
        while True:
            time.sleep(min(1.0, self.every_s / 4))
            since = self.since
            if since is not None and time.monotonic() - since >= self.every_s:
                waited = time.monotonic() - since
                self.warn(f"the LLM at {self.endpoint} has not answered for {waited:.0f} s; still waiting")

    def __enter__(self) -> None:
        self.since = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.since = None


def serve(
    store: LabelStore,
    settings: LLMSettings,
    config: ServiceConfig,
    transcript: str | None = None,
    parent: int | None = None,
) -> None:
    """The service's loop (runs until killed, or until ``parent``, the training process, is gone:
    no annotation service asks the LLM for a run that was killed)."""
    if parent is not None:
        from rewardgen.runs.processes import exit_with_parent

        exit_with_parent(parent)
    warn = _Warner(config.warn_every_s)
    recovered = store.recover()  # what a dead predecessor had in flight
    if recovered:
        warn(f"{recovered} messages left in flight by a previous service are pending again")
    client = LLMClient(settings, transcript=transcript)
    waiting = _HangWatch(warn, settings.endpoint, config.warn_every_s)
    while True:
        try:
            with waiting:
                done = annotate_once(store, client, config, warn)
                if config.ranking:
                    done += compare_once(store, client, config)
        except BudgetExceededError as exc:
            warn(f"labelling stops: {exc}; training goes on with the labels there are")
            return  # a clean exit: the watcher does not restart it
        except GarbageAnswer as exc:
            warn(f"{exc}; the batch waits and is asked again (no message is charged for it)")
            time.sleep(config.retry_s)
            continue
        except LLMError as exc:
            warn(f"the LLM at {settings.endpoint} cannot be reached ({exc}); messages wait, unlabelled")
            time.sleep(config.retry_s)
            continue
        if config.classifier:
            refit_classifier(store, config)
        if config.ranking:
            refit_ranking(store, config)
        if not done:
            time.sleep(config.poll_s)


class AnnotationService:
    """The annotation service in its own (spawned) process, watched from this one: if the process
    dies it is started again (what it had in flight goes back to pending; labels are in the store).

    Example:
        >>> settings = LLMSettings(base_url="http://localhost:8000/v1", model="m")  # doctest: +SKIP
        >>> with AnnotationService(store, settings):  # doctest: +SKIP
        ...     train(...)  # workers report messages to `store` and read its labels
    """

    def __init__(
        self,
        store: LabelStore,
        settings: LLMSettings,
        config: ServiceConfig | None = None,
        transcript: str | None = None,
        watch_s: float = 1.0,
        max_restarts: int = 5,
    ):
        self.store, self.settings = store, settings.model_copy(update={"cache": False})
        self.config, self.transcript, self.watch_s = config or ServiceConfig(), transcript, watch_s
        self.max_restarts = max_restarts
        self.process: Any = None
        self.restarts = 0
        self.gave_up = False
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def _spawn(self) -> None:
        ctx = mp.get_context("spawn")
        self.process = ctx.Process(
            target=serve,
            args=(self.store, self.settings, self.config, self.transcript, os.getpid()),
            name="rewardgen-annotation",
            daemon=True,
        )
        self.process.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.watch_s):
            if self.process is not None and not self.process.is_alive() and self.process.exitcode != 0:
                if self.restarts >= self.max_restarts:
                    self.gave_up = True
                    print(
                        f"rewardgen: the annotation service stopped {self.restarts + 1} times (last exit "
                        f"code {self.process.exitcode}); it is not started again: training goes on with "
                        "the labels there are (its errors are above)",
                        file=sys.stderr,
                        flush=True,
                    )
                    return
                self.restarts += 1
                print(
                    f"rewardgen: the annotation service stopped (exit code {self.process.exitcode}); "
                    f"starting it again (restart {self.restarts})",
                    file=sys.stderr,
                    flush=True,
                )
                self._spawn()

    def start(self) -> AnnotationService:
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="rewardgen-annotation-watch", daemon=True)
        self._watcher.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
        if self.process is not None and self.process.is_alive():
            self.process.terminate()
            self.process.join(5)

    def __enter__(self) -> AnnotationService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

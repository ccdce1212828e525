"""ONI's intrinsic reward as a :class:`~rewardgen.rewards.RewardFn`, built in every env worker.

Retrieval (ONI's simplest reward model): ``r_int = 1`` if the LLM labelled the step's message
helpful, else 0 (unknown and unlabelled messages too), divided by ``N(msg) ** beta`` where
``N`` counts that message in the current episode (beta 3: a message pays once, not every step
it is repeated). The env's reward is added by the wrapper: ``r = c_ext * r_ext + c_int * r_int``
(``mode="add"``, ``env_coef=c_ext``, ``reward_coef=c_int``).

Each worker reports messages it has not seen before to the label store and reads new labels
from it every ``sync_s`` seconds, between steps, never waiting for the LLM: a busy store is
retried at the next sync.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from typing import Any

import numpy as np

from rewardgen.oni.store import LabelKey, LabelStore
from rewardgen.rewards import RewardFn, RewardOutput, RewardSpec
from rewardgen.tasks.nethack import decode_message

__all__ = ["REWARD_MODELS", "ClassificationReward", "OniSpec", "RankingReward", "RetrievalReward"]

#: the label coverage (1 where the step's message has a label): logged for people, never paid
LOGGED = frozenset({"labelled"})
#: ONI's weights of the env's own reward and of the intrinsic one (c_ext, c_int)
C_EXT, C_INT = 0.1, 0.4


class RetrievalReward(RewardFn):
    """The LLM's label of each step's message (1 helpful, else 0) over ``N(msg) ** beta``.

    Components: ``intrinsic`` (the reward) and ``labelled`` (1 where the step's message has a
    label: the label coverage, logged, not paid).

    Example:
        >>> store = LabelStore("labels.sqlite", LabelKey("default", "1", "m"))  # doctest: +SKIP
        >>> reward = RetrievalReward(store, beta=3.0)  # doctest: +SKIP
    """

    fields = frozenset({"message"})

    def __init__(self, store: LabelStore, beta: float = 3.0, sync_s: float = 1.0):
        self.store, self.beta, self.sync_s = store, float(beta), float(sync_s)
        self.known: dict[str, int] = {}
        self._texts: dict[bytes, str] = {}
        self._counts: list[Counter] = []
        self._unsent: set[str] = set()
        self._sent: set[str] = set()
        self._synced_at, self._since = -float("inf"), 0.0

    def __getstate__(self) -> dict[str, Any]:  # a fresh cache wherever it is built
        return {"store": self.store, "beta": self.beta, "sync_s": self.sync_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def _text(self, row: np.ndarray) -> str:
        raw = row.tobytes()
        text = self._texts.get(raw)
        if text is None:
            text = decode_message(raw)
            if len(self._texts) < 100_000:
                self._texts[raw] = text
        return text

    def sync(self, force: bool = False) -> None:
        """Report new messages and read new labels (at most every ``sync_s`` unless ``force``)."""
        now = time.monotonic()
        if not force and now - self._synced_at < self.sync_s:
            return
        self._synced_at = now
        try:
            if self._unsent:
                self.store.submit(self._unsent)
                self._sent |= self._unsent
                self._unsent = set()
            started = time.time()
            self.known.update(self.store.labels(since=self._since))
            self._since = started - 1.0  # overlap: a label committed while we read is read again
        except sqlite3.OperationalError:
            pass  # the store is busy: the next sync tries again; the agent does not wait

    def values(self, texts: list[str]) -> list[float | None]:
        """The reward model's value of each (non-empty) message, None where it has none."""
        return [None if not t else self.known.get(t) for t in texts]

    def compute(self, batch: Any) -> RewardOutput:
        self.sync()  # labels that arrived, before scoring; new messages go out at the next sync
        messages = np.asarray(batch.info["message"], dtype=np.uint8)
        n = len(messages)
        while len(self._counts) < n:
            self._counts.append(Counter())
        texts = [self._text(m) for m in messages]
        reward, labelled = np.zeros(n), np.zeros(n)
        for i, (text, value) in enumerate(zip(texts, self.values(texts), strict=True)):
            if not text:
                continue
            self._counts[i][text] += 1
            if text in self.known:
                labelled[i] = 1.0
            elif text not in self._sent:
                self._unsent.add(text)
            if value is not None:
                reward[i] = value / self._counts[i][text] ** self.beta
        return RewardOutput(
            total=reward, components={"intrinsic": reward, "labelled": labelled}, logged=LOGGED
        )

    def reset(self, env_indices: np.ndarray) -> None:
        for i in np.atleast_1d(env_indices):
            if int(i) < len(self._counts):
                self._counts[int(i)].clear()

    def close(self) -> None:
        self.sync(force=True)
        self.store.close()


class ClassificationReward(RetrievalReward):
    """ONI's classification reward: ``1[p(helpful | message) > 0.5]`` from the newest published
    character-level classifier (:mod:`rewardgen.oni.classifier`), over ``N(msg) ** beta``.
    Messages are classified in one batch at each sync, not in the step: until its prediction (and
    before the first model is published) a message gets its LLM label, if any, as retrieval does.
    Predictions are cached per message and model version; a new version is picked up at the next
    sync, without a restart.
    """

    kind = "classification"

    def __init__(self, store: LabelStore, beta: float = 3.0, sync_s: float = 1.0):
        super().__init__(store, beta, sync_s)
        self.version, self._clf = 0, None
        self._predicted: dict[str, float] = {}
        self._to_predict: set[str] = set()

    def evaluate(self, messages: list[str]) -> None:
        """Predict ``messages`` with the current model into the cache."""
        assert self._clf is not None
        self._predicted.update(zip(messages, (self._clf.predict(messages) > 0.5).astype(float), strict=True))

    def sync(self, force: bool = False) -> None:
        due = force or time.monotonic() - self._synced_at >= self.sync_s
        super().sync(force)
        if not due:
            return
        try:
            latest = self.store.latest(self.kind, newer_than=self.version)
        except sqlite3.OperationalError:
            latest = None
        if latest is not None:
            from rewardgen.oni.classifier import load_classifier

            self.version, self._clf = latest[0], load_classifier(latest[1])
            self._to_predict |= set(self._predicted)  # everything seen, again with the new model
            self._predicted = {}
        if self._clf is not None and self._to_predict:
            self.evaluate(sorted(self._to_predict))
            self._to_predict = set()

    def values(self, texts: list[str]) -> list[float | None]:
        out: list[float | None] = []
        for t in texts:
            value = self._predicted.get(t) if t else None
            if value is None and t:
                self._to_predict.add(t)
                value = self.known.get(t)
            out.append(value)
        return out


class RankingReward(ClassificationReward):
    """ONI's (and Motif's) ranking reward: a Bradley-Terry model's score of the message,
    normalized over the messages this worker has seen (``z = (r - mean) / std``) and paid above
    the ``quantile`` of those: ``1[z > z_q] * z``, over ``N(msg) ** beta``. The normalized score is
    what is paid (the original code computed it and paid the raw one). Before the first model:
    the LLM's labels, as retrieval.
    """

    kind = "ranking"

    def __init__(self, store: LabelStore, beta: float = 3.0, sync_s: float = 1.0, quantile: float = 0.5):
        super().__init__(store, beta, sync_s)
        self.quantile = quantile
        self._raw: dict[str, float] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "quantile": self.quantile}

    def evaluate(self, messages: list[str]) -> None:
        assert self._clf is not None
        if not self._predicted:  # a new model: the old scores are another scale
            self._raw = {}
        self._raw.update(zip(messages, self._clf.scores(messages), strict=True))
        raw = np.fromiter(self._raw.values(), float)
        z = (raw - raw.mean()) / (raw.std() + 1e-8)
        cut = np.quantile(z, self.quantile)
        self._predicted = {m: float(v) if v > cut else 0.0 for m, v in zip(self._raw, z, strict=True)}


class OniSpec(RewardSpec):
    """The spec of ONI's intrinsic reward: the label store, what it labels (goal, prompt version,
    model) and the reward model; each env worker builds its own reward from it.

    Example:
        >>> spec = OniSpec("labels.sqlite", goal="gold", model="llama-3.1-8b")
        >>> spec.describe()["goal"]
        'gold'
    """

    return_label = "intrinsic return"
    logged_components = LOGGED

    def __init__(
        self,
        store_path: Any,
        goal: str = "default",
        model: str = "gpt-4o-mini",
        reward: str = "retrieval",
        beta: float = 3.0,
        prompt_version: str | None = None,
        sync_s: float = 1.0,
    ):
        from rewardgen.errors import RewardgenError
        from rewardgen.oni.prompts import GOALS, PROMPT_VERSION

        if goal not in GOALS:
            raise RewardgenError(f"unknown ONI goal '{goal}': choose one of {', '.join(GOALS)}")
        if reward not in REWARD_MODELS:
            raise RewardgenError(
                f"unknown ONI reward model '{reward}': choose one of {', '.join(REWARD_MODELS)}"
            )
        import math

        if not (isinstance(beta, int | float) and math.isfinite(beta) and beta >= 0):
            raise RewardgenError(
                f"beta must be a number >= 0 (a message repeated N times pays 1/N^beta), got {beta}"
            )
        if not (isinstance(sync_s, int | float) and sync_s > 0):
            raise RewardgenError(f"the label sync interval must be a number of seconds > 0, got {sync_s}")
        self.store_path, self.reward, self.beta, self.sync_s = store_path, reward, beta, sync_s
        self.key = LabelKey(goal, prompt_version or PROMPT_VERSION, model)

    @property
    def name(self) -> str:
        return f"oni-{self.reward}-{self.key.goal}"

    def store(self) -> LabelStore:
        return LabelStore(self.store_path, self.key)

    def build(self) -> RetrievalReward:
        return REWARD_MODELS[self.reward](self.store(), self.beta, self.sync_s)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "oni",
            "name": self.name,
            "reward": self.reward,
            "goal": self.key.goal,
            "prompt_version": self.key.prompt,
            "model": self.key.model,
            "beta": self.beta,
            "store": str(self.store_path),
        }


#: ONI's reward models by name.
REWARD_MODELS: dict[str, type[RetrievalReward]] = {
    "retrieval": RetrievalReward,
    "classification": ClassificationReward,
    "ranking": RankingReward,
}

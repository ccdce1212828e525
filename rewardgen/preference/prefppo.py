"""PrefPPO (Christiano et al. 2017 with PPO): PPO trains on a reward model that a judge's answers
to comparisons of short trajectory segments keep refitting, while training runs.

Three parts, as in imitation's ``preference_comparisons`` (fragmenter, gatherer, trainer), but
on the rollouts PPO collects anyway, with no second environment loop:

- :class:`SegmentRecorder`, the :class:`~rewardgen.rewards.RewardFn` PPO trains on: it scores with
  the :class:`PreferenceRewardModel` and keeps what it scored; at each rollout's end the rollout is
  cut into segments (:class:`SegmentPool`, never across an episode's end);
- :class:`PreferenceCallback` asks the judge about the pairs the ensemble disagrees on most, on a
  schedule that spends the query budget over the first ``query_fraction`` of training, and
  refits the model on every answer so far; the next rollout is scored by the refitted model;
- the judges are :mod:`rewardgen.feedback`'s: a synthetic judge compares the segments' return
  under the task's reference reward (the "true" reward the person stands for); a person (the web
  page, a terminal) watches two short clips of the current policy, filmed for the query
  (:class:`ClipFilmer`), while training waits for the answer.

Every answer goes to the run's ``preferences.jsonl``; ``prefppo.json`` holds the queries asked,
the model's fit, and how well the learned reward correlates with the reference reward on the
segments seen (a check a real person's run cannot have, and the benchmark's).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.errors import RewardgenError
from rewardgen.feedback import Judge, Option, PreferenceStore
from rewardgen.preference.films import ClipFilmer
from rewardgen.preference.model import PreferenceRewardModel
from rewardgen.preference.segments import SegmentPool, SegmentRecorder
from rewardgen.tasks import TaskSpec, task_ref

__all__ = ["PrefPPOConfig", "PreferenceCallback", "train_prefppo"]


@dataclass
class PrefPPOConfig:
    """A PrefPPO run: ``queries`` comparisons in all, of segments ``segment_length`` steps long."""

    task: str | TaskSpec  # an id, a task YAML, or the resolved TaskSpec
    queries: int = 200
    judge: str = "synthetic"
    steps: int | None = None  # None: the task's default budget
    segment_length: int = 25
    query_fraction: float = 0.5  # ask every query within this share of the training steps
    members: int = 3  # the ensemble
    risk: float = 0.0  # train on mean - risk * std of the members
    fit_epochs: int = 20
    pairs_per_query: int = 10  # disagreement picks each query from this many random pairs
    seed: int = 0
    n_envs: int | None = None
    hyperparams: dict[str, Any] | None = None
    eval_episodes: int = 3
    video: bool = True
    progress: bool = True


class PreferenceCallback:
    """At each rollout's end: cut segments, ask the judge the queries due by now (the pairs the
    ensemble disagrees on most), refit the model on every answer so far. A
    :class:`~rewardgen.training.hooks.RolloutHook`: the back end calls it, whichever it is."""

    def __init__(
        self,
        recorder: SegmentRecorder,
        pool: SegmentPool,
        judge: Judge,
        store: PreferenceStore,
        config: PrefPPOConfig,
        total_steps: int,
        log: Callable[[str], None] = lambda line: None,
        films: ClipFilmer | None = None,
    ):
        self.recorder, self.pool, self.judge, self.store, self.films = recorder, pool, judge, store, films
        self.config, self.total_steps, self.log = config, total_steps, log
        self.answered_a: list[np.ndarray] = []
        self.answered_b: list[np.ndarray] = []
        self.answers: list[float] = []
        self.refs: list[tuple[float, float]] = []
        self.loss: float | None = None

    def due(self, timesteps: int) -> int:
        """Queries that should have been asked after ``timesteps`` steps: a tenth at once, the
        rest evenly over the first ``query_fraction`` of training."""
        budget = self.config.queries
        share = min(1.0, timesteps / max(1.0, self.config.query_fraction * self.total_steps))
        return min(budget, math.ceil(budget * (0.1 + 0.9 * share)))

    def on_rollout_end(self, timesteps: int, act: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        """Keep the rollout's segments; ask the queries due by ``timesteps`` and refit. ``act``
        (observation -> action, the current policy) films fresh clips for a judge who watches."""
        taken = self.recorder.take(self.pool.n_envs)
        if taken is not None:
            self.pool.add(*taken)
        k = self.due(timesteps) - len(self.answers)
        if k <= 0:
            return
        if self.films is not None and act is not None:
            clips = self.films.gather(act, max(4, 2 * k))
            feats, refs = np.stack([c[0] for c in clips]), np.stack([c[1] for c in clips])
            frames: list[list[np.ndarray]] | None = [c[2] for c in clips]
            n = len(clips)
            candidates = np.array([(i, j) for i in range(n) for j in range(i + 1, n)])
        else:
            if len(self.pool) < 2 or self.pool.features is None:
                return
            feats, refs, frames = self.pool.features, self.pool.reference, None
            candidates = self.pool.pairs(k * self.config.pairs_per_query)
        spread = self.recorder.model.disagreement(feats[candidates[:, 0]], feats[candidates[:, 1]])
        for i, j in candidates[np.argsort(-spread, kind="stable")[:k]]:
            self._ask(
                feats[i],
                feats[j],
                float(refs[i].sum()),
                float(refs[j].sum()),
                frames and (frames[i], frames[j]),
            )
        a, b = np.stack(self.answered_a), np.stack(self.answered_b)
        self.loss = self.recorder.model.fit(a, b, np.array(self.answers), self.config.fit_epochs)
        self.log(f"{timesteps:,} steps: {len(self.answers)} answers, model loss {self.loss:.3f}")

    def _ask(
        self,
        feat_a: np.ndarray,
        feat_b: np.ndarray,
        ref_a: float,
        ref_b: float,
        frames: tuple[list[np.ndarray], list[np.ndarray]] | None,
    ) -> None:
        round_id = f"q{len(self.answers)}"
        videos: list[Path | None] = [None, None]
        if frames is not None and self.films is not None:
            videos = [self.films.write(round_id, name, f) for name, f in zip("ab", frames, strict=True)]
        options = [Option("a", video=videos[0], score=ref_a), Option("b", video=videos[1], score=ref_b)]
        choice = self.judge(round_id, options)
        if self.store.for_round(round_id) is None:  # the web page writes its answers itself
            self.store.add(choice)
        self.answered_a.append(feat_a)
        self.answered_b.append(feat_b)
        self.answers.append(1.0 if choice.best == "a" else 0.0)
        self.refs.append((ref_a, ref_b))

    def agreement(self) -> float | None:
        """How often the judge's answers agree with the reference reward (1.0 for a noiseless
        synthetic judge; lower for noise or a person who sees something else)."""
        if not self.answers:
            return None
        ref = np.array([1.0 if a > b else 0.0 if a < b else 0.5 for a, b in self.refs])
        return float(np.mean(np.abs(ref - np.array(self.answers)) < 0.5))

    def correlation(self) -> float | None:
        """Pearson correlation of the learned reward (the members' mean) and the reference reward
        per step, over the segments in the pool."""
        if self.pool.features is None or len(self.pool) < 2:
            return None
        learned = self.recorder.model.predict(self.pool.features).mean(axis=0).ravel()
        ref = self.pool.reference.ravel()
        if learned.std() == 0 or ref.std() == 0:
            return None
        return float(np.corrcoef(learned, ref)[0, 1])

    def on_training_end(self) -> None:
        self.recorder.recording = False  # the final evaluation is not a rollout


def train_prefppo(
    config: PrefPPOConfig, out: str | Path | None = None, log: Callable[[str], None] = lambda line: None
) -> tuple[Any, dict[str, Any]]:
    """Train PPO on a reward learned from ``config.queries`` answers of ``config.judge`` while it
    trains; returns the :class:`~rewardgen.training.TrainResult` and the summary written to
    ``prefppo.json`` in the run directory."""
    from rewardgen.feedback import make_judge
    from rewardgen.rewards.spec import FnSpec
    from rewardgen.runs import RunDir
    from rewardgen.tasks import get_task
    from rewardgen.training import TrainConfig, train
    from rewardgen.training.sb3.hyperparams import default_n_envs

    if config.queries < 1:
        raise RewardgenError(f"--queries must be at least 1, got {config.queries}")
    task = get_task(config.task)
    steps = int(config.steps or task.budget.steps)
    n_envs = int(config.n_envs or default_n_envs("ppo", "default", task.budget.n_envs))
    path = RunDir.reserve(task.id, "prefppo", out)
    if (path / "preferences.jsonl").exists():
        raise RewardgenError(f"{path} already holds a PrefPPO run's answers: pass another --out")
    path.mkdir(parents=True, exist_ok=True)
    reference = task.reference_reward().build()
    probe = _feature_size(task)
    model = PreferenceRewardModel(probe, members=config.members, risk=config.risk, seed=config.seed)
    recorder = SegmentRecorder(model, reference)
    pool = SegmentPool(n_envs, config.segment_length, seed=config.seed)
    judge = make_judge(config.judge, seed=config.seed, run=path, goal=task.goal)
    films = None
    if judge.needs_videos:  # a person watches clips of the current policy
        films = ClipFilmer(
            task, task.reference_reward().build(), path, config.segment_length, config.seed + 50_000
        )
    callback = PreferenceCallback(
        recorder, pool, judge, PreferenceStore(path / "preferences.jsonl"), config, steps, log, films
    )
    train_config = TrainConfig(
        task=task,  # resolved once, above
        reward=FnSpec(recorder, name="prefppo-reward-model", deferrable=True, copy=False),
        steps=steps,
        algo="ppo",
        n_envs=n_envs,
        seed=config.seed,
        eval_episodes=config.eval_episodes,
        video=config.video,
        hyperparams=dict(config.hyperparams or {}),
        progress=config.progress,
    )
    try:
        result = train(train_config, out=path, method="prefppo", hooks=[callback])
    finally:
        if films is not None:
            films.close()
        judge.close()  # the web page's server
    import torch

    torch.save([net.state_dict() for net in model.nets], path / "reward_model.pt")
    summary = {
        "config": {**asdict(config), "task": task_ref(task)},
        "queries_asked": len(callback.answers),
        "judge_agreement_with_reference": callback.agreement(),
        "model_loss": callback.loss,
        "learned_vs_reference_correlation": callback.correlation(),
        "segments_seen": len(pool),
        "eval": result.eval.to_dict(),
    }
    (path / "prefppo.json").write_text(json.dumps(summary, indent=2))
    return result, summary


def _feature_size(task: Any) -> int:
    """The size of obs_action_features for ``task``'s spaces."""
    from rewardgen.tasks import make_env

    env = make_env(task)
    try:
        obs, act = env.observation_space.shape, env.action_space.shape
    finally:
        env.close()
    return int(np.prod(obs or (1,))) + int(np.prod(act or (1,)))

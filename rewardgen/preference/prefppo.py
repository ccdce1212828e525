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

Several raters (``judge`` a list: ``--judge synthetic:taste=x_velocity --judge
synthetic:taste=-ctrl``) answer every query; a pluralistic model (PAL,
:class:`~rewardgen.preference.pluralistic.PluralisticRewardModel`) learns one reward per rater
from all their answers, and a policy is trained for each rater (``policy_for``), in
``policy-<rater>/``. At the end each rater compares the policies by what they care about (a
synthetic rater's taste, a person's eye) and ``prefppo.json`` says who preferred which.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.errors import RewardgenError
from rewardgen.feedback import Judge, Option, PreferenceStore
from rewardgen.feedback.room import make_judges, rater_of, rater_slug
from rewardgen.preference.films import ClipFilmer
from rewardgen.preference.model import PreferenceRewardModel
from rewardgen.preference.pluralistic import PluralisticRewardModel, RaterView
from rewardgen.preference.segments import SegmentPool, SegmentRecorder
from rewardgen.tasks import TaskSpec, task_ref

__all__ = ["MODELS", "Answers", "PrefPPOConfig", "PreferenceCallback", "train_prefppo"]

#: The reward models PrefPPO fits: a Bradley-Terry ensemble (one reward for everyone) or PAL's
#: pluralistic model (a reward per rater); "auto" is the ensemble for one judge, PAL for several.
MODELS = ("auto", "ensemble", "pal")


@dataclass
class PrefPPOConfig:
    """A PrefPPO run: ``queries`` comparisons per policy trained, of segments ``segment_length``
    steps long, each answered by every judge in ``judge`` (one, or several raters).

    Example:
        >>> tastes = ["synthetic:taste=x_velocity", "synthetic:taste=-ctrl"]
        >>> room = PrefPPOConfig("halfcheetah-run", judge=tastes)
        >>> room.judges, room.model_kind
        (('synthetic:taste=x_velocity', 'synthetic:taste=-ctrl'), 'pal')
    """

    task: str | TaskSpec  # an id, a task YAML, or the resolved TaskSpec
    queries: int = 200
    judge: str | Sequence[str] = "synthetic"
    model: str = "auto"  # MODELS
    prototypes: int | None = None  # PAL's K; None: one per rater (at least 2)
    policy_for: str = "each"  # several raters: a policy for "each" rater, or for the one named
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

    @property
    def judges(self) -> tuple[str, ...]:
        return (self.judge,) if isinstance(self.judge, str) else tuple(self.judge)

    @property
    def model_kind(self) -> str:
        if self.model not in MODELS:
            raise RewardgenError(f"unknown --model {self.model!r}: choose one of {', '.join(MODELS)}")
        if self.model == "auto":
            return "pal" if len(self.judges) > 1 else "ensemble"
        return self.model


@dataclass
class Answers:
    """Every answer of a PrefPPO run so far, shared by the policies it trains: the compared
    segments' features, the preference (1: A), who answered, and the reference returns."""

    a: list[np.ndarray] = field(default_factory=list)
    b: list[np.ndarray] = field(default_factory=list)
    prefs: list[float] = field(default_factory=list)
    raters: list[str] = field(default_factory=list)
    refs: list[tuple[float, float]] = field(default_factory=list)
    queries: int = 0  # comparisons asked (each answered by every rater)

    def __len__(self) -> int:
        return len(self.prefs)


class PreferenceCallback:
    """At each rollout's end: cut segments, ask the judge the queries due by now (the pairs the
    ensemble disagrees on most), refit the model on every answer so far. A
    :class:`~rewardgen.training.hooks.RolloutHook`: the back end calls it, whichever it is."""

    def __init__(
        self,
        recorder: SegmentRecorder,
        pool: SegmentPool,
        judge: Judge | Sequence[Judge],
        store: PreferenceStore,
        config: PrefPPOConfig,
        total_steps: int,
        log: Callable[[str], None] = lambda line: None,
        films: ClipFilmer | None = None,
        answered: Answers | None = None,
    ):
        self.judges = [judge] if callable(judge) else list(judge)
        self.recorder, self.pool, self.store, self.films = recorder, pool, store, films
        self.config, self.total_steps, self.log = config, total_steps, log
        self.answered = answered if answered is not None else Answers()
        self.asked = 0  # this policy's queries
        self.loss: float | None = None

    @property
    def answers(self) -> list[float]:
        """The preferences given so far (1.0: A), every rater's."""
        return self.answered.prefs

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
        k = self.due(timesteps) - self.asked
        if k <= 0:
            return
        measures: dict[str, np.ndarray] = {}
        if self.films is not None and act is not None:
            clips = self.films.gather(act, max(4, 2 * k))
            feats, refs = np.stack([c[0] for c in clips]), np.stack([c[1] for c in clips])
            frames: list[list[np.ndarray]] | None = [c[2] for c in clips]
            n = len(clips)
            candidates = np.array([(i, j) for i in range(n) for j in range(i + 1, n)])
        else:
            if len(self.pool) < 2 or self.pool.features is None:
                return
            feats, refs, frames, measures = self.pool.features, self.pool.reference, None, self.pool.measures
            candidates = self.pool.pairs(k * self.config.pairs_per_query)
        spread = self.recorder.model.disagreement(feats[candidates[:, 0]], feats[candidates[:, 1]])  # type: ignore[attr-defined]
        for i, j in candidates[np.argsort(-spread, kind="stable")[:k]]:
            self._ask(
                (feats[i], feats[j]),
                (float(refs[i].sum()), float(refs[j].sum())),
                [{m: float(v[x].sum()) for m, v in measures.items()} for x in (i, j)],
                frames and (frames[i], frames[j]),
            )
        done = self.answered
        a, b, prefs = np.stack(done.a), np.stack(done.b), np.array(done.prefs)
        model = self.recorder.model
        if isinstance(model, RaterView):
            self.loss = model.fit(a, b, prefs, done.raters, self.config.fit_epochs)
        else:
            self.loss = model.fit(a, b, prefs, self.config.fit_epochs)  # type: ignore[attr-defined]
        self.log(f"{timesteps:,} steps: {len(done)} answers, model loss {self.loss:.3f}")

    def _ask(
        self,
        feats: tuple[np.ndarray, np.ndarray],
        refs: tuple[float, float],
        measures: list[dict[str, float]],
        frames: tuple[list[np.ndarray], list[np.ndarray]] | None,
    ) -> None:
        round_id = f"q{self.answered.queries}"
        self.answered.queries += 1
        self.asked += 1
        videos: list[Path | None] = [None, None]
        if frames is not None and self.films is not None:
            videos = [self.films.write(round_id, name, f) for name, f in zip("ab", frames, strict=True)]
        options = [
            Option(name, video=video, score=ref, measures=measured)
            for name, video, ref, measured in zip("ab", videos, refs, measures, strict=True)
        ]
        for judge in self.judges:
            rater = rater_of(judge) if len(self.judges) > 1 else None
            choice = self.judge_round(judge, round_id, options, rater)
            self.answered.a.append(feats[0])
            self.answered.b.append(feats[1])
            self.answered.prefs.append(1.0 if choice.best == "a" else 0.0)
            self.answered.raters.append(rater_of(judge))
            self.answered.refs.append(refs)

    def judge_round(self, judge: Judge, round_id: str, options: list[Option], rater: str | None) -> Any:
        """``judge``'s answer, kept in the store (the web page writes its answers itself)."""
        choice = judge(round_id, options)
        if rater is not None and choice.rater != rater:  # several judges: each answer says whose it is
            choice = replace(choice, rater=rater)
        if self.store.for_round(round_id, rater) is None:
            self.store.add(choice)
        return choice

    def agreement(self) -> float | None:
        """How often the judge's answers agree with the reference reward (1.0 for a noiseless
        synthetic judge; lower for noise or a person who sees something else)."""
        if not self.answers:
            return None
        ref = np.array([1.0 if a > b else 0.0 if a < b else 0.5 for a, b in self.answered.refs])
        return float(np.mean(np.abs(ref - np.array(self.answers)) < 0.5))

    def correlation(self) -> float | None:
        """Pearson correlation of the learned reward (the members' mean) and the reference reward
        per step, over the segments in the pool."""
        if self.pool.features is None or len(self.pool) < 2:
            return None
        features = self.pool.features
        scored = self.recorder.model.score_features(features.reshape(-1, features.shape[-1]))
        learned = np.asarray(scored.components.get("learned_mean", scored.total))
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
    ``prefppo.json`` in the run directory. With several raters and PAL, a policy per rater is
    trained (``policy-<rater>/`` in the run); the result returned is the first one's, and the
    summary's ``policies`` has them all, with ``preferred`` (rater -> the policy they chose)."""
    from rewardgen.runs import RunDir
    from rewardgen.tasks import get_task
    from rewardgen.training.sb3.hyperparams import default_n_envs

    if config.queries < 1:
        raise RewardgenError(f"--queries must be at least 1, got {config.queries}")
    kind = config.model_kind
    task = get_task(config.task)
    steps = int(config.steps or task.budget.steps)
    n_envs = int(config.n_envs or default_n_envs("ppo", "default", task.budget.n_envs))
    path = RunDir.reserve(task.id, "prefppo", out)
    if (path / "preferences.jsonl").exists():
        raise RewardgenError(f"{path} already holds a PrefPPO run's answers: pass another --out")
    path.mkdir(parents=True, exist_ok=True)
    judges = make_judges(config.judges, seed=config.seed, run=path, goal=task.goal)
    raters = [rater_of(j) for j in judges]
    targets = _policy_targets(config, kind, raters)
    tastes = {t.measure_name: t.measure() for j in judges if (t := getattr(j, "taste", None)) is not None}
    films = None
    if any(j.needs_videos for j in judges):  # a person watches clips of the current policy
        if tastes:
            raise RewardgenError(
                "synthetic raters with a taste compare recorded segments, a person compares fresh "
                "clips: ask them in separate runs"
            )
        films = ClipFilmer(
            task, task.reference_reward().build(), path, config.segment_length, config.seed + 50_000
        )
    probe = _feature_size(task)
    pal = None
    if kind == "pal":
        pal = PluralisticRewardModel(
            probe, prototypes=config.prototypes or max(2, len(raters)), seed=config.seed
        )
    answered = Answers()
    store = PreferenceStore(path / "preferences.jsonl", per_rater=len(judges) > 1)
    trained: dict[str, Any] = {}
    fits: dict[str, dict[str, Any]] = {}
    measured: dict[str, dict[str, float]] = {}
    try:
        for target in targets:
            where = path if len(targets) == 1 else path / f"policy-{rater_slug(target)}"
            if len(targets) > 1:
                log(f"training the policy for {target} -> {where}")
            if pal is not None:
                model: Any = RaterView(pal, target)
            else:
                model = PreferenceRewardModel(
                    probe, members=config.members, risk=config.risk, seed=config.seed
                )
            recorder = SegmentRecorder(model, task.reference_reward().build(), tastes)
            pool = SegmentPool(n_envs, config.segment_length, seed=config.seed)
            callback = PreferenceCallback(recorder, pool, judges, store, config, steps, log, films, answered)
            trained[target] = _train_policy(config, task, recorder, callback, steps, n_envs, where)
            fits[target] = {
                "run_dir": str(where),
                "model_loss": callback.loss,
                "learned_vs_reference_correlation": callback.correlation(),
                "segments_seen": len(pool),
                "eval": trained[target].eval.to_dict(),
            }
            if pal is None:
                import torch

                torch.save([net.state_dict() for net in model.nets], where / "reward_model.pt")
        preferred = (
            _final_round(task, trained, judges, store, tastes, config.eval_episodes, measured)
            if len(trained) > 1
            else {}
        )
    finally:
        if films is not None:
            films.close()
        for judge in judges:
            judge.close()  # the web page's server
    if pal is not None:
        import torch

        torch.save(
            {
                "prototypes": [net.state_dict() for net in pal.nets],
                "raters": pal.raters,
                "logits": pal.logits,
            },
            path / "reward_model.pt",
        )
    first = fits[targets[0]]
    summary = {
        "config": {**asdict(config), "judge": list(config.judges), "task": task_ref(task)},
        "model": kind,
        "raters": raters,
        "queries_asked": answered.queries,
        "answers": len(answered),
        "judge_agreement_with_reference": _agreement(answered),
        "model_loss": first["model_loss"],
        "learned_vs_reference_correlation": first["learned_vs_reference_correlation"],
        "segments_seen": first["segments_seen"],
        "eval": first["eval"],
        "policies": fits,
        "weights": {r: pal.weights(r).round(4).tolist() for r in pal.raters} if pal is not None else None,
        "preferred": preferred,
        "measured": measured,  # policy -> each taste's measure, the mean over evaluation episodes
    }
    (path / "prefppo.json").write_text(json.dumps(summary, indent=2))
    return trained[targets[0]], summary


def _policy_targets(config: PrefPPOConfig, kind: str, raters: list[str]) -> list[str]:
    """Whom a policy is trained for: one per rater (PAL, ``each``), the one named, or everyone."""
    if kind == "ensemble":
        if config.policy_for != "each":
            raise RewardgenError(
                "--policy-for needs the pluralistic model (--model pal): the ensemble has one reward"
            )
        return ["everyone"]
    if config.policy_for == "each":
        return raters
    if config.policy_for not in raters:
        raise RewardgenError(
            f"--policy-for {config.policy_for!r} is not a rater: choose one of {raters} or 'each'"
        )
    return [config.policy_for]


def _train_policy(
    config: PrefPPOConfig,
    task: Any,
    recorder: SegmentRecorder,
    callback: PreferenceCallback,
    steps: int,
    n_envs: int,
    where: Path,
) -> Any:
    from rewardgen.rewards.spec import FnSpec
    from rewardgen.training import TrainConfig, train

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
    return train(train_config, out=where, method="prefppo", hooks=[callback])


def _final_round(
    task: Any,
    trained: dict[str, Any],
    judges: list[Judge],
    store: PreferenceStore,
    measures: dict[str, Any],
    episodes: int,
    measured_of: dict[str, dict[str, float]],
) -> dict[str, str]:
    """Each rater compares the policies (by their taste's measure over evaluation episodes, or
    by watching their videos): rater -> the policy they prefer. Each policy's measures (the
    mean over episodes) are put in ``measured_of``."""
    from rewardgen.training import evaluate

    options = []
    for name, result in trained.items():
        measured = {
            m: evaluate(result.run_dir, task, fn, episodes=episodes, video=False, eval_file=None)
            for m, fn in measures.items()
        }
        video = Path(result.run_dir) / "video.mp4"
        options.append(
            Option(
                name,
                video=video if video.is_file() else None,
                score=result.eval.success_metric_mean,
                env_return=result.eval.env_return_mean,
                measures={m: float(e.reward_return_mean) for m, e in measured.items()},
            )
        )
    for option in options:
        measured_of[option.id] = dict(option.measures)
    preferred = {}
    for judge in judges:
        choice = replace(judge("final", options), rater=rater_of(judge))
        if store.for_round("final", choice.rater) is None:
            store.add(choice)
        preferred[rater_of(judge)] = choice.best
    return preferred


def _agreement(answered: Answers) -> float | None:
    if not answered.prefs:
        return None
    ref = np.array([1.0 if a > b else 0.0 if a < b else 0.5 for a, b in answered.refs])
    return float(np.mean(np.abs(ref - np.array(answered.prefs)) < 0.5))


def _feature_size(task: Any) -> int:
    """The size of obs_action_features for ``task``'s spaces."""
    from rewardgen.tasks import make_env

    env = make_env(task)
    try:
        obs, act = env.observation_space.shape, env.action_space.shape
    finally:
        env.close()
    return int(np.prod(obs or (1,))) + int(np.prod(act or (1,)))

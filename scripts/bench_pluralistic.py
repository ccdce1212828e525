#!/usr/bin/env python
"""Several raters, opposite tastes: how well a pluralistic reward model (PAL's mixture of K
prototypes, :class:`rewardgen.preference.pluralistic.PluralisticRewardModel`) predicts each
rater's choices, against one Bradley-Terry model fitted on everyone's answers.

Segments are real rollouts: 25-step pieces of HalfCheetah-v5 episodes under random policies of
varying strength and bias, as features (next observation, action), the same as PrefPPO's. Two
groups of synthetic raters with opposite tastes answer comparisons of pairs of them: one group
prefers the segment that moves forward more (the sum of ``x_velocity``), the other the one that
moves backward more; each rater answers through Bradley-Terry noise of their own temperature.
Both models fit the same training answers; each is scored on held-out comparisons by the rater
who answered them. Then a rater never seen (of the first group) answers 10 comparisons, is
placed by fitting only their mixture weights, and is scored on 200 more of theirs.

    python scripts/bench_pluralistic.py                  # prints the two lines below
    held-out accuracy: pluralistic X, bradley-terry Y
    unseen rater after 10 comparisons: Z
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium as gym
import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from rewardgen.preference import PreferenceRewardModel
from rewardgen.preference.pluralistic import PluralisticRewardModel
from rewardgen.training.threads import set_train_threads

LENGTH = 25


def segments(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` segments of HalfCheetah-v5 under random policies: features (count, LENGTH, d)
    and each step's x_velocity (count, LENGTH)."""
    env = gym.make("HalfCheetah-v5")
    rng = np.random.default_rng(seed)
    feats, speeds = [], []
    obs, _ = env.reset(seed=seed)
    while len(feats) < count:
        bias = rng.normal(0.0, 0.5, size=env.action_space.shape)  # a policy's habit, per segment
        scale = rng.uniform(0.2, 1.0)
        f, v = [], []
        for _ in range(LENGTH):
            action = np.clip(bias + scale * rng.normal(size=env.action_space.shape), -1, 1).astype(np.float32)
            obs, _, terminated, truncated, info = env.step(action)
            f.append(np.concatenate([obs, action]).astype(np.float32))
            v.append(info["x_velocity"])
            if terminated or truncated:
                obs, _ = env.reset()
        feats.append(np.stack(f))
        speeds.append(np.array(v))
    env.close()
    return np.stack(feats), np.stack(speeds)


def answers(speeds: np.ndarray, pairs: np.ndarray, sign: float, temperature: float, rng: np.random.Generator):
    """A rater's choices for ``pairs`` of segment indices: 1 where A is chosen; the rater
    prefers more forward (sign +1) or backward (-1) motion, through Bradley-Terry noise."""
    diff = sign * (speeds[pairs[:, 0]].sum(1) - speeds[pairs[:, 1]].sum(1)) / temperature
    return (rng.random(len(pairs)) < 1.0 / (1.0 + np.exp(-diff))).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--segments", type=int, default=1200)
    parser.add_argument("--train", type=int, default=150, help="comparisons per known rater to fit on")
    parser.add_argument("--test", type=int, default=100, help="held-out comparisons per rater")
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    set_train_threads(None)
    started = time.monotonic()
    feats, speeds = segments(args.segments, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    # three raters of each taste, each with their own noise
    raters = {f"forward{i}": (1.0, t) for i, t in enumerate((0.5, 1.0, 2.0))}
    raters |= {f"backward{i}": (-1.0, t) for i, t in enumerate((0.5, 1.0, 2.0))}
    data: dict[str, list[tuple[np.ndarray, np.ndarray, list[str]]]] = {"train": [], "test": []}
    for name, (sign, temperature) in raters.items():
        for split, n in (("train", args.train), ("test", args.test)):
            pairs = rng.integers(0, len(feats), size=(n, 2))
            data[split].append((pairs, answers(speeds, pairs, sign, temperature, rng), [name] * n))

    def stack(split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        pairs = np.concatenate([d[0] for d in data[split]])
        prefs = np.concatenate([d[1] for d in data[split]])
        who = [r for d in data[split] for r in d[2]]
        return feats[pairs[:, 0]], feats[pairs[:, 1]], prefs, who

    a, b, prefs, who = stack("train")
    ta, tb, tprefs, twho = stack("test")
    pal = PluralisticRewardModel(input_dim=feats.shape[-1], prototypes=2, seed=args.seed)
    pal.fit(a, b, prefs, who, epochs=args.epochs)
    bt = PreferenceRewardModel(input_dim=feats.shape[-1], members=1, seed=args.seed)
    bt.fit(a, b, prefs, epochs=args.epochs)
    decided = tprefs != 0.5
    bt_acc = float(np.mean((bt.preference_probability(ta, tb)[0] > 0.5)[decided] == (tprefs[decided] > 0.5)))
    pal_acc = pal.accuracy(ta, tb, tprefs, twho)
    # a rater never seen, of the first taste: placed from 10 comparisons, scored on 200 more
    few, later = rng.integers(0, len(feats), size=(10, 2)), rng.integers(0, len(feats), size=(200, 2))
    few_prefs, later_prefs = (answers(speeds, p, 1.0, 1.0, rng) for p in (few, later))
    pal.place("newcomer", feats[few[:, 0]], feats[few[:, 1]], few_prefs)
    unseen = pal.accuracy(feats[later[:, 0]], feats[later[:, 1]], later_prefs, ["newcomer"] * len(later))
    print(
        f"{len(raters)} raters (3 prefer forward motion, 3 backward), {args.train} training and "
        f"{args.test} held-out comparisons each, {args.segments} HalfCheetah segments of {LENGTH} "
        f"steps; {time.monotonic() - started:.0f} s"
    )
    print(f"held-out accuracy: pluralistic {pal_acc:.3f}, bradley-terry {bt_acc:.3f}")
    weights = np.round(pal.weights("newcomer"), 2).tolist()
    print(f"unseen rater after 10 comparisons: {unseen:.3f} (weights {weights})")


if __name__ == "__main__":
    main()

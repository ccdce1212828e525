"""The Bradley-Terry reward model: it recovers a hidden reward's ranking from comparisons alone."""

import numpy as np
import pytest

from rewardgen.errors import RewardgenError
from rewardgen.preference.model import PreferenceRewardModel
from rewardgen.rewards import TransitionBatch


def hidden_reward(x):
    return np.sin(2 * x[..., 0]) + 0.5 * x[..., 1] - 0.3 * x[..., 2] ** 2


def segments(rng, n, t=10, d=4):
    return rng.normal(size=(n, t, d)).astype(np.float32)


def pairwise_agreement(pred, true):
    i, j = np.triu_indices(len(true), k=1)
    return float(np.mean(np.sign(pred[i] - pred[j]) == np.sign(true[i] - true[j])))


def test_comparisons_alone_recover_the_ranking_of_a_hidden_reward():
    rng = np.random.default_rng(0)
    a, b = segments(rng, 1000), segments(rng, 1000)
    prefs = (hidden_reward(a).sum(1) > hidden_reward(b).sum(1)).astype(float)  # a synthetic judge
    model = PreferenceRewardModel(input_dim=4, members=3, seed=0, lr=1e-3)
    held_out = segments(np.random.default_rng(1), 150)
    true_returns = hidden_reward(held_out).sum(-1)
    untrained = pairwise_agreement(model.predict(held_out).mean(axis=0).sum(axis=-1), true_returns)
    loss = model.fit(a, b, prefs, epochs=60)
    learned = model.predict(held_out).mean(axis=0).sum(axis=-1)
    agreement = pairwise_agreement(learned, true_returns)
    assert agreement > 0.88 and agreement > untrained + 0.3, (agreement, untrained)  # 0.94 measured
    assert loss < 0.3
    # P(A > B) follows the judge on held-out comparisons
    c, d = segments(rng, 200), segments(rng, 200)
    p = model.preference_probability(c, d).mean(axis=0)
    truth = hidden_reward(c).sum(1) > hidden_reward(d).sum(1)
    assert np.mean((p > 0.5) == truth) > 0.85


def test_the_ensemble_scores_batches_as_a_reward_and_its_risk_term_subtracts_disagreement():
    rng = np.random.default_rng(2)
    model = PreferenceRewardModel(input_dim=5, members=4, seed=1)
    batch = TransitionBatch(
        obs=rng.normal(size=(6, 3)), action=rng.normal(size=(6, 2)), next_obs=rng.normal(size=(6, 3)),
        terminated=np.zeros(6, bool), truncated=np.zeros(6, bool),
    )  # fmt: skip
    out = model(batch)
    assert out.total.shape == (6,) and set(out.components) == {"learned_mean", "learned_std"}
    cautious = PreferenceRewardModel(input_dim=5, members=4, seed=1, risk=2.0)
    np.testing.assert_allclose(
        cautious(batch).total, out.components["learned_mean"] - 2.0 * out.components["learned_std"], rtol=1e-5
    )
    assert model.disagreement(segments(rng, 7, d=5), segments(rng, 7, d=5)).shape == (7,)


def test_bad_comparisons_are_refused_with_what_was_expected():
    model = PreferenceRewardModel(input_dim=4, members=1)
    rng = np.random.default_rng(0)
    with pytest.raises(RewardgenError, match=r"\(n, T, 4\)"):
        model.fit(segments(rng, 3, d=3), segments(rng, 3, d=3), np.ones(3))
    with pytest.raises(RewardgenError, match=r"in \[0, 1\]"):
        model.fit(segments(rng, 3), segments(rng, 3), np.array([1.0, 2.0, 0.0]))
    with pytest.raises(RewardgenError, match="features of size 3"):
        model.predict(np.zeros((2, 3)))

"""PAL's pluralistic reward model: K prototypes, each rater a mixture of them, fitted jointly;
a new rater placed from a few comparisons; any rater's reward a RewardFn that pickles."""

import pickle

import numpy as np
import pytest
import torch

from rewardgen.errors import RewardgenError
from rewardgen.preference import PreferenceRewardModel
from rewardgen.preference.pluralistic import MixtureReward, PluralisticRewardModel, mixture_preference
from rewardgen.rewards import TransitionBatch


def linear_model() -> PluralisticRewardModel:
    """Two linear prototypes set by hand: prototype 0 pays feature 0, prototype 1 pays feature 1."""
    model = PluralisticRewardModel(input_dim=2, prototypes=2, hidden=())
    with torch.no_grad():
        for k, net in enumerate(model.nets):
            net[0].weight.copy_(torch.eye(2)[k : k + 1])
            net[0].bias.zero_()
    model._add_raters(["a", "b"])
    model.logits = torch.log(torch.tensor([[3.0, 1.0], [1.0, 1.0]]))  # a: weights 0.75/0.25; b: even
    return model


def test_a_hand_computed_case():
    model = linear_model()
    assert np.allclose(model.weights("a"), [0.75, 0.25]) and np.allclose(model.weights("b"), [0.5, 0.5])
    # segment A: two steps of (1, 0); segment B: two steps of (0, 1)
    seg_a = np.array([[[1.0, 0.0], [1.0, 0.0]]], np.float32)
    seg_b = np.array([[[0.0, 1.0], [0.0, 1.0]]], np.float32)
    # prototype returns: A (2, 0), B (0, 2); rater a's difference 0.75*2 - 0.25*2 = 1; b's 0
    p = model.preference_probability(np.repeat(seg_a, 2, 0), np.repeat(seg_b, 2, 0), ["a", "b"])
    assert p == pytest.approx([1 / (1 + np.exp(-1.0)), 0.5])
    assert mixture_preference([[2.0], [0.0]], [[0.0], [2.0]], [0.75, 0.25]) == pytest.approx(p[:1])


def opposite_tastes(n: int, seed: int):
    """Comparisons of random 5-step segments by raters who like feature 0 up, and down."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, 5, 3)).astype(np.float32), rng.normal(size=(n, 5, 3)).astype(np.float32)
    raters = [("up", "down")[i % 2] for i in range(n)]
    sign = np.where(np.array(raters) == "up", 1.0, -1.0)
    prefs = (sign * (a[..., 0].sum(1) - b[..., 0].sum(1)) > 0).astype(np.float32)
    return a, b, prefs, raters


def test_opposite_tastes_fitted_jointly_beat_one_bradley_terry_model():
    a, b, prefs, raters = opposite_tastes(600, seed=0)
    ta, tb, tprefs, traters = opposite_tastes(300, seed=1)
    pal = PluralisticRewardModel(input_dim=3, prototypes=2, seed=0)
    pal.fit(a, b, prefs, raters, epochs=60)
    bt = PreferenceRewardModel(input_dim=3, members=1, seed=0)
    bt.fit(a, b, prefs, epochs=60)
    bt_acc = np.mean((bt.preference_probability(ta, tb)[0] > 0.5) == (tprefs > 0.5))
    assert pal.accuracy(ta, tb, tprefs, traters) > 0.9 > 0.6 > bt_acc  # one model learns the average
    # the two raters sit at opposite corners of the simplex
    up, down = pal.weights("up"), pal.weights("down")
    assert up.sum() == pytest.approx(1.0) and abs(up.argmax() - down.argmax()) == 1

    # a new rater, placed from 10 comparisons with the prototypes frozen, is told apart
    before = [p.detach().clone() for p in pal.nets.parameters()]
    na, nb, nprefs, _ = opposite_tastes(20, seed=2)
    nprefs = (na[..., 0].sum(1) - nb[..., 0].sum(1) < 0).astype(np.float32)  # likes feature 0 down
    weights = pal.place("newcomer", na[:10], nb[:10], nprefs[:10])
    assert weights.argmax() == down.argmax() and all(
        torch.equal(x, y) for x, y in zip(before, pal.nets.parameters(), strict=True)
    )
    assert pal.weights("up") == pytest.approx(up)  # the others keep their place
    later_a, later_b, _, _ = opposite_tastes(200, seed=3)
    later = (later_a[..., 0].sum(1) - later_b[..., 0].sum(1) < 0).astype(np.float32)
    assert pal.accuracy(later_a, later_b, later, ["newcomer"] * 200) > 0.85


def test_a_raters_reward_is_a_reward_fn_that_pickles_to_workers():
    model = linear_model()
    batch = TransitionBatch(
        obs=np.zeros((3, 1)),
        action=np.zeros((3, 1)),
        next_obs=np.array([[1.0], [2.0], [0.0]]),
        terminated=np.zeros(3, bool),
        truncated=np.zeros(3, bool),
    )  # features: (next_obs, action) = (x, 0)
    out = model.reward_fn("a").compute(batch)
    assert out.total == pytest.approx([0.75, 1.5, 0.0])  # 0.75 * x + 0.25 * 0
    assert set(out.components) == {"prototype_0", "prototype_1"}
    spec = pickle.loads(pickle.dumps(model.spec("a")))
    again = spec.build().compute(batch)
    assert again.total == pytest.approx(out.total) and spec.deferrable and spec.name == "pal-a"
    mixed = model.reward_fn(weights=[0.0, 1.0]).compute(batch)
    assert mixed.total == pytest.approx([0.0, 0.0, 0.0])  # prototype 1 pays the action, which is 0


def test_clear_errors():
    model = linear_model()
    with pytest.raises(RewardgenError, match="no rater 'carol'"):
        model.weights("carol")
    with pytest.raises(RewardgenError, match="rater names"):
        model.fit(np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), np.ones(2), ["a"])
    with pytest.raises(RewardgenError, match="summing to 1"):
        MixtureReward([[], []], np.zeros(2), np.ones(2), [0.7, 0.7])
    with pytest.raises(RewardgenError, match="one of the two"):
        model.reward_fn()

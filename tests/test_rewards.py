import numpy as np
import pytest

from rewardgen.errors import RewardgenError
from rewardgen.rewards import (
    Clip,
    Ensemble,
    EpisodeReducer,
    RewardFn,
    RewardOutput,
    RewardOutputError,
    RunningNormalize,
    Scale,
    TransitionBatch,
    WeightedSum,
    check_output,
)


class Const(RewardFn):
    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float64)

    def compute(self, batch):
        return RewardOutput(self.values.copy(), {"v": self.values.copy()})


def batch(n=3):
    z = np.zeros((n, 2))
    return TransitionBatch(z, z, z, np.zeros(n, bool), np.zeros(n, bool), {})


def test_weighted_sum_keeps_every_component():
    out = WeightedSum({"a": (Const([1, 2, 3]), 2.0), "b": (Const([1, 1, 1]), -1.0)})(batch())
    np.testing.assert_allclose(out.total, [1, 3, 5])
    np.testing.assert_allclose(out.components["a"], [2, 4, 6])
    np.testing.assert_allclose(out.components["b/v"], [1, 1, 1])


def test_scale_and_clip():
    np.testing.assert_allclose(Scale(Const([1, -2, 3]), 0.5)(batch()).total, [0.5, -1, 1.5])
    np.testing.assert_allclose(Clip(Const([1, -2, 3]), -1, 2)(batch()).total, [1, -1, 2])
    with pytest.raises(RewardgenError, match="low <= high"):
        Clip(Const([1]), 2, 1)


def test_running_normalize_matches_numpy_statistics():
    rng = np.random.default_rng(0)
    chunks = [rng.normal(5.0, 3.0, size=4) for _ in range(50)]
    fn = RunningNormalize(Const(chunks[0]))
    for c in chunks:
        fn._parts[0].values = c
        out = fn(batch(4))
    data = np.concatenate(chunks)
    assert fn.mean == pytest.approx(data.mean())
    assert fn.std == pytest.approx(data.std())
    np.testing.assert_allclose(out.total, (chunks[-1] - data.mean()) / (data.std() + 1e-8))
    np.testing.assert_allclose(out.components["unnormalized"], chunks[-1])


@pytest.mark.parametrize(("agg", "expected"), [("mean", [2, 2]), ("mean_minus_std", [1, 2]), ("min", [1, 2])])
def test_ensemble_aggregates(agg, expected):
    fn = Ensemble([Const([1, 2]), Const([3, 2])], aggregate=agg, k=1.0)
    np.testing.assert_allclose(fn(batch(2)).total, expected)


def test_ensemble_rejects_unknown_aggregate():
    with pytest.raises(RewardgenError, match="median"):
        Ensemble([Const([1])], aggregate="median")


def test_check_output_names_the_nan_component():
    with pytest.raises(RewardOutputError, match="component 'height' has NaN"):
        check_output(np.zeros(2), {"speed": np.zeros(2), "height": np.array([0.0, np.nan])}, 2)
    with pytest.raises(RewardOutputError, match=r"shape \(3,\), expected \(2,\)"):
        check_output(np.zeros(3), {}, 2)
    with pytest.raises(RewardOutputError, match="not numeric"):
        check_output("fast", {}, 2)
    with pytest.raises(RewardOutputError, match="inf"):
        check_output(np.array([np.inf, 0.0]), {}, 2)


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("mean", [2.0, 4.0]),
        ("sum", [4.0, 8.0]),
        ("max", [3.0, 5.0]),
        ("min", [1.0, 3.0]),
        ("final", [3.0, 3.0]),
    ],
)
def test_episode_reducer(how, expected):
    r = EpisodeReducer(how, 2)
    r.update(np.array([1.0, 5.0]))
    r.update(np.array([99.0, 99.0]), active=np.array([False, False]))  # reset steps do not count
    r.update(np.array([3.0, 3.0]))
    np.testing.assert_allclose(r.pop(np.array([True, True])), expected)
    r.update(np.array([7.0, 7.0]))
    assert r.pop(np.array([True, False]))[0] == 7.0  # restarted after pop

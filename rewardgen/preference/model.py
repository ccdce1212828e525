"""Reward learned from comparisons (Christiano et al. 2017): an ensemble of Bradley-Terry models.

Each member maps a transition's features to a reward; the probability that segment A is preferred
to segment B is ``sigmoid(sum_t r(A_t) - sum_t r(B_t))``, fitted by cross-entropy to the judge's
answers (1: A preferred, 0: B preferred, 0.5: equal). Members train on bootstrap resamples of
the comparisons, so their disagreement marks the comparisons worth asking about next. As a
:class:`~rewardgen.rewards.RewardFn` the ensemble scores batches like any other reward: the mean
of the members (``risk`` > 0: mean - risk * std, which penalises what the members disagree on;
ensembles reduce reward hacking, they do not remove it).

The PrefPPO loop that queries a judge while PPO trains is built on this; this module is the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardgen.errors import RewardgenError
from rewardgen.rewards import RewardFn, RewardOutput, TransitionBatch

__all__ = ["PreferenceRewardModel", "obs_action_features"]


def obs_action_features(batch: TransitionBatch) -> np.ndarray:
    """(n, d) features of a batch: the flattened next observation and the action."""
    obs = np.asarray(batch.next_obs, dtype=np.float32).reshape(batch.n, -1)
    act = np.asarray(batch.action, dtype=np.float32).reshape(batch.n, -1)
    return np.concatenate([obs, act], axis=1)


def reward_mlp(input_dim: int, hidden: Sequence[int]) -> Any:
    """A reward network: ``input_dim`` features -> ReLU layers of ``hidden`` widths -> one reward."""
    from torch import nn

    layers: list[nn.Module] = []
    width = input_dim
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def check_comparisons(seg_a: Any, seg_b: Any, prefs: Any, input_dim: int) -> tuple[np.ndarray, ...]:
    """Segments (n, T, ``input_dim``) and n preferences in [0, 1] as float32 arrays, or a clear
    error that says which shape or value is wrong."""
    seg_a, seg_b = np.asarray(seg_a, dtype=np.float32), np.asarray(seg_b, dtype=np.float32)
    prefs = np.asarray(prefs, dtype=np.float32)
    n = len(prefs)
    shape = seg_a.shape
    if not (shape == seg_b.shape and seg_a.ndim == 3 and shape[0] == n and shape[2] == input_dim):
        raise RewardgenError(
            f"segments must be (n, T, {input_dim}) each with n preferences; got {shape}, "
            f"{seg_b.shape} and {n} preferences"
        )
    if n == 0 or bool(((prefs < 0) | (prefs > 1)).any()):
        raise RewardgenError("preferences must be in [0, 1] (1: A preferred, 0: B, 0.5: equal), at least one")
    return seg_a, seg_b, prefs


class PreferenceRewardModel(RewardFn):
    """An ensemble of ``members`` MLP reward models over ``input_dim`` features, trained on
    comparisons of trajectory segments with the Bradley-Terry likelihood.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.normal(size=(64, 5, 2)), rng.normal(size=(64, 5, 2))
        >>> prefs = (a[..., 0].sum(1) > b[..., 0].sum(1)).astype(float)  # the judge likes feature 0
        >>> model = PreferenceRewardModel(input_dim=2, members=2, seed=0)
        >>> model.fit(a, b, prefs, epochs=200) < 0.4  # mean cross-entropy after training
        True
    """

    def __init__(
        self,
        input_dim: int,
        members: int = 3,
        hidden: Sequence[int] = (64, 64),
        lr: float = 3e-4,
        risk: float = 0.0,
        seed: int = 0,
        device: str = "cpu",
    ):
        import torch

        if members < 1 or input_dim < 1:
            raise RewardgenError(
                f"a reward model needs members >= 1 and input_dim >= 1, got {members}, {input_dim}"
            )
        torch.manual_seed(seed)
        self.input_dim, self.risk, self.device = input_dim, float(risk), device
        self.rng = np.random.default_rng(seed)
        # features are standardized with the statistics of the segments of the latest fit
        self.shift = np.zeros(input_dim, np.float32)
        self.scale = np.ones(input_dim, np.float32)
        self.nets = [reward_mlp(input_dim, hidden).to(device) for _ in range(members)]
        self.optims = [torch.optim.Adam(net.parameters(), lr=lr) for net in self.nets]

    # scoring --------------------------------------------------------------------------------

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Each member's reward of ``features`` (..., input_dim): array (members, ...)."""
        import torch

        features = np.asarray(features, dtype=np.float32)
        if features.shape[-1] != self.input_dim:
            raise RewardgenError(f"features of size {features.shape[-1]}, the model takes {self.input_dim}")
        x = torch.as_tensor((features - self.shift) / self.scale, device=self.device)
        with torch.no_grad():
            return np.stack([net(x).squeeze(-1).cpu().numpy() for net in self.nets]).astype(np.float64)

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        return self.score_features(obs_action_features(batch))

    def score_features(self, features: np.ndarray) -> RewardOutput:
        """The reward of transitions given as features (n, input_dim): what :meth:`compute` returns."""
        r = self.predict(features)
        mean, std = r.mean(axis=0), r.std(axis=0)
        total = mean - self.risk * std if self.risk else mean
        return RewardOutput(total, {"learned_mean": mean, "learned_std": std})

    def preference_probability(self, seg_a: np.ndarray, seg_b: np.ndarray) -> np.ndarray:
        """P(A preferred to B) per member, (members, n), for segments (n, T, input_dim)."""
        diff = self.predict(seg_a).sum(axis=-1) - self.predict(seg_b).sum(axis=-1)
        return 1.0 / (1.0 + np.exp(-diff))

    def disagreement(self, seg_a: np.ndarray, seg_b: np.ndarray) -> np.ndarray:
        """How much the members disagree on each comparison (std of their P(A > B)): the
        comparisons to ask the judge about first."""
        return self.preference_probability(seg_a, seg_b).std(axis=0)

    # learning -------------------------------------------------------------------------------

    def fit(
        self, seg_a: np.ndarray, seg_b: np.ndarray, prefs: np.ndarray, epochs: int = 50, batch_size: int = 64
    ) -> float:
        """Train every member on a bootstrap resample of the comparisons (segments (n, T, d),
        ``prefs`` (n,) in [0, 1], 1 meaning A preferred); returns the mean cross-entropy of the
        last epoch over all comparisons and members."""
        import torch
        import torch.nn.functional as F

        seg_a, seg_b, prefs = check_comparisons(seg_a, seg_b, prefs, self.input_dim)
        n = len(prefs)
        # standardize the features with the statistics of the segments fitted on
        steps = np.concatenate([seg_a, seg_b]).reshape(-1, self.input_dim)
        self.shift, self.scale = steps.mean(axis=0), steps.std(axis=0) + 1e-6
        a = torch.as_tensor((seg_a - self.shift) / self.scale, device=self.device)
        b = torch.as_tensor((seg_b - self.shift) / self.scale, device=self.device)
        p = torch.as_tensor(prefs, device=self.device)
        samples = [torch.as_tensor(self.rng.integers(0, n, size=n), device=self.device) for _ in self.nets]
        last = 0.0
        for _ in range(epochs):
            losses = []
            for net, optim, idx in zip(self.nets, self.optims, samples, strict=True):
                perm = idx[torch.randperm(n, device=self.device)]
                for start in range(0, n, batch_size):
                    j = perm[start : start + batch_size]
                    logits = net(a[j]).squeeze(-1).sum(-1) - net(b[j]).squeeze(-1).sum(-1)
                    loss = F.binary_cross_entropy_with_logits(logits, p[j])
                    optim.zero_grad()
                    loss.backward()
                    optim.step()
                with torch.no_grad():
                    logits = net(a).squeeze(-1).sum(-1) - net(b).squeeze(-1).sum(-1)
                    losses.append(float(F.binary_cross_entropy_with_logits(logits, p)))
            last = float(np.mean(losses))
        return last

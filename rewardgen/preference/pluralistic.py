"""A pluralistic reward model: several raters, several tastes (PAL's mixture formulation).

PAL (Chen et al., "PAL: Pluralistic Alignment Framework for Learning from Heterogeneous
Preferences") models a room of raters who disagree: K *prototype* reward functions
``r_1 .. r_K`` shared by everyone, and each rater ``u`` a point on the simplex over them, their
mixture weights ``w_u = softmax(a_u)``. Rater ``u``'s reward of a transition ``x`` is

    r_u(x) = sum_k w_uk r_k(x)

and the probability that ``u`` prefers segment A to segment B is Bradley-Terry's over that reward,

    P(A > B | u) = sigmoid(sum_t r_u(A_t) - sum_t r_u(B_t)).

The prototypes and every rater's weights are fitted jointly by cross-entropy on all the raters'
answers (:meth:`PluralisticRewardModel.fit`); a rater never seen is placed from a few comparisons
by fitting only their weights, the prototypes frozen (:meth:`~PluralisticRewardModel.place`). A
single Bradley-Terry model (:class:`~rewardgen.preference.PreferenceRewardModel`) is the case
K = 1: fitted on raters with opposite tastes it learns their average, which pleases nobody.

Any rater's reward (or any mixture) is a :class:`~rewardgen.rewards.RewardFn` over the same
features as PrefPPO's (:func:`~rewardgen.preference.obs_action_features`), computed with numpy
from a copy of the prototypes, so its spec pickles to worker processes like every other
(:meth:`~PluralisticRewardModel.spec`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardgen.errors import RewardgenError
from rewardgen.preference.model import check_comparisons, obs_action_features, reward_mlp
from rewardgen.rewards import RewardFn, RewardOutput, TransitionBatch
from rewardgen.rewards.spec import FnSpec

__all__ = ["MixtureReward", "PluralisticRewardModel", "RaterView", "mixture_preference"]


def mixture_preference(prototype_returns_a: Any, prototype_returns_b: Any, weights: Any) -> np.ndarray:
    """P(A > B) for a rater with mixture ``weights`` (K,), from the prototypes' returns of the
    segments, (K, n) each: ``sigmoid(w . (R_A - R_B))``.

    Example (a hand-computed case): two prototypes, a rater who weighs them 3:1; the prototypes'
    returns differ by 2 and -2 between the segments, so the rater's reward differs by
    0.75 * 2 + 0.25 * -2 = 1 and P = sigmoid(1) = 0.7311.

        >>> round(float(mixture_preference([[3.0], [1.0]], [[1.0], [3.0]], [0.75, 0.25])[0]), 4)
        0.7311
    """
    a, b = np.asarray(prototype_returns_a, float), np.asarray(prototype_returns_b, float)
    diff = np.asarray(weights, float) @ (a - b)
    return 1.0 / (1.0 + np.exp(-diff))


class MixtureReward(RewardFn):
    """One rater's reward (or any mixture's): the prototypes' rewards weighed by ``weights``,
    computed with numpy from a copy of the prototype networks (no torch needed to score).
    Components: each prototype's reward (``prototype_k``)."""

    def __init__(
        self, layers: list[list[tuple[np.ndarray, np.ndarray]]], shift: Any, scale: Any, weights: Any
    ):
        self.layers, self.weights = layers, np.asarray(weights, dtype=np.float64)
        self.shift, self.scale = np.asarray(shift, np.float32), np.asarray(scale, np.float32)
        if (
            len(self.weights) != len(layers)
            or not np.isclose(self.weights.sum(), 1.0)
            or (self.weights < 0).any()
        ):
            raise RewardgenError(
                f"mixture weights must be {len(layers)} numbers >= 0 summing to 1, got {weights}"
            )

    def prototype_rewards(self, features: np.ndarray) -> np.ndarray:
        """(K, n) rewards of the prototypes for features (n, d)."""
        x = (np.asarray(features, np.float32) - self.shift) / self.scale
        out = []
        for net in self.layers:
            h = x
            for i, (w, b) in enumerate(net):
                h = h @ w.T + b
                if i < len(net) - 1:
                    h = np.maximum(h, 0.0)
            out.append(h[..., 0])
        return np.stack(out).astype(np.float64)

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        per = self.prototype_rewards(obs_action_features(batch))
        return RewardOutput(self.weights @ per, {f"prototype_{k}": r for k, r in enumerate(per)})


class PluralisticRewardModel:
    """K prototype reward networks over ``input_dim`` features and, per rater, mixture weights on
    the simplex, fitted on comparisons of trajectory segments (see the module's docstring).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.normal(size=(400, 4, 2)), rng.normal(size=(400, 4, 2))
        >>> raters = ["fast", "slow"] * 200  # opposite tastes for feature 0
        >>> sign = np.where(np.array(raters) == "fast", 1.0, -1.0)
        >>> prefs = (sign * (a[..., 0].sum(1) - b[..., 0].sum(1)) > 0).astype(float)
        >>> model = PluralisticRewardModel(input_dim=2, prototypes=2, seed=0)
        >>> model.fit(a, b, prefs, raters, epochs=60) < 0.3
        True
        >>> float(model.accuracy(a, b, prefs, raters)) > 0.9
        True
    """

    def __init__(
        self,
        input_dim: int,
        prototypes: int = 2,
        hidden: Sequence[int] = (64, 64),
        lr: float = 3e-3,
        seed: int = 0,
        device: str = "cpu",
    ):
        import torch
        from torch import nn

        if prototypes < 1 or input_dim < 1:
            raise RewardgenError(
                f"PAL needs prototypes >= 1 and input_dim >= 1, got {prototypes}, {input_dim}"
            )
        torch.manual_seed(seed)
        self.input_dim, self.k, self.lr, self.device = input_dim, prototypes, lr, device
        self.shift = np.zeros(input_dim, np.float32)
        self.scale = np.ones(input_dim, np.float32)
        self.nets = nn.ModuleList([reward_mlp(input_dim, hidden) for _ in range(prototypes)])
        self.nets.to(device)
        self.raters: list[str] = []
        self.logits = torch.zeros((0, prototypes), device=device)  # a_u: w_u = softmax(a_u)

    # scoring --------------------------------------------------------------------------------

    def _prototypes(self, x: Any) -> Any:
        """(K, ...) prototype rewards of standardized features (..., d), a torch tensor."""
        import torch

        return torch.stack([net(x).squeeze(-1) for net in self.nets])

    def weights(self, rater: str) -> np.ndarray:
        """Rater ``rater``'s mixture weights (K,), on the simplex."""
        import torch

        if rater not in self.raters:
            raise RewardgenError(f"no rater {rater!r}: the model knows {self.raters} (place a new one first)")
        with torch.no_grad():
            return torch.softmax(self.logits[self.raters.index(rater)], -1).cpu().numpy().astype(np.float64)

    def mixture(self, rater: str) -> np.ndarray:
        """``rater``'s weights, or even weights for a rater who has not answered yet."""
        return self.weights(rater) if rater in self.raters else np.full(self.k, 1.0 / self.k)

    def prototype_rewards(self, features: np.ndarray) -> np.ndarray:
        """The prototypes' rewards of ``features`` (..., d): array (K, ...)."""
        import torch

        x = torch.as_tensor((np.asarray(features, np.float32) - self.shift) / self.scale, device=self.device)
        with torch.no_grad():
            return self._prototypes(x).cpu().numpy().astype(np.float64)

    def preference_probability(
        self, seg_a: np.ndarray, seg_b: np.ndarray, raters: Sequence[str]
    ) -> np.ndarray:
        """P(A > B) for each comparison (segments (n, T, d)) by the rater who answered it."""
        ra = self.prototype_rewards(seg_a).sum(-1)  # (K, n)
        rb = self.prototype_rewards(seg_b).sum(-1)
        w = np.stack([self.weights(r) for r in raters])  # (n, K)
        return 1.0 / (1.0 + np.exp(-np.einsum("nk,kn->n", w, ra - rb)))

    def accuracy(
        self, seg_a: np.ndarray, seg_b: np.ndarray, prefs: np.ndarray, raters: Sequence[str]
    ) -> float:
        """The share of (non-tied) answers whose side the model gives more than even odds."""
        p = self.preference_probability(seg_a, seg_b, raters)
        prefs = np.asarray(prefs, float)
        decided = prefs != 0.5
        return float(np.mean((p[decided] > 0.5) == (prefs[decided] > 0.5))) if decided.any() else float("nan")

    def reward_fn(self, rater: str | None = None, weights: Any = None) -> MixtureReward:
        """Rater ``rater``'s reward, or that of any mixture ``weights`` (K,), as a RewardFn
        (numpy; a copy of the prototypes as they are now)."""
        if (rater is None) == (weights is None):
            raise RewardgenError("give a rater's name or mixture weights, one of the two")
        w = self.weights(rater) if rater is not None else np.asarray(weights, float)
        layers = [
            [
                (m.weight.detach().cpu().numpy().copy(), m.bias.detach().cpu().numpy().copy())
                for m in net
                if hasattr(m, "weight")
            ]
            for net in self.nets
        ]
        return MixtureReward(layers, self.shift.copy(), self.scale.copy(), w)

    def spec(self, rater: str | None = None, weights: Any = None) -> FnSpec:
        """The picklable spec of :meth:`reward_fn`, for ``TrainConfig(reward=...)``."""
        name = f"pal-{rater}" if rater is not None else "pal-mixture"
        return FnSpec(self.reward_fn(rater, weights), name=name, deferrable=True)

    # learning -------------------------------------------------------------------------------

    def _check(self, seg_a: Any, seg_b: Any, prefs: Any, raters: Sequence[str]) -> tuple[Any, Any, Any]:
        seg_a, seg_b, prefs = check_comparisons(seg_a, seg_b, prefs, self.input_dim)
        if len(raters) != len(prefs):
            raise RewardgenError(f"{len(prefs)} preferences need {len(prefs)} rater names, got {len(raters)}")
        return seg_a, seg_b, prefs

    def _add_raters(self, names: Sequence[str]) -> None:
        import torch

        new = [r for r in dict.fromkeys(names) if r not in self.raters]
        if new:
            self.raters += new
            fresh = torch.zeros((len(new), self.k), device=self.device)
            self.logits = torch.cat([self.logits.detach(), fresh])

    def _train(
        self, a: Any, b: Any, p: Any, idx: Any, params: list[Any], epochs: int, batch_size: int
    ) -> float:
        import torch
        import torch.nn.functional as F

        optim = torch.optim.Adam(params, lr=self.lr)
        n = len(p)
        last = 0.0
        for _ in range(epochs):
            for j in torch.randperm(n, device=self.device).split(batch_size):
                w = torch.softmax(self.logits[idx[j]], -1)  # (m, K)
                diff = self._prototypes(a[j]).sum(-1) - self._prototypes(b[j]).sum(-1)  # (K, m)
                loss = F.binary_cross_entropy_with_logits((w * diff.T).sum(-1), p[j])
                optim.zero_grad()
                loss.backward()
                optim.step()
            with torch.no_grad():
                w = torch.softmax(self.logits[idx], -1)
                diff = self._prototypes(a).sum(-1) - self._prototypes(b).sum(-1)
                last = float(F.binary_cross_entropy_with_logits((w * diff.T).sum(-1), p))
        return last

    def fit(
        self,
        seg_a: np.ndarray,
        seg_b: np.ndarray,
        prefs: np.ndarray,
        raters: Sequence[str],
        epochs: int = 100,
        batch_size: int = 64,
    ) -> float:
        """Fit the prototypes and every rater's weights jointly on all the answers (segments
        (n, T, d); ``prefs`` (n,) in [0, 1], 1 meaning A preferred; ``raters`` (n,) who answered
        each). Returns the last epoch's mean cross-entropy."""
        import torch

        seg_a, seg_b, prefs = self._check(seg_a, seg_b, prefs, raters)
        self._add_raters(raters)
        steps = np.concatenate([seg_a, seg_b]).reshape(-1, self.input_dim)
        self.shift, self.scale = steps.mean(axis=0), steps.std(axis=0) + 1e-6
        a = torch.as_tensor((seg_a - self.shift) / self.scale, device=self.device)
        b = torch.as_tensor((seg_b - self.shift) / self.scale, device=self.device)
        p = torch.as_tensor(prefs, device=self.device)
        idx = torch.as_tensor([self.raters.index(r) for r in raters], device=self.device)
        self.logits = self.logits.detach().requires_grad_(True)
        try:
            return self._train(a, b, p, idx, [*self.nets.parameters(), self.logits], epochs, batch_size)
        finally:
            self.logits = self.logits.detach()

    def place(
        self, rater: str, seg_a: np.ndarray, seg_b: np.ndarray, prefs: np.ndarray, epochs: int = 300
    ) -> np.ndarray:
        """Place a rater (new, or known and answering again) from a few comparisons: only their
        mixture weights are fitted, the prototypes stay as they are. Returns the weights."""
        import torch
        import torch.nn.functional as F

        seg_a, seg_b, prefs = self._check(seg_a, seg_b, prefs, [rater] * len(prefs))
        self._add_raters([rater])
        a = torch.as_tensor((seg_a - self.shift) / self.scale, device=self.device)
        b = torch.as_tensor((seg_b - self.shift) / self.scale, device=self.device)
        p = torch.as_tensor(prefs, device=self.device)
        with torch.no_grad():  # the prototypes are frozen: their return differences, once
            diff = (self._prototypes(a).sum(-1) - self._prototypes(b).sum(-1)).T  # (n, K)
        row = self.raters.index(rater)
        own = self.logits[row].clone().requires_grad_(True)
        optim = torch.optim.Adam([own], lr=0.05)
        for _ in range(epochs):
            loss = F.binary_cross_entropy_with_logits(diff @ torch.softmax(own, -1), p)
            optim.zero_grad()
            loss.backward()
            optim.step()
        self.logits = self.logits.detach().clone()
        self.logits[row] = own.detach()
        return self.weights(rater)


class RaterView:
    """The pluralistic model as one rater sees it, with what PrefPPO's loop asks of a model:
    ``score_features`` (the rater's mixture of the prototypes, even weights until the rater has
    answered), ``disagreement`` (the comparisons the room is least sure of) and ``fit`` (the
    whole model, on every rater's answers).

    Example:
        >>> model = PluralisticRewardModel(input_dim=3, prototypes=2, seed=0)
        >>> RaterView(model, "ana").score_features(np.zeros((4, 3))).total.shape
        (4,)
    """

    def __init__(self, model: PluralisticRewardModel, rater: str):
        self.model, self.rater = model, rater

    def score_features(self, features: np.ndarray) -> RewardOutput:
        per = self.model.prototype_rewards(features)  # (K, n)
        return RewardOutput(
            self.model.mixture(self.rater) @ per, {f"prototype_{k}": r for k, r in enumerate(per)}
        )

    def disagreement(self, seg_a: np.ndarray, seg_b: np.ndarray) -> np.ndarray:
        """Per comparison, how unsure the raters are on average (p(1-p) of each one's P(A > B)):
        the comparisons to ask first."""
        diff = self.model.prototype_rewards(seg_a).sum(-1) - self.model.prototype_rewards(seg_b).sum(-1)
        raters = self.model.raters or [self.rater]
        p = 1.0 / (1.0 + np.exp(-np.stack([self.model.mixture(r) for r in raters]) @ diff))  # (raters, n)
        return (p * (1.0 - p)).mean(axis=0)

    def fit(
        self, seg_a: np.ndarray, seg_b: np.ndarray, prefs: np.ndarray, raters: Sequence[str], epochs: int
    ) -> float:
        return self.model.fit(seg_a, seg_b, prefs, raters, epochs=epochs)

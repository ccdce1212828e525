"""ONI's classification reward model: a small character-level network on message bytes, trained
online on the LLM's labels, so that messages the LLM has not seen yet get a reward too.

The annotation service refits it whenever ``retrain_every`` new labels have arrived and publishes
the weights in the label store under a new version; every env worker picks the newest version up
at its next sync, without a restart, and caches its predictions per message and version.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "MAX_BYTES",
    "MessageClassifier",
    "encode",
    "fit_classifier",
    "fit_ranking",
    "load_classifier",
    "save_classifier",
]

MAX_BYTES = 128  # NetHack messages are rarely longer; the rest is cut


def encode(messages: Sequence[str], max_bytes: int = MAX_BYTES) -> np.ndarray:
    """Messages as (n, max_bytes) byte codes + 1 (0 pads)."""
    out = np.zeros((len(messages), max_bytes), np.int64)
    for i, m in enumerate(messages):
        raw = np.frombuffer(m.encode("latin-1", "replace")[:max_bytes], np.uint8)
        out[i, : len(raw)] = raw.astype(np.int64) + 1
    return out


def _module(embed: int = 32, channels: int = 64) -> Any:
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(257, embed, padding_idx=0)
            self.conv = nn.Conv1d(embed, channels, kernel_size=5, padding=2)
            self.head = nn.Linear(channels, 1)

        def forward(self, codes: torch.Tensor) -> torch.Tensor:
            x = self.embed(codes).transpose(1, 2)  # (n, embed, L)
            x = torch.relu(self.conv(x))
            mask = (codes > 0).unsqueeze(1)
            x = x.masked_fill(~mask, -1e4).amax(dim=2)  # max over the message's characters
            return self.head(x).squeeze(1)  # logits

    return Net()


class MessageClassifier:
    """p(helpful | message) from a byte-level convolutional network.

    Example:
        >>> clf = fit_classifier(["You kill the newt!", "It's a wall."] * 8, [1, 0] * 8, seed=0)
        >>> bool(clf.predict(["You kill the newt!"])[0] > 0.5)
        True
    """

    def __init__(self, net: Any):
        self.net = net.eval()

    def predict(self, messages: Sequence[str]) -> np.ndarray:
        """p(helpful) (a classifier) or sigmoid of the score (a ranking model), per message."""
        import torch

        return torch.sigmoid(torch.as_tensor(self.scores(messages))).numpy()

    def scores(self, messages: Sequence[str]) -> np.ndarray:
        """The network's raw outputs (logits; a ranking model's scores)."""
        import torch

        if not messages:
            return np.zeros(0)
        # one thread: a tiny network, run beside env steps (torch's idle pool threads would spin
        # on the cores the envs need)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.no_grad():
                return self.net(torch.as_tensor(encode(messages))).numpy().astype(np.float64)
        finally:
            torch.set_num_threads(threads)


def fit_classifier(
    messages: Sequence[str], labels: Sequence[int], epochs: int = 30, seed: int = 0, lr: float = 3e-3
) -> MessageClassifier:
    """Train a fresh classifier on labelled messages (binary cross-entropy, classes weighted
    equally: helpful messages are the rarer kind)."""
    import torch

    torch.manual_seed(seed)
    net = _module()
    x = torch.as_tensor(encode(messages))
    y = torch.as_tensor(np.asarray(labels, dtype=np.float32))
    positives = float(y.sum())
    weight = (len(y) - positives) / max(positives, 1.0)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(max(weight, 1e-3)))
    _fit(net, len(y), lambda idx: loss_fn(net(x[idx]), y[idx]), epochs, seed, lr)
    return MessageClassifier(net)


def _fit(net: Any, n: int, loss_of: Any, epochs: int, seed: int, lr: float) -> None:
    """Adam on minibatches of 64 of ``n`` examples (``loss_of(indices)``), reshuffled each epoch."""
    import torch

    opt = torch.optim.Adam(net.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, 64):
            opt.zero_grad()
            loss_of(order[start : start + 64]).backward()
            opt.step()


def fit_ranking(
    pairs: Sequence[tuple[str, str]],
    preferences: Sequence[float],
    epochs: int = 30,
    seed: int = 0,
    lr: float = 3e-3,
) -> MessageClassifier:
    """A Bradley-Terry reward model on messages (Motif's, ONI's ranking model): the same
    byte-level network, its output a score ``r`` with ``p(a preferred to b) = sigmoid(r(a) - r(b))``,
    trained on the LLM's preferences (0.5: neither). ``predict`` gives ``sigmoid(r)``, monotone in
    the score; the reward normalizes it."""
    import torch

    torch.manual_seed(seed)
    net = _module()
    xa = torch.as_tensor(encode([a for a, _ in pairs]))
    xb = torch.as_tensor(encode([b for _, b in pairs]))
    y = torch.as_tensor(np.asarray(preferences, dtype=np.float32))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    _fit(net, len(y), lambda idx: loss_fn(net(xa[idx]) - net(xb[idx]), y[idx]), epochs, seed, lr)
    return MessageClassifier(net)


def save_classifier(clf: MessageClassifier) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(clf.net.state_dict(), buffer)
    return buffer.getvalue()


def load_classifier(weights: bytes) -> MessageClassifier:
    import torch

    net = _module()
    net.load_state_dict(torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True))
    return MessageClassifier(net)

"""sample-factory's model for NetHack: our encoder (sample-factory 2.1.1's wheel ships no NetHack
example, and its default encoder takes 1-D vectors and images, not a window of glyph ids).

A learned embedding of each glyph id in the 9x9 window around the agent, flattened through an
MLP, beside an MLP of the bottom-line statistics (normalized by sample-factory's running
statistics: ``normalize_input_keys=["blstats"]``; glyph ids are ids, not magnitudes). The
message line is the reward's business (ONI), not the policy's.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NETHACK_SETTINGS", "make_nethack_encoder", "use_encoder_for"]

#: sample-factory settings a NetHack run needs beside rewardgen's defaults.
NETHACK_SETTINGS: dict[str, Any] = {"normalize_input_keys": ["blstats"], "encoder_mlp_layers": [256]}


def make_nethack_encoder(cfg: Any, obs_space: Any) -> Any:
    """sample-factory's encoder factory for NetHack observations (glyphs, blstats, message)."""
    import torch
    from sample_factory.model.encoder import Encoder
    from torch import nn

    class NetHackEncoder(Encoder):
        def __init__(self) -> None:
            super().__init__(cfg)
            glyphs = obs_space["glyphs"]
            self.embed = nn.Embedding(int(glyphs.high.max()) + 1, 16)
            cells = int(glyphs.shape[0] * glyphs.shape[1])
            self.glyph_mlp = nn.Sequential(nn.Linear(cells * 16, 256), nn.ELU())
            self.blstats_mlp = nn.Sequential(nn.Linear(int(obs_space["blstats"].shape[0]), 64), nn.ELU())
            self.out_size = 256 + 64

        def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
            glyphs = self.embed(obs["glyphs"].long()).flatten(1)
            return torch.cat([self.glyph_mlp(glyphs), self.blstats_mlp(obs["blstats"].float())], dim=1)

        def get_out_size(self) -> int:
            return self.out_size

    return NetHackEncoder()


def use_encoder_for(gym_id: str) -> dict[str, Any]:
    """Register the encoder sample-factory builds for ``gym_id``'s observations (ours for
    NetHack, sample-factory's default otherwise) and return the settings it needs."""
    from sample_factory.algo.utils.context import global_model_factory
    from sample_factory.model.encoder import default_make_encoder_func

    from rewardgen.tasks.nethack import NETHACK_TASKS

    nethack = gym_id in NETHACK_TASKS
    make = make_nethack_encoder if nethack else default_make_encoder_func
    global_model_factory().register_encoder_factory(make)
    return dict(NETHACK_SETTINGS) if nethack else {}

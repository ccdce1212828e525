"""NetHack (the NetHack Learning Environment, ``nle``) with observations chosen for learning.

NLE's full observation holds a dozen arrays, one of them 21 x 79 x 80 screen descriptions per
step; an agent learns from far less. :class:`NetHackObservation` keeps

- ``glyphs``: a ``CROP`` x ``CROP`` window of glyph ids centred on the agent (NLE's ``glyphs``
  around ``blstats``' x, y; off-map cells are 0),
- ``blstats``: the 27 bottom-line statistics (hit points, gold, depth, score, time...),
- ``message``: the game's message line, 256 bytes, text up to the first NUL
  (:func:`decode_message`),

and, in ``info``, ``message_text``. Importing this module registers ``rewardgen/NetHackScore-v0``,
``...Staircase-v0``, ``...Oracle-v0`` and ``...Gold-v0``: NLE's tasks of those names (nle 1.3 on
gymnasium 1.x, nle 1.0 on the sample-factory stack) with this observation.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["BLSTATS", "CROP", "NETHACK_TASKS", "NetHackObservation", "decode_message", "register"]

CROP = 9
#: Indices into ``blstats`` (nle.nethack.NLE_BL_*), for fields and rewards.
BLSTATS = {"x": 0, "y": 1, "score": 9, "hp": 10, "hp_max": 11, "depth": 12, "gold": 13, "time": 20}
#: rewardgen's id -> NLE's.
NETHACK_TASKS = {
    "rewardgen/NetHackScore-v0": "NetHackScore-v0",
    "rewardgen/NetHackStaircase-v0": "NetHackStaircase-v0",
    "rewardgen/NetHackOracle-v0": "NetHackOracle-v0",
    "rewardgen/NetHackGold-v0": "NetHackGold-v0",
}


def decode_message(message: Any) -> str:
    """NLE's message array (256 bytes, NUL-padded; or those bytes) as text.

    Example:
        >>> decode_message(np.frombuffer(b"You hit the jackal.".ljust(256, b"\\0"), np.uint8))
        'You hit the jackal.'
    """
    raw = message if isinstance(message, bytes) else bytes(np.asarray(message, dtype=np.uint8))
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()


class NetHackObservation(gym.ObservationWrapper):
    """NLE's observation cut to a glyph window around the agent, blstats and the message.

    Example:
        >>> env = gym.make("rewardgen/NetHackScore-v0")  # doctest: +SKIP
        >>> sorted(env.observation_space.spaces)  # doctest: +SKIP
        ['blstats', 'glyphs', 'message']
    """

    def __init__(self, env: gym.Env, crop: int = CROP):
        super().__init__(env)
        spaces = env.observation_space.spaces
        self.crop = crop
        glyphs = spaces["glyphs"]
        self.observation_space = gym.spaces.Dict(
            {
                "glyphs": gym.spaces.Box(0, int(glyphs.high.max()), (crop, crop), np.int16),
                "blstats": spaces["blstats"],
                "message": spaces["message"],
            }
        )

    def observation(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        glyphs, blstats = obs["glyphs"], obs["blstats"]
        h, w, r = *glyphs.shape, self.crop // 2
        x, y = int(blstats[BLSTATS["x"]]), int(blstats[BLSTATS["y"]])
        padded = np.zeros((h + 2 * r, w + 2 * r), np.int16)
        padded[r : r + h, r : r + w] = glyphs
        return {
            "glyphs": padded[y : y + self.crop, x : x + self.crop].copy(),
            "blstats": np.asarray(blstats).copy(),
            "message": np.asarray(obs["message"]).copy(),
        }

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = super().step(action)
        info["message_text"] = decode_message(obs["message"])
        return obs, reward, terminated, truncated, info


def _make(nle_id: str, crop: int = CROP, **kwargs: Any) -> gym.Env:
    import nle  # noqa: F401  (registers NLE's envs)

    keys = ("glyphs", "blstats", "message")
    return NetHackObservation(gym.make(nle_id, observation_keys=keys, **kwargs), crop)


def register() -> None:
    """Register rewardgen's NetHack ids (once)."""
    for ours, theirs in NETHACK_TASKS.items():
        if ours not in gym.registry:
            gym.register(ours, entry_point=_make, kwargs={"nle_id": theirs}, disable_env_checker=True)


register()

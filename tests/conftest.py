import os
from typing import ClassVar

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np
import pytest

from rewardgen.rewards import RewardFn, RewardOutput

GYM_1 = int(gym.__version__.split(".")[0]) >= 1


class CountEnv(gym.Env):
    """obs = [step count, env id]; env reward = 1 per step; ends after ``length`` steps
    (terminated, or truncated when ``truncate``). Renders a frame whose pixels hold the count."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, length: int = 3, env_id: int = 0, truncate: bool = False, render_mode=None):
        self.length, self.env_id, self.truncate, self.render_mode = length, env_id, truncate, render_mode
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
        self.action_space = gym.spaces.Box(-1, 1, (1,), np.float32)
        self.t = 0

    def _obs(self):
        return np.array([self.t, self.env_id], dtype=np.float64)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {"t": 0.0}

    def step(self, action):
        self.t += 1
        done = self.t >= self.length
        info = {"t": float(self.t), "speed": 2.0 * self.t}
        return self._obs(), 1.0, done and not self.truncate, done and self.truncate, info

    def render(self):
        return np.full((8, 8, 3), self.t, dtype=np.uint8)


class NextObsT(RewardFn):
    """Reward = the step count in next_obs; counts its calls and keeps the last batch."""

    def __init__(self, needs_frames: bool = False):
        self.calls, self.batches, self.needs_frames = 0, [], needs_frames
        self.resets: list[list[int]] = []

    def compute(self, batch):
        self.calls += 1
        self.batches.append(batch)
        t = np.asarray(batch.next_obs)[:, 0].astype(np.float64)
        return RewardOutput(total=10.0 * t, components={"t": t, "const": np.ones(batch.n)})

    def reset(self, env_indices):
        self.resets.append(list(env_indices))


@pytest.fixture
def count_env():
    return CountEnv

"""Short clips of the current policy for a judge who watches (the web page, a terminal):
PrefPPO's queries, filmed while training waits for the answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.rewards import RewardFn
from rewardgen.training.hooks import Act

__all__ = ["ClipFilmer"]


class ClipFilmer:
    """Short clips of the current policy for a judge who watches (the web page, a terminal):
    ``gather`` plays the policy in a rendering env of the task and cuts whole segments with their
    frames; ``write`` saves a clip as ``queries/<round>/<name>.mp4`` in the run."""

    def __init__(self, task: Any, reference: RewardFn, folder: Path, length: int, seed: int = 0):
        from stable_baselines3.common.vec_env import DummyVecEnv

        from rewardgen.tasks import make_env_fn, wrapper_kwargs
        from rewardgen.wrappers.sb3 import SB3RewardVecWrapper

        venv = DummyVecEnv([make_env_fn(task, render_mode="rgb_array", fields=reference.fields)])
        venv.seed(seed)
        self.venv = SB3RewardVecWrapper(venv, reference, **wrapper_kwargs(task, reference.fields))
        self.fps = int(venv.envs[0].metadata.get("render_fps", 30))
        self.folder, self.length = Path(folder), length
        self.obs = self.venv.reset()

    def gather(self, act: Act, count: int) -> list[tuple[np.ndarray, np.ndarray, list[np.ndarray]]]:
        """``count`` segments (features (L, d), reference reward (L,), frames) of the policy ``act``."""
        clips: list[tuple[np.ndarray, np.ndarray, list[np.ndarray]]] = []
        feats: list[np.ndarray] = []
        refs: list[float] = []
        frames: list[np.ndarray] = []
        while len(clips) < count:
            frames.append(self.venv.get_images()[0])
            action = act(self.obs)
            self.obs, reward, dones, infos = self.venv.step(action)
            next_obs = infos[0].get("terminal_observation", self.obs[0]) if dones[0] else self.obs[0]
            feats.append(np.concatenate([np.ravel(next_obs), np.ravel(action)]).astype(np.float32))
            refs.append(float(reward[0]))
            if len(feats) == self.length:
                clips.append((np.stack(feats), np.array(refs), frames))
                feats, refs, frames = [], [], []
            if dones[0]:  # a segment never crosses an episode's end
                feats, refs, frames = [], [], []
        return clips

    def write(self, round_id: str, name: str, frames: list[np.ndarray]) -> Path:
        from rewardgen.runs import write_video

        path = self.folder / "queries" / round_id / f"{name}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(frames, path, fps=self.fps)
        return path

    def close(self) -> None:
        self.venv.close()

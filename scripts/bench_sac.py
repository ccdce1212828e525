#!/usr/bin/env python
"""Where SAC's wall-clock time goes on a Meta-World task with a sandboxed reward program.

Times, in one run on this machine: the Meta-World env step, the reward wrapper with the task's
reward program in-process and in the sandbox (one process round trip per step), one SAC gradient
step (SB3's defaults: batch 256, two 256x256 critics and an actor), and end-to-end SAC training
steps/s with one gradient step per env step. Prints each part's share of a training step.

    python scripts/bench_sac.py [--task metaworld-drawer-open] [--steps 500]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

from rewardgen.programs import SandboxLimits
from rewardgen.tasks import get_task, make_env_fn, wrapper_kwargs


def _venv(spec, sandbox: bool | None):
    """1-env DummyVecEnv: raw (sandbox None), or wrapped with the reward in-process/sandboxed."""
    from stable_baselines3.common.env_util import make_vec_env

    from rewardgen.wrappers.sb3 import SB3RewardVecWrapper

    if sandbox is None:
        return make_vec_env(make_env_fn(spec), n_envs=1, seed=0)
    reward = spec.reference_reward(SandboxLimits() if sandbox else None).build()
    venv = make_vec_env(make_env_fn(spec, fields=reward.fields), n_envs=1, seed=0)
    return SB3RewardVecWrapper(venv, reward, **wrapper_kwargs(spec, reward.fields))


def _ms_per_step(venv, steps: int) -> float:
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(steps, 1, venv.action_space.shape[0])).astype(np.float32)
    venv.reset()
    for a in actions[:20]:  # warm up (the sandbox worker starts on the first call)
        venv.step(a)
    t0 = time.perf_counter()
    for a in actions:
        venv.step(a)
    return (time.perf_counter() - t0) * 1000 / steps


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--task", default="metaworld-drawer-open")
    parser.add_argument("--steps", type=int, default=500, help="env steps per measurement")
    args = parser.parse_args()
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit
    from stable_baselines3.common.vec_env import VecNormalize

    spec = get_task(args.task)
    print(f"{spec.id} ({spec.gym_id}), 1 env, torch {torch.__version__} on {torch.get_num_threads()} threads")
    env_ms = {}
    for label, sandbox in (
        ("env step", None),
        ("+ reward in-process", False),
        ("+ reward in the sandbox", True),
    ):
        venv = _venv(spec, sandbox)
        env_ms[label] = _ms_per_step(venv, args.steps)
        venv.close()
        print(f"  {label:<26} {env_ms[label]:7.2f} ms per step")
    venv = VecNormalize(_venv(spec, True), gamma=0.99)
    model = SAC("MlpPolicy", venv, learning_starts=0, verbose=0, device="cpu", seed=0)
    model.learn(300)  # fill the replay buffer a little
    model.train(gradient_steps=10, batch_size=256)
    n_grad = max(args.steps // 5, 20)
    t0 = time.perf_counter()
    model.train(gradient_steps=n_grad, batch_size=256)
    grad_ms = (time.perf_counter() - t0) * 1000 / n_grad
    print(f"  {'SAC gradient step':<26} {grad_ms:7.2f} ms")
    t0 = time.perf_counter()
    model.learn(args.steps, reset_num_timesteps=False)
    total_ms = (time.perf_counter() - t0) * 1000 / args.steps
    model.train_freq = TrainFreq(16, TrainFrequencyUnit.STEP)
    model.gradient_steps = 16
    t0 = time.perf_counter()
    model.learn(args.steps, reset_num_timesteps=False)
    batched_ms = (time.perf_counter() - t0) * 1000 / args.steps
    venv.close()
    sandbox_ms = env_ms["+ reward in the sandbox"] - env_ms["+ reward in-process"]
    reward_ms = env_ms["+ reward in-process"] - env_ms["env step"]
    print(f"SAC training (one gradient step per env step): {1000 / total_ms:.0f} env steps/s")
    shares = {
        "gradient step": grad_ms,
        "Meta-World": env_ms["env step"],
        "reward program": max(reward_ms, 0.0),
        "sandbox round trip": max(sandbox_ms, 0.0),
    }
    shares["the rest (action selection, replay buffer, SB3)"] = max(total_ms - sum(shares.values()), 0.0)
    print("share of a training step: " + ", ".join(f"{k} {v / total_ms:.0%}" for k, v in shares.items()))
    print(
        "16 gradient steps every 16 env steps (the same updates, batched): "
        f"{1000 / batched_ms:.0f} env steps/s, {total_ms / batched_ms:.2f}x"
    )


if __name__ == "__main__":
    main()

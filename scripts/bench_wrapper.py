#!/usr/bin/env python
"""Env steps/s of HalfCheetah with 8 envs: raw vs wrapped with the reference reward program.

Measured for a gymnasium SyncVectorEnv and an SB3 DummyVecEnv, raw and wrapped interleaved in
one run (several rounds, median) so that machine noise hits both alike; prints the ratio.
Target: wrapped / raw >= 0.95.

    python scripts/bench_wrapper.py [--steps 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv

from rewardgen.tasks import get_task, make_env_fn, wrapper_kwargs
from rewardgen.train.sb3 import load_reward
from rewardgen.wrappers import SB3RewardVecWrapper, VectorRewardWrapper

TASK = "halfcheetah-run"
N_ENVS = 8


def _raw_fn(spec):
    return lambda: gym.make(spec.gym_id)


def build(kind: str, wrapped: bool):
    spec = get_task(TASK)
    reward = load_reward(spec, None)[1]
    fns = [make_env_fn(spec, fields=reward.fields) if wrapped else _raw_fn(spec) for _ in range(N_ENVS)]
    kwargs = wrapper_kwargs(spec, reward.fields)
    if kind == "gymnasium":
        env = gym.vector.SyncVectorEnv(fns)
        return VectorRewardWrapper(env, reward, **kwargs) if wrapped else env
    env = DummyVecEnv(fns)
    return SB3RewardVecWrapper(env, reward, **kwargs) if wrapped else env


def steps_per_second(env, kind: str, steps: int, actions: np.ndarray) -> float:
    if kind == "gymnasium":
        env.reset(seed=0)
    else:
        env.seed(0)
        env.reset()
    t0 = time.perf_counter()
    for i in range(steps):
        env.step(actions[i % len(actions)])
    return steps * N_ENVS / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=2000, help="vector steps per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(256, N_ENVS, 6)).astype(np.float32)
    print(
        f"HalfCheetah ({get_task(TASK).gym_id}), {N_ENVS} envs, "
        f"{args.steps} vector steps x {args.rounds} rounds"
    )
    for kind in ("gymnasium", "sb3"):
        envs = {w: build(kind, w) for w in (False, True)}
        ratios, raw_sps, wrapped_sps = [], [], []
        for _ in range(args.rounds):
            raw = steps_per_second(envs[False], kind, args.steps, actions)
            wrapped = steps_per_second(envs[True], kind, args.steps, actions)
            raw_sps.append(raw)
            wrapped_sps.append(wrapped)
            ratios.append(wrapped / raw)
        for env in envs.values():
            env.close()
        print(
            f"{kind:>10}: raw {statistics.median(raw_sps):8.0f} steps/s, wrapped "
            f"{statistics.median(wrapped_sps):8.0f} steps/s, wrapped/raw = {statistics.median(ratios):.3f}"
            f"  (rounds: {', '.join(f'{r:.3f}' for r in ratios)})"
        )


if __name__ == "__main__":
    main()

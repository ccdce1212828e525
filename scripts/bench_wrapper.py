#!/usr/bin/env python
"""Env steps/s of HalfCheetah with 8 envs: raw vs wrapped with the reference reward program.

Measured for a gymnasium SyncVectorEnv and an SB3 DummyVecEnv, raw and wrapped interleaved in
one run (short blocks, alternating, CPU time of this process, median) so that machine noise
hits both alike; prints the ratio. Target: wrapped / raw >= 0.95. The third line is the SB3
wrapper as PPO training uses it (``defer=True``: one reward call per block of steps, here per
block of 100 vector steps, instead of one per step).

    python scripts/bench_wrapper.py [--block 100] [--blocks 60]
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
from rewardgen.tasks.make import quiet_mujoco_warnings
from rewardgen.wrappers import SB3RewardVecWrapper, VectorRewardWrapper

TASK = "halfcheetah-run"
N_ENVS = 8


def _raw_fn(spec):
    quiet_mujoco_warnings()  # as make_env does for the wrapped envs
    return lambda: gym.make(spec.gym_id)


KINDS = ("gymnasium", "sb3", "sb3-deferred")


def build(kind: str, wrapped: bool):
    spec = get_task(TASK)
    reward = spec.reference_reward().build()
    fns = [make_env_fn(spec, fields=reward.fields) if wrapped else _raw_fn(spec) for _ in range(N_ENVS)]
    kwargs = wrapper_kwargs(spec, reward.fields)
    if kind == "gymnasium":
        env = gym.vector.SyncVectorEnv(fns)
        return VectorRewardWrapper(env, reward, **kwargs) if wrapped else env
    env = DummyVecEnv(fns)
    return SB3RewardVecWrapper(env, reward, defer=kind == "sb3-deferred", **kwargs) if wrapped else env


def reset(env, kind: str) -> None:
    if kind == "gymnasium":
        env.reset(seed=0)
    else:
        env.seed(0)
        env.reset()


def block_seconds(env, steps: int, actions: np.ndarray) -> float:
    """CPU seconds of this process for ``steps`` vector steps (robust to other processes), the
    deferred wrapper's reward call for them included."""
    t0 = time.process_time()
    for i in range(steps):
        env.step(actions[i % len(actions)])
    if getattr(env, "defer", False):
        env.flush()
    return time.process_time() - t0


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--block", type=int, default=100, help="vector steps per timed block")
    parser.add_argument("--blocks", type=int, default=60, help="blocks per variant, alternating")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(256, N_ENVS, 6)).astype(np.float32)
    print(
        f"HalfCheetah ({get_task(TASK).gym_id}), {N_ENVS} envs, {args.blocks} blocks of {args.block} "
        "vector steps per variant, raw and wrapped alternating; median block time"
    )
    for kind in KINDS:
        envs = {w: build(kind, w) for w in (False, True)}
        for env in envs.values():
            reset(env, kind)
            block_seconds(env, 50, actions)  # warm up
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.blocks):
            for wrapped in (False, True):
                times[wrapped].append(block_seconds(envs[wrapped], args.block, actions))
        for env in envs.values():
            env.close()
        raw, wrapped = statistics.median(times[False]), statistics.median(times[True])
        sps = args.block * N_ENVS
        print(
            f"{kind:>12}: raw {sps / raw:8.0f} steps/s, wrapped {sps / wrapped:8.0f} steps/s, "
            f"wrapped/raw = {raw / wrapped:.3f}"
        )


if __name__ == "__main__":
    main()

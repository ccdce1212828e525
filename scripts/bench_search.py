#!/usr/bin/env python
"""Search throughput: K=4 candidates trained serially vs in parallel worker processes, and the
cost of calling a generated reward in the sandbox during training.

1. Wall-clock of evaluating 4 candidates (smoke test, PPO training, evaluation; the reward
   sandboxed) with 1 worker, then with one worker per core; prints the speedup (target >= 1.6x
   on 2 cores).
2. Env steps/s of Hopper with 8 envs: raw vs wrapped with a typical generated reward, in-process
   and sandboxed, interleaved blocks (target: sandboxed/raw >= 0.9). Sandboxed training scores a
   whole PPO rollout in one call (deferred rewards); the per-step sandbox call is shown beside it.

    python scripts/bench_search.py [--steps 8192] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np

from rewardgen.programs import CodeReward, RewardProgram, SandboxLimits, SandboxRunner
from rewardgen.synthesis import SearchConfig, evaluate_candidate
from rewardgen.synthesis.executor import LocalExecutor
from rewardgen.tasks import get_task, make_env_fn, wrapper_kwargs
from rewardgen.wrappers import VectorRewardWrapper

TASK = "hopper-run-backward"
PROGRAM = """import numpy as np

BACKWARD_WEIGHT = 1.0
HEALTHY_REWARD = 1.0
CTRL_WEIGHT = 1e-3


def compute_reward(obs, action, next_obs, info):
    backward = -BACKWARD_WEIGHT * info["x_velocity"]
    upright = HEALTHY_REWARD * info["is_healthy"] * np.exp(-np.abs(info["torso_angle"]) / 0.2)
    ctrl = CTRL_WEIGHT * np.sum(np.square(action), axis=1)
    return backward + upright - ctrl, {"backward": backward, "upright": upright, "ctrl": -ctrl}
"""


def search_seconds(workers: int, steps: int, root: Path) -> float:
    task = get_task(TASK)
    config = SearchConfig(task=TASK, steps=steps, eval_episodes=1, workers=workers)  # the defaults
    reply = f"```python\n{PROGRAM}```"
    jobs = [(task, reply, 0, i, root / f"w{workers}" / f"cand{i}", config) for i in range(4)]
    executor = LocalExecutor(workers)
    executor.map(pow, [(1, 1)] * workers)  # start the pool before the clock
    t0 = time.perf_counter()
    results = executor.map(evaluate_candidate, jobs)
    elapsed = time.perf_counter() - t0
    executor.close()
    bad = [r for r in results if isinstance(r, BaseException) or r.status != "trained"]
    if bad:
        raise SystemExit(f"a candidate did not train: {bad[0]}")
    return elapsed


def reward_overhead(blocks: int, block: int) -> dict[str, float]:
    spec = get_task(TASK)
    program = RewardProgram.from_source(PROGRAM, name="generated.py")
    variants = {"raw": None, "in-process": CodeReward(program)}
    envs = {}
    for name, reward in variants.items():
        fields = reward.fields if reward else None
        env = gym.vector.SyncVectorEnv([make_env_fn(spec, fields=fields) for _ in range(8)])
        envs[name] = VectorRewardWrapper(env, reward, **wrapper_kwargs(spec, fields)) if reward else env
        envs[name].reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (64, 8, 3)).astype(np.float32)
    times: dict[str, list[float]] = {k: [] for k in envs}
    for _ in range(blocks):
        for name, env in envs.items():
            t0 = time.process_time()
            for i in range(block):
                env.step(actions[i % 64])
            times[name].append(time.process_time() - t0)
    for env in envs.values():
        env.close()
    return {k: statistics.median(v) for k, v in times.items()}


# The sandbox worker's CPU time is not this process's, so the sandboxed variant is timed by the
# wall clock (noisier): raw and wrapped blocks alternate.


def sandbox_wall_ratio(blocks: int, block: int) -> float:
    spec = get_task(TASK)
    program = RewardProgram.from_source(PROGRAM, name="generated.py")
    reward = CodeReward(program, SandboxRunner(program, SandboxLimits()))
    raw = gym.vector.SyncVectorEnv([make_env_fn(spec, fields=reward.fields) for _ in range(8)])
    wrapped_inner = gym.vector.SyncVectorEnv([make_env_fn(spec, fields=reward.fields) for _ in range(8)])
    wrapped = VectorRewardWrapper(wrapped_inner, reward, **wrapper_kwargs(spec, reward.fields))
    raw.reset(seed=0)
    wrapped.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (64, 8, 3)).astype(np.float32)
    r, w = [], []
    for _ in range(blocks):
        for env, acc in ((raw, r), (wrapped, w)):
            t0 = time.perf_counter()
            for i in range(block):
                env.step(actions[i % 64])
            acc.append(time.perf_counter() - t0)
    raw.close()
    wrapped.close()
    return statistics.median(r) / statistics.median(w)


def sb3_sandbox_ratios(blocks: int, block: int) -> dict[str, float]:
    """SB3 VecEnv steps/s, wall clock: raw, the sandboxed reward called per step, and deferred to
    one call per ``block`` steps (a PPO rollout of block x 8 transitions)."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rewardgen.wrappers.sb3 import SB3RewardVecWrapper

    spec = get_task(TASK)
    program = RewardProgram.from_source(PROGRAM, name="generated.py")
    envs = {}
    for name in ("raw", "per-step", "deferred"):
        reward = CodeReward(program, SandboxRunner(program, SandboxLimits()))
        venv = DummyVecEnv([make_env_fn(spec, fields=reward.fields) for _ in range(8)])
        if name != "raw":
            venv = SB3RewardVecWrapper(
                venv, reward, defer=name == "deferred", **wrapper_kwargs(spec, reward.fields)
            )
        venv.seed(0)
        venv.reset()
        envs[name] = venv
    actions = np.random.default_rng(0).uniform(-1, 1, (64, 8, 3)).astype(np.float32)
    times: dict[str, list[float]] = {k: [] for k in envs}
    for _ in range(blocks):
        for name, venv in envs.items():
            t0 = time.perf_counter()
            for i in range(block):
                venv.step(actions[i % 64])
            if name == "deferred":
                venv.flush()
            times[name].append(time.perf_counter() - t0)
    for venv in envs.values():
        venv.close()
    raw = statistics.median(times["raw"])
    return {k: raw / statistics.median(v) for k, v in times.items() if k != "raw"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=8192, help="PPO steps per candidate")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        serial = search_seconds(1, args.steps, Path(tmp))
        parallel = search_seconds(args.workers, args.steps, Path(tmp))
    print(f"4 candidates x {args.steps} PPO steps ({TASK}, sandboxed rewards):")
    print(
        f"  serial {serial:.1f} s, {args.workers} workers {parallel:.1f} s, speedup {serial / parallel:.2f}x"
    )
    t = reward_overhead(blocks=30, block=50)
    print("Hopper, 8 envs, CPU time of this process per 50 vector steps (median of 30 blocks):")
    print(f"  in-process reward / raw = {t['raw'] / t['in-process']:.3f}")
    print(f"  sandboxed reward, wall-clock steps/s ratio = {sandbox_wall_ratio(blocks=30, block=50):.3f}")
    r = sb3_sandbox_ratios(blocks=20, block=256)
    print(
        "SB3 VecEnv, Hopper, 8 envs, sandboxed reward, wall-clock steps/s ratio to raw (median of 20 blocks):"
    )
    print(
        f"  called per step {r['per-step']:.3f}; "
        f"deferred, one call per 256 x 8 transitions {r['deferred']:.3f}"
    )


if __name__ == "__main__":
    main()

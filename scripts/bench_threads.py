#!/usr/bin/env python
"""SAC gradient steps/s on a shared machine: torch's default threads against the number rewardgen
chooses (``rewardgen/training/threads.py``: OMP_NUM_THREADS, else the cores free now, at most 4).

One process per core spins in the background (other trainings on a shared box), then SB3's SAC
on Hopper does blocks of gradient steps, alternating the two settings so that noise hits both;
prints the median gradient steps per second (wall clock: what a user waits) of each, and the
ratio chosen / default. Then the same without the spinning processes.

    python scripts/bench_threads.py [--blocks 6] [--steps 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import torch
from stable_baselines3 import SAC

from rewardgen.tasks import get_task, make_env
from rewardgen.training.threads import choose_threads


def measure(blocks: int, steps: int, label: str) -> None:
    default = torch.get_num_threads()
    env = make_env(get_task("hopper-run"))
    model = SAC("MlpPolicy", env, learning_starts=1000, batch_size=256, verbose=0, seed=0, device="cpu")
    model.learn(1000)  # a replay buffer to sample from; no gradient step yet
    chosen = choose_threads()
    rates: dict[int, list[float]] = {default: [], chosen: []}
    for _ in range(blocks):
        for threads in (default, chosen):
            torch.set_num_threads(threads)
            t0 = time.perf_counter()
            model.train(gradient_steps=steps, batch_size=256)
            rates[threads].append(steps / (time.perf_counter() - t0))
    torch.set_num_threads(default)
    env.close()
    a, b = statistics.median(rates[default]), statistics.median(rates[chosen])
    if chosen == default:
        print(f"{label}: default and chosen are both {default} threads: {a:.1f} gradient steps/s")
        return
    print(
        f"{label}: default {default} threads {a:.1f} gradient steps/s; chosen {chosen} threads "
        f"{b:.1f} gradient steps/s; ratio chosen/default {b / a:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        time.sleep(1.0)
        measure(args.blocks, args.steps, f"with {cores} busy processes on {cores} cores")
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()
    time.sleep(1.0)
    measure(args.blocks, args.steps, "on an idle machine")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""SB3 PPO against sample-factory APPO on one MuJoCo task, same reward, same machine, one run
(the sample-factory stack: ``make test-sf`` builds ``.venv-sf``).

1. Both back ends train ``halfcheetah-run`` on its reference reward for the same number of env
   steps: env steps/s of training, and the wall-clock seconds until the training episodes' mean
   success metric first met the task's threshold (from each run's metrics.csv).
2. The reward wrapper inside sample-factory's rollout workers: env steps/s of one worker's 8
   envs built and stepped as sample-factory's samplers do, with the wrapper (the reference reward
   program, in-process and sandboxed) against the raw env, alternating runs; non-batched sampling
   (a wrapper, and a sandbox worker, per env) and batched sampling (rewardgen's default: one
   reward call, and one sandbox worker, per vectorized env). Target: wrapped / raw >= 0.95.

    python scripts/bench_backends.py [--steps 400000] [--wrapper-steps 50000] [--rounds 5] [--skip-training]
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

from rewardgen.tasks import get_task
from rewardgen.training import TrainConfig, train
from rewardgen.training.sf import make_sf_env, require_sf, sf_config, sf_settings

TASK = "halfcheetah-run"


def first_success(run: Path, threshold: float) -> tuple[float | None, int | None]:
    """(wall seconds, env steps) of the first metrics.csv row whose mean success metric passed."""
    with (run / "metrics.csv").open() as f:
        for row in csv.DictReader(f):
            if float(row["success_metric_mean"]) > threshold:
                return float(row["wall_time_s"]), int(row["timesteps"])
    return None, None


def worker_fps(
    task, wrapped: bool, batched: bool, steps: int, folder: Path, envs: int = 8, sandboxed: bool = False
) -> float:
    """Env steps/s of one rollout worker's envs, built the way sample-factory builds them (its
    make_env_func_batched / _non_batched around rewardgen's factory) and stepped the way its
    samplers step them (a vectorized env per split, or each env on its own), random actions, the
    env with or without the reward wrapper. No learner competes for the cores: this is the
    wrapper's cost where it runs."""
    import numpy as np
    import torch
    from sample_factory.algo.utils.make_env import make_env_func_batched, make_env_func_non_batched
    from sample_factory.envs.env_utils import register_env
    from sample_factory.utils.attr_dict import AttrDict

    hp = {"batched_sampling": batched}
    settings, vector = sf_settings(task, folder, steps, 0, "cpu", 1, envs, hp)
    from rewardgen.programs import SandboxLimits

    reward = task.reference_reward(SandboxLimits() if sandboxed else None) if wrapped else None
    register_env(settings["env"], functools.partial(make_sf_env, task=task, reward=reward, vector=vector))
    cfg = sf_config(settings)
    rng = np.random.default_rng(0)
    if batched:  # a vectorized env per split, stepped with a (n, actions) tensor
        made = [
            make_env_func_batched(cfg, AttrDict(worker_index=0, vector_index=i, env_id=i)) for i in range(2)
        ]
        for e in made:
            e.seed(0)
            e.reset()
        space = made[0].action_space

        def step_all() -> int:
            for e in made:
                e.step(torch.as_tensor(rng.uniform(space.low, space.high, (vector, *space.shape))))
            return 2 * vector
    else:  # each env on its own, a list of one action
        made = [
            make_env_func_non_batched(cfg, AttrDict(worker_index=0, vector_index=i, env_id=i))
            for i in range(envs)
        ]
        for e in made:
            e.reset(seed=0)
        space = made[0].action_space

        def step_all() -> int:
            for e in made:
                e.step([rng.uniform(space.low, space.high)])
            return envs

    for _ in range(20):  # warm up
        step_all()
    done, started = 0, time.perf_counter()
    while done < steps:
        done += step_all()
    rate = done / (time.perf_counter() - started)
    for e in made:
        e.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=400_000)
    parser.add_argument("--wrapper-steps", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-training", action="store_true", help="only the rollout worker's env steps")
    args = parser.parse_args()
    require_sf()
    task = get_task(TASK)
    threshold = task.metric.above
    root = Path(tempfile.mkdtemp(prefix="bench-backends-"))
    lines = []
    for backend in () if args.skip_training else ("sb3", "sf"):
        config = TrainConfig(
            task=TASK, steps=args.steps, backend=backend, video=False, eval_episodes=1, progress=False
        )
        result = train(config, out=root / backend)
        manifest = json.loads((result.run_dir / "manifest.json").read_text())
        rows = list(csv.DictReader((result.run_dir / "metrics.csv").open()))
        first, last = rows[0], rows[-1]  # between the first and last rows: start-up left out
        rate = (int(last["timesteps"]) - int(first["timesteps"])) / (
            float(last["wall_time_s"]) - float(first["wall_time_s"])
        )
        wall, at = first_success(result.run_dir, threshold)
        hit = f"{wall:4.0f} s ({at:,} steps)" if wall is not None else "not reached"
        final = manifest["eval"]["success_metric_mean"]
        lines.append(
            f"{backend:>3}: {rate:6.0f} env steps/s over {int(last['timesteps']):,} steps; training episodes "
            f"met the success metric after {hit}; final evaluation {final:.2f} m/s"
        )
        print(lines[-1], flush=True)
    print("\n".join(lines))
    for sandboxed, batched in ((False, False), (False, True), (True, False), (True, True)):
        rates: dict[str, list[float]] = {"raw": [], "wrapped": []}
        for k in range(args.rounds):  # alternating: drifts in the machine's speed hit both alike
            for kind in ("raw", "wrapped"):
                folder = root / f"{kind}-{batched}-{sandboxed}-{k}"
                rates[kind].append(
                    worker_fps(
                        task, kind == "wrapped", batched, args.wrapper_steps, folder, sandboxed=sandboxed
                    )
                )
        ratios = [w / r for w, r in zip(rates["wrapped"], rates["raw"], strict=True)]
        how = "batched sampling (one reward call per vectorized env)" if batched else "non-batched sampling"
        if sandboxed:
            how += ", sandboxed program (a sandbox per " + ("vectorized env)" if batched else "env)")
        raw, wrapped = statistics.median(rates["raw"]), statistics.median(rates["wrapped"])
        print(
            f"sf rollout worker, 8 envs, {how}: raw {raw:.0f} env steps/s, "
            f"wrapped {wrapped:.0f}, wrapped/raw = {statistics.median(ratios):.3f} "
            f"(median of {args.rounds} alternating runs of {args.wrapper_steps:,} steps)",
            flush=True,
        )


if __name__ == "__main__":
    main()

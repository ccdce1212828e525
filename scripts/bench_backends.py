#!/usr/bin/env python
"""SB3 PPO against sample-factory APPO on one MuJoCo task, same reward, same machine, one run
(the sample-factory stack: ``make test-sf`` builds ``.venv-sf``).

1. Both back ends train ``halfcheetah-run`` on its reference reward for the same number of env
   steps: env steps/s of training, and the wall-clock seconds until the training episodes' mean
   success metric first met the task's threshold (from each run's metrics.csv).
2. The reward wrapper inside sample-factory's rollout workers: APPO's env steps/s with the
   wrapper (the reference reward program) against the raw env, alternating short runs.
   Target: wrapped / raw >= 0.95.

    python scripts/bench_backends.py [--steps 400000] [--wrapper-steps 100000] [--rounds 2]
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

from rewardgen.tasks import get_task, make_env
from rewardgen.train import TrainConfig, train
from rewardgen.train.sf import make_sf_env, require_sf, sf_config, sf_settings

TASK = "halfcheetah-run"


def first_success(run: Path, threshold: float) -> tuple[float | None, int | None]:
    """(wall seconds, env steps) of the first metrics.csv row whose mean success metric passed."""
    with (run / "metrics.csv").open() as f:
        for row in csv.DictReader(f):
            if float(row["success_metric_mean"]) > threshold:
                return float(row["wall_time_s"]), int(row["timesteps"])
    return None, None


def raw_env(full_env_name, cfg=None, env_config=None, render_mode=None, *, task):
    return make_env(task, render_mode=render_mode)


def sf_fps(task, wrapped: bool, steps: int, folder: Path) -> float:
    """APPO's env steps/s over a short run, the env with or without the reward wrapper."""
    from sample_factory.envs.env_utils import register_env
    from sample_factory.train import make_runner

    settings = sf_settings(task, folder, steps, 0, "cpu", None, None, {"save_every_sec": 600})
    factory = (
        functools.partial(make_sf_env, task=task, reward=task.reference_reward())
        if wrapped
        else functools.partial(raw_env, task=task)
    )
    register_env(settings["env"], factory)
    _, runner = make_runner(sf_config(settings))
    runner.init()
    started = time.perf_counter()
    runner.run()
    stats = list(runner.fps_stats)  # (time, env steps) as the run went: start-up left out
    if len(stats) >= 3:
        (t0, s0), (t1, s1) = stats[1], stats[-1]
        return (s1 - s0) / (t1 - t0)
    return sum(runner.env_steps.values()) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=400_000)
    parser.add_argument("--wrapper-steps", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    require_sf()
    task = get_task(TASK)
    threshold = task.metric.above
    root = Path(tempfile.mkdtemp(prefix="bench-backends-"))
    lines = []
    for backend in ("sb3", "sf"):
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
    ratios, raw_fps, wrapped_fps = [], [], []
    for k in range(args.rounds):
        raw = sf_fps(task, False, args.wrapper_steps, root / f"raw{k}")
        wrapped = sf_fps(task, True, args.wrapper_steps, root / f"wrapped{k}")
        raw_fps.append(raw)
        wrapped_fps.append(wrapped)
        ratios.append(wrapped / raw)
    print("\n".join(lines))
    print(
        f"sf rollout workers, {TASK}: raw {statistics.median(raw_fps):.0f} env steps/s, wrapped "
        f"{statistics.median(wrapped_fps):.0f} env steps/s, wrapped/raw = {statistics.median(ratios):.3f} "
        f"(median of {args.rounds} alternating runs of {args.wrapper_steps:,} steps)"
    )


if __name__ == "__main__":
    main()

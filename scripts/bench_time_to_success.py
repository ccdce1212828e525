#!/usr/bin/env python
"""Wall-clock seconds of training until a periodic evaluation meets the task's success metric:
rewardgen's default PPO against rl-baselines3-zoo's settings (``--hyperparams zoo``), on the same
tasks, seeds and time cap, in one run. Evaluations (10 deterministic episodes every
``--eval-every`` steps) are not counted in the time.

    python scripts/bench_time_to_success.py [--tasks halfcheetah-run,hopper-run,walker2d-run]
        [--seeds 2] [--cap-minutes 10] [--eval-every 20000]

A run that does not get there within the cap is reported as "not reached" and counted at the
cap, so a ratio that involves one is a lower bound (">="). Target: the defaults reach success at
least 3x sooner than the zoo settings.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

from rewardgen.runs import package_versions
from rewardgen.training import OverBudgetError, TrainConfig, train
from rewardgen.training.periodic import read_evals

PROFILES = ("default", "zoo")


def time_to_success(task: str, profile: str, seed: int, cap_s: float, eval_every: int, out: Path):
    """(seconds of training until success or None, steps then, steps/s)."""
    config = TrainConfig(
        task=task,
        steps=100_000_000,
        seed=seed,
        profile=profile,
        video=False,
        progress=False,
        eval_episodes=1,
        eval_every=eval_every,
        stop_on_success=True,
        time_budget_s=cap_s,
    )
    try:
        train(config, out=out)
    except OverBudgetError:
        pass
    rows = read_evals(out / "evals.csv")
    last = rows[-1] if rows else {"timesteps": 0, "wall_time_s": 1, "eval_time_s": 0}
    speed = last["timesteps"] / max(last["wall_time_s"] - last["eval_time_s"], 1e-9)
    hit = next((r for r in rows if r["succeeded"]), None)  # the task's success rule
    if hit is None:
        return None, int(last["timesteps"]), speed
    return hit["wall_time_s"] - hit["eval_time_s"], int(hit["timesteps"]), speed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", default="halfcheetah-run,hopper-run,walker2d-run")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--cap-minutes", type=float, default=10.0)
    parser.add_argument("--eval-every", type=int, default=20_000)
    args = parser.parse_args()
    v = package_versions()
    names = ("mujoco", "gymnasium", "numpy", "torch", "stable-baselines3")
    print(
        "versions: " + ", ".join(f"{k} {v[k]}" for k in names),
        f"; {os.cpu_count()} CPU cores; cap {args.cap_minutes:g} min per run",
        flush=True,
    )
    cap = args.cap_minutes * 60
    results: dict[tuple[str, str], list[float | None]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks.split(","):
            for seed in range(args.seeds):
                for profile in PROFILES:
                    out = Path(tmp) / f"{task}-{profile}-{seed}"
                    seconds, steps, speed = time_to_success(task, profile, seed, cap, args.eval_every, out)
                    results.setdefault((task, profile), []).append(seconds)
                    when = f"{seconds:6.0f} s" if seconds is not None else "not reached"
                    print(
                        f"{task:16s} {profile:8s} seed {seed}: success after {when:>11s} "
                        f"({steps:,} steps, {speed:,.0f} steps/s)",
                        flush=True,
                    )
    print()
    for task in args.tasks.split(","):
        default, zoo = results[(task, "default")], results[(task, "zoo")]
        d = statistics.median(s if s is not None else cap for s in default)
        z = statistics.median(s if s is not None else cap for s in zoo)
        bound = ">=" if any(s is None for s in zoo) and not any(s is None for s in default) else "="
        if any(s is None for s in default):
            bound = "~"  # the default did not always get there either: the ratio is not a bound
        print(
            f"{task:16s} median time to success: default {d:.0f} s, zoo {z:.0f} s; "
            f"zoo/default {bound} {z / d:.1f}"
        )


if __name__ == "__main__":
    main()

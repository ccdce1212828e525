"""What TensorBoard logging costs in training speed: PPO on halfcheetah-run with and without the
event files (``REWARDGEN_TENSORBOARD``), alternating runs in one process, same seed and steps.

    python scripts/bench_tensorboard.py [--steps 100000] [--rounds 3]

Prints each run's training steps/s and the median ratio with / without (target: 1.0 within the
machine's noise).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

from rewardgen.training import TrainConfig, train


def speed(steps: int, folder: Path, tensorboard: bool) -> float:
    os.environ["REWARDGEN_TENSORBOARD"] = "1" if tensorboard else "0"
    config = TrainConfig(task="halfcheetah-run", steps=steps, video=False, eval_episodes=1, progress=False)
    result = train(config, out=folder)
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    events = list(result.run_dir.glob("events.out.tfevents.*"))
    assert bool(events) == tensorboard, events
    return manifest["trained_steps"] / manifest["timing"]["train_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-tb-"))
    ratios = []
    for k in range(args.rounds):  # alternating: drifts in the machine's speed hit both alike
        on = speed(args.steps, root / f"on{k}", True)
        off = speed(args.steps, root / f"off{k}", False)
        ratios.append(on / off)
        print(f"round {k + 1}: with TensorBoard {on:,.0f} steps/s, without {off:,.0f} steps/s", flush=True)
    print(
        f"with / without TensorBoard event files: {statistics.median(ratios):.3f} "
        f"(median of {args.rounds} alternating pairs of {args.steps:,}-step PPO runs on halfcheetah-run)"
    )


if __name__ == "__main__":
    main()

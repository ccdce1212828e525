"""Which APPO settings learn on a small machine: sample-factory's MuJoCo example settings against
rewardgen's few-cores settings (``SF_FEW_CORES``, what ``--backend sf`` picks on at most 8 cores
without a GPU), both on halfcheetah-run's reference reward, evaluated every 100k steps
(deterministic, 2 episodes) until the first evaluation in which every episode runs faster than
3 m/s, at most ``--steps``. Run it on the sample-factory stack:

    .venv-sf/bin/python scripts/bench_sf_settings.py [--steps 1000000]

Prints, for each, the steps and training seconds to that first success (or the best evaluation
when none succeeded), env steps/s, and the ratio of the two settings' steps to success.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

from rewardgen.training import TrainConfig, train
from rewardgen.training.periodic import read_evals
from rewardgen.training.sf import SF_DEFAULTS, SF_FEW_CORES, require_sf

TASK = "halfcheetah-run"


def run(name: str, hyperparams: dict, steps: int, root: Path) -> dict:
    config = TrainConfig(
        task=TASK,
        steps=steps,
        backend="sf",
        video=False,
        eval_episodes=2,
        progress=False,
        eval_every=100_000,
        stop_on_success=True,
        hyperparams=hyperparams,
    )
    result = train(config, out=root / name)
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    evals = read_evals(result.run_dir / "evals.csv")
    hit = manifest.get("first_success")
    train_s = manifest["timing"]["train_s"]
    return {
        "name": name,
        "hit": hit,
        "best": max((r["success_metric_mean"] for r in evals), default=float("nan")),
        "steps": manifest["trained_steps"],
        "fps": manifest["trained_steps"] / train_s,
        "final": manifest["eval"]["success_metric_mean"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    args = parser.parse_args()
    require_sf()
    root = Path(tempfile.mkdtemp(prefix="bench-sf-settings-"))
    # sample-factory's own: its example's values of every setting SF_FEW_CORES changes, 4 envs a worker
    theirs = {**{k: SF_DEFAULTS.get(k) for k in SF_FEW_CORES if k in SF_DEFAULTS}, "num_envs_per_worker": 4}
    theirs.update(actor_critic_share_weights=True, initial_stddev=1.0)  # sample-factory's defaults
    rows = [run("sample-factory", theirs, args.steps, root), run("few-cores", {}, args.steps, root)]
    print(f"{os.cpu_count()} CPU cores; APPO on {TASK}, success = every evaluation episode > 3 m/s")
    for r in rows:
        where = (
            f"succeeded at {r['hit']['timesteps']:,} steps, {r['hit']['wall_time_s']:.0f} s"
            if r["hit"]
            else f"no success in {r['steps']:,} steps (best evaluation {r['best']:.2f} m/s)"
        )
        print(f"{r['name']:>14}: {where}; {r['fps']:,.0f} env steps/s; final evaluation {r['final']:.2f} m/s")
    ours, theirs_row = rows[1], rows[0]
    if ours["hit"]:
        other = theirs_row["hit"]["timesteps"] if theirs_row["hit"] else theirs_row["steps"]
        bound = "" if theirs_row["hit"] else " at least"
        print(
            f"steps to success, sample-factory's / few-cores:{bound} {other / ours['hit']['timesteps']:.2f}x"
        )


if __name__ == "__main__":
    main()

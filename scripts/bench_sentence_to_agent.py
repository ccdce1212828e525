"""From a sentence to an agent that meets the task's success metric: wall time, end to end.

Each scenario runs `rewardgen synthesize --until-success --time-budget 5m` as a user would (a
fresh process, its imports included) against a scripted OpenAI-compatible endpoint on loopback.
The endpoint's first replies are plausible but imperfect rewards (a speed term capped low beside
a heavy torque cost or a dominant alive bonus; a torque cost far below the one the success
measure charges); once a request carries the reward reflection (Eureka's feedback: the success
metric's trajectory, the components, the env reward's terms) it answers with the repair that
reflection points to. So the loop is measured, not a perfect first reply: the
first round fails, the second round's reward succeeds and the search stops there. Two more
scenarios start from good replies: hopper-jump with the command's defaults (two final seeds, the
best policy filmed), and reacher-continue, the env's own terms plus a shaping bonus at 200k steps a
candidate, which needs the clock to continue the rising reward rather than ask for new ones.

Prints, per scenario, the seconds from the command's start to the first success (a candidate
whose final evaluation met the task's rule), the command's total, whether the best policy's final
evaluation confirms it and on how many seeds, and where the time went (LLM, smoke tests, training,
evaluation, filming; summed over the candidates trained at once). Target: each at or under 300 s
on 2 CPU cores (hopper-jump: 75 s).

    python scripts/bench_sentence_to_agent.py                 # all five scenarios
    python scripts/bench_sentence_to_agent.py --only reacher  # one of them
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from rewardgen.llm.testing import LoopbackLLMServer
from rewardgen.tasks import get_task

REFLECTION = "Reward reflection"  # what feedback prompts carry (rewardgen.synthesis.prompts)

CHEETAH = """```python
import numpy as np

SPEED_CAP = {cap}  # m/s: {why}
CTRL_COST_WEIGHT = {ctrl}  # smooth, economical motion


def compute_reward(obs, action, next_obs, info):
    backward = {speed}
    ctrl = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1)
    return backward - ctrl, {{"backward": backward, "ctrl": -ctrl}}
```"""

HOPPER = """```python
import numpy as np

SPEED_CAP = {cap}  # m/s: {why}
BACKWARD_WEIGHT = {backward}
HEALTHY_REWARD = {healthy}


def compute_reward(obs, action, next_obs, info):
    backward = BACKWARD_WEIGHT * {speed}
    alive = HEALTHY_REWARD * info["is_healthy"]
    ctrl = 1e-3 * np.sum(np.square(action), axis=1)
    return backward + alive - ctrl, {{"backward": backward, "alive": alive, "ctrl": -ctrl}}
```"""

REACHER = """```python
import numpy as np

TORQUE_WEIGHT = {weight}  # {why}
PRECISION_WEIGHT = {precision}  # a bonus for the last centimetres
PRECISION_TEMPERATURE = 0.05  # m


def compute_reward(obs, action, next_obs, info):
    distance = info["reward_dist"]  # minus the fingertip's distance to the target
    torque = TORQUE_WEIGHT * info["reward_ctrl"]  # minus sum(action**2)
    near = PRECISION_WEIGHT * np.exp(distance / PRECISION_TEMPERATURE)
    return distance + torque + near, {{"distance": distance, "torque": torque, "near": near}}
```"""

# replies a strong LLM writes for hopper-jump: the catalog's own reward for it, with height and
# upward speed weighted above the alive bonus (which alone teaches a hopper to stand still)
JUMP = f"```python\n{get_task('hopper-jump').reward_path.read_text()}```"
JUMPS = [
    re.sub(
        r"UP_SPEED_WEIGHT = [\d.]+",
        "UP_SPEED_WEIGHT = 2.0",
        re.sub(r"HEIGHT_WEIGHT = [\d.]+", f"HEIGHT_WEIGHT = {h}", JUMP),
    )
    for h in (15.0, 20.0)
]

CAPPED = "np.minimum(-info['x_velocity'], SPEED_CAP)"
UNCAPPED = "-info['x_velocity']"
CAP_WHY = "capped so that the policy does not learn a reckless gait"
REPAIR_WHY = "no longer used: the reflection showed the speed stuck at the cap"


SCENARIOS = {
    "halfcheetah-run-backward": {
        "args": ["--task", "halfcheetah-run-backward", "--steps", "200000"],
        # a low speed cap beside a heavy torque cost: the cheetah shuffles backwards at 0.5 m/s
        "first": [CHEETAH.format(cap=c, why=CAP_WHY, speed=CAPPED, ctrl=1.0) for c in (0.5, 0.75)],
        # the reflection: the success metric stuck near -0.6, the torque cost dominating
        "repair": [CHEETAH.format(cap=0.0, why=REPAIR_WHY, speed=UNCAPPED, ctrl=c) for c in (0.1, 0.05)],
    },
    "hopper-run-backward": {
        "args": ["--task", "hopper-run-backward", "--steps", "600000"],
        "first": [
            HOPPER.format(cap=c, why=CAP_WHY, speed=CAPPED, backward=1.0, healthy=1.0) for c in (0.2, 0.3)
        ],
        # the reflection: the alive bonus dominates the backward term, which stays near zero
        "repair": [
            HOPPER.format(cap=0.0, why=REPAIR_WHY, speed=UNCAPPED, backward=b, healthy=0.5)
            for b in (3.0, 2.0)
        ],
    },
    "reacher": {
        "args": [
            *("--env", "Reacher-v5", "--goal", "Touch the red target with the arm's fingertip"),
            *("--notes", "examples/reacher_notes.yaml", "--steps", "1200000"),
        ],
        # torque hardly charged, although the success measure charges sum(action**2) at weight 1
        "first": [
            REACHER.format(weight=w, why="reaching matters, torque hardly", precision=0.0)
            for w in (0.0, 0.01)
        ],
        # the reflection shows the env's reward_ctrl term far below zero: charge it as the env does
        "repair": [
            REACHER.format(weight=1.0, why="as the env's own return charges it", precision=p)
            for p in (0.0, 0.5)
        ],
    },
    # a reply a strong LLM writes, with the command's defaults (two final seeds, the best filmed)
    "hopper-jump": {
        "args": ["--task", "hopper-jump", "--steps", "200000"],
        "first": JUMPS,
        "repair": JUMPS,
        "defaults": True,
    },
    # the env's own terms plus a shaping bonus from the first reply, 200k steps a candidate: the
    # reward needs more steps than a round gives it, and the clock continues it
    "reacher-continue": {
        "args": [
            *("--env", "Reacher-v5", "--goal", "Touch the red target with the arm's fingertip"),
            *("--notes", "examples/reacher_notes.yaml", "--steps", "200000"),
        ],
        "first": [
            REACHER.format(weight=1.0, why="as the env's own return charges it", precision=p)
            for p in (0.5, 0.25)
        ],
        "repair": [
            REACHER.format(weight=1.0, why="as the env's own return charges it", precision=p)
            for p in (0.5, 0.25)
        ],
    },
}


def responder(scenario: dict) -> tuple[LoopbackLLMServer, list[str]]:
    """The scripted endpoint: the imperfect rewards first; the repair once the reflection came."""
    kinds: list[str] = []

    def answer(request: dict) -> list[str]:
        n = int(request.get("n") or 1)
        last = request["messages"][-1]["content"]
        repaired = REFLECTION in last
        kinds.append("repair" if repaired else "first")
        return (scenario["repair" if repaired else "first"] * n)[:n]

    return LoopbackLLMServer(responder=answer), kinds


def run(name: str, out_root: Path, budget: str) -> dict:
    scenario = SCENARIOS[name]
    server, kinds = responder(scenario)
    out = out_root / name
    out_root.mkdir(parents=True, exist_ok=True)
    if out.exists():
        import shutil

        shutil.rmtree(out)
    with server:
        cmd = [
            sys.executable, "-m", "rewardgen", "synthesize", *scenario["args"],
            "--method", "evolution", "--samples", "2", "--iterations", "3", "--until-success",
            "--time-budget", budget,
            *([] if scenario.get("defaults") else ["--final-seeds", "0", "--videos", "1"]),
            "--llm-base-url", server.url, "--llm-model", "scripted", "--out", str(out),
        ]  # fmt: skip
        cache = out_root / f"{name}.llm-cache.sqlite"  # a fresh cache: every request reaches the endpoint
        cache.unlink(missing_ok=True)
        env = {
            **os.environ,
            "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
            "REWARDGEN_LLM_CACHE": str(cache),
        }
        start = time.monotonic()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        total = time.monotonic() - start
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{name}: rewardgen synthesize exited {proc.returncode}")
    manifest = json.loads((out / "manifest.json").read_text())
    hit = next((r for r in manifest.get("rounds", []) if r.get("first_success_s") is not None), None)
    best = manifest.get("best") or {}
    return {
        "scenario": name,
        "first_success_s": hit["first_success_s"] if hit else None,
        "round": hit["round"] if hit else None,
        "total_s": round(total, 1),
        "ended": manifest.get("ended"),
        "best": f"{Path(best.get('path', '?')).parent.name}/{Path(best.get('path', '?')).name}",
        "best_success_rate": (best.get("eval") or {}).get("success_rate"),
        # the final evaluation's verdict by the task's rule, and the seeds that succeeded
        "confirmed": bool((best.get("eval") or {}).get("succeeded")),
        "seeds": manifest.get("seeds"),
        "llm_requests": f"{kinds.count('first')} first + {kinds.count('repair')} repair",
        "time": manifest.get("time", {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=[*SCENARIOS, "cheetah", "hopper", "jump"], default=None)
    parser.add_argument("--budget", default="5m", help="--time-budget of each search")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-sentence-to-agent"))
    args = parser.parse_args()
    alias = {"cheetah": "halfcheetah-run-backward", "hopper": "hopper-run-backward", "jump": "hopper-jump"}
    names = [alias.get(args.only, args.only)] if args.only else list(SCENARIOS)
    print(f"{os.cpu_count()} CPU cores; each search: 2 candidates per round, 2 at a time, --until-success")
    rows = []
    for name in names:
        r = run(name, args.out, args.budget)
        rows.append(r)
        t = r["time"]
        phases = ", ".join(f"{k.removesuffix('_s')} {v:.0f}s" for k, v in t.items() if k != "wall_s")
        first = f"{r['first_success_s']:.0f} s ({r['round']})" if r["first_success_s"] else "none"
        confirmed = "confirmed" if r["confirmed"] else "not confirmed"
        won = r["seeds"] or {}
        seeds = f", {won['succeeded']} of {won['of']} seeds succeed" if won.get("of", 0) > 1 else ""
        print(
            f"{name}: first success at {first}, command {r['total_s']:.0f} s in all; final evaluation "
            f"{confirmed} ({r['best_success_rate']:.0%} of episodes){seeds}; "
            f"LLM requests {r['llm_requests']}; phases summed over candidates: {phases}"
        )
    print("\n| scenario | first success | command total | final evaluation | ended |")
    print("|---|---|---|---|---|")
    for r in rows:
        first = f"{r['first_success_s']:.0f} s ({r['round']})" if r["first_success_s"] else "none"
        confirmed = "confirms" if r["confirmed"] else "does not confirm"
        print(f"| {r['scenario']} | {first} | {r['total_s']:.0f} s | {confirmed} | {r['ended']} |")


if __name__ == "__main__":
    main()

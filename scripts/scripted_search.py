"""Run `rewardgen synthesize` end to end against a scripted OpenAI-compatible endpoint.

No model and no network: a loopback chat-completions server answers every request with
hand-written hopper-jump reward candidates (one broken in round 0, repaired from its traceback
in round 1), so the whole pipeline (prompts, checks, sandboxed training, reflection, report.html)
runs offline. Everything after `--` goes to `rewardgen synthesize`; the endpoint is added.

    python scripts/scripted_search.py -- --task hopper-jump --method evolution --samples 4 \\
        --iterations 3 --steps 200000 --out runs/hopper-jump-scripted

ICPL with you as the judge, offline, on the preference page (a round gives its 4 candidates):

    python scripts/scripted_search.py -- --task hopper-jump --method icpl --judge web --samples 4 \
        --iterations 2 --steps 50000 --final-seeds 0 --out runs/hopper-jump-icpl

The same command with `--llm-base-url http://localhost:8000/v1 --llm-model <name>` (vLLM, Ollama)
or OPENAI_API_KEY set runs the search on a real model.
"""

from __future__ import annotations

import re
import sys

from rewardgen.cli import main
from rewardgen.llm.testing import LoopbackLLMServer

TEMPLATE = """Here is a reward that pays for height and upward speed.
```python
# candidate {label}
import numpy as np

STAND_HEIGHT = 1.25
HEIGHT_WEIGHT = {height}
UP_SPEED_WEIGHT = {up}
HEALTHY_REWARD = 1.0
DRIFT_WEIGHT = {drift}


def compute_reward(obs, action, next_obs, info):
    height = HEIGHT_WEIGHT * np.maximum(info["{height_field}"] - STAND_HEIGHT, 0.0)
    up_speed = UP_SPEED_WEIGHT * np.maximum(info["vertical_velocity"], 0.0)
    survive = HEALTHY_REWARD * info["is_healthy"]
    drift = -DRIFT_WEIGHT * np.abs(info["x_velocity"])
    ctrl = 1e-3 * np.sum(np.square(action), axis=1)
    total = height + up_speed + survive + drift - ctrl
    components = {{"height": height, "up_speed": up_speed, "survive": survive, "drift": drift}}
    return total, {{**components, "ctrl": -ctrl}}
```"""

# (HEIGHT_WEIGHT, UP_SPEED_WEIGHT, DRIFT_WEIGHT, field read as the height) of each candidate
ROUNDS = [
    [
        (10.0, 1.0, 0.5, "torso_z"),
        (3.0, 0.0, 0.0, "torso_z"),
        (10.0, 1.0, 0.5, "torso_height"),
        (2.0, 5.0, 0.5, "torso_z"),
    ],
    [
        (15.0, 1.0, 0.5, "torso_z"),
        (10.0, 2.0, 0.5, "torso_z"),
        (10.0, 1.0, 0.2, "torso_z"),
        (20.0, 0.5, 0.5, "torso_z"),
    ],
    [
        (15.0, 2.0, 0.5, "torso_z"),
        (25.0, 1.0, 0.5, "torso_z"),
        (15.0, 1.0, 1.0, "torso_z"),
        (12.0, 1.5, 0.3, "torso_z"),
    ],
]


def respond(request: dict) -> list[str]:
    """Round 0 answers the first prompt; a feedback prompt shows the best (or the preferred) code
    so far, whose `# candidate R.i` line says which round it came from; ICPL's request for a
    summary of a round's choice gets one sentence."""
    text = request["messages"][-1]["content"]
    if "say how reward A differs from reward B" in text:  # ICPL's summary of a round's choice
        a, b = re.findall(r"# candidate ([\d.]+)", text)[:2]
        return [f"Reward {a} (preferred) weighs height and upward speed differently from reward {b}."]
    match = re.search(r"# candidate (\d+)\.(\d+)", text)
    rnd = 0 if match is None else min(int(match.group(1)) + 1, len(ROUNDS) - 1)
    n = int(request.get("n") or 1)
    # a rater's own lineage (ICPL --follow each) starts at its preferred candidate's place, so
    # that two raters who preferred different rewards get different ones
    start = int(match.group(2)) if match and "one of several people rating them" in text else 0
    picks = [(start + k) % len(ROUNDS[rnd]) for k in range(min(n, len(ROUNDS[rnd])))]
    return [
        TEMPLATE.format(label=f"{rnd}.{i}", height=h, up=u, drift=d, height_field=f)
        for i, (h, u, d, f) in ((i, ROUNDS[rnd][i]) for i in picks)
    ]


if __name__ == "__main__":
    args = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    with LoopbackLLMServer(responder=respond) as server:
        main(["synthesize", *args, "--llm-base-url", server.url, "--llm-model", "scripted"])

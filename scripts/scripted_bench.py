"""Run `rewardgen bench` end to end against a scripted OpenAI-compatible endpoint, offline.

The loopback endpoint answers as `scripts/bench_sentence_to_agent.py` does: for each task the
prompt names, plausible but imperfect rewards first, and the repair the reward reflection points
to once a request carries it. Everything after `--` goes to `rewardgen bench`; the endpoint
is added. The table README shows was made with:

    python scripts/scripted_bench.py -- --tasks halfcheetah-run-backward,hopper-run-backward \\
        --methods text2reward,evolution --samples 2 --iterations 2 --steps 150000 \\
        --out runs/bench-scripted

The same `rewardgen bench` command with `--llm-base-url ... --llm-model ...` (or OPENAI_API_KEY)
runs it on a real model; `--llm replay:runs/bench-scripted` re-runs it with no endpoint.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sentence_to_agent import REFLECTION, SCENARIOS

from rewardgen.cli import main
from rewardgen.llm.testing import LoopbackLLMServer


def answer(request: dict) -> list[str]:
    prompt = request["messages"][1]["content"]
    last = request["messages"][-1]["content"]
    name = next((t for t in SCENARIOS if f"# Task {t} " in prompt), None)
    if name is None:
        raise SystemExit("scripted_bench: no scripted rewards for this task (see bench_sentence_to_agent.py)")
    replies = SCENARIOS[name]["repair" if REFLECTION in last else "first"]
    n = int(request.get("n") or 1)
    return (replies * n)[:n]


if __name__ == "__main__":
    args = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    with LoopbackLLMServer(responder=answer) as server:
        main(
            [
                "bench",
                *args,
                "--llm-base-url",
                server.url,
                "--llm-model",
                "scripted",
                "--caption",
                "a scripted endpoint wrote the rewards (scripts/scripted_bench.py): imperfect first "
                "replies, repaired once the reward reflection came; not a real LLM",
            ]
        )

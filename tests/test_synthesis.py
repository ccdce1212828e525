"""The search loops end to end against the loopback LLM server, on tiny training budgets."""

import json
import re
from pathlib import Path

import pytest

from rewardgen.llm import LLMClient, LLMSettings
from rewardgen.llm.testing import LoopbackLLMServer
from rewardgen.programs import SandboxLimits
from rewardgen.runs import RunDir
from rewardgen.synthesis import Candidate, SearchConfig, synthesize
from rewardgen.training.sb3.hyperparams import FAST_PPO

TASK = "hopper-run-backward"  # short episodes under a random policy: many to reflect on
GOOD = """Here you go:
```python
import numpy as np

BACKWARD_WEIGHT = 1.0

def compute_reward(obs, action, next_obs, info):
    backward = -BACKWARD_WEIGHT * info["x_velocity"]
    ctrl = 0.1 * np.sum(action**2, axis=1)
    return backward - ctrl, {"backward": backward, "ctrl": -ctrl}
```"""
BROKEN = """```python
import numpy as np

def compute_reward(obs, action, next_obs, info):
    return -info["x_vel"], {}
```"""
HOSTILE = """```python
import os

def compute_reward(obs, action, next_obs, info):
    os.system("echo pwned")
    return -info["x_velocity"], {}
```"""
PROSE = "I would reward negative x velocity and penalise torque."


def config(**kw):
    base = dict(
        task=TASK,
        samples=2,
        iterations=2,
        steps=256,
        eval_episodes=1,
        hyperparams={**FAST_PPO, "n_steps": 128},
        videos=1,
    )
    return SearchConfig(**{**base, **kw})


def run_search(server, tmp_path, cfg, **settings):
    run = RunDir.create(TASK, cfg.method, {}, out=tmp_path / "run")
    client = LLMClient(
        LLMSettings(base_url=server.url, model="m", cache=False, **settings),
        transcript=run.path / "llm" / "transcript.jsonl",
    )
    try:
        return run, synthesize(cfg, client, run)
    finally:
        client.close()


def test_evolution_repairs_from_tracebacks_and_reflects(tmp_path):
    with LoopbackLLMServer() as server:
        server.push([GOOD, BROKEN], [GOOD, HOSTILE])
        run, summary = run_search(server, tmp_path, config())
        feedback = server.requests[1]["messages"][-1]["content"]
    statuses = [(c["iteration"], c["index"], c["status"]) for c in summary["candidates"]]
    assert statuses == [(0, 0, "trained"), (0, 1, "failed"), (1, 0, "trained"), (1, 1, "refused")]
    broken, hostile = summary["candidates"][1], summary["candidates"][3]
    assert "KeyError: 'x_vel'" in broken["reason"] and "provides: x_velocity, x_position" in broken["reason"]
    assert "import of 'os'" in hostile["reason"]
    # the second prompt carries the failure (to repair it) and the reward reflection
    assert "candidate 1" in feedback and "KeyError: 'x_vel'" in feedback
    assert "component 'backward'" in feedback and "success metric" in feedback
    assert "BACKWARD_WEIGHT" in feedback  # the best code so far
    assert (run.path / "best_reward.py").read_text().startswith("import numpy")
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["best"]["status"] == "trained"
    assert (run.path / "iter0" / "cand0" / "train" / "metrics.csv").exists()
    assert len((run.path / "llm" / "transcript.jsonl").read_text().splitlines()) == 2
    # report.html: every candidate with its fate and code, the prompts, curves, a video of the best
    page = (run.path / "report.html").read_text()
    for label in ("iter0/cand0", "iter0/cand1", "iter1/cand0", "iter1/cand1"):
        assert f"id='{label}'" in page
    assert "KeyError: &#x27;x_vel&#x27;" in page and "import of &#x27;os&#x27;" in page
    assert "BACKWARD_WEIGHT" in page and "Reward reflection" in page  # code, and round 1's prompt
    assert (run.path / "report_curves.png").stat().st_size > 1000
    best = manifest["best"]
    video = f"iter{best['iteration']}/cand{best['index']}/train/video.mp4"
    assert (run.path / video).is_file() and f"src='{video}'" in page
    assert len(list(run.path.glob("iter*/cand*/train/video.mp4"))) == 1  # videos=1: the best only


def test_text2reward_is_one_round_and_survives_prose(tmp_path):
    with LoopbackLLMServer() as server:
        server.push([PROSE, GOOD])
        _run, summary = run_search(server, tmp_path, config(method="text2reward", iterations=5))
        assert len(server.requests) == 1
        prompt = server.requests[0]["messages"][-1]["content"]
    assert "Goal: Make the hopper hop backwards" in prompt and 'info["x_velocity"]' in prompt
    assert [c["status"] for c in summary["candidates"]] == ["refused", "trained"]
    assert "no ```python code block" in summary["candidates"][0]["reason"]
    assert summary["best"]["index"] == 1


def test_budget_stop_keeps_what_was_done(tmp_path):
    with LoopbackLLMServer() as server:
        server.push([GOOD, GOOD])
        run, summary = run_search(server, tmp_path, config(), max_calls=1)
    assert summary["stopped"] and "budget" in summary["stopped"]
    assert len(summary["candidates"]) == 2
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert manifest["status"] == "stopped" and "budget" in manifest["reason"]
    assert (run.path / "best_reward.py").exists()


class LostNodes:
    """An executor whose every job dies with its node: nothing of the job comes back."""

    def map(self, fn, jobs, folders=None, signals=None):
        return [ConnectionError("the node running this job was lost")] * len(jobs)

    def close(self):
        pass


def test_candidates_lost_with_their_node_fail_and_the_report_still_shows_their_code(tmp_path):
    run = RunDir.create(TASK, "text2reward", {}, out=tmp_path / "run")
    with LoopbackLLMServer() as server:
        server.push([GOOD, GOOD])
        client = LLMClient(LLMSettings(base_url=server.url, model="m", cache=False))
        summary = synthesize(
            config(method="text2reward", videos=0, final_seeds=0), client, run, executor=LostNodes()
        )
        client.close()
    assert [c["status"] for c in summary["candidates"]] == ["failed", "failed"]
    assert "the node running this job was lost" in summary["candidates"][0]["reason"]
    assert "BACKWARD_WEIGHT" in (run.path / "report.html").read_text()  # the reply, kept by the driver


def test_unknown_method(tmp_path):
    with LoopbackLLMServer() as server, pytest.raises(Exception, match="unknown method 'magic'"):
        run_search(server, tmp_path, config(method="magic"))


def test_candidates_train_in_parallel_workers_and_the_best_is_retrained(tmp_path):
    with LoopbackLLMServer() as server:
        server.push([GOOD, BROKEN])
        run, summary = run_search(server, tmp_path, config(method="text2reward", workers=2, final_seeds=2))
    assert [c["status"] for c in summary["candidates"]] == ["trained", "failed"]
    assert "KeyError" in summary["candidates"][1]["reason"]
    assert [f["seed"] for f in summary["final_seeds"]] == [1, 2]
    assert all("success_metric_mean" in f for f in summary["final_seeds"])
    assert (run.path / "final" / "seed2" / "model.zip").exists()


CHILD = """
import json, sys
from rewardgen.llm import LLMClient, LLMSettings
from rewardgen.synthesis import Candidate, SearchConfig, synthesize
from rewardgen.runs import RunDir

url, out, cache, cfg = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
run = RunDir.create(cfg["task"], "evolution", {}, out=out)
client = LLMClient(LLMSettings(base_url=url, model="m", cache_path=cache))
synthesize(SearchConfig(**cfg), client, run)
"""


def test_resume_after_sigkill_retrains_nothing_and_pays_nothing_twice(tmp_path):
    import dataclasses
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    cfg = config(iterations=2, max_reward_cost=1e9)  # `slow` is meant to be slow: not refused
    out, cache = tmp_path / "run", tmp_path / "cache.sqlite"
    slow = GOOD.replace("return backward", "s = sum(range(1_000_000))\n    return backward")
    with LoopbackLLMServer() as server:
        server.push([GOOD, slow], [GOOD, GOOD])
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                server.url,
                str(out),
                str(cache),
                json.dumps(dataclasses.asdict(cfg) | {"sandbox": None}),
            ],
            env=env,
        )
        first = out / "iter0" / "cand0" / "candidate.json"
        deadline = time.time() + 120
        while not first.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert first.exists() and not (out / "summary.json").exists()
        before = first.read_text()
        assert len(server.requests) == 1
        run = RunDir(out, json.loads((out / "manifest.json").read_text()))
        client = LLMClient(LLMSettings(base_url=server.url, model="m", cache_path=cache))
        summary = synthesize(cfg, client, run)
        client.close()
        assert len(server.requests) == 2  # round 0 came from the cache; only round 1 was asked
    assert first.read_text() == before  # candidate 0 was not trained again
    assert [c["status"] for c in summary["candidates"]] == ["trained"] * 4
    assert client.usage.cache_hits == 2


def test_successive_halving_continues_the_better_half(tmp_path):
    strong = GOOD.replace("BACKWARD_WEIGHT = 1.0", "BACKWARD_WEIGHT = 3.0")
    with LoopbackLLMServer() as server:
        server.push([GOOD, strong])
        run, summary = run_search(
            server,
            tmp_path,
            config(method="text2reward", steps=512, early_stop=True, videos=0, halving_tolerance=0.0),
        )
    a, b = summary["candidates"]
    assert a["status"] == b["status"] == "trained"
    survivor, dropped = (a, b) if b["pruned"] else (b, a)
    assert dropped["pruned"] and not survivor["pruned"]
    assert dropped["steps"] == 256 and survivor["steps"] == 512
    assert summary["best"]["index"] == survivor["index"]  # only full-budget candidates can win
    steps = [
        int(r.split(",")[0])
        for r in (Path(survivor["path"]) / "train" / "metrics.csv").read_text().split()[1:]
    ]
    assert steps == sorted(steps) and steps[-1] > 256  # one curve, continued
    assert "stopped early" in (run.path / "report.html").read_text()


def test_halving_rungs():
    from rewardgen.synthesis import halving_rungs

    assert halving_rungs(1000, 4, early_stop=False) == [1000]
    assert halving_rungs(1000, 1, early_stop=True) == [1000]
    assert halving_rungs(1000, 2, early_stop=True) == [500, 1000]
    assert halving_rungs(800, 8, early_stop=True) == [100, 200, 400, 800]


def test_refine_with_a_persons_words_chains_and_survives_broken_replies(tmp_path):
    from rewardgen.errors import RewardgenError
    from rewardgen.synthesis import refine

    fixed = GOOD.replace("ctrl = 0.1", "ctrl = 0.5")
    again = GOOD.replace("ctrl = 0.1", "ctrl = 0.7")
    with LoopbackLLMServer() as server:
        server.push([GOOD])
        server.push([fixed, BROKEN])
        server.push([again])
        run, _ = run_search(server, tmp_path, config(method="text2reward", samples=1))
        client = LLMClient(LLMSettings(base_url=server.url, model="m", cache=False))
        try:
            first = refine(run, "it flails its legs wildly", client, samples=2)
            messages = server.requests[-1]["messages"]
            second = refine(run, "better, but still too shaky", client)
            chained = server.requests[-1]["messages"]
            with pytest.raises(RewardgenError, match="no finished candidate"):
                refine(run, "x", client, candidate="iter7/cand0")
            with pytest.raises(RewardgenError, match="--feedback is empty"):
                refine(run, "  ", client)
        finally:
            client.close()
    # the model saw its own code, what the policy did, and the person's words
    assert messages[-2] == {
        "role": "assistant",
        "content": "```python" + GOOD.split("```python")[1].rstrip("`").rstrip() + "\n```",
    }
    assert "it flails its legs wildly" in messages[-1]["content"]
    assert "component 'backward' per episode" in messages[-1]["content"]
    assert [c["status"] for c in first["candidates"]] == ["trained", "failed"]
    assert first["parent"] == "iter0/cand0" and first["best"] == "refine1/cand0"
    # the second refinement starts from the first one's result
    assert second["parent"] == "refine1/cand0" and "ctrl = 0.5" in chained[-2]["content"]
    assert (run.path / "refined_reward.py").read_text().count("ctrl = 0.7") == 1
    assert (run.path / "refine1" / "cand0" / "train" / "video.mp4").is_file()
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert [r["round"] for r in manifest["refinements"]] == ["refine1", "refine2"]
    page = (run.path / "report.html").read_text()
    assert "it flails its legs wildly" in page and "id='refine2/cand0'" in page


def test_executor_choice_errors():
    from rewardgen.errors import RewardgenError
    from rewardgen.synthesis.executor import make_executor

    with pytest.raises(RewardgenError, match="unknown executor 'slurm'"):
        make_executor("slurm")
    with pytest.raises(RewardgenError, match="--ray-address needs --executor ray"):
        make_executor("local", address="auto")


def test_search_on_a_local_ray_instance(tmp_path):
    """Candidates as Ray tasks: results, a broken candidate's reason and the final seeds come back
    as with the process pool; an exception inside a task is returned as that exception."""
    import operator

    ray = pytest.importorskip("ray")
    from rewardgen.synthesis.executor import RayExecutor

    ex = RayExecutor(cpus_per_job=1, num_cpus=2)
    try:
        out = ex.map(operator.truediv, [(4, 2), (1, 0)])
        assert out[0] == 2 and isinstance(out[1], ZeroDivisionError)
    finally:
        ex.close()
    assert not ray.is_initialized()
    with LoopbackLLMServer() as server:  # the search starts (and stops) its own local Ray
        server.push([GOOD, BROKEN])
        run, summary = run_search(
            server, tmp_path, config(method="text2reward", final_seeds=1, executor="ray", workers=2)
        )
    assert not ray.is_initialized()
    assert [c["status"] for c in summary["candidates"]] == ["trained", "failed"]
    assert "KeyError: 'x_vel'" in summary["candidates"][1]["reason"]
    assert summary["final_seeds"][0]["seed"] == 1 and "success_metric_mean" in summary["final_seeds"][0]
    assert (run.path / "iter0" / "cand0" / "train" / "video.mp4").is_file()


def test_successive_halving_drops_only_clearly_worse_candidates(tmp_path):
    from rewardgen.synthesis.halving import _prune

    def cands(*scores):
        out = {}
        for i, s in enumerate(scores):
            (tmp_path / f"c{i}").mkdir(exist_ok=True)
            out[i] = Candidate(0, i, "trained", score=s, path=tmp_path / f"c{i}")
        return out

    noise = cands(1.2490, 1.2491, 1.2489, 1.2490)  # hopper-jump: nobody jumped, differences are noise
    assert _prune(noise, tolerance=0.02 * 1.6) == [] and not any(c.pruned for c in noise.values())
    clear = cands(1.45, 1.25, 1.46, 1.30)
    dropped = _prune(clear, tolerance=0.02 * 1.6)
    assert sorted(c.index for c in dropped) == [1, 3] and clear[1].pruned and not clear[0].pruned
    assert Candidate.load(tmp_path / "c1").pruned  # saved: a resumed search does not train it again


SLOW = """```python
import numpy as np

def compute_reward(obs, action, next_obs, info):
    total = np.zeros(len(obs))
    for i in range(len(obs)):  # a pure-Python loop per row: ~0.3 s per transition
        total[i] = -info["x_velocity"][i] + 0.0 * sum(k * 1e-9 for k in range(2_000_000))
    return total, {"backward": total}
```"""
# Cheap in the smoke test (a handful of calls) and in training's first rollouts, then about 4 s
# a call: within the cost limit per transition, but training runs past its wall-clock budget.
SLOW_LATER = (
    """```python
import numpy as np

calls = []

def compute_reward(obs, action, next_obs, info):
    calls.append(len(obs))
    backward = -info["x_velocity"]
    if len(calls) > 8:
        backward = backward + 0.0 * sum(k * 1e-9 for k in range(150_000_000))
    return backward, {"backward": backward}
```"""
    ""
)


def test_a_slow_reward_is_refused_with_its_figure_and_nothing_waits_on_it(tmp_path):
    with LoopbackLLMServer() as server:
        server.push([SLOW, GOOD], [GOOD, GOOD])
        run, summary = run_search(server, tmp_path, config(workers=2, iterations=2, videos=0))
        feedback = server.requests[1]["messages"][-1]["content"]
    slow, good = summary["candidates"][:2]
    assert slow["status"] == "failed" and good["status"] == "trained"
    assert "too slow to train on" in slow["reason"] and re.search(
        r"per call of \d+ transitions", slow["reason"]
    )
    assert "the env step costs" in slow["reason"] and "max_reward_cost" in slow["reason"]
    assert not (run.path / "iter0" / "cand0" / "train").exists()  # refused before any training
    assert "too slow to train on" in feedback  # the LLM is told, like any failure
    good_smoke = json.loads((run.path / "iter0" / "cand1" / "smoke.json").read_text())
    assert good_smoke["cost"]["ratio"] < 20 and good_smoke["cost"]["calls"] > 5


def test_a_candidate_over_its_wall_clock_budget_fails_and_the_search_goes_on(tmp_path):
    cfg = config(  # one env (the zoo profile): 32 rollouts of 128 steps, each scored in one call
        method="text2reward",
        workers=2,
        steps=4096,
        candidate_budget_s=60.0,
        videos=0,
        profile="zoo",
        smoke_steps=5,
        sandbox=SandboxLimits(call_timeout_s=120, call_cpu_s=120),  # slow calls are not killed: timed out
    )
    with LoopbackLLMServer() as server:
        server.push([SLOW_LATER, GOOD])
        run, summary = run_search(server, tmp_path, cfg)
    late, good = summary["candidates"]
    assert late["status"] == "failed" and good["status"] == "trained", late["reason"]
    assert "over its wall-clock budget of 60 s" in late["reason"]
    assert "training steps" in late["reason"]  # stopped while training, not after it
    manifest = json.loads((run.path / "iter0" / "cand0" / "train" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "wall-clock budget" in manifest["error"]
    assert summary["best"]["index"] == 1 and good["wall_s"] < 60


def test_the_live_progress_shows_a_failed_candidate_as_failed(tmp_path):
    from rewardgen.synthesis.progress import LineProgress, watch_candidates

    failed, training = tmp_path / "iter0" / "cand0", tmp_path / "iter0" / "cand1"
    (failed).mkdir(parents=True)
    record = {"iteration": 0, "index": 0, "status": "failed", "reason": "too slow"}
    (failed / "candidate.json").write_text(json.dumps(record))
    (training / "train").mkdir(parents=True)
    (training / "train" / "metrics.csv").write_text("timesteps,success_metric_mean\n2048,0.5\n")
    lines = []
    with watch_candidates([failed, training], 300_000, LineProgress(lines.append, every_s=0)):
        pass
    assert lines == [
        "  training: iter0/cand0 failed; iter0/cand1 2,048/300,000 steps (1%), success metric 0.5"
    ]

"""rewardgen bench: the normalized score from the cells' own numbers, a 2-task x 2-method bench
against the loopback server, resume after a kill, and an offline replay with no endpoint."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rewardgen.bench import BenchConfig, aggregate, normalized_score, run_bench, sparse_program
from rewardgen.llm import LLMClient, LLMSettings
from rewardgen.llm.testing import LoopbackLLMServer
from rewardgen.tasks import get_task
from rewardgen.train.hyperparams import FAST_PPO

TASKS = ["hopper-run", "hopper-run-backward"]
CODE = """```python
import numpy as np

def compute_reward(obs, action, next_obs, info):
    speed = {sign}info["x_velocity"]
    return speed, {{"speed": speed}}
```"""


def reply(request):
    """A reward for the task the prompt names: forward or backward speed."""
    prompt = request["messages"][1]["content"]
    backward = "# Task hopper-run-backward" in prompt
    return [CODE.format(sign="-" if backward else "")] * int(request.get("n") or 1)


def config(**kw):
    base = dict(
        tasks=TASKS,
        methods=["text2reward", "evolution"],
        seeds=1,
        steps=1024,
        samples=1,
        iterations=2,
        eval_episodes=1,
        workers=1,
        hyperparams={**FAST_PPO, "n_steps": 64},
    )
    return BenchConfig(**{**base, **kw})


def factory(url, root, replay=None):
    def client_for(cell, folder):
        settings = LLMSettings(base_url=url, model="scripted", cache_path=root / "llm-cache.sqlite")
        return LLMClient(
            settings,
            transcript=folder / "llm" / "transcript.jsonl",
            replay=cell.folder(replay) if replay else None,
            replay_in_order=replay is not None,
        )

    return client_for


def test_the_normalized_score_is_eurekas():
    assert normalized_score(2.0, 3.0, 1.0) == 0.5
    assert normalized_score(3.0, 3.0, 1.0) == 1.0 and normalized_score(1.0, 3.0, 1.0) == 0.0
    # a metric that must stay below a threshold is scored negated: higher is still better
    assert normalized_score(-2.0, -1.0, -5.0) == pytest.approx(0.75)
    assert normalized_score(2.0, 1.0, 1.0) is None and normalized_score(None, 1.0, 0.0) is None
    cfg = config(tasks=TASKS, methods=["evolution"])
    cells = [
        {"task": "hopper-run", "method": "reference", "seed": 0, "score": 3.0, "success_rate": 1.0},
        {"task": "hopper-run", "method": "sparse", "seed": 0, "score": 1.0, "success_rate": 0.0},
        {"task": "hopper-run", "method": "evolution", "seed": 0, "score": 2.5, "success_rate": 0.5},
        {"task": "hopper-run-backward", "method": "reference", "seed": 0, "score": 4.0},
        {"task": "hopper-run-backward", "method": "sparse", "seed": 0, "score": 0.0},
        {"task": "hopper-run-backward", "method": "evolution", "seed": 0, "score": 6.0},
    ]
    agg = aggregate(cfg, cells)
    assert agg["tasks"]["hopper-run"]["evolution"]["normalized"] == 0.75
    assert agg["tasks"]["hopper-run-backward"]["evolution"]["normalized"] == 1.5
    assert agg["summary"]["evolution"] == {
        "tasks": 2,
        "mean": 1.125,
        "median": 1.125,
        "share_at_least_1": 0.5,
    }


def test_the_sparse_baseline_pays_only_for_success():
    import numpy as np

    from rewardgen.code import InProcessRunner, RewardProgram, static_check

    source = sparse_program(get_task("hopper-run-backward"))
    assert static_check(source).ok  # it runs through the same checks as any program
    program = InProcessRunner(RewardProgram.from_source(source))
    info = {"x_position": np.array([-5.0, -3.0, 1.0])}
    total, parts = program(None, np.zeros((3, 3)), None, info)
    assert total.tolist() == [1.0, 0.0, 0.0] and parts["success"].tolist() == [1.0, 0.0, 0.0]
    # cartpole-balance is measured on the env's own return: no step says success, a zero reward
    zero = InProcessRunner(RewardProgram.from_source(sparse_program(get_task("cartpole-balance"))))
    assert zero(None, np.zeros(2), None, {})[0].tolist() == [0.0, 0.0]


def check_outputs(root: Path) -> dict:
    bench = json.loads((root / "bench.json").read_text())
    assert bench["status"] == "finished" and len(bench["cells"]) == 2 * (2 + 2)
    for task in TASKS:  # the normalized score, recomputed from the cells' own numbers
        cells = {c["method"]: c for c in bench["cells"] if c["task"] == task}
        ref, sparse = cells["reference"]["score"], cells["sparse"]["score"]
        for method in ("text2reward", "evolution"):
            expected = (cells[method]["score"] - sparse) / abs(ref - sparse) if ref != sparse else None
            assert bench["tasks"][task][method]["normalized"] == pytest.approx(expected)
        # evolution's two rounds were answered, by the endpoint or by the benchmark's LLM cache
        # (its first round asks what text2reward asked: the same prompt and seed)
        usage = cells["evolution"]["llm"]
        assert usage["calls"] + usage["cache_hits"] == 2
        assert cells["reference"].get("llm") is None
    md = (root / "bench.md").read_text()
    assert "| task | method | success rate |" in md and "| hopper-run-backward | evolution |" in md
    assert "(method - sparse) / |reference - sparse|" in md
    page = (root / "bench.html").read_text()
    assert "<table>" in page and "bench_bars.png" in page and (root / "bench_bars.png").is_file()
    assert (root / "curves_hopper-run.png").is_file()
    return bench


def test_a_two_task_two_method_bench_writes_its_tables(tmp_path):
    root = tmp_path / "bench"
    lines = []
    with LoopbackLLMServer(responder=reply) as server:  # two searches at once, on a pool of two
        bench = run_bench(
            config(parallel_cells=2, workers=2), root, factory(server.url, root), log=lines.append
        )
        asked = len(server.requests)
    check_outputs(root)
    assert any("hopper-run-backward/evolution/seed0: round 2/2" in line for line in lines)  # labelled lines
    # per task: text2reward's request, evolution's first (the same, unless both were in flight at
    # once: then asked twice) and evolution's second
    assert 2 * (1 + 1) <= asked <= 2 * (1 + 2)
    code = (root / "cells" / "hopper-run-backward" / "evolution" / "seed0" / "best_reward.py").read_text()
    assert '-info["x_velocity"]' in code
    assert "Sparse baseline" in (root / "cells" / "hopper-run" / "sparse" / "seed0" / "reward.py").read_text()
    assert bench["config"]["tasks"] == TASKS and "rewardgen" in json.dumps(bench["versions"])

    # replay: a new benchmark from the recorded one, with no endpoint at all
    replayed = tmp_path / "replayed"
    bench2 = run_bench(
        config(parallel_cells=2, workers=2), replayed, factory("http://127.0.0.1:9/v1", replayed, replay=root)
    )
    check_outputs(replayed)
    for task in TASKS:
        for method in ("text2reward", "evolution"):
            folder = Path("cells") / task / method / "seed0"
            assert (replayed / folder / "best_reward.py").read_text() == (
                root / folder / "best_reward.py"
            ).read_text()
    assert all((c.get("llm") or {}).get("calls", 0) == 0 for c in bench2["cells"])


CHILD = """
import json, sys
from pathlib import Path
from rewardgen.bench import BenchConfig, run_bench
from rewardgen.llm import LLMClient, LLMSettings

url, root, cfg = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
def client_for(cell, folder):
    s = LLMSettings(base_url=url, model="scripted", cache_path=root / "llm-cache.sqlite")
    return LLMClient(s, transcript=folder / "llm" / "transcript.jsonl")
run_bench(BenchConfig.from_record(cfg), root, client_for)
"""


def test_a_killed_bench_resumes_without_retraining_finished_cells(tmp_path):
    root = tmp_path / "bench"
    cfg = config()
    with LoopbackLLMServer(responder=reply) as server:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, server.url, str(root), json.dumps(cfg.record())], env=env
        )
        first = root / "cells" / "hopper-run" / "text2reward" / "seed0" / "summary.json"
        deadline = time.time() + 300
        while not first.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert first.exists() and not (root / "bench.md").exists()
        finished = {
            p: p.stat().st_mtime_ns
            for p in (root / "cells").glob("*/*/seed0/**/model.zip")
            if (p.parent / "eval.json").is_file()
        }
        asked = len(server.requests)
        assert asked >= 1 and finished
        bench = run_bench(cfg, root, factory(server.url, root))
        assert len(server.requests) - asked <= 2 * (1 + 1) - 1  # the finished search asked nothing again
    check_outputs(root)
    for path, mtime in finished.items():  # no finished policy was trained again
        assert path.stat().st_mtime_ns == mtime, path
    assert bench["status"] == "finished"


def test_the_command_plans_before_it_runs(tmp_path, capsys):
    from test_cli import run_cli

    from rewardgen.cli import main

    main(["bench", "--tasks", "hopper-run", "--methods", "evolution", "--steps", "4096", "--dry-run",
          "--out", str(tmp_path / "b")])  # fmt: skip
    text = capsys.readouterr().out
    assert "1 task(s) x 1 method(s) x 1 seed(s), baselines reference, sparse: 3 cells, 3 to run" in text
    assert "1 searches make about 3 LLM requests" in text and "steps/s" in text
    assert not (tmp_path / "b").exists()  # a dry run writes nothing
    code, text = run_cli(["bench", "--tasks", "nope", "--methods", "evolution", "--dry-run"], capsys)
    assert code == 2 and "nope" in text
    code, text = run_cli(["bench", "--tasks", "hopper-run", "--methods", "magic", "--dry-run"], capsys)
    assert code == 2 and "unknown method magic" in text
    code, text = run_cli(["bench", "--suite", "everything", "--dry-run"], capsys)
    assert code == 2 and "unknown suite 'everything': choose one of locomotion, metaworld" in text

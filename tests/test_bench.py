"""rewardgen bench: the normalized score from the cells' own numbers, a 2-task x 2-method bench
against the loopback server, resume after a kill, and an offline replay with no endpoint."""

import importlib.util
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
from rewardgen.training.sb3.hyperparams import FAST_PPO

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

    from rewardgen.programs import InProcessRunner, RewardProgram, static_check

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
    assert page.count(bench["caption"]) == 1 and page.count("Eureka&#x27;s human-normalized score") == 1
    for task in TASKS:  # a learning curve of every cell, per task
        assert (root / f"curves_{task}.png").is_file() and f"curves_{task}.png" in page
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
        config(parallel_cells=2, workers=2),
        replayed,
        factory("http://127.0.0.1:9/v1", replayed, replay=root),
        replay=root,  # as `rewardgen bench --llm replay:DIR` passes it
    )
    check_outputs(replayed)
    page = (replayed / "bench.html").read_text()  # no endpoint was asked, and none is named
    assert "replayed from" in page and "127.0.0.1:9" not in page and "api.openai.com" not in page
    assert "recorded from scripted" in page
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


def short_nethack(tmp_path) -> str:
    """nethack-score with 100-step episodes, as a task file, so a tiny run finishes some."""
    from rewardgen.tasks import save_task_file

    spec = get_task("nethack-score")
    short = spec.model_copy(update={"id": "nethack-score-short", "env_kwargs": {"max_episode_steps": 100}})
    path = tmp_path / "nethack-score-short.yaml"
    save_task_file(short, path)
    return str(path)


@pytest.mark.skipif(importlib.util.find_spec("nle") is None, reason="needs the nethack extra (nle)")
def test_a_nethack_bench_sets_oni_against_the_env_reward_and_replays_its_labels(tmp_path):
    from test_oni import labeller

    from rewardgen.oni import OniSpec

    cfg = BenchConfig(
        tasks=[short_nethack(tmp_path)],
        methods=["oni"],
        baselines=["extrinsic", "sparse"],
        steps=2048,
        n_envs=2,
        eval_episodes=1,
        hyperparams={"n_steps": 256, "batch_size": 64},
    )
    root = tmp_path / "bench"
    with LoopbackLLMServer(responder=labeller) as server:
        bench = run_bench(cfg, root, factory(server.url, root))
        assert server.requests  # messages were labelled while the agent trained
    cells = {c["method"]: c for c in bench["cells"]}
    assert {m: c["status"] for m, c in cells.items()} == dict.fromkeys(
        ("extrinsic", "sparse", "oni"), "finished"
    )
    assert cells["oni"]["llm"]["calls"] >= 1 and cells["oni"]["labels"].get("labelled", 0) >= 1
    folder = root / "cells" / "nethack-score-short"
    oni = json.loads((folder / "oni" / "seed0" / "manifest.json").read_text())
    assert oni["reward"]["kind"] == "oni" and oni["reward"]["goal"] == "default"
    assert (oni["config"]["mode"], oni["config"]["env_coef"], oni["config"]["reward_coef"]) == (
        "add",
        0.1,
        0.4,
    )
    extrinsic = json.loads((folder / "extrinsic" / "seed0" / "manifest.json").read_text())
    assert extrinsic["config"]["mode"] == "add"  # the env's own reward, nothing added
    assert "the env's own reward, nothing added" in (folder / "extrinsic" / "seed0" / "reward.py").read_text()
    md = (root / "bench.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| nethack-score-short | oni |"))
    assert f"| {cells['oni']['llm']['calls']} |" in row  # the annotation service's calls in the table
    assert "| nethack-score-short | extrinsic |" in md

    # replay: the recorded labels, no endpoint asked, the same store
    replayed = tmp_path / "replayed"
    bench2 = run_bench(cfg, replayed, factory("http://127.0.0.1:9/v1", replayed, replay=root), replay=root)
    oni2 = next(c for c in bench2["cells"] if c["method"] == "oni")
    assert oni2["status"] == "finished" and oni2["llm"]["calls"] == 0
    recorded = OniSpec(folder / "oni" / "seed0" / "oni_labels.sqlite", model="scripted").store().labels()
    again = OniSpec(
        replayed / "cells" / "nethack-score-short" / "oni" / "seed0" / "oni_labels.sqlite", model="scripted"
    ).store()
    assert recorded and again.labels() == recorded


def test_a_vlm_bench_trains_on_the_tasks_prompts_and_asks_no_llm(tmp_path):
    pytest.importorskip("transformers")
    from rewardgen.vlm.testing import make_tiny_clip

    tiny = str(make_tiny_clip(tmp_path / "tiny-clip"))
    cfg = BenchConfig(
        tasks=["humanoid-kneel"],
        methods=["vlm"],
        baselines=["sparse"],
        steps=128,
        n_envs=1,
        eval_episodes=1,
        vlm_model=tiny,
        device="cpu",
        hyperparams={"n_steps": 64},
    )
    root = tmp_path / "bench"

    def no_llm(cell, folder):
        raise AssertionError("a vlm bench asks no LLM")

    bench = run_bench(cfg, root, no_llm)
    cells = {c["method"]: c for c in bench["cells"]}
    assert cells["vlm"]["status"] == "finished" and cells["sparse"]["status"] == "finished"
    manifest = json.loads((root / "cells" / "humanoid-kneel" / "vlm" / "seed0" / "manifest.json").read_text())
    assert manifest["reward"]["kind"] == "vlm" and manifest["reward"]["model"] == tiny
    assert manifest["reward"]["goal"] == ["a humanoid robot kneeling"]  # the task's prompts
    row = next(line for line in (root / "bench.md").read_text().splitlines() if "| vlm |" in line)
    assert row.count("| – |") >= 3  # no LLM calls, tokens or dollars for a VLM reward
    assert "no LLM call made" in bench["caption"]


def test_suites_bring_their_methods_and_baselines(tmp_path, capsys):
    from test_cli import run_cli

    from rewardgen.bench import suite_tasks
    from rewardgen.cli import main

    assert {"nethack-score", "nethack-staircase"} <= set(suite_tasks("nethack"))
    assert "humanoid-kneel" in suite_tasks("vlm") and "hopper-run" not in suite_tasks("vlm")
    main(["bench", "--suite", "vlm", "--steps", "1000", "--dry-run", "--out", str(tmp_path / "b")])
    text = capsys.readouterr().out
    assert f"{len(suite_tasks('vlm'))} task(s) x 1 method(s) x 1 seed(s), baselines reference, sparse" in text
    assert "vlm cells render and score every frame" in text and "slow on CPU" in text
    code, text = run_cli(["bench", "--tasks", "hopper-run", "--methods", "oni", "--dry-run"], capsys)
    assert code == 2 and "method oni needs a NetHack task" in text and "hopper-run" in text
    code, text = run_cli(["bench", "--tasks", "hopper-run", "--methods", "vlm", "--dry-run"], capsys)
    assert code == 2 and "method vlm needs a task with VLM prompts" in text


def test_the_bar_chart_shows_the_success_metric_the_table_shows(tmp_path, monkeypatch):
    """hopper-run-backward's metric must stay below a line: the table prints it negative, and so
    does the chart (not the oriented score the normalized score is computed on)."""
    import matplotlib.axes

    from rewardgen.bench.table import _plots

    drawn = []
    real_bar = matplotlib.axes.Axes.bar
    monkeypatch.setattr(
        matplotlib.axes.Axes,
        "bar",
        lambda ax, x, h, **kw: (drawn.append(list(h)), real_bar(ax, x, h, **kw))[1],
    )
    cfg = config(tasks=["hopper-run-backward"], methods=["evolution"])
    row = {"success_metric": -0.000541, "score": 0.000541}
    agg = {
        "tasks": {"hopper-run-backward": {m: row for m in ("reference", "sparse", "evolution")}},
        "summary": {"evolution": {"mean": 0.5}},
    }
    _plots(cfg, agg, [], tmp_path)
    assert drawn[0] == [-0.000541] * 3

"""Where users already live: TensorBoard event files beside metrics.csv, the runs list, and
report.html's star on the best of all and its LLM usage table."""

import json

import numpy as np
import pytest

from rewardgen.runs import RunDir
from rewardgen.training import TrainConfig, train
from rewardgen.training.sb3.hyperparams import FAST_PPO


def _scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_a_training_run_writes_tensorboard_events_that_match_metrics_csv(tmp_path):
    pytest.importorskip("tensorboard")
    result = train(
        TrainConfig(
            task="hopper-run",
            steps=4096,
            video=False,
            eval_episodes=1,
            progress=False,
            eval_every=2048,
            hyperparams={**FAST_PPO, "n_steps": 64},
        ),
        out=tmp_path / "run",
    )
    scalars = _scalars(result.run_dir)
    rows = RunDir.open(result.run_dir).metrics()
    assert {"return/env", "return/reward", "success/metric", "success/rate", "episode/length"} <= set(scalars)
    assert {"component/forward", "component/survive", "component/ctrl_cost"} <= set(scalars)
    steps = [s for s, _ in scalars["return/env"]]
    assert steps == [int(t) for t in rows["timesteps"]]  # one point per metrics.csv row, at its steps
    assert np.allclose([v for _, v in scalars["success/metric"]], rows["success_metric_mean"], rtol=1e-5)
    assert "eval/success/metric" in scalars and "final/success/metric" in scalars
    final = json.loads((result.run_dir / "eval.json").read_text())["success_metric_mean"]
    assert scalars["final/success/metric"][-1][1] == pytest.approx(final, rel=1e-5)


def test_tensorboard_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("REWARDGEN_TENSORBOARD", "0")
    result = train(
        TrainConfig(task="hopper-run", steps=2048, video=False, eval_episodes=1, progress=False,
                    hyperparams={**FAST_PPO, "n_steps": 64}),
        out=tmp_path / "run",
    )  # fmt: skip
    assert not list(result.run_dir.glob("events.out.tfevents.*"))
    assert (result.run_dir / "metrics.csv").is_file()


def _run(root, name, method, task, status, metric=None, best=None, **extra):
    run = RunDir.create(task, method, {"steps": 1000, "seed": 0}, out=root / name)
    ev = {"success_metric_mean": metric, "success_rate": 1.0} if metric is not None else None
    fields = {"status": status, **extra}
    if best is not None:
        fields["best"] = {"path": str(root / name / best), "eval": ev}
    elif ev is not None:
        fields["eval"] = ev
    run.update(**fields)
    return run


def test_the_runs_list_filters_and_shows_one(tmp_path, capsys):
    from rewardgen.cli import main

    _run(tmp_path, "a-train", "train", "hopper-run", "finished", metric=1.234, wall_s=61.0)
    _run(tmp_path, "b-search", "evolution", "hopper-jump", "finished", metric=1.7, best="iter1/cand0")
    _run(tmp_path, "c-broken", "train", "hopper-run", "failed", error="its reward raised KeyError: 'x'")
    (tmp_path / "not-a-run").mkdir()
    main(["runs", "--root", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()  # piped: one run a line, tab-separated
    rows = {line.split("\t")[0]: line.split("\t") for line in lines}
    assert set(rows) == {"a-train", "b-search", "c-broken"}
    assert rows["a-train"][1:6] == ["train", "hopper-run", "finished", "1.234", "100%"]
    assert rows["a-train"][7] == "1m01s"
    assert rows["b-search"][1] == "evolution" and rows["b-search"][4] == "1.7"
    main(["runs", "--root", str(tmp_path), "--status", "failed"])
    assert [ln.split("\t")[0] for ln in capsys.readouterr().out.splitlines()] == ["c-broken"]
    main(["runs", "--root", str(tmp_path), "--task", "jump", "--kind", "evolution"])
    assert [ln.split("\t")[0] for ln in capsys.readouterr().out.splitlines()] == ["b-search"]
    main(["runs", "show", str(tmp_path / "b-search")])
    text = capsys.readouterr().out
    assert "evolution on hopper-jump, finished" in text and "(best: iter1/cand0)" in text
    assert "files: manifest.json" in text
    main(["runs", "show", str(tmp_path / "c-broken")])
    assert "error: its reward raised KeyError: 'x'" in capsys.readouterr().out
    from test_cli import run_cli

    code, text = run_cli(["runs", "show", str(tmp_path / "not-a-run")], capsys)
    assert code == 2 and "is not a run directory" in text


def test_the_report_stars_the_best_of_all_and_tables_the_llm_usage(tmp_path):
    from rewardgen.runs import CandidateRecord, EvalSummary
    from rewardgen.synthesis import write_report

    run = RunDir.create(
        "hopper-jump", "evolution", {"task": "hopper-jump", "samples": 1}, out=tmp_path / "run"
    )

    def cand(folder, score):
        (run.path / folder).mkdir(parents=True)
        ev = EvalSummary(
            (), env_return_mean=1.0, reward_return_mean=1.0, success_metric_mean=score, success_rate=0.0
        )
        rec = CandidateRecord(0, 0, "trained", code="x = 1\n", eval=ev, score=score, path=run.path / folder)
        rec.save()
        return rec

    search_best = cand("iter0/cand0", 1.3)
    cand("refine1/cand0", 1.5)
    usage = {"calls": 2, "cache_hits": 1, "prompt_tokens": 900, "completion_tokens": 300, "cost_usd": 0.0123}
    run.update(
        best=search_best.to_dict(),
        refinements=[{"round": "refine1", "best": "refine1/cand0", "candidates": []}],
        llm_usage=usage,
        rounds=[{"round": "iter0", "llm_s": 4.2, "llm": {**usage, "calls": 1, "cost_usd": 0.006}}],
    )
    page = write_report(run.path).read_text()
    row = next(line for line in page.splitlines() if "href='#refine1/cand0'" in line)
    assert "&#9733;" in row  # the refinement did better: the star is its
    row = next(line for line in page.splitlines() if "href='#iter0/cand0'" in line)
    assert "&#9733;" not in row and "(the search's pick)" in row
    assert (
        "<h2>LLM usage</h2>" in page
        and "<td>iter0</td><td>1</td><td>1</td><td>1,200</td><td>0.0060</td>" in page
    )
    assert "all (refinements included)" in page and '{"calls"' not in page  # no raw JSON

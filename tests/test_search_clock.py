"""A search with a clock: candidates stop at their success, the search at its first success or
when its time budget is spent, and the next round's steps are planned from measured speed."""

import json
import time

import pytest

from rewardgen.llm import LLMClient, LLMSettings
from rewardgen.llm.testing import LoopbackLLMServer
from rewardgen.runs import CandidateRecord, RunDir
from rewardgen.synthesis import SearchConfig, synthesize
from rewardgen.synthesis.clock import SearchClock, time_spent
from rewardgen.tasks import MetricSpec, get_task
from rewardgen.training.sb3.hyperparams import FAST_PPO

GOOD = """```python
import numpy as np

def compute_reward(obs, action, next_obs, info):
    backward = -info["x_velocity"]
    ctrl = 0.1 * np.sum(action**2, axis=1)
    return backward - ctrl, {"backward": backward, "ctrl": -ctrl}
```"""
GOOD2 = GOOD.replace("0.1 * np.sum", "0.2 * np.sum")  # another program (the same one would be reused)


def task_with(**metric):
    """hopper-run-backward with another success line: ``below=100`` every policy meets (its
    speed is never 100 m/s), ``below=-100`` none does."""
    spec = get_task("hopper-run-backward")
    return spec.model_copy(update={"metric": MetricSpec(field="x_velocity", reduce="mean", **metric)})


def config(task, **kw):
    base = dict(
        task=task,
        samples=2,
        iterations=2,
        steps=4096,
        eval_every=512,
        eval_episodes=1,
        hyperparams={**FAST_PPO, "n_steps": 128},
        videos=0,
        workers=1,
        smoke_steps=5,
    )
    return SearchConfig(**{**base, **kw})


def search(tmp_path, cfg, replies, log=None):
    run = RunDir.create("hopper-run-backward", cfg.method, {}, out=tmp_path / "run")
    with LoopbackLLMServer() as server:
        server.push(*replies)
        client = LLMClient(LLMSettings(base_url=server.url, model="m", cache=False))
        try:
            summary = synthesize(cfg, client, run, log=log or (lambda line: None))
        finally:
            client.close()
        return run, summary, len(server.requests)


def test_the_search_stops_at_its_first_success(tmp_path):
    cfg = config(task_with(below=100.0), until_success=True)
    run, summary, asked = search(tmp_path, cfg, [[GOOD, GOOD2], [GOOD, GOOD2]])
    first, second = (CandidateRecord.from_dict(c) for c in summary["candidates"])
    # the first candidate stopped at its first evaluation, long before its 4096 steps
    assert first.status == "trained" and first.stopped == "succeeded" and first.first_success is not None
    assert first.steps is not None and first.steps < 4096
    evals = (run.path / "iter0" / "cand0" / "train" / "evals.csv").read_text().splitlines()
    assert len(evals) == 2  # the header and the one evaluation that succeeded
    # the second never trained: the search had its agent
    assert second.status == "skipped" and "iter0/cand0 succeeded" in second.reason
    assert not (run.path / "iter0" / "cand1" / "train").exists()
    assert asked == 1 and not (run.path / "iter1").exists()  # no second round was asked for
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["ended"] == "iter0/cand0 succeeded"
    assert summary["best"]["index"] == 0
    assert not (run.path / RunDir.STOP).exists()  # gone once the search is over
    # where the time went: the LLM's answer, the smoke test, training and evaluating
    assert manifest["rounds"][0]["llm_s"] >= 0 and manifest["rounds"][0]["first_success_s"] > 0
    assert {"smoke_s", "train_s", "eval_s"} <= set(first.timing) and first.timing["train_s"] > 0
    assert set(manifest["time"]) == {"wall_s", "llm_s", "smoke_s", "train_s", "eval_s", "video_s"}
    report = (run.path / "report.html").read_text()
    assert "Where the time went" in report and "succeeded" in report


def test_without_until_success_each_candidate_stops_at_its_own_success(tmp_path):
    cfg = config(task_with(below=100.0), iterations=1)
    _, summary, _ = search(tmp_path, cfg, [[GOOD, GOOD]])
    cands = [CandidateRecord.from_dict(c) for c in summary["candidates"]]
    assert [c.stopped for c in cands] == ["succeeded", "succeeded"]
    assert all(c.steps < 4096 for c in cands)


def test_the_best_rewards_final_seeds_train_until_success_and_are_counted(tmp_path):
    cfg = config(task_with(below=100.0), iterations=1, samples=1, until_success=True, final_seeds=2)
    lines = []
    run, summary, _ = search(tmp_path, cfg, [[GOOD]], log=lines.append)
    assert summary["seeds"] == {"succeeded": 3, "of": 3}  # the search's own seed and two more
    assert "the best reward succeeds on 3 of its 3 seeds" in lines
    for final in summary["final_seeds"]:  # each stopped at its first success, not its 4096 steps
        manifest = json.loads((run.path / "final" / f"seed{final['seed']}" / "manifest.json").read_text())
        assert final["succeeded"] and final["first_success"] is not None
        assert manifest["trained_steps"] < 4096 and manifest["stopped_early"] == "succeeded"
    assert "It succeeds on 3 of its 3 seeds" in (run.path / "report.html").read_text()
    # a line no policy meets: none of its seeds succeeds, and each trained its whole budget, its
    # evaluations ending once the verdict was settled; the best policy is filmed beside the seeds,
    # in the same batch of worker jobs
    cfg = config(task_with(below=-100.0), iterations=1, samples=1, final_seeds=1, steps=2048)
    cfg = SearchConfig(**{**cfg.__dict__, "workers": 2, "videos": 1})
    run, summary, _ = search(tmp_path / "never", cfg, [[GOOD]])
    assert summary["seeds"] == {"succeeded": 0, "of": 2}
    assert json.loads((run.path / "final" / "seed1" / "manifest.json").read_text())["trained_steps"] == 2048
    assert (run.path / "iter0" / "cand0" / "train" / "video.mp4").is_file()
    evals = (run.path / "final" / "seed1" / "evals.csv").read_text().splitlines()
    assert evals[0].split(",")[3] == "episodes" and all(int(r.split(",")[3]) >= 1 for r in evals[1:])


def test_a_candidate_that_never_succeeds_trains_its_steps(tmp_path):
    cfg = config(task_with(below=-100.0), iterations=1, samples=1, until_success=True)
    run, summary, _ = search(tmp_path, cfg, [[GOOD]])
    (cand,) = (CandidateRecord.from_dict(c) for c in summary["candidates"])
    assert cand.status == "trained" and cand.stopped is None and cand.steps == 4096
    evals = (run.path / "iter0" / "cand0" / "train" / "evals.csv").read_text().splitlines()
    # evaluated all along, at the end of each 2048-step rollout (16 envs x 128) past 512 steps
    assert [int(row.split(",")[0]) for row in evals[1:]] == [2048, 4096]
    assert summary["ended"] is None


def test_the_time_budget_stops_training_and_keeps_everything(tmp_path):
    # 10M steps cannot train in 20 s: the budget's alarm stops the one round's candidate, which is
    # evaluated and kept (trained, not failed)
    cfg = config(
        task_with(below=-100.0), steps=10_000_000, eval_every=0, time_budget_s=20.0, samples=1,
        iterations=1, final_seeds=1, videos=1,
    )  # fmt: skip
    lines = []
    started = time.monotonic()
    run, summary, asked = search(tmp_path, cfg, [[GOOD], [GOOD]], log=lines.append)
    # the final seeds and the film are kept within the budget too (here: no time is left for them),
    # after the result was said
    assert time.monotonic() - started < 20.0 + 10.0, lines
    assert any(line.startswith("best reward: ") for line in lines)
    assert any("no time left for" in line for line in lines), lines
    (cand,) = (CandidateRecord.from_dict(c) for c in summary["candidates"])
    assert cand.status == "trained", cand.reason
    assert "time budget of 20.0s is spent" in cand.stopped and 0 < cand.steps < 10_000_000
    assert (run.path / "iter0" / "cand0" / "train" / "model.zip").is_file()
    assert asked == 1 and "time budget" in summary["ended"]
    assert json.loads((run.path / "manifest.json").read_text())["status"] == "finished"


def test_a_round_spends_at_most_its_share_of_the_time_left(tmp_path):
    """10M steps per candidate and two rounds in 30 s: the first round stops its candidate at
    its share (half of the 25 s left after the reserve), saved and evaluated, and the second
    round is still asked and trained, as short as the time left makes it."""
    cfg = config(task_with(below=-100.0), steps=10_000_000, eval_every=0, time_budget_s=30.0, samples=1)
    lines = []
    run, summary, asked = search(tmp_path, cfg, [[GOOD], [GOOD2]], log=lines.append)
    first, second = (CandidateRecord.from_dict(c) for c in summary["candidates"])
    assert asked == 2 and first.status == second.status == "trained", lines
    assert first.stopped == "the round's share of the time budget (12.5s) is spent", first.stopped
    assert 0 < first.steps < 10_000_000 and (first.path / "train" / "model.zip").is_file()
    # the second round trains as many steps as fit the time left (not a quarter of 10M)
    assert 0 < second.steps < 10_000_000 and any("fewer steps to fit" in line for line in lines), lines
    rounds = json.loads((run.path / "manifest.json").read_text())["rounds"]
    assert rounds[0]["cut"] == first.stopped and "cut" not in rounds[1]
    assert any(line.startswith("round 1: the round's share") for line in lines), lines
    import html

    assert f"iter0: {html.escape(first.stopped)}" in (run.path / "report.html").read_text()


def record(steps, train_s, smoke_s=1.0, eval_s=2.0):
    return CandidateRecord(
        0, 0, "trained", steps=steps, timing={"train_s": train_s, "smoke_s": smoke_s, "eval_s": eval_s}
    )


def test_the_next_round_is_planned_from_the_measured_speed():
    clock = SearchClock(time_budget_s=None)
    assert clock.plan(150_000, 2, 2, []).steps == 150_000  # no budget: the steps asked for
    clock = SearchClock(time_budget_s=300.0)
    assert clock.plan(150_000, 2, 2, []).fits  # speed not measured yet: the steps asked for
    clock.started -= 150.0  # half the budget spent; 30 s of it is the reserve
    clock.rounds = [{"llm_s": 7.0}]
    done = [record(100_000, 100.0), record(100_000, 100.0)]  # 1,000 steps/s each
    plan = clock.plan(150_000, 2, 2, done)  # 120 s left - 10 s per candidate besides training
    assert plan.fits and 100_000 <= plan.steps <= 110_000 and "fewer steps" in plan.why
    assert clock.plan(50_000, 2, 2, done).steps == 50_000  # fits whole
    plan = clock.plan(150_000, 4, 1, done)  # four candidates one after the other: too little time
    assert not plan.fits and "not even 25%" in plan.why
    clock.started -= 1000.0
    assert not clock.plan(150_000, 2, 2, done).fits


def test_time_spent_sums_the_phases():
    cands = [record(10, 5.0), record(10, 7.0)]
    spent = time_spent([{"llm_s": 3.0}, {"llm_s": 4.0}], cands, 42.0)
    assert spent == {
        "wall_s": 42.0,
        "llm_s": 7.0,
        "smoke_s": 2.0,
        "train_s": 12.0,
        "eval_s": 4.0,
        "video_s": 0.0,
    }


@pytest.mark.parametrize("text,seconds", [("5m", 300.0), ("90s", 90.0), ("1h30m", 5400.0), ("45", 45.0)])
def test_durations(text, seconds):
    from rewardgen.cli import parse_duration

    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["five minutes", "0", "-5m", "5x"])
def test_bad_durations_say_what_to_write(text):
    from rewardgen.cli import parse_duration
    from rewardgen.errors import RewardgenError

    with pytest.raises(RewardgenError, match="--time-budget must be"):
        parse_duration(text)


def test_the_command_prints_its_plan_and_why_it_ended(tmp_path, monkeypatch, capsys):
    from test_cli import run_cli

    from rewardgen.cli import main
    from rewardgen.tasks import save_task_file

    monkeypatch.setenv("REWARDGEN_LLM_CACHE", str(tmp_path / "cache.sqlite"))
    task = save_task_file(task_with(below=100.0), tmp_path / "easy.yaml")
    code, text = run_cli(["synthesize", "--task", str(task.path), "--time-budget", "five minutes"], capsys)
    assert code == 2 and "--time-budget must be a duration such as 5m" in text
    with LoopbackLLMServer() as server:
        server.push([GOOD, GOOD])
        main(
            [
                "synthesize", "--task", str(task.path), "--samples", "2", "--workers", "1", "--steps", "8192",
                "--eval-every", "512", "--until-success", "--time-budget", "3m", "--final-seeds", "0",
                "--videos", "0", "--llm-base-url", server.url, "--llm-model", "m",
                "--out", str(tmp_path / "run"),
            ]
        )  # fmt: skip
    text = " ".join(capsys.readouterr().out.split())  # the console folds long lines
    assert "plan: up to 3 round(s) of 2 candidates x 8,192 steps; 1 at a time; within 3m00s" in text
    assert "the search stops at the first candidate that succeeds" in text
    assert "the search ends: iter0/cand0 succeeded" in text and "time: wall" in text
    assert len(server.requests) == 1


def candidate_with_curve(tmp_path, scores, every=10_000):
    """A trained candidate whose periodic evaluations read ``scores`` (x_velocity means)."""
    from rewardgen.synthesis.candidate import Candidate

    folder = tmp_path / "iter0" / "cand0"
    (folder / "train").mkdir(parents=True)
    rows = ["timesteps,wall_time_s,eval_time_s,env_return_mean,success_metric_mean,success_rate"]
    rows += [f"{every * (k + 1)},{k},0,0,{v},0" for k, v in enumerate(scores)]
    (folder / "train" / "evals.csv").write_text("\n".join(rows) + "\n")
    return Candidate(0, 0, "trained", steps=every * len(scores), path=folder, score=scores[-1])


def test_a_rising_curve_is_continued_when_its_projection_fits_the_time_left(tmp_path):
    from rewardgen.synthesis.continuation import outlook

    task = task_with(above=1.0)  # mean x_velocity > 1
    rising = candidate_with_curve(tmp_path / "a", [0.2, 0.4, 0.6, 0.8])  # +0.2 per 10k steps
    seen = outlook(task, rising, SearchClock(300.0), speed=2000.0, overhead_s=2.0)
    assert seen.go_on and seen.slope_per_100k == pytest.approx(2.0)
    # 10k steps to the line at this slope, 25% more for the noise: 13k steps, 6.5 s + 2 s
    assert seen.more_steps == 13_000 and seen.needed_s == pytest.approx(8.5)
    assert seen.text().startswith("continue: iter0/cand0 at 40,000 steps, score 0.8 (line 1)")
    too_slow = outlook(task, rising, SearchClock(300.0), speed=20.0, overhead_s=2.0)
    assert not too_slow.go_on and "do not fit the time left" in too_slow.why
    flat = outlook(
        task, candidate_with_curve(tmp_path / "b", [0.5, 0.6, 0.55, 0.5]), SearchClock(300.0), 2000.0, 2.0
    )
    assert not flat.go_on and "no longer rises" in flat.why
    # one good evaluation among bad ones tilts the line (a Reacher run's -52, -17, -33, -23, scaled)
    noisy = candidate_with_curve(tmp_path / "e", [0.154, 0.854, 0.548, 0.734])
    seen = outlook(task, noisy, SearchClock(300.0), speed=2000.0, overhead_s=2.0)
    assert seen.slope_per_100k > 0 and not seen.go_on and "within its evaluations' noise" in seen.why
    # after the last round the time left goes to the best, for the steps that fit, unless it falls
    last = outlook(task, noisy, SearchClock(300.0), speed=2000.0, overhead_s=2.0, last_chance=True)
    assert last.go_on and "no new rewards to try" in last.why
    assert last.every == 10_000 and 500_000 < last.more_steps <= 2000 * (300 - 30 - 2)  # 30 s kept in reserve
    falling = candidate_with_curve(tmp_path / "f", [0.8, 0.6, 0.4, 0.2])
    assert not outlook(task, falling, SearchClock(300.0), 2000.0, 2.0, last_chance=True).go_on
    # falling but still over the line (periodic successes the final evaluation did not confirm):
    # the time left is still the best's
    over = candidate_with_curve(tmp_path / "g", [1.6, 1.5, 1.4, 1.3])
    assert outlook(task, over, SearchClock(300.0), 2000.0, 2.0, last_chance=True).go_on
    # a continuation that stopped a rollout after its last evaluation (a success its final
    # evaluation did not confirm) leaves two points 2k steps apart: the next still evaluates
    # every 10k steps, as the candidate did, not every rollout
    evals = rising.path / "train" / "evals.csv"
    evals.write_text(evals.read_text() + "42048,4,0,0,0.82,0\n")
    assert outlook(task, rising, SearchClock(300.0), speed=2000.0, overhead_s=2.0).every == 10_000
    short = outlook(task, candidate_with_curve(tmp_path / "c", [0.2, 0.4]), SearchClock(300.0), 2000.0, 2.0)
    assert not short.go_on and "a slope needs 3" in short.why
    unbounded = outlook(task, rising, SearchClock(None), 2000.0, 2.0)
    assert not unbounded.go_on and "no --time-budget" in unbounded.why
    # a metric that must stay below its line: scores are negated, the slope is that of the score
    below = task_with(below=-1.0)
    backward = candidate_with_curve(tmp_path / "d", [-0.2, -0.4, -0.6, -0.8])
    seen = outlook(below, backward, SearchClock(300.0), speed=2000.0, overhead_s=2.0)
    assert seen.go_on and seen.more_steps == 13_000


def test_the_reflection_says_when_a_reward_was_still_improving():
    from rewardgen.synthesis.prompts import _still_rising

    task = get_task("hopper-run-backward")  # below its line: a falling x_velocity is improving
    improving = {"timesteps": [1e4, 2e4, 3e4, 4e4], "success_metric_mean": [-0.1, -0.3, -0.5, -0.7]}
    assert "still improving when its training ended (-0.1 -> -0.7" in _still_rising(task, improving)
    worsening = {"timesteps": [1e4, 2e4, 3e4, 4e4], "success_metric_mean": [-0.7, -0.5, -0.3, -0.1]}
    assert _still_rising(task, worsening) is None


def test_a_program_already_trained_is_reused_not_trained_again(tmp_path):
    """The same code twice in a round and again in the next: it trains once."""
    cfg = config(task_with(below=-100.0), samples=2, iterations=2, eval_every=0)
    lines = []
    _, summary, asked = search(tmp_path, cfg, [[GOOD, GOOD], [GOOD, GOOD]], log=lines.append)
    assert asked == 2  # the LLM is asked each round; what it answers again is not trained again
    cands = [CandidateRecord.from_dict(c) for c in summary["candidates"]]
    assert [c.status for c in cands] == ["trained"] * 4
    assert [c.reason for c in cands][1:] == ["the same program as iter0/cand0: its training is reused"] * 3
    assert sum("training 1 candidate" in line for line in lines) == 1  # one training in all
    assert all((c.path / "train" / "model.zip").is_file() for c in cands)
    assert len({c.score for c in cands}) == 1


def test_a_rising_candidate_is_trained_on_instead_of_a_new_round(tmp_path):
    """Round 1's candidate ends short of the line (about -0.73 m/s against -0.80) with its curve
    still rising: the clock continues it from its saved state rather than asking for new rewards."""
    cfg = config(
        task_with(below=-0.80), samples=1, iterations=2, steps=6144, eval_every=1024,
        time_budget_s=60.0, until_success=True,
    )  # fmt: skip
    lines = []
    run, summary, asked = search(tmp_path, cfg, [[GOOD], [GOOD]], log=lines.append)
    decisions = [
        d
        for r in json.loads((run.path / "manifest.json").read_text())["rounds"]
        for d in r.get("decisions", [])
    ]
    assert decisions and decisions[0]["go_on"] and decisions[0]["slope_per_100k"] > 0, lines
    assert any(line.strip().startswith("continue: iter0/cand0 at 6,144 steps") for line in lines), lines
    report = (run.path / "report.html").read_text()
    assert "What the clock decided" in report and "continue: iter0/cand0 at 6,144 steps" in report
    (cand,) = (CandidateRecord.from_dict(c) for c in summary["candidates"][:1])
    assert cand.steps > 6144  # trained on from its saved state, not from scratch
    assert asked == 1 or not cand.succeeded  # a success by continuing asks for no new rewards

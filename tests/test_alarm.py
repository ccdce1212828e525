"""The reward-hacking alarm: rewards written to hack a task trip it on short runs, the standard
tasks' reference rewards do not; the user is told in the terminal, in report.html (a badge, the
curves highlighted) and the LLM in its reflection."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rewardgen.diagnostics.alarm import AlarmSettings, Verdict, hacking_verdict, run_verdict
from rewardgen.programs import ProgramSpec
from rewardgen.tasks import get_task
from rewardgen.training import TrainConfig, train

DATA = Path(__file__).parent / "data"
HOPPER = get_task("hopper-run").metric


def rows(ret, metric, **components):
    n = len(ret)
    out = {"timesteps": np.arange(1, n + 1) * 1000.0, "reward_return_mean": np.asarray(ret, float)}
    out["success_metric_mean"] = np.asarray(metric, float)
    out.update({f"component/{k}": np.asarray(v, float) for k, v in components.items()})
    return out


def evaluation(success_rate=0.0, **components):
    return {"success_rate": success_rate, "episodes": [{"length": 1000, "components": components}]}


def test_a_return_that_climbs_while_the_metric_stays_flat_is_flagged():
    v = hacking_verdict(
        rows(np.linspace(50, 900, 10), np.full(10, 0.3) + 0.01 * np.sin(np.arange(10))), None, HOPPER
    )
    assert v.hacked and "rose 8.8x while the success metric stayed at 0.307" in v.reasons[0]
    assert "final of x_position over an episode > 12.0" in v.reasons[0]
    falling = hacking_verdict(rows(np.linspace(-300, 900, 10), np.linspace(0.5, 0.1, 10)), None, HOPPER)
    assert falling.hacked and "did not follow it (rank correlation -1.00" in falling.reasons[0]


def test_learning_is_not_hacking():
    together = rows(np.linspace(50, 900, 10), np.linspace(0.1, 1.2, 10))  # the metric follows the return
    assert not hacking_verdict(together, None, HOPPER).hacked
    moved = rows(np.linspace(50, 900, 10), np.r_[np.full(5, 0.2), np.full(5, 6.0)])  # half-way to 12 m
    assert not hacking_verdict(moved, None, HOPPER).hacked
    succeeds = rows(np.linspace(50, 900, 10), np.full(10, 0.3))
    assert not hacking_verdict(succeeds, evaluation(1.0, alive=900.0), HOPPER).hacked  # it does the task
    assert not hacking_verdict(rows([1, 9], [0.3, 0.3]), None, HOPPER).hacked  # too few rows to judge


def test_one_dominant_term_is_blamed_unless_it_is_the_tasks_own_measure():
    ret, flat = np.linspace(100, 900, 10), np.linspace(0.2, 1.0, 10)  # 7% of the way to 12 m
    alive = rows(ret, flat, alive=ret[::-1], forward=np.ones(10))  # the term does not follow the metric
    v = hacking_verdict(alive, evaluation(alive=950.0, forward=10.0), HOPPER)
    assert v.hacked and v.dominant == "alive" and "'alive' term supplies 99% of the return" in v.reasons[-1]
    forward = rows(ret, flat, forward=ret, ctrl=np.ones(10))  # a forward term moves with the metric
    v = hacking_verdict(forward, evaluation(forward=950.0, ctrl=10.0), HOPPER)
    assert v.dominant == "forward" and not v.hacked
    strict = AlarmSettings(dominant=0.999)
    assert not hacking_verdict(alive, evaluation(alive=950.0, forward=10.0), HOPPER, strict).hacked


def test_the_verdict_round_trips_and_reads_as_one_line():
    v = Verdict(True, ["x rose"], {"a": 1.0}, "alive")
    assert Verdict.from_dict(v.to_dict()) == v
    assert v.summary() == "reward hacking suspected: x rose"
    assert Verdict(False).summary() == "no sign of reward hacking"


CASES = [  # (task, reward, steps, envs, hacked): short runs, seed 0
    ("hopper-run", "hack_stand.py", 100_000, None, True),  # an alive bonus: the hopper stands
    ("halfcheetah-run", "hack_vibrate.py", 100_000, 4, True),  # joint velocity, no forward motion
    ("hopper-run", None, 100_000, None, False),  # the reference rewards
    ("halfcheetah-run", None, 100_000, 4, False),
]


@pytest.mark.parametrize("task,reward,steps,envs,hacked", CASES, ids=lambda x: str(x))
def test_hacked_rewards_trip_the_alarm_and_reference_rewards_do_not(
    tmp_path, task, reward, steps, envs, hacked
):
    spec = ProgramSpec.from_file(DATA / reward) if reward else None
    config = TrainConfig(task=task, reward=spec, steps=steps, n_envs=envs, video=False, eval_episodes=2)
    result = train(config, out=tmp_path / "run")
    assert result.alarm.hacked is hacked, result.alarm
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["alarm"]["hacked"] is hacked
    assert run_verdict(tmp_path / "run", get_task(task).metric) == result.alarm  # the same from the files


@pytest.fixture(scope="module")
def stand_run(tmp_path_factory):
    """`rewardgen train` on the alive bonus, as a user would run it."""
    from rewardgen.cli import main

    out = tmp_path_factory.mktemp("stand") / "run"
    main(["train", "--task", "hopper-run", "--reward", str(DATA / "hack_stand.py"), "--steps", "100000",
          "--no-video", "--eval-episodes", "2", "--out", str(out)])  # fmt: skip
    return out


def test_the_terminal_says_so(stand_run, capsys):
    from rewardgen.cli.train import _report
    from rewardgen.runs import RunDir
    from rewardgen.training import TrainResult

    run = RunDir.open(stand_run)
    _report(TrainResult(stand_run, run.eval_summary(), Verdict.from_dict(run.manifest["alarm"])))
    out = capsys.readouterr().out
    assert "reward hacking suspected" in out and "'alive' term" in out


def test_the_llm_is_told_in_its_reflection(stand_run, tmp_path):
    from rewardgen.runs import RunDir
    from rewardgen.synthesis import Candidate
    from rewardgen.synthesis.candidate import curves
    from rewardgen.synthesis.prompts import feedback_message

    folder = tmp_path / "cand0"
    shutil.copytree(stand_run, folder / "train")
    cand = Candidate(0, 0, "trained", code=(DATA / "hack_stand.py").read_text(), path=folder)
    cand.eval = RunDir.open(folder / "train").eval_summary()
    text = feedback_message(get_task("hopper-run"), cand, [], curves(cand))["content"]
    assert "REWARD HACKING ALARM" in text and "the 'alive' term supplies" in text


def test_report_html_shows_a_badge_with_the_reason(stand_run, tmp_path):
    from rewardgen.synthesis import write_report

    run = tmp_path / "search"
    folder = run / "iter0" / "cand0"
    shutil.copytree(stand_run, folder / "train")
    manifest = json.loads((folder / "train" / "manifest.json").read_text())
    (folder / "candidate.json").write_text(
        json.dumps({"iteration": 0, "index": 0, "status": "trained", "code": "...", "eval": manifest["eval"],
                    "score": 0.3, "steps": 100_000})
    )  # fmt: skip
    (run / "manifest.json").write_text(
        json.dumps({"task": "hopper-run", "method": "evolution", "config": {}})
    )
    html = write_report(run).read_text()
    assert "class='badge'" in html and "reward hacking?" in html
    assert "Reward hacking suspected: your reward&#x27;s return rose" in html

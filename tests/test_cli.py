import pytest

from rewardgen.cli import main, parse_steps
from rewardgen.errors import RewardgenError


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out + captured.err


def test_parse_steps():
    assert parse_steps("1e6") == 1_000_000
    assert parse_steps("200_000") == 200_000
    for bad in ("fast", "-5", "1.5"):
        with pytest.raises(RewardgenError, match="--steps"):
            parse_steps(bad)


def test_unknown_task_is_one_clear_line(capsys):
    code, text = run_cli(["train", "--task", "hoper-run", "--steps", "100"], capsys)
    assert code == 2
    assert "unknown task 'hoper-run': did you mean hopper-run" in text
    assert "Traceback" not in text


def test_bad_steps_value(capsys):
    code, text = run_cli(["train", "--task", "hopper-run", "--steps", "lots"], capsys)
    assert code == 2 and "--steps must be a number" in text


def test_tasks_lists_and_shows(capsys):
    main(["tasks", "--show", "hopper-jump"])
    out = capsys.readouterr().out
    assert 'info["torso_z"]' in out and "Goal:" in out


def test_check_command(capsys):
    main(["check", "--task", "hopper-run", "--steps", "30", "--n-envs", "2"])
    out = capsys.readouterr().out
    assert "survive" in out
    gap = float(out.split("max |reward - env reward| = ")[1].split()[0])
    assert gap < 1e-6


def test_llm_ask_records_replays_and_stops_on_budget(tmp_path, monkeypatch, capsys):
    import json

    from rewardgen.llm.testing import LoopbackLLMServer

    monkeypatch.setenv("REWARDGEN_LLM_CACHE", str(tmp_path / "cache.sqlite"))
    with LoopbackLLMServer() as server:
        server.push("hello from the model")
        base = ["--llm-base-url", server.url, "--llm-model", "m"]
        main(["llm", "ask", "hi", *base, "--out", str(tmp_path / "live")])
        assert "hello from the model" in capsys.readouterr().out
        code, text = run_cli(
            ["llm", "ask", "another", *base, "--llm-max-calls", "0", "--out", str(tmp_path / "capped")],
            capsys,
        )
        assert code == 2 and "call budget of 0 calls reached" in text
        manifest = json.loads((tmp_path / "capped" / "manifest.json").read_text())
        assert manifest["status"] == "stopped" and "budget" in manifest["reason"]
    # offline: no server, no key
    main(["llm", "ask", "hi", "--llm", f"replay:{tmp_path / 'live'}", "--out", str(tmp_path / "replayed")])
    assert "hello from the model" in capsys.readouterr().out
    code, text = run_cli(
        ["llm", "ask", "new", "--llm", f"replay:{tmp_path / 'live'}", "--out", str(tmp_path / "miss")], capsys
    )
    assert code == 2 and "never recorded" in text
    # without --out nothing is left behind, whether the question was answered or not
    monkeypatch.chdir(tmp_path / "live")
    with LoopbackLLMServer() as server:
        server.push("again")
        main(["llm", "ask", "hi", "--llm-base-url", server.url, "--llm-model", "m"])
    code, text = run_cli(
        ["llm", "ask", "hi", "--llm-base-url", "http://127.0.0.1:9/v1", "--llm-model", "m"], capsys
    )
    assert code == 2 and not (tmp_path / "live" / "runs").exists()


def test_synthesize_command(tmp_path, monkeypatch, capsys):
    import json

    from rewardgen.llm.testing import LoopbackLLMServer

    monkeypatch.setenv("REWARDGEN_LLM_CACHE", str(tmp_path / "cache.sqlite"))
    code = (
        "```python\ndef compute_reward(obs, action, next_obs, info):\n"
        "    v = -info['x_velocity']\n    return v, {'v': v}\n```"
    )
    refined = code.replace(
        "v = -info['x_velocity']", "v = -info['x_velocity'] - 0.5 * abs(info['x_velocity'])"
    )
    with LoopbackLLMServer() as server:
        server.push(code)
        server.push(refined)
        main(
            [
                "synthesize",
                "--task",
                "hopper-run-backward",
                "--method",
                "text2reward",
                "--samples",
                "1",
                "--steps",
                "256",
                "--llm-base-url",
                server.url,
                "--llm-model",
                "m",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        out = capsys.readouterr().out
        assert "trained" in out and "best reward" in out and "LLM: 1 calls" in out
        assert "best reward, seed 1: success metric" in out and "best reward, seed 2" in out  # default 2
        assert "round 1/1: asking m for 1 reward" in out and "iter0/cand0: trained, success metric" in out
        assert "training 1 candidate to 256 steps" in out and "filming the best policy" in out
        # the result is said before the final seeds train and before any filming
        result = out.index("best reward: ")
        assert result < out.index("retraining the best reward") < out.index("filming the best policy")
        # progress of the candidate in training; not a terminal here, so a line at most a minute
        assert "training: iter0/cand0 " in out and "/256 steps" in out
        assert "report.html" in out and (tmp_path / "run" / "report.html").is_file()
        summary = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert summary["best"]["status"] == "trained"
        # a metric that must stay below its line: printed as the task states it (negative), not
        # as the oriented score the search ranks by
        metric = summary["best"]["eval"]["success_metric_mean"]
        assert f"iter0/cand0: trained, success metric {metric:.4g}" in out
        assert f"best so far iter0/cand0, success metric {metric:.4g}" in out

        args = ["--llm-base-url", server.url, "--llm-model", "m"]
        run_manifest = tmp_path / "run" / "manifest.json"  # as if it had planned 3 rounds and ended after 1
        planned = json.loads(run_manifest.read_text())
        planned["config"]["iterations"] = 3
        run_manifest.write_text(json.dumps(planned))
        main(["refine", str(tmp_path / "run"), "--feedback", "it falls on its back", *args])
        out = capsys.readouterr().out
        assert "refine1" in out and "refined reward" in out and "watch it" in out
        assert "training 1 refined reward for 256 steps" in out and "training: refine1/cand0 " in out
        assert "it falls on its back" in server.requests[-1]["messages"][-1]["content"]
        assert (tmp_path / "run" / "refined_reward.py").read_text() == refined.split("```python\n")[1][:-3]
        manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
        assert manifest["status"] == "finished" and manifest["refinements"][0]["parent"] == "iter0/cand0"

        # the refinement comes after the one round the search ran: round 1, not its planned rounds
        refined_cand = json.loads((tmp_path / "run" / "refine1" / "cand0" / "candidate.json").read_text())
        assert refined_cand["iteration"] == 1
        # the LLM's use in all: the search's request and the refinement's, each with its row
        assert manifest["llm_usage"]["calls"] == len(server.requests) == 2
        assert manifest["refinements"][0]["llm"]["calls"] == 1

    (tmp_path / "run" / "report.html").unlink()
    main(["report", str(tmp_path / "run")])
    page = (tmp_path / "run" / "report.html").read_text()
    assert "refine1" in page
    assert (
        "<tr><td>refine1</td><td>1</td>" in page
        and "<tr><td>all (refinements included)</td><td>2</td>" in page
    )
    code, out = run_cli(["refine", str(tmp_path), "--feedback", "x"], capsys)
    assert code == 2 and "no manifest.json" in out


def test_train_on_a_text2reward_file(tmp_path, capsys):
    import json

    pytest.importorskip("metaworld")
    src = tmp_path / "t2r.py"
    src.write_text(
        "import numpy as np\n\n"
        "def compute_dense_reward(self, action, obs):\n"
        "    reach = np.linalg.norm(self.env.tcp_center - obs[4:7])\n"
        "    return -reach - np.linalg.norm(obs[4:7] - self.env._target_pos)\n"
    )
    out = tmp_path / "run"
    args = ["train", "--task", "metaworld-drawer-open", "--reward", str(src), "--steps", "300", "--no-video"]
    main([*args, "--reward-format", "text2reward", "--eval-episodes", "1", "--out", str(out)])
    text = capsys.readouterr().out
    assert "2 self.env reads became state fields" in text and "evaluation (10 episodes)" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["reward"]["sandbox"] is not None  # untrusted code: contained
    assert manifest["config"]["task"].endswith("t2r.task.yaml")
    assert (out / "text2reward" / "t2r.rewardgen.py").is_file()
    assert (out / "reward.py").read_text() == (out / "text2reward" / "t2r.rewardgen.py").read_text()
    code, text = run_cli([*args, "--reward-format", "eureka"], capsys)
    assert code == 2 and "unknown --reward-format 'eureka'" in text


def _installed_rewardgen() -> str:
    """The `rewardgen` console script of the environment the tests run in."""
    import shutil
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "rewardgen"
    found = str(script) if script.is_file() else shutil.which("rewardgen")
    if found is None:
        pytest.skip("the rewardgen command is not installed in this environment")
    return found


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--bogus"], "No such option: --bogus"),
        (["check", "--task", "hopper-run", "--bogus-format", "x"], "No such option: --bogus-format"),
        (["train"], "Missing option '--task'"),
        (["train", "--task"], "Option '--task' requires an argument"),
        (["synthesize", "--samples", "many"], "Invalid value for '--samples'"),
        (["bogus"], "No such command 'bogus'"),
    ],
)
def test_usage_errors_of_the_installed_command_are_a_usage_message_not_a_traceback(args, message):
    """Through the real console script, whatever click typer brings (newer typer vendors its own)."""
    import subprocess

    proc = subprocess.run([_installed_rewardgen(), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    if "requires an argument" not in message:  # click prints no usage line for that one
        assert "Usage: rewardgen" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) <= 5


def test_check_reports_cost_and_accepts_text2reward_files(tmp_path, capsys):
    pytest.importorskip("metaworld")
    src = tmp_path / "sweep.py"
    src.write_text(  # the shape of Text2Reward's published files: np from globals, an unused import
        "from scipy.spatial import distance\n\n"
        "def compute_dense_reward(self, action, obs) -> float:\n"
        "    to_goal = np.linalg.norm(obs[4:7] - self.env._get_pos_goal())\n"
        "    return -to_goal - 0.001 * np.sum(np.square(action))\n"
    )
    args = ["check", "--task", "metaworld-sweep-into", "--reward", str(src), "--steps", "20", "--n-envs", "1"]
    main([*args, "--reward-format", "text2reward", "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert "1 self.env reads became state fields" in out and "text2reward" in out
    assert "per call of 1 transition " in out and "the env step costs" in out
    converted = (tmp_path / "run" / "text2reward" / "sweep.rewardgen.py").read_text()
    assert "dropped an import the code never uses: from scipy.spatial import distance" in converted


def test_usage_errors_are_recognised_from_click_and_from_typers_vendored_copy():
    import click

    from rewardgen.cli import _is_click

    assert _is_click(click.exceptions.NoSuchOption("--x"), "ClickException")
    assert _is_click(click.exceptions.Abort(), "Abort")
    assert not _is_click(ValueError("x"), "ClickException")
    vendored = pytest.importorskip("typer._click.exceptions")  # typer >= 0.20 vendors click
    assert _is_click(vendored.NoSuchOption("--x"), "ClickException")


def test_train_until_success_says_when_it_got_there(tmp_path, capsys):
    from rewardgen.tasks import derive_task, save_task_file

    task = derive_task("Pendulum-v1", "anything", {"metric": {"field": "env_reward", "above": -5000}})
    path = save_task_file(task, tmp_path / "task.yaml").path
    reward = tmp_path / "reward.py"
    reward.write_text("def compute_reward(obs, action, next_obs, info):\n    return next_obs[:, 0], {}\n")
    args = ["train", "--task", str(path), "--reward", str(reward), "--steps", "2e5", "--n-envs", "4"]
    main([*args, "--eval-every", "2000", "--until-success", "--no-video", "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert "success: the policy meets the task's success rule after" in out and "evals.csv" in out


def test_hp_overrides_reach_the_algorithm_and_bad_ones_are_named(tmp_path, capsys):
    import json

    from rewardgen.cli.common import parse_hp

    assert parse_hp(["learning_rate=1e-3", 'policy_kwargs={"net_arch": [8]}', "x=abc"]) == {
        "learning_rate": 1e-3,
        "policy_kwargs": {"net_arch": [8]},
        "x": "abc",
    }
    from rewardgen.tasks import derive_task, save_task_file

    task = derive_task("Pendulum-v1", "anything", {"metric": {"field": "env_reward", "above": -5000}})
    path = save_task_file(task, tmp_path / "task.yaml").path
    reward = tmp_path / "reward.py"
    reward.write_text("def compute_reward(obs, action, next_obs, info):\n    return next_obs[:, 0], {}\n")
    base = ["train", "--task", str(path), "--reward", str(reward), "--steps", "256", "--n-envs", "2"]
    base += ["--no-video", "--eval-episodes", "1"]
    code, text = run_cli([*base, "--hp", "learning_rate"], capsys)
    assert code == 2 and "write KEY=VALUE" in text
    code, text = run_cli([*base, "--hp", "n_epoch=3", "--out", str(tmp_path / "bad")], capsys)
    assert code == 2 and "n_epoch" in text and "Traceback" not in text
    main([*base, "--hp", "n_epochs=2", "--hp", "learning_rate=1e-3", "--out", str(tmp_path / "run")])
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["hyperparams"] == {"n_epochs": 2, "learning_rate": 1e-3}

"""A run's status is always true: a run that fails at start says failed and why; a run whose
process is gone is not listed as running."""

import json
import subprocess
import sys

from test_cli import run_cli

from rewardgen.runs import RunDir
from rewardgen.runs.listing import list_runs
from rewardgen.tasks import get_task, save_task_file


def test_a_run_that_fails_at_start_is_failed_with_its_reason(tmp_path, capsys):
    task = get_task("hopper-run").model_copy(update={"id": "hopper-run-elsewhere", "package": "no_such_pkg"})
    path = save_task_file(task, tmp_path / "task.yaml").path
    out = tmp_path / "run"
    code, text = run_cli(
        ["train", "--task", str(path), "--steps", "2048", "--no-video", "--out", str(out)], capsys
    )
    assert code == 2 and "no_such_pkg" in text and "Traceback" not in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "no_such_pkg" in manifest["error"]
    assert manifest["process"]["pid"] > 0


def test_a_run_whose_process_is_gone_is_listed_as_killed(tmp_path, capsys):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = RunDir.create("hopper-run", "train", {}, out=tmp_path / "dead")
    dead.update(process={**dead.manifest["process"], "pid": gone.pid})
    live = RunDir.create("hopper-run", "train", {}, out=tmp_path / "live")  # this process: alive
    statuses = {s.path.name: s.status for s in list_runs(tmp_path)}
    assert statuses == {"dead": "killed", "live": "running"}
    assert live.is_orphaned() is False
    main_text = run_cli_listing(tmp_path, capsys)
    assert "killed" in main_text


def run_cli_listing(root, capsys) -> str:
    from rewardgen.cli import main

    main(["runs", "--root", str(root)])
    captured = capsys.readouterr()
    return captured.out + captured.err

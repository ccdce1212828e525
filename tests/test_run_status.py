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


def test_the_runs_table_reads_at_80_columns(tmp_path):
    """Whole values, never one letter and an ellipsis: names fold, less needed columns go."""
    import re

    from test_cli_edges import terminal_screen

    for k, status in enumerate(("finished", "failed", "interrupted")):
        run = RunDir.create(
            "hopper-run-backward", "evolution", {}, out=tmp_path / f"20261207T11000{k}Z-long-name"
        )
        run.update(status=status, eval={"success_metric_mean": -1.234, "success_rate": 0.5})
    screen = re.sub(r"\x1b\[[0-9;]*m", "", terminal_screen(["runs", "--root", str(tmp_path)]))  # no colours
    assert "…" not in screen
    for word in ("finished", "failed", "interrupted", "hopper-run-backward", "-1.234"):
        assert word in screen, word
    assert max(len(line.rstrip("\r")) for line in screen.splitlines()) <= 80


def test_runs_show_of_a_bench_says_when_it_began_and_how_long_it_took(tmp_path, capsys):
    from rewardgen.cli import main

    bench = tmp_path / "bench"
    cell = RunDir.create(
        "hopper-run", "reference", {}, out=bench / "cells" / "hopper-run" / "reference" / "seed0"
    )
    cell.update(status="finished")
    started = cell.manifest["started_at"]
    (bench / "bench.json").write_text(
        json.dumps({"config": {"tasks": ["hopper-run"]}, "status": "finished", "written_at": started})
    )
    main(["runs", "show", str(bench)])
    text = capsys.readouterr().out
    assert "started" in text and " UTC" in text and "took 0.0s" in text and "?" not in text
